//! The matrix's cells, stored as numbers: a big node has millions of (pod, service
//! port) cells but hundreds of pods, thousands of service ports and a few thousand
//! distinct outcomes, so a cell is its outcome's number (its pod and service port
//! are its place in the row-major grid) and [`Cell`] a view of one (a cell of named
//! fields took ~110 bytes and six reference counts).

use super::{Failure, Outcome};
use crate::model::netns::Pod;
use crate::trace::path::Verdict;
use serde::Serialize;
use std::collections::BTreeMap;

/// Every cell of a matrix (or of its masked row): rows × columns, row-major.
#[derive(Debug, Clone, Default)]
pub struct Cells {
    rows: Vec<Row>,
    cols: Vec<Col>,
    outcomes: Vec<Outcome>,
    slots: Vec<Slot>,
}

/// A pod of the matrix: its name (`ns/name`) and netns id.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pod: String,
    netns: String,
}

impl Row {
    pub(super) fn of(pod: &Pod) -> Row {
        Row {
            pod: pod.display_name(),
            netns: pod.netns.clone(),
        }
    }
}

/// A service port of the matrix: its label, address and `netsnap trace --to`.
#[derive(Debug, Clone)]
pub(super) struct Col {
    pub(super) service: String,
    pub(super) address: String,
    pub(super) to: String,
}

/// One cell: its outcome's index (its row and column are its position).
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub(super) outcome: u32,
    /// Traced for this pod (false: the outcome of a pod of its class).
    pub(super) traced: bool,
}

/// One (pod, service port) cell of the matrix.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cell<'a> {
    /// The pod (`ns/name`) and its netns id.
    pub pod: &'a str,
    pub netns: &'a str,
    /// The service port (`ns/name:port`) and its address.
    pub service: &'a str,
    pub address: &'a str,
    /// `--to` (and `--proto`) of the `netsnap trace` call that shows this cell.
    pub to: &'a str,
    #[serde(flatten)]
    pub outcome: &'a Outcome,
    /// Traced for this pod (false: the result of a pod of its class).
    pub traced: bool,
}

impl<'a> Cell<'a> {
    /// Probability that a connection fails (refused, rejected, dropped, no route).
    pub fn failing(&self) -> f64 {
        self.outcome.failures.iter().map(|f| f.probability).sum()
    }

    pub fn failures(&self) -> &'a [Failure] {
        &self.outcome.failures
    }

    pub fn verdicts(&self) -> &'a BTreeMap<Verdict, f64> {
        &self.outcome.verdicts
    }

    /// The `netsnap trace` arguments that show this cell's paths.
    pub fn command(&self) -> String {
        format!("--from {} --to {}", self.pod, self.to)
    }
}

impl Cells {
    /// Cells over `rows` × `cols`, one slot per cell in row-major order, each naming
    /// one of `outcomes`.
    pub(super) fn new(
        rows: Vec<Row>,
        cols: Vec<Col>,
        outcomes: Vec<Outcome>,
        slots: Vec<Slot>,
    ) -> Cells {
        debug_assert_eq!(slots.len(), rows.len() * cols.len());
        debug_assert!(slots.iter().all(|s| (s.outcome as usize) < outcomes.len()));
        Cells {
            rows,
            cols,
            outcomes,
            slots,
        }
    }

    /// Every (row, column) cell traced on its own: `outcomes` row-major.
    pub(super) fn each(rows: Vec<Row>, cols: Vec<Col>, outcomes: Vec<Outcome>) -> Cells {
        let slots = (0..outcomes.len())
            .map(|i| Slot {
                outcome: i as u32,
                traced: true,
            })
            .collect();
        Cells::new(rows, cols, outcomes, slots)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            cells: self,
            slots: self.slots.iter().enumerate(),
        }
    }

    /// The cell at position `at`.
    fn view(&self, at: usize, s: &Slot) -> Cell<'_> {
        let width = self.cols.len();
        let row = &self.rows[at / width];
        let col = &self.cols[at % width];
        Cell {
            pod: &row.pod,
            netns: &row.netns,
            service: &col.service,
            address: &col.address,
            to: &col.to,
            outcome: &self.outcomes[s.outcome as usize],
            traced: s.traced,
        }
    }
}

/// The cells of [`Cells`] in order.
#[derive(Clone)]
pub struct Iter<'a> {
    cells: &'a Cells,
    slots: std::iter::Enumerate<std::slice::Iter<'a, Slot>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cell<'a>;

    fn next(&mut self) -> Option<Cell<'a>> {
        self.slots.next().map(|(at, s)| self.cells.view(at, s))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.slots.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Cells {
    type Item = Cell<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// A list of cells, as the matrix's JSON has always had them.
impl Serialize for Cells {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(verdict: Verdict, failing: bool) -> Outcome {
        Outcome {
            verdicts: [(verdict, 1.0)].into(),
            failures: if failing {
                vec![Failure {
                    verdict,
                    probability: 1.0,
                    reason: "dropped".into(),
                    deciding: None,
                }]
            } else {
                Vec::new()
            },
        }
    }

    fn row(pod: &str) -> Row {
        Row {
            pod: pod.into(),
            netns: format!("ns-{pod}"),
        }
    }

    fn col(service: &str) -> Col {
        Col {
            service: service.into(),
            address: format!("{service}-address"),
            to: format!("{service}-to"),
        }
    }

    #[test]
    fn a_cell_names_its_row_column_and_outcome() {
        // Two pods × two services; the second pod's cells reuse the first pod's
        // outcomes (not traced), one of which fails.
        let outcomes = vec![
            outcome(Verdict::Delivered, false),
            outcome(Verdict::Dropped, true),
        ];
        let slot = |outcome, traced| Slot { outcome, traced };
        let slots = vec![slot(0, true), slot(1, true), slot(0, false), slot(1, false)];
        let cells = Cells::new(
            vec![row("a"), row("b")],
            vec![col("s1"), col("s2")],
            outcomes,
            slots,
        );
        assert_eq!(cells.len(), 4);
        assert_eq!(cells.iter().len(), 4);
        let seen: Vec<(&str, &str, &str, bool, f64)> = cells
            .iter()
            .map(|c| (c.pod, c.netns, c.service, c.traced, c.failing()))
            .collect();
        assert_eq!(
            seen,
            [
                ("a", "ns-a", "s1", true, 0.0),
                ("a", "ns-a", "s2", true, 1.0),
                ("b", "ns-b", "s1", false, 0.0),
                ("b", "ns-b", "s2", false, 1.0),
            ]
        );
        let last = cells.iter().last().expect("four cells");
        assert_eq!(last.command(), "--from b --to s2-to");
        assert_eq!(last.address, "s2-address");
    }

    #[test]
    fn cells_serialise_as_a_list_of_flat_cells() {
        let cells = Cells::each(
            vec![row("a")],
            vec![col("s1")],
            vec![outcome(Verdict::Dropped, true)],
        );
        let json = serde_json::to_value(&cells).expect("serialisable");
        let keys: Vec<&str> = json[0]
            .as_object()
            .expect("a cell is an object")
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "pod", "netns", "service", "address", "to", "verdicts", "failures", "traced",
        ] {
            assert!(keys.contains(&key), "{key} missing from {json}");
        }
        assert_eq!(json[0]["pod"], "a");
        assert_eq!(json[0]["failures"][0]["reason"], "dropped");
        assert_eq!(json.as_array().map(Vec::len), Some(1));
    }
}
