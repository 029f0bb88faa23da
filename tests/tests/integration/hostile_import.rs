//! The hostile import corpus (fixtures/hostile/import/) is current, and `netsnap
//! import` (and `netsnap analyze`, which imports in memory) handles every case as the
//! corpus says, within 512 MiB of address space, never panicking: refused with the
//! file named, or imported with what was left out noted.
//! (Regenerate with `NETSNAP_REGENERATE=1 cargo test -p netsnap-tests --test integration hostile_import::`.)

use netsnap_tests::hostile_import::{cases, corpus_dir, generate, Expect, ENTRY_LIMIT};
use std::os::unix::process::CommandExt;
use std::process::Command;

#[test]
fn import_corpus_in_fixtures_is_what_the_generator_writes() {
    let dir = corpus_dir();
    if std::env::var_os("NETSNAP_REGENERATE").is_some() {
        generate(&dir).expect("generate");
    }
    for case in cases() {
        let stored = std::fs::read(dir.join(case.file))
            .unwrap_or_else(|e| panic!("{}: {e} (regenerate: NETSNAP_REGENERATE=1)", case.file));
        assert!(
            stored == case.bytes().expect("bytes"),
            "{} is stale (regenerate: NETSNAP_REGENERATE=1)",
            case.file
        );
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = cases().iter().map(|c| c.file.to_string()).collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "fixtures/hostile/import holds files no case generates"
    );
}

/// Runs `netsnap ARGS…` under a 512 MiB address-space limit in an empty directory.
fn confined(args: &[&str]) -> (Option<i32>, String, Vec<String>) {
    let cwd = netsnap_tests::collector::TempDir::new("hostile-import").expect("tempdir");
    let mut cmd = Command::new(netsnap_tests::collector::analyzer_bin().expect("netsnap"));
    cmd.args(args)
        .arg("--max-entry-bytes")
        .arg(ENTRY_LIMIT.to_string())
        .current_dir(cwd.path());
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 512 << 20,
                rlim_max: 512 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run netsnap");
    let left = std::fs::read_dir(cwd.path())
        .expect("cwd")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        left,
    )
}

#[test]
fn import_and_analyze_refuse_or_note_every_case_within_512_mib() {
    let mut failures = Vec::new();
    for case in cases() {
        let path = corpus_dir()
            .join(case.file)
            .canonicalize()
            .expect("case path");
        let p = path.to_string_lossy().into_owned();
        let (code, stderr, left) = confined(&["import", &p, "-o", "out.netsnap.tar.zst"]);
        let mut fail = |why: String| failures.push(format!("{} ({}): {why}", case.file, case.what));
        if stderr.contains("panicked") {
            fail(format!("import panicked: {stderr}"));
        }
        match case.expect {
            Expect::Refused(text) => {
                if code != Some(2) || !stderr.contains(text) || !stderr.contains(case.file) {
                    fail(format!(
                        "expected exit 2 naming the file and {text:?}, got {code:?}: {stderr}"
                    ));
                }
                if !left.is_empty() {
                    fail(format!("a refused import wrote {left:?}"));
                }
            }
            Expect::Noted(text) => {
                if code != Some(0) || !stderr.contains(text) {
                    fail(format!(
                        "expected exit 0 noting {text:?}, got {code:?}: {stderr}"
                    ));
                }
                if left != ["out.netsnap.tar.zst"] {
                    fail(format!("import wrote {left:?}"));
                }
            }
        }
        let (code, stderr, left) = confined(&["analyze", "--format", "json", &p]);
        if stderr.contains("panicked") || !matches!(code, Some(0..=2)) || !left.is_empty() {
            failures.push(format!(
                "{}: analyze exit {code:?}, wrote {left:?}: {stderr}",
                case.file
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
