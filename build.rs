//! Embeds the git commit tokencge is built from (`TOKENCGE_GIT_COMMIT`, read by
//! `bundle::git_commit` for `run.json`), when git and a repository are there; without them the
//! build goes on and run bundles say the commit is unknown.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-env-changed=TOKENCGE_GIT_COMMIT");
    let commit = std::env::var("TOKENCGE_GIT_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "HEAD"]));
    if let Some(c) = &commit {
        println!("cargo:rustc-env=TOKENCGE_GIT_COMMIT={c}");
    }
    // Build again when HEAD moves: HEAD itself (a worktree's own), the branch it points to and
    // the packed refs (both in the common git directory).
    // (A path that does not exist would rerun this script on every build: only existing ones.)
    let watch = |p: &Path| {
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    };
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch(&Path::new(&dir).join("HEAD"));
    }
    if let (Some(common), Some(head)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        let common = Path::new(&common);
        watch(&common.join(&head));
        watch(&common.join("packed-refs"));
    }
}
