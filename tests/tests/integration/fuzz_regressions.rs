//! Replays every input the fuzzers ever found (fuzz/regressions/<target>/) and the
//! real-format seed files through the same code the fuzz targets run.

use netsnap_tests::fuzz_bodies::{run, TARGETS};
use std::path::Path;

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn fuzz_regression_inputs_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for target in TARGETS {
        let dir = root.join(target);
        assert!(dir.is_dir(), "missing {}", dir.display());
        for file in files_in(&dir) {
            let data = std::fs::read(&file).unwrap();
            run(target, &data);
        }
    }
}

#[test]
fn real_format_seeds_pass_every_target() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../analyzer/tests/integration/data");
    let seeds = files_in(&data);
    assert!(
        seeds.len() > 10,
        "seed files missing from {}",
        data.display()
    );
    for file in &seeds {
        let bytes = std::fs::read(file).unwrap();
        for target in TARGETS {
            run(target, &bytes);
        }
    }
}
