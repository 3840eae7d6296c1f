//! Helpers shared by the integration-test binaries.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `tokencge` binary, run from the crate's root.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tokencge"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs the binary with arguments.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run tokencge")
}

/// Stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The crate's root directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The nine published reference models, sorted by name.
pub fn reference_models() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("models/reference"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// Every model the engine checks must pass: the references, the flagship and a stress model
/// with deep input and output nests, joint products, endogenous taxes and a bounded auxiliary.
pub fn all_models() -> Vec<PathBuf> {
    let mut v = reference_models();
    let flagship = root().join("models/token_economy.toml");
    if flagship.exists() {
        v.push(flagship);
    }
    v.push(root().join("tests/data/nested_stress.toml"));
    // Stone–Geary final demand (an extension).
    v.push(root().join("tests/data/stone_geary.toml"));
    assert!(
        v.len() >= 9,
        "expected the nine reference models, found {}",
        v.len()
    );
    v
}
