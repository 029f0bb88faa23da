//! Renderers: text for people, JSON (stable, versioned), Markdown for tickets, and
//! the graph as dot or JSON. Renderers only format what the report holds; `netsnap
//! report` also needs each node's picture and matrix, which [`page`] gathers while the
//! analysis is alive, for [`html`] and [`page_markdown`].

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
