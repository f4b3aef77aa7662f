//! Every committed fuzz seed (and every sample event) through the fuzz
//! targets' own checks: the regressions fuzzing found stay fixed without
//! a nightly toolchain. `make fuzz` explores further.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file in `dir`, of which there must be some.
fn each_seed(dir: &str, check: Check) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails its fuzz check", file.display());
    }
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
}

/// A fuzz target's check, which panics on a failure.
type Check = fn(&[u8]);

/// Each target's seeds; the `event` target's are the sample events.
const TARGETS: [(&str, Check); 5] = [
    ("fuzz/seeds/authorization_header", checks::authorization_header),
    ("fuzz/seeds/pat", checks::pat),
    ("fuzz/seeds/route", checks::route_path),
    ("fuzz/seeds/jwt", checks::jwt),
    ("events", checks::event),
];

#[test]
fn every_seed_passes_its_targets_checks() {
    for (dir, check) in TARGETS {
        each_seed(dir, check);
    }
}
