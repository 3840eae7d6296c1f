//! The release binary for the benchmarks that time whole processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crate's root directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `target/release/tokencge`, built first (cargo does nothing when it is up to date).
pub fn release_binary() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--bin", "tokencge"])
        .current_dir(root())
        .status()
        .expect("cargo build");
    assert!(status.success(), "cargo build --release failed");
    root().join("target/release/tokencge")
}
