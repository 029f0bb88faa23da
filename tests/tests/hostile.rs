//! The hostile corpus in fixtures/hostile/ is current, and the reader handles every
//! case as the corpus says: refused with the entry named, or read for the analyzer.
//! (Regenerate with `NETSNAP_REGENERATE=1 cargo test -p netsnap-tests --test hostile`.)

use netsnap_schema::{Bundle, ReadLimits};
use netsnap_tests::hostile::{cases, corpus_dir, generate, Expect};

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
