//! `read_bytes` (content already in memory: what the `import` fuzz target feeds) reads
//! every case of the hostile import corpus exactly as `read_input` reads the file:
//! the same files and notes, or the same refusal.

use netsnap_import::input::{read_bytes, read_input, Tree};
use netsnap_schema::ReadLimits;
use std::path::Path;

fn outcome(r: Result<Tree, netsnap_import::ImportError>) -> Result<String, String> {
    r.map(|t| format!("{} {} {:?} {:?}", t.origin, t.is_tree, t.files, t.notes))
        .map_err(|e| e.to_string())
}

#[test]
fn bytes_read_as_the_file_for_every_hostile_case() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/hostile/import");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 10,
        "corpus missing from {}",
        corpus.display()
    );
    // Small limits, so the bombs are refused by them on both paths.
    let limits = ReadLimits {
        max_entry_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        ..ReadLimits::default()
    };
    let (mut read, mut refused) = (0, 0);
    for path in &cases {
        let origin = path.display().to_string();
        let data = std::fs::read(path).expect("case");
        let from_file = outcome(read_input(path, &limits));
        let from_bytes = outcome(read_bytes(&data, &origin, &limits));
        assert_eq!(from_bytes, from_file, "{origin}");
        match from_file {
            Ok(_) => read += 1,
            Err(_) => refused += 1,
        }
    }
    // Both kinds are compared: cases that read and cases that are refused.
    assert!(read > 0 && refused > 0, "read {read}, refused {refused}");
}
