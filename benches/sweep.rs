//! A 1,000-draw sensitivity sweep of the flagship's `token_tax_10` (its `[sensitivity]`
//! section: eleven elasticities, two correlation groups, seed 2025), as `tokencge sweep` runs
//! it: every draw's benchmark and scenario calibrated, solved, verified and measured, on a rayon
//! pool of 1 and of 2 threads. Throughput is reported in draws per second (each draw is two
//! equilibria). Groups: `sweep_1000/threads/{1,2}` (the default warm start: each solve from its
//! benchmark point) and `sweep_1000_warm/threads/{1,2}` (`--warm-start`: from the central
//! equilibrium).
//!
//! `cargo bench --bench sweep`; figures in docs/performance.md.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokencge::solve::NewtonSettings;
use tokencge::sweep::{self, Plan, WarmStart};

const DRAWS: u64 = 1000;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (structure, _) =
        tokencge::build(&root.join("models/token_economy.toml")).expect("the flagship builds");
    let model = structure.model();
    let scenario = model.scenario_index("token_tax_10").expect("token_tax_10");
    let settings = NewtonSettings::default();
    for (group, warm) in [
        ("sweep_1000", WarmStart::Fallback),
        ("sweep_1000_warm", WarmStart::Central),
    ] {
        let plan = Plan::new(model, scenario, Some(DRAWS), None, Vec::new(), warm).expect("plan");
        let central = sweep::central(&structure, &plan, &settings);
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(DRAWS));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(8));
        for threads in [1usize, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
                b.iter(|| {
                    let rows = pool.install(|| {
                        sweep::solve_draws(&structure, &plan, &central, 0..DRAWS, &settings, &|| {})
                    });
                    assert!(rows.iter().all(|r| r.converged()));
                    rows
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
