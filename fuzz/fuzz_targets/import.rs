#![no_main]
//! Fuzz target `import`: see `netsnap_tests::fuzz_bodies` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| netsnap_tests::fuzz_bodies::run("import", data));
