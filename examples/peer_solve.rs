//! Times `scenario::solve` of the peers' economy (scenario tax1) at the sizes given, with the
//! linear solver given: one line per size with the solve time, iterations and evaluations.
//!
//! ```text
//! cargo run --release --example peer_solve -- 200,1000 [auto|dense|sparse|krylov] [REPEATS]
//! ```
use std::time::Instant;

use tokencge::scenario::{self, Workspace};
use tokencge::solve::{Backend, NewtonSettings};

fn main() {
    let mut args = std::env::args().skip(1);
    let sizes: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "200".into())
        .split(',')
        .map(|s| s.trim().parse().expect("sizes"))
        .collect();
    let backend = args
        .next()
        .map(|b| Backend::from_name(&b).expect("backend: auto, dense, sparse or krylov"))
        .unwrap_or(Backend::Auto);
    let repeats: usize = args
        .next()
        .map(|r| r.parse().expect("repeats"))
        .unwrap_or(3);
    for n in sizes {
        let t = Instant::now();
        let inst = tokencge::generate::generate(n, 5, 1);
        let model = tokencge::model::load_str(&inst.to_toml(), std::path::Path::new("peer.toml"))
            .expect("loads");
        let idx = model.scenario_index("tax1").expect("tax1");
        let (structure, _) = tokencge::build_model(model).expect("builds");
        let (sc, coef) = scenario::prepare(&structure, Some(idx)).expect("prepare");
        let setup = t.elapsed().as_secs_f64();
        let settings = NewtonSettings::default().with_backend(backend);
        let mut ws = Workspace::new(&structure);
        let mut best = f64::INFINITY;
        let mut last = None;
        for _ in 0..repeats {
            let t = Instant::now();
            let sol = scenario::solve(&structure, &coef, &sc, &settings, &mut ws);
            best = best.min(t.elapsed().as_secs_f64());
            last = Some(sol);
        }
        let sol = last.expect("a solve");
        println!(
            "N={n} {:?}: {} in {:.4} s (best of {repeats}; setup {setup:.2} s), {} iterations, {} residual and {} Jacobian evaluations, {} factorisations, {} products, residual {:.1e}",
            backend,
            sol.status.label(),
            best,
            sol.info.iterations,
            sol.info.residual_evaluations,
            sol.info.jacobian_evaluations,
            sol.info.factorisations,
            sol.info.products,
            sol.residual
        );
    }
}
