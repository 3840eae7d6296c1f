//! Whole-process benchmarks: the wall time of
//! `tokencge solve DIR/model.toml --scenario tax1 --format json` on the peers' economy as
//! `tokencge generate` writes it (indexed, over sets with CSV tables), and the peak resident
//! memory of one such run.
//!
//! - `process_tax1/N`: criterion's timing of the whole process (read, expand, validate,
//!   compile, calibrate, solve, JSON out), N = 5, 1000, 2000, 5000 by default;
//! - before the timings, one run per size under `/usr/bin/time` prints its wall time and peak
//!   resident set (`peak N=…: … s, … MiB`): the memory figures (N = 2000 and 5000).
//!
//! `cargo bench --bench process` (builds the release binary first). `TOKENCGE_PROCESS_SIZES`
//! chooses the sizes (`5,1000` for a quick run). Models are generated once into
//! `target/bench-models/N{N}` and reused. Every run is limited to `TOKENCGE_PROCESS_GIB`
//! (default 8) GiB of address space, so that a size beyond the machine (N = 5000 peaks at
//! 6.2 GiB with the load path of 2026-12-06) fails instead of swapping the shared box; a size whose
//! single run fails is reported and left out of the timings.

#[path = "common/binary.rs"]
mod binary;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use binary::{release_binary, root};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};

fn sizes() -> Vec<usize> {
    match std::env::var("TOKENCGE_PROCESS_SIZES") {
        Ok(s) => s
            .split(',')
            .map(|v| {
                v.trim()
                    .parse()
                    .expect("TOKENCGE_PROCESS_SIZES: comma-separated sizes")
            })
            .collect(),
        Err(_) => vec![5, 1000, 2000, 5000],
    }
}

/// `target/bench-models/N{n}/model.toml`, generated once.
fn model(bin: &Path, n: usize) -> PathBuf {
    let dir = root().join(format!("target/bench-models/N{n}"));
    let file = dir.join("model.toml");
    if !file.exists() {
        let status = Command::new(bin)
            .args([
                "generate",
                "--sectors",
                &n.to_string(),
                "--households",
                "5",
                "-o",
            ])
            .arg(&dir)
            .status()
            .expect("tokencge generate");
        assert!(status.success(), "tokencge generate --sectors {n} failed");
    }
    file
}

/// `tokencge solve MODEL --scenario tax1 --format json`, run by a shell that limits its
/// address space first (and under `/usr/bin/time` when `timed`).
fn solve_command(bin: &Path, model: &Path, timed: bool) -> Command {
    let gib: u64 = std::env::var("TOKENCGE_PROCESS_GIB")
        .ok()
        .and_then(|g| g.parse().ok())
        .unwrap_or(8);
    let time = if timed {
        "/usr/bin/time -f '%e %M' "
    } else {
        ""
    };
    let script = format!("ulimit -v {}; exec {time}\"$0\" \"$@\"", gib << 20);
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(script)
        .arg(bin)
        .arg("solve")
        .arg(model)
        .args(["--scenario", "tax1", "--format", "json"])
        .stdout(std::process::Stdio::null());
    c
}

/// One run under `/usr/bin/time`: (wall seconds, peak resident MiB), or why it failed.
fn peak(bin: &Path, model: &Path) -> Result<(f64, f64), String> {
    let out = solve_command(bin, model, true)
        .output()
        .map_err(|e| format!("/usr/bin/time: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("");
    let mut it = last.split_whitespace();
    let (Some(wall), Some(kib)) = (it.next(), it.next()) else {
        return Err(format!("unexpected output: {err}"));
    };
    if !out.status.success() {
        return Err(format!("exit {:?}: {}", out.status.code(), err.trim()));
    }
    Ok((
        wall.parse().map_err(|_| last.to_string())?,
        kib.parse::<f64>().map_err(|_| last.to_string())? / 1024.0,
    ))
}

fn bench_process(c: &mut Criterion) {
    let bin = release_binary();
    let mut ok = Vec::new();
    for n in sizes() {
        let m = model(&bin, n);
        match peak(&bin, &m) {
            Ok((wall, mib)) => {
                eprintln!("peak N={n}: {wall:.2} s, {mib:.0} MiB");
                ok.push((n, m));
            }
            Err(e) => eprintln!("peak N={n}: failed: {e}"),
        }
    }
    let mut g = c.benchmark_group("process_tax1");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    for (n, m) in &ok {
        g.bench_with_input(BenchmarkId::from_parameter(n), n, |b, _| {
            b.iter(|| {
                let status = solve_command(&bin, m, false)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .expect("tokencge solve");
                assert!(status.success());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_process);
criterion_main!(benches);
