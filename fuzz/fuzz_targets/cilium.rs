#![no_main]
//! Fuzz target `cilium`: see `netsnap_tests::fuzz_bodies` for what it checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| netsnap_tests::fuzz_bodies::run("cilium", data));
