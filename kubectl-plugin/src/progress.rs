//! One progress line per node on stderr: bytes received so far and the node's state.
//! On a terminal the lines are redrawn in place; otherwise (CI, a pipe, a log file)
//! each change of state is one plain line, plus the bytes of every node still
//! receiving every [`PLAIN_EVERY`].

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(150);
const PLAIN_EVERY: Duration = Duration::from_secs(10);
const BAR: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Waiting,
    Receiving,
    Done(String),
    Failed(String),
}

struct Line {
    node: String,
    bytes: Arc<AtomicU64>,
    state: State,
    started: Option<Instant>,
}

pub struct Progress {
    tty: bool,
    lines: Mutex<Vec<Line>>,
    width: usize,
}

/// `12.3 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

impl Progress {
    pub fn new(nodes: &[String], tty: bool) -> Progress {
        let lines = nodes
            .iter()
            .map(|n| Line {
                node: n.clone(),
                bytes: Arc::new(AtomicU64::new(0)),
                state: State::Waiting,
                started: None,
            })
            .collect();
        Progress {
            tty,
            lines: Mutex::new(lines),
            width: nodes.iter().map(|n| n.chars().count()).max().unwrap_or(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Line>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The byte counter of node `i`.
    pub fn counter(&self, i: usize) -> Arc<AtomicU64> {
        self.lock()[i].bytes.clone()
    }

    pub fn set(&self, i: usize, state: State) {
        let mut lines = self.lock();
        let l = &mut lines[i];
        if state == State::Receiving {
            l.started = Some(Instant::now());
        }
        l.state = state;
        if !self.tty {
            let text = self.render(l);
            drop(lines);
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    fn render(&self, l: &Line) -> String {
        let bytes = l.bytes.load(Ordering::Relaxed);
        let secs = l.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let (bar, what) = match &l.state {
            State::Waiting => (" ".repeat(BAR), "waiting".to_string()),
            State::Receiving => {
                // No total is known before the end: the bar moves to show life.
                let pos = ((secs * 4.0) as usize) % BAR;
                let bar: String = (0..BAR).map(|k| if k == pos { '>' } else { '-' }).collect();
                (bar, format!("receiving, {secs:.0}s"))
            }
            State::Done(s) => ("=".repeat(BAR), s.clone()),
            State::Failed(s) => ("x".repeat(BAR), s.clone()),
        };
        format!(
            "kubectl-netsnap: {:<w$} [{bar}] {:>10}  {what}",
            l.node,
            mib(bytes),
            w = self.width
        )
    }

    /// Draws until `stop` is set (call in its own thread), then once more.
    pub fn draw_until(&self, stop: &AtomicBool) {
        let mut drawn = 0usize;
        let mut last_plain = Instant::now();
        loop {
            let finished = stop.load(Ordering::SeqCst);
            if self.tty {
                drawn = self.redraw(drawn);
            } else if last_plain.elapsed() >= PLAIN_EVERY {
                last_plain = Instant::now();
                let lines = self.lock();
                let text: Vec<String> = lines
                    .iter()
                    .filter(|l| l.state == State::Receiving)
                    .map(|l| self.render(l))
                    .collect();
                drop(lines);
                for t in text {
                    let _ = writeln!(std::io::stderr().lock(), "{t}");
                }
            }
            if finished {
                return;
            }
            std::thread::sleep(REDRAW);
        }
    }

    /// Moves up over the `drawn` lines and draws every node's line again.
    fn redraw(&self, drawn: usize) -> usize {
        let lines = self.lock();
        let mut out = String::new();
        if drawn > 0 {
            out.push_str(&format!("\x1b[{drawn}A"));
        }
        for l in lines.iter() {
            out.push_str("\r\x1b[2K");
            out.push_str(&self.render(l));
            out.push('\n');
        }
        let n = lines.len();
        drop(lines);
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_node_bytes_and_state() {
        let p = Progress::new(&["a".into(), "node-b".into()], true);
        p.counter(1).store(3 * 1024 * 1024, Ordering::SeqCst);
        p.set(1, State::Done("collected".into()));
        let lines = p.lock();
        let text = p.render(&lines[1]);
        assert!(
            text.contains("node-b") && text.contains("3.0 MiB") && text.contains("collected"),
            "{text}"
        );
        assert!(
            p.render(&lines[0]).contains("a      ["),
            "{}",
            p.render(&lines[0])
        );
    }
}
