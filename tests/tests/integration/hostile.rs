//! The hostile corpus in fixtures/hostile/ is current, and the reader handles every
//! case as the corpus says: refused with the entry named, or read for the analyzer.
//! (Regenerate with `NETSNAP_REGENERATE=1 cargo test -p netsnap-tests --test integration hostile::`.)

use netsnap_schema::registry::{self, Format, SOURCES};
use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::hostile::{cases, corpus_dir, generate, malformed, malformed_path, Expect};

#[test]
fn corpus_in_fixtures_is_what_the_generator_writes() {
    let dir = corpus_dir();
    if std::env::var_os("NETSNAP_REGENERATE").is_some() {
        generate(&dir).unwrap();
    }
    let cases = cases();
    assert!(cases.len() >= 25, "the corpus must hold at least 25 cases");
    for case in &cases {
        let stored = std::fs::read(dir.join(case.file_name()))
            .unwrap_or_else(|e| panic!("{}: {e} (regenerate: NETSNAP_REGENERATE=1)", case.name));
        assert!(
            stored == case.bytes().unwrap(),
            "{} is stale (regenerate: NETSNAP_REGENERATE=1)",
            case.name
        );
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".netsnap.tar.zst"))
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = cases.iter().map(|c| c.file_name()).collect();
    expected.sort();
    assert_eq!(
        on_disk, expected,
        "fixtures/hostile holds files no case generates"
    );
}

#[test]
fn reader_refuses_or_reads_each_case_as_expected() {
    for case in cases() {
        let path = corpus_dir().join(case.file_name());
        let result = Bundle::open(&path, &ReadLimits::default());
        match (&case.expect, result) {
            (Expect::Refused(text), Err(e)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(text),
                    "{}: error does not mention {text:?}: {msg}",
                    case.name
                );
                assert!(
                    msg.contains(&case.file_name()),
                    "{}: error does not name the bundle: {msg}",
                    case.name
                );
            }
            (Expect::Refused(_), Ok(_)) => panic!("{}: {} was accepted", case.name, case.what),
            (Expect::Reported { path, .. }, Ok(b)) => {
                assert!(b.file(path).is_some(), "{}: {path} missing", case.name);
            }
            (Expect::Reported { .. }, Err(e)) => {
                panic!("{}: a readable bundle was refused: {e}", case.name)
            }
        }
    }
}

/// Runs `netsnap analyze` on one case under a 512 MiB address-space limit, in an empty
/// working directory; returns (exit code, stdout, stderr, files left in that directory).
fn analyze_confined(case_file: &std::path::Path) -> (Option<i32>, String, String, Vec<String>) {
    use std::os::unix::process::CommandExt;
    let cwd = netsnap_tests::collector::TempDir::new("hostile").unwrap();
    let mut cmd = std::process::Command::new(netsnap_tests::collector::analyzer_bin().unwrap());
    cmd.args(["analyze", "--format", "json"])
        .arg(case_file)
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
    let out = cmd.output().unwrap();
    let left: Vec<String> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        left,
    )
}

#[test]
fn analyzer_refuses_or_reports_every_case_within_512_mib_and_writes_nothing() {
    let mut failures = Vec::new();
    for case in cases() {
        let path = corpus_dir().join(case.file_name()).canonicalize().unwrap();
        let (code, stdout, stderr, left) = analyze_confined(&path);
        let mut fail = |why: String| failures.push(format!("{}: {why}", case.name));
        if !left.is_empty() {
            fail(format!("analyze wrote {left:?}"));
        }
        if stderr.contains("panicked") {
            fail(format!("panic: {stderr}"));
        }
        match case.expect {
            Expect::Refused(text) => {
                if code != Some(2) || !stderr.contains(text) {
                    fail(format!(
                        "expected exit 2 naming {text:?}, got {code:?}: {stderr}"
                    ));
                }
            }
            Expect::Reported { id, path: entry } => {
                let Ok(report) = serde_json::from_str::<serde_json::Value>(&stdout) else {
                    fail(format!("exit {code:?}, no JSON report: {stderr}"));
                    continue;
                };
                let findings = report["bundles"][0]["findings"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let hit = findings.iter().any(|f| {
                    f["id"] == id
                        && f["evidence"]
                            .as_array()
                            .is_some_and(|ev| ev.iter().any(|e| e["path"] == entry))
                });
                let ids: Vec<&str> = findings.iter().filter_map(|f| f["id"].as_str()).collect();
                if !matches!(code, Some(0 | 1)) || !hit {
                    fail(format!(
                        "exit {code:?}, expected {id} on {entry}, got {ids:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The corpus holds a malformed file of every registered source (so of every format
/// and every parser), read back from the stored case, not from the generator.
#[test]
fn corpus_has_a_malformed_file_of_every_registered_source() {
    let path = corpus_dir().join("malformed-every-source.netsnap.tar.zst");
    let b = Bundle::open(&path, &ReadLimits::default()).unwrap();
    let mut formats = Vec::new();
    for spec in SOURCES {
        let at = malformed_path(spec);
        let stored = b.file(&at).unwrap_or_else(|| {
            panic!(
                "{}: {at} not in the corpus (regenerate: NETSNAP_REGENERATE=1)",
                spec.name
            )
        });
        assert_eq!(registry::locate(&at).map(|l| l.id), Some(spec.id), "{at}");
        assert_eq!(stored, malformed(spec.format).as_slice(), "{at}");
        formats.push(spec.format);
    }
    // Every format has its malformed body (a new format does not compile in
    // `malformed` without one) and none of them parses.
    for format in [Format::SchemaJson, Format::ToolJson, Format::Text] {
        assert!(formats.contains(&format), "no source of {format:?}");
        let body = malformed(format);
        let parses = std::str::from_utf8(&body).is_ok()
            && serde_json::from_slice::<serde_json::Value>(&body).is_ok();
        assert!(!parses, "{format:?}: the malformed body is well formed");
    }
}

/// No parser takes a malformed source for a sound one: every source the analyzer
/// parses reports the malformed file in its coverage; only the sources it keeps raw
/// for people to read (no check needs them) have none.
#[test]
fn no_parser_accepts_a_malformed_source_silently() {
    use netsnap_schema::registry::SourceId;
    const RAW_ONLY: [SourceId; 3] = [
        SourceId::IpvsStats,
        SourceId::IpvsConn,
        SourceId::CiliumBpfLb,
    ];
    let path = corpus_dir().join("malformed-every-source.netsnap.tar.zst");
    let b = Bundle::open(&path, &ReadLimits::default()).unwrap();
    let parsed = netsnap_analyzer::sources::parse_all(&b);
    for spec in SOURCES {
        let at = malformed_path(spec);
        match parsed.coverage.iter().find(|c| c.path == at) {
            Some(c) => {
                assert!(
                    !RAW_ONLY.contains(&spec.id),
                    "{at} is parsed now: list it no more"
                );
                assert!(!c.is_complete(), "{at} parsed as sound: {c:?}");
            }
            None => assert!(
                RAW_ONLY.contains(&spec.id),
                "{at}: the malformed file is not reported"
            ),
        }
    }
}
