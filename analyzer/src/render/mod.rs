//! Renderers: text for people, JSON (stable, versioned), Markdown for tickets, and
//! the graph as dot or JSON. Renderers only format what the report holds.

pub mod diff;
pub mod dot;
pub mod html;
pub mod json;
pub mod markdown;
pub mod page;
pub mod page_markdown;
pub mod text;
pub mod trace;

/// Output formats of `netsnap analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}
