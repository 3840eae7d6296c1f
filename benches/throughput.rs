//! Counterfactual throughput of the flagship model (`models/token_economy.toml`): solves per
//! second over a grid of 1,000 policy scenarios (token tax 0–20 %, compute subsidy 0–50 %,
//! digital services tax 0–6 %) plus the model's own scenarios and the benchmark.
//!
//! - `flagship_in_process/{1,2}`: `batch::solve_all` (calibrate, solve, verify and report every
//!   scenario, as `solve --all` does) on a rayon pool of 1 and 2 threads; criterion reports
//!   scenarios per second (`thrpt`);
//! - `flagship_solve_all/2`: the whole process `tokencge solve FILE --all --format csv` on the
//!   1,000-scenario file (load, every solve, the CSV written).
//!
//! Before the timings it prints solves per CPU-second and per wall-second on 1 and 2 threads
//! (`flagship cpu/T: …`) and for the whole process (`flagship solve --all cpu/2: …`): on a
//! shared machine the CPU figure is the one to compare.
//!
//! `cargo bench --bench throughput`. The scenario file is written to
//! `target/bench-flagship/models/flagship_1000.toml` (its SAM copied beside, in `../data`).

#[path = "common/binary.rs"]
mod binary;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use binary::{release_binary, root};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokencge::batch;
use tokencge::solve::NewtonSettings;

/// Grid points: (token tax, compute subsidy, digital services tax), deterministic.
fn grid(k: usize) -> (f64, f64, f64) {
    let f = |m: usize| ((k * m) % 1000) as f64 / 999.0;
    (0.20 * k as f64 / 999.0, 0.5 * f(7919), 0.06 * f(104_729))
}

/// The flagship with 1,000 more scenarios, written beside a copy of its SAM.
fn flagship_1000() -> PathBuf {
    let base = root().join("target/bench-flagship");
    let models = base.join("models");
    std::fs::create_dir_all(&models).expect("target/bench-flagship/models");
    std::fs::create_dir_all(base.join("data")).expect("target/bench-flagship/data");
    std::fs::copy(
        root().join("data/token_economy_sam.csv"),
        base.join("data/token_economy_sam.csv"),
    )
    .expect("copy the SAM");
    let text = std::fs::read_to_string(root().join("models/token_economy.toml"))
        .expect("models/token_economy.toml");
    let mut scenarios = String::new();
    for k in 0..1000 {
        let (t, s, d) = grid(k);
        scenarios.push_str(&format!(
            "\n[scenarios.grid_{k}]\ndescription = \"grid point {k}\"\nparameters = {{ tok_tax = {t:.6}, sub_cmp = {s:.6}, dst = {d:.6} }}\n"
        ));
    }
    // Before the targets: scenarios are tables, targets an array of tables after them.
    let at = text
        .find("\n[[targets]]")
        .expect("the flagship has targets after its scenarios");
    let file = models.join("flagship_1000.toml");
    std::fs::write(&file, format!("{}{scenarios}{}", &text[..at], &text[at..]))
        .expect("write the scenario file");
    file
}

fn bench_flagship(c: &mut Criterion) {
    let file = flagship_1000();
    let (structure, _) = tokencge::build(&file).expect("the flagship builds");
    let n = structure.model().scenarios.len();
    let indices: Vec<Option<usize>> = std::iter::once(None).chain((0..n).map(Some)).collect();
    let settings = NewtonSettings::default();
    let outcomes = batch::solve_all(&structure, &indices, &settings, &|| {});
    let converged = outcomes
        .iter()
        .filter(|o| o.as_ref().is_ok_and(|s| s.solution.converged()))
        .count();
    eprintln!(
        "flagship: {} scenarios, {converged} converged",
        indices.len()
    );

    // CPU time as well as wall time: on a shared machine the wall clock counts the time the
    // process waited for a core, CPU time (getrusage) only what it used.
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        print_rates(
            &format!("flagship cpu/{threads}"),
            indices.len(),
            cpu_seconds,
            &|| {
                pool.install(|| batch::solve_all(&structure, &indices, &settings, &|| {}));
            },
        );
    }

    let mut g = c.benchmark_group("flagship_in_process");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(indices.len() as u64));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        g.bench_with_input(BenchmarkId::from_parameter(threads), &threads, |b, _| {
            b.iter(|| pool.install(|| batch::solve_all(&structure, &indices, &settings, &|| {})))
        });
    }
    g.finish();

    let bin = release_binary();
    let solve_all = || {
        let status = Command::new(&bin)
            .arg("solve")
            .arg(&file)
            .args(["--all", "--format", "csv"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("tokencge solve --all");
        assert!(status.success());
    };
    // The whole process's CPU time too (its children's getrusage): load, solves, CSV.
    print_rates(
        "flagship solve --all cpu/2",
        indices.len(),
        children_cpu_seconds,
        &solve_all,
    );

    let mut g = c.benchmark_group("flagship_solve_all");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(indices.len() as u64));
    g.bench_function(BenchmarkId::from_parameter(2), |b| b.iter(solve_all));
    g.finish();
}

/// Runs `batch` (of `n` scenarios) for three seconds and prints solves per CPU-second (by
/// `cpu`, this process's or its children's) and per wall-second, with the load average.
fn print_rates(label: &str, n: usize, cpu: fn() -> f64, batch: &dyn Fn()) {
    let (cpu0, wall0) = (cpu(), std::time::Instant::now());
    let mut solved = 0;
    while wall0.elapsed() < Duration::from_secs(3) {
        batch();
        solved += n;
    }
    let (cpu, wall) = (cpu() - cpu0, wall0.elapsed().as_secs_f64());
    eprintln!(
        "{label}: {solved} solves, {:.0} per CPU-second, {:.0} per wall-second (load average {:.1})",
        solved as f64 / cpu,
        solved as f64 / wall,
        load_average()
    );
}

/// User plus system CPU time of this process so far, in seconds.
fn cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF)
}

/// User plus system CPU time of this process's finished children so far, in seconds.
fn children_cpu_seconds() -> f64 {
    rusage_seconds(libc::RUSAGE_CHILDREN)
}

/// User plus system CPU time of `who` (RUSAGE_SELF or RUSAGE_CHILDREN), in seconds.
fn rusage_seconds(who: libc::c_int) -> f64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes the struct it is given; both `who` values are valid.
    let u = unsafe {
        libc::getrusage(who, u.as_mut_ptr());
        u.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

/// The 1-minute load average (0 where /proc/loadavg cannot be read).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

criterion_group!(benches, bench_flagship);
criterion_main!(benches);
