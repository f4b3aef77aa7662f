//! Every committed fuzz seed (and every sample event) through the fuzz
//! targets' own checks: the regressions fuzzing found stay fixed without
//! a nightly toolchain. `make fuzz` explores further.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file in `dir`; returns how many.
fn each_seed(dir: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its fuzz check", file.display());
    }
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.len()
}

#[test]
fn authorization_header_seeds() {
    each_seed("fuzz/seeds/authorization_header", checks::authorization_header);
}

#[test]
fn pat_seeds() {
    each_seed("fuzz/seeds/pat", checks::pat);
}

#[test]
fn route_seeds() {
    each_seed("fuzz/seeds/route", checks::route_path);
}

#[test]
fn jwt_seeds() {
    each_seed("fuzz/seeds/jwt", checks::jwt);
}

#[test]
fn event_seeds_are_the_sample_events() {
    each_seed("events", checks::event);
}
