//! Times `scenario::solve` of the peers' economy (scenario tax1, H = 5, seed 1) at the sizes
//! given, with the linear solver given: the best of REPEATS solves (the model built and the
//! scenario prepared beforehand), iterations and work. With `--json`, one JSON object per size
//! with the solution in the peers' layout (Y, P, PK, PL, M), for `benches/peers_table.py`.
//!
//! ```text
//! cargo run --release --example peer_solve -- 200,1000 [auto|dense|sparse|krylov] [REPEATS] [--json]
//! ```
use std::time::Instant;

use tokencge::scenario::{self, Workspace};
use tokencge::solve::{Backend, NewtonSettings};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let mut args = args.into_iter().filter(|a| a != "--json");
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
        let mut times = Vec::with_capacity(repeats);
        let mut last = None;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            let sol = scenario::solve(&structure, &coef, &sc, &settings, &mut ws);
            times.push(t.elapsed().as_secs_f64());
            last = Some(sol);
        }
        let sol = last.expect("a solve");
        let best = times.iter().copied().fold(f64::INFINITY, f64::min);
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        if json {
            let value = |name: &str| {
                let v = structure
                    .layout()
                    .vars()
                    .find(|&v| structure.var_name(v) == name)
                    .expect("a variable of the peers' economy");
                sol.x[v.index()]
            };
            let list = |names: Vec<String>| names.iter().map(|s| value(s)).collect::<Vec<_>>();
            let out = serde_json::json!({
                "N": n,
                "backend": format!("{backend:?}").to_lowercase(),
                "status": sol.status.label(),
                "seconds": best,
                "seconds_median": median,
                "repeats": repeats,
                "iterations": sol.info.iterations,
                "residual_evaluations": sol.info.residual_evaluations,
                "jacobian_evaluations": sol.info.jacobian_evaluations,
                "factorisations": sol.info.factorisations,
                "products": sol.info.products,
                "residual": sol.residual,
                "Y": list((0..n).map(tokencge::generate::Instance::sector_name).collect()),
                "P": list((0..n).map(tokencge::generate::Instance::good_name).collect()),
                "PK": value("PK"),
                "PL": value("PL"),
                "M": list((0..5).map(tokencge::generate::Instance::household_name).collect()),
            });
            println!("{out}");
        } else {
            println!(
                "N={n} {backend:?}: {} in {best:.4} s (best of {repeats}, median {median:.4} s; setup {setup:.2} s), {} iterations, {} residual and {} Jacobian evaluations, {} factorisations, {} products, residual {:.1e}",
                sol.status.label(),
                sol.info.iterations,
                sol.info.residual_evaluations,
                sol.info.jacobian_evaluations,
                sol.info.factorisations,
                sol.info.products,
                sol.residual
            );
        }
    }
}
