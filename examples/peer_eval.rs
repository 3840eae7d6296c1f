//! Times one residual and one residual + Jacobian evaluation of the peers' economy at the
//! benchmark point (dev tool for profiling the evaluation).
//!
//! ```text
//! cargo run --release --example peer_eval -- N [REPEATS]
//! ```
use std::time::Instant;

use tokencge::compile::EvalWorkspace;
use tokencge::scenario;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|s| s.parse().expect("N")).unwrap_or(200);
    let repeats: usize = args
        .next()
        .map(|r| r.parse().expect("repeats"))
        .unwrap_or(20);
    let inst = tokencge::generate::generate(n, 5, 1);
    let model = tokencge::model::load_str(&inst.to_toml(), std::path::Path::new("peer.toml"))
        .expect("loads");
    let (structure, _) = tokencge::build_model(model).expect("builds");
    let (sc, coef) = scenario::prepare(&structure, None).expect("prepare");
    let system = structure.with(&coef);
    let x = sc.start.clone();
    let mut f = vec![0.0; x.len()];
    let mut ws = EvalWorkspace::new(&structure);
    let mut jac = system.jacobian(&x, &mut f, &mut ws).unwrap();
    let t = Instant::now();
    for _ in 0..repeats {
        system.residual(&x, &mut f, &mut ws).unwrap();
    }
    let r = t.elapsed().as_secs_f64() / repeats as f64;
    let t = Instant::now();
    for _ in 0..repeats {
        system.residual_keeping_state(&x, &mut f, &mut ws).unwrap();
    }
    let rk = t.elapsed().as_secs_f64() / repeats as f64;
    let t = Instant::now();
    for _ in 0..repeats {
        jac.begin(x.len(), false);
        system
            .residual_jacobian(&x, &mut f, &mut jac, &mut ws)
            .unwrap();
        jac.finish().unwrap();
    }
    let j = t.elapsed().as_secs_f64() / repeats as f64;
    println!(
        "N={n}: residual {:.3} ms, residual keeping state {:.3} ms, residual + Jacobian {:.3} ms ({} entries, {} rank-one terms)",
        r * 1e3,
        rk * 1e3,
        j * 1e3,
        jac.nnz(),
        jac.rank()
    );
}
