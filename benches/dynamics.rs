//! Benchmarks of recursive-dynamic paths (`[dynamics]`, `tokencge::dynamic`).
//!
//! Groups:
//! - `dynamic_path/flagship_20`: the 20-period path of the flagship (`models/token_economy.toml`,
//!   its own `[dynamics]`) in the scenario `dyn_efficiency_10x` (tenfold token efficiency phased
//!   in, compute capacity and model capital accumulating from investment that responds to
//!   returns): per period a calibration, a resolve, a solve warm-started from the last period
//!   with its verification, a report and the updates; the structure compiled once beforehand
//!   (the baseline path is the steady state, solved without an iteration);
//! - `dynamic_path/flagship_20_all`: the same for the baseline and every scenario (one path
//!   each, in parallel on the machine's cores);
//! - `dynamic_path/solow_30`: the 30-period Solow path of `models/dynamic/solow.toml`.
//!
//! `cargo bench --bench dynamics` takes about half a minute.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tokencge::compile::Structure;
use tokencge::dynamic;
use tokencge::scenario::Workspace;
use tokencge::solve::NewtonSettings;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The flagship, with its `[dynamics]` section.
fn dynamic_flagship() -> Structure {
    tokencge::build(&root().join("models/token_economy.toml"))
        .expect("flagship builds")
        .0
}

fn solve(structure: &Structure, index: Option<usize>, periods: usize, ws: &mut Workspace) -> usize {
    let settings = NewtonSettings::default();
    let run = dynamic::solve_path(structure, index, periods, &settings, ws).expect("dynamic");
    assert!(run.complete());
    run.periods.len()
}

fn bench_paths(c: &mut Criterion) {
    let flagship = dynamic_flagship();
    let solow = tokencge::build(&root().join("models/dynamic/solow.toml"))
        .expect("solow")
        .0;
    let settings = NewtonSettings::default();
    let phased = flagship.model().scenario_index("dyn_efficiency_10x");
    assert!(phased.is_some(), "the flagship's phased efficiency path");
    // One path reported once: iterations per period.
    let mut ws = Workspace::new(&flagship);
    let run = dynamic::solve_path(&flagship, phased, 20, &settings, &mut ws).expect("dynamic");
    let iterations: Vec<u64> = run
        .periods
        .iter()
        .filter_map(|p| p.solved().map(|s| s.solution.info.iterations))
        .collect();
    eprintln!("flagship_20: Newton iterations by period {iterations:?}");
    let indices: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..flagship.model().scenarios.len()).map(Some))
        .collect();

    let mut g = c.benchmark_group("dynamic_path");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("flagship_20", |b| {
        b.iter(|| black_box(solve(black_box(&flagship), phased, 20, &mut ws)))
    });
    g.bench_function("flagship_20_all", |b| {
        b.iter(|| {
            let runs =
                dynamic::solve_paths(&flagship, &indices, 20, &settings, &|| {}).expect("dynamic");
            assert!(runs.iter().all(|r| r.complete()));
            black_box(runs.len())
        })
    });
    let mut ws = Workspace::new(&solow);
    g.bench_function("solow_30", |b| {
        b.iter(|| black_box(solve(black_box(&solow), None, 30, &mut ws)))
    });
    g.finish();
}

criterion_group!(benches, bench_paths);
criterion_main!(benches);
