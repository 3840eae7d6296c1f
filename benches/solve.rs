//! Benchmarks of the engine on the peers' scalable economy (`tokencge::generate`, a port of
//! `../shared/peers/gen_cge.py`) and on the reference models.
//!
//! Groups (H = 5 households, seed 1; N sectors = goods, 2N + 2 + H variables, PL fixed):
//! - `solve_tax1/N`: `scenario::solve` of scenario tax1 from its benchmark point (backend
//!   `Auto`), the model built and the scenario prepared beforehand: what the peers' "solve s"
//!   measures;
//! - `solve_tax1_backend/{dense,sparse,krylov}/N`: the same with the linear solver forced,
//!   beyond `DENSE_LIMIT` unknowns and up to N = 496 (what `Auto`'s thresholds rest on);
//! - `residual/N`, `residual_jacobian/N`: one scaled residual, and one residual with the
//!   Jacobian's values written into its recorded pattern (the evaluation of a Newton iteration
//!   after the first), at the benchmark point: half of the hardware floor;
//! - `newton_linear_solve/{dense,sparse,krylov}/N`: one factorisation and solve of the first
//!   Newton system (Jacobian at the benchmark, PL dropped), the pattern analysed once beforehand
//!   as in a solve (dense up to N = 1000; sparse up to N = 496: this Jacobian is half dense);
//!   krylov = the structured preconditioner's factorisation plus GMRES to 1e-10: the other
//!   half;
//! - `reference_models/NAME`: what `tokencge check` does to a file in `models/reference`, for
//!   every scenario: load, calibrate, compile, then prepare and solve the benchmark and every
//!   scenario.
//!
//! `cargo bench --bench solve` runs everything (N = 5 … 2000; the peer models are built from flat
//! model text, about 10 s at N = 2000 on a quiet machine). `TOKENCGE_BENCH_SIZES=5,20,50` chooses
//! the sizes; `TOKENCGE_BENCH_DUMP=DIR` writes each peer model to `DIR/cge_N{N}_H5_s1.toml`.
//! Whole-process times and peak memory: `benches/process.rs`; the side-by-side table with
//! scipy and GAMS/PATH: `benches/peers_table.py`; flagship throughput: `benches/throughput.rs`.

#[path = "common/peer_model.rs"]
mod peer_model;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use tokencge::calibrate::Coefficients;
use tokencge::compile::{EvalWorkspace, Structure};
use tokencge::scenario::{self, Scenario, Workspace};
use tokencge::solve::linalg::{self, Choice, NewtonMatrix, DENSE_LIMIT};
use tokencge::solve::{Backend, Jacobian, NewtonSettings};

const H: usize = 5;

fn sizes() -> Vec<usize> {
    match std::env::var("TOKENCGE_BENCH_SIZES") {
        Ok(s) => s
            .split(',')
            .map(|v| {
                v.trim()
                    .parse()
                    .expect("TOKENCGE_BENCH_SIZES: comma-separated sizes")
            })
            .collect(),
        Err(_) => vec![5, 20, 50, 100, 200, 496, 1000, 2000],
    }
}

/// A compiled peer instance with its benchmark setup and the tax1 setup.
struct Peer {
    n: usize,
    structure: Structure,
    benchmark: (Scenario, Coefficients),
    tax1: (Scenario, Coefficients),
}

fn peer(n: usize) -> Peer {
    let inst = peer_model::generate(n, H, 1);
    let path = PathBuf::from(format!("{}.toml", inst.stem()));
    let text = inst.to_toml();
    if let Some(dir) = std::env::var_os("TOKENCGE_BENCH_DUMP") {
        std::fs::create_dir_all(&dir).expect("TOKENCGE_BENCH_DUMP directory");
        std::fs::write(Path::new(&dir).join(&path), &text).expect("write model");
    }
    let model = tokencge::model::load_str(&text, &path).expect("peer model loads");
    let idx = model.scenario_index("tax1").expect("scenario tax1");
    let (structure, _) = tokencge::build_model(model).expect("peer model builds");
    let benchmark = scenario::prepare(&structure, None).expect("benchmark");
    let tax1 = scenario::prepare(&structure, Some(idx)).expect("tax1");
    Peer {
        n,
        structure,
        benchmark,
        tax1,
    }
}

/// The Jacobian at the benchmark with the fixed variables' rows and columns removed, and the
/// right-hand side of the tax1 step.
fn reduced_jacobian(p: &Peer) -> (Jacobian, Vec<f64>) {
    let x = &p.benchmark.0.start;
    let dim = p.structure.dim();
    let mut f = vec![0.0; dim];
    let mut ws = EvalWorkspace::new(&p.structure);
    let system = p.structure.with(&p.benchmark.1);
    let mut fixed = p.benchmark.1.inactive();
    for &(v, _) in &p.benchmark.0.fixed {
        fixed[v.index()] = true;
    }
    let mut pos = vec![usize::MAX; dim];
    let mut n = 0;
    for v in 0..dim {
        if !fixed[v] {
            pos[v] = n;
            n += 1;
        }
    }
    let mut jac = Jacobian::new(dim);
    jac.set_map(n, &pos);
    jac.begin(n, true);
    system
        .residual_jacobian(x, &mut f, &mut jac, &mut ws)
        .unwrap();
    jac.finish().unwrap();
    // A right-hand side like the tax1 step's: the residual at the tax1 start point.
    let mut f1 = vec![0.0; dim];
    p.structure
        .with(&p.tax1.1)
        .residual(&p.tax1.0.start, &mut f1, &mut ws)
        .unwrap();
    let b: Vec<f64> = (0..dim).filter(|&v| !fixed[v]).map(|v| -f1[v]).collect();
    (jac, b)
}

/// One timed solve of tax1 from its benchmark point, reusing a workspace.
fn solve_tax1(p: &Peer, settings: &NewtonSettings, ws: &mut Workspace) -> Vec<f64> {
    let sol = scenario::solve(&p.structure, &p.tax1.1, black_box(&p.tax1.0), settings, ws);
    assert!(sol.converged());
    black_box(sol.x)
}

fn bench_peers(c: &mut Criterion) {
    let peers: Vec<Peer> = sizes().into_iter().map(peer).collect();

    // One solve per size, reported once (iterations, backend, Jacobian size).
    for p in &peers {
        let mut ws = Workspace::new(&p.structure);
        let settings = NewtonSettings::default();
        let sol = scenario::solve(&p.structure, &p.tax1.1, &p.tax1.0, &settings, &mut ws);
        let (jac, _) = reduced_jacobian(p);
        let n = jac.dim();
        let mut pattern: Vec<(u32, u32)> = Vec::with_capacity(jac.nnz());
        jac.for_each_entry(true, |_, r, c, _| pattern.push((r, c)));
        pattern.sort_unstable();
        pattern.dedup();
        eprintln!(
            "peer N={} H={H}: {} unknowns ({:?} backend), {} Jacobian triplets, {} entries ({:.0} % of n²); tax1: {} in {} iterations ({} residual, {} Jacobian evaluations), residual {:.1e}, {:.4} s",
            p.n,
            n,
            linalg::choose(Backend::Auto, &jac),
            jac.nnz(),
            pattern.len(),
            100.0 * pattern.len() as f64 / (n * n) as f64,
            sol.status.label(),
            sol.info.iterations,
            sol.info.residual_evaluations,
            sol.info.jacobian_evaluations,
            sol.residual,
            sol.info.seconds
        );
        assert!(sol.converged(), "N={}: tax1 did not converge", p.n);
    }

    let mut g = c.benchmark_group("residual");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for p in &peers {
        let x = p.benchmark.0.start.clone();
        let mut f = vec![0.0; x.len()];
        let mut ws = EvalWorkspace::new(&p.structure);
        let system = p.structure.with(&p.benchmark.1);
        g.bench_with_input(BenchmarkId::from_parameter(p.n), &p.n, |b, _| {
            b.iter(|| {
                system.residual(black_box(&x), &mut f, &mut ws).unwrap();
                black_box(&f);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("residual_jacobian");
    g.sample_size(20)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for p in &peers {
        let x = p.benchmark.0.start.clone();
        let mut f = vec![0.0; x.len()];
        let mut ws = EvalWorkspace::new(&p.structure);
        let system = p.structure.with(&p.benchmark.1);
        // Recorded once, as a solve's first iteration does; then values only.
        let mut jac = system.jacobian(&x, &mut f, &mut ws).unwrap();
        g.bench_with_input(BenchmarkId::from_parameter(p.n), &p.n, |b, _| {
            b.iter(|| {
                jac.begin(x.len(), false);
                system
                    .residual_jacobian(black_box(&x), &mut f, &mut jac, &mut ws)
                    .unwrap();
                jac.finish().expect("the recorded pattern");
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("newton_linear_solve");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for p in &peers {
        let (jac, rhs) = reduced_jacobian(p);
        let n = jac.dim();
        let (ones, zeros) = (vec![1.0; n], vec![0.0; n]);
        let h = NewtonMatrix {
            jac: &jac,
            row_scale: &ones,
            diag: &zeros,
        };
        for (label, choice) in [
            ("dense", Choice::FaerDense),
            ("sparse", Choice::FaerSparse),
            ("krylov", Choice::Krylov),
        ] {
            let limit = match choice {
                Choice::FaerDense => 1000,
                Choice::FaerSparse => 496,
                Choice::Krylov => usize::MAX,
            };
            if p.n > limit {
                continue;
            }
            // Analysis once (as a solve does), then factor and solve per iteration.
            let mut ls = linalg::new_solver(choice);
            ls.analyse(&jac).unwrap();
            let mut x = rhs.clone();
            g.bench_with_input(BenchmarkId::new(label, p.n), &p.n, |b, _| {
                b.iter(|| {
                    x.copy_from_slice(&rhs);
                    ls.factor(black_box(&h)).unwrap();
                    ls.solve_in_place(&h, &mut x, 1e-10).unwrap();
                    black_box(&x);
                })
            });
        }
    }
    g.finish();

    let mut g = c.benchmark_group("solve_tax1");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let settings = NewtonSettings::default();
    for p in &peers {
        let mut ws = Workspace::new(&p.structure);
        g.bench_with_input(BenchmarkId::from_parameter(p.n), &p.n, |b, _| {
            b.iter(|| solve_tax1(p, &settings, &mut ws))
        });
    }
    g.finish();

    // Beyond DENSE_LIMIT, the same solve with each backend forced (this Jacobian is half
    // dense: 2N² entries in input-output runs plus O(N) and five rank-one terms).
    let mut g = c.benchmark_group("solve_tax1_backend");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for p in peers
        .iter()
        .filter(|p| p.structure.dim() - 1 > DENSE_LIMIT && p.n <= 496)
    {
        for (label, backend) in [
            ("dense", Backend::Dense),
            ("sparse", Backend::Sparse),
            ("krylov", Backend::Krylov),
        ] {
            let settings = NewtonSettings::default().with_backend(backend);
            let mut ws = Workspace::new(&p.structure);
            g.bench_with_input(BenchmarkId::new(label, p.n), &p.n, |b, _| {
                b.iter(|| solve_tax1(p, &settings, &mut ws))
            });
        }
    }
    g.finish();
}

/// `tokencge check` on a file, for every scenario: load, build, prepare and solve each.
fn check_all(path: &Path, settings: &NewtonSettings) -> usize {
    let (structure, _) = tokencge::build(path).expect("reference model builds");
    let n = structure.model().scenarios.len();
    let mut solved = 0;
    let mut ws = Workspace::new(&structure);
    for idx in std::iter::once(None).chain((0..n).map(Some)) {
        let (setup, coef) = scenario::prepare(&structure, idx).expect("prepare");
        let sol = scenario::solve(&structure, &coef, &setup, settings, &mut ws);
        assert!(
            sol.converged(),
            "{}: {} did not converge",
            path.display(),
            setup.name
        );
        solved += 1;
    }
    solved
}

fn bench_reference_models(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("models/reference")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let settings = NewtonSettings::default();
    let mut g = c.benchmark_group("reference_models");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(700));
    for f in &files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        let solves = check_all(f, &settings);
        eprintln!(
            "reference model {name}: benchmark + {} scenario(s)",
            solves - 1
        );
        g.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| black_box(check_all(black_box(f), &settings)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_peers, bench_reference_models);
criterion_main!(benches);
