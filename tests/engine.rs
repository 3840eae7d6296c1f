//! Library-level checks every model must pass: analytic vs finite-difference Jacobian, Walras'
//! law, homogeneity of degree zero, determinism, and flatten round trips.

use std::path::{Path, PathBuf};

use tokencge::compile::EquationSystem;
use tokencge::model::VarKind;
use tokencge::scenario;
use tokencge::solve::NewtonSettings;

fn models() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
    v.sort();
    let flagship = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/token_economy.toml");
    if flagship.exists() {
        v.push(flagship);
    }
    // Deep input and output nests, joint products, endogenous taxes, a bounded auxiliary.
    v.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/nested_stress.toml"));
    assert!(
        v.len() >= 9,
        "expected the nine reference models, found {}",
        v.len()
    );
    v
}

/// A deterministic pseudo-random perturbation in [-1, 1].
fn wiggle(i: usize, k: u64) -> f64 {
    let mut z =
        (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15) ^ k.wrapping_mul(0xBF58476D1CE4E5B9);
    z ^= z >> 31;
    z = z.wrapping_mul(0x94D049BB133111EB);
    z ^= z >> 29;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// A point near `x` with every level moved by up to 20% (activities and prices stay positive).
fn perturbed(system: &EquationSystem, x: &[f64], k: u64) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let base = if *v == 0.0 && system.model.var_kind(i).0 == VarKind::Sector {
                0.3
            } else {
                *v
            };
            base * (1.0 + 0.2 * wiggle(i, k))
        })
        .collect()
}

fn dense_jacobian(system: &EquationSystem, x: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
    let n = x.len();
    let mut f = vec![0.0; n];
    let mut t = Vec::new();
    system.residual_jacobian(x, &mut f, &mut t).unwrap();
    let mut j = vec![vec![0.0; n]; n];
    for (r, c, v) in t {
        j[r][c] += v;
    }
    (f, j)
}

fn check_jacobian(system: &EquationSystem, x: &[f64], label: &str) -> usize {
    let n = x.len();
    let (f, j) = dense_jacobian(system, x);
    let mut g = vec![0.0; n];
    system.residual(x, &mut g).unwrap();
    assert_eq!(
        f, g,
        "{label}: residual differs between residual() and residual_jacobian()"
    );
    let mut checked = 0;
    for c in 0..n {
        let h = 1e-6 * x[c].abs().max(1e-2);
        let mut xp = x.to_vec();
        let mut xm = x.to_vec();
        xp[c] += h;
        xm[c] -= h;
        let mut fp = vec![0.0; n];
        let mut fm = vec![0.0; n];
        system.residual(&xp, &mut fp).unwrap();
        system.residual(&xm, &mut fm).unwrap();
        for r in 0..n {
            if system.inactive[r] {
                continue;
            }
            let fd = (fp[r] - fm[r]) / (2.0 * h);
            let an = j[r][c];
            let tol = 1e-6 * (1.0 + an.abs().max(fd.abs()));
            assert!(
                (fd - an).abs() <= tol,
                "{label}: d[{}]/d[{}]: analytic {an:e}, finite difference {fd:e}",
                system.model.equation_name(r),
                system.model.var_name(c)
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn analytic_jacobian_matches_finite_differences_on_every_model() {
    for path in models() {
        let mut system = tokencge::build(&path).unwrap();
        let n_scen = system.model.scenarios.len();
        for idx in std::iter::once(None).chain((0..n_scen).map(Some)) {
            let setup = scenario::prepare(&mut system, idx).unwrap();
            let label = format!("{} [{}]", path.display(), setup.name);
            let mut checked = check_jacobian(&system, &setup.start, &label);
            for k in 1..=2 {
                let x = perturbed(&system, &setup.start, k);
                checked += check_jacobian(&system, &x, &format!("{label} perturbed {k}"));
            }
            assert!(checked > 0);
        }
    }
}

/// Unscaled functions at x.
fn raw(system: &EquationSystem, x: &[f64]) -> Vec<f64> {
    let mut f = vec![0.0; x.len()];
    system.residual(x, &mut f).unwrap();
    f.iter()
        .enumerate()
        .map(|(i, v)| v * system.scale_of(i))
        .collect()
}

#[test]
fn walras_law_holds_at_any_point() {
    // Σ_c P_c·(excess supply) + Σ_S S·(zero profit) + Σ_H (income balance) = 0 identically when
    // every tax goes to a consumer: the value of excess supply is the income not spent.
    for path in models() {
        let mut system = tokencge::build(&path).unwrap();
        let setup = scenario::prepare(&mut system, None).unwrap();
        for k in 1..=3 {
            let x = perturbed(&system, &setup.start, k);
            let f = raw(&system, &x);
            let m = &system.model;
            let mut total = 0.0;
            let mut size: f64 = 0.0;
            for v in 0..m.n_vars() {
                let term = match m.var_kind(v).0 {
                    VarKind::Commodity => x[v] * f[v],
                    VarKind::Sector => x[v] * f[v],
                    VarKind::Consumer => f[v],
                    VarKind::Auxiliary => 0.0,
                };
                total += term;
                size = size.max(term.abs());
            }
            assert!(
                total.abs() <= 1e-9 * size.max(1.0),
                "{}: Walras' law off by {total:e} (largest term {size:e})",
                path.display()
            );
        }
    }
}

#[test]
fn equilibria_are_homogeneous_of_degree_zero_in_prices_and_incomes() {
    for path in models() {
        let mut system = tokencge::build(&path).unwrap();
        let n_scen = system.model.scenarios.len();
        for idx in (0..n_scen).map(Some) {
            let setup = scenario::prepare(&mut system, idx).unwrap();
            let sol = scenario::solve(&mut system, &setup, &NewtonSettings::default()).unwrap();
            assert!(
                sol.converged(),
                "{} [{}]: {:?}",
                path.display(),
                setup.name,
                sol.status
            );
            // Doubling every price and income (auxiliaries and activities unchanged) is again an
            // equilibrium: every function is homogeneous of degree 0 or 1.
            let m = &system.model;
            let reference = path.to_string_lossy().contains("reference");
            let mut points = vec![(sol.x.clone(), true)];
            if reference {
                points.push((perturbed(&system, &sol.x, 7), false));
            }
            for (x1, at_solution) in points {
                let x2: Vec<f64> = x1
                    .iter()
                    .enumerate()
                    .map(|(v, x)| match m.var_kind(v).0 {
                        VarKind::Commodity | VarKind::Consumer => 2.0 * x,
                        _ => *x,
                    })
                    .collect();
                let f1 = raw(&system, &x1);
                let f2 = raw(&system, &x2);
                for v in 0..m.n_vars() {
                    let expect = match m.var_kind(v).0 {
                        VarKind::Commodity => f1[v],
                        // A constraint may be homogeneous of degree 0 or of degree 1.
                        VarKind::Auxiliary if at_solution => {
                            if (f2[v] - f1[v]).abs() < (f2[v] - 2.0 * f1[v]).abs() {
                                f1[v]
                            } else {
                                2.0 * f1[v]
                            }
                        }
                        VarKind::Auxiliary => continue,
                        _ => 2.0 * f1[v],
                    };
                    assert!(
                        (f2[v] - expect).abs() <= 1e-8 * (1.0 + expect.abs()) * system.scale_of(v),
                        "{} [{}]: {} not homogeneous: {} vs {}",
                        path.display(),
                        setup.name,
                        m.equation_name(v),
                        f2[v],
                        expect
                    );
                }
            }
        }
    }
}

#[test]
fn solves_are_deterministic() {
    for path in models() {
        let run = || {
            let mut system = tokencge::build(&path).unwrap();
            let mut out = Vec::new();
            for idx in 0..system.model.scenarios.len() {
                let setup = scenario::prepare(&mut system, Some(idx)).unwrap();
                let sol = scenario::solve(&mut system, &setup, &NewtonSettings::default()).unwrap();
                out.push((sol.x.clone(), sol.info.iterations));
            }
            out
        };
        assert_eq!(run(), run(), "{}", path.display());
    }
}

#[test]
fn numeraire_choice_scales_prices_but_not_quantities() {
    // M1: the same real equilibrium under PX and PL numeraires.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference/mpsge_m1_two_by_two.toml");
    let mut system = tokencge::build(&path).unwrap();
    let mut solve = |name: &str| {
        let i = system.model.scenario_index(name).unwrap();
        let setup = scenario::prepare(&mut system, Some(i)).unwrap();
        scenario::solve(&mut system, &setup, &NewtonSettings::default())
            .unwrap()
            .x
    };
    let a = solve("px_numeraire");
    let b = solve("pl_numeraire");
    let m = tokencge::model::load(&path).unwrap();
    let px = m.commodity_var(0);
    let ratio = b[px] / a[px];
    for v in 0..m.n_vars() {
        match m.var_kind(v).0 {
            VarKind::Sector => assert!((a[v] - b[v]).abs() < 1e-9),
            _ => assert!(
                (b[v] - ratio * a[v]).abs() < 1e-8 * b[v].abs().max(1.0),
                "{}",
                m.var_name(v)
            ),
        }
    }
}

#[test]
fn flattened_models_solve_to_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    for path in models() {
        let model = tokencge::model::load(&path).unwrap();
        let text = tokencge::flatten::flatten(&model);
        let flat_path = dir.path().join(path.file_name().unwrap());
        std::fs::write(&flat_path, &text).unwrap();
        let flat = tokencge::model::load(&flat_path).unwrap_or_else(|e| {
            panic!(
                "{}: flattened file does not load:\n{e}\n{text}",
                path.display()
            )
        });
        assert!(flat.sam.is_none() && flat.indicators.is_empty());
        let mut a = tokencge::build_model(&model).unwrap();
        let mut b = tokencge::build_model(&flat).unwrap();
        for idx in std::iter::once(None).chain((0..model.scenarios.len()).map(Some)) {
            let sa = scenario::prepare(&mut a, idx).unwrap();
            let sb = scenario::prepare(&mut b, idx).unwrap();
            let xa = scenario::solve(&mut a, &sa, &NewtonSettings::default()).unwrap();
            let xb = scenario::solve(&mut b, &sb, &NewtonSettings::default()).unwrap();
            assert_eq!(xa.status, xb.status);
            for (u, v) in xa.x.iter().zip(&xb.x) {
                assert!(
                    (u - v).abs() <= 1e-10 * u.abs().max(1.0),
                    "{} [{}]: {u} vs {v}",
                    path.display(),
                    sa.name
                );
            }
        }
    }
}

#[test]
fn sparse_and_dense_backends_reach_the_same_equilibria() {
    use tokencge::solve::Backend;
    for path in models() {
        let mut system = tokencge::build(&path).unwrap();
        for idx in 0..system.model.scenarios.len() {
            let setup = scenario::prepare(&mut system, Some(idx)).unwrap();
            let dense = scenario::solve(
                &mut system,
                &setup,
                &NewtonSettings::default().with_backend(Backend::Dense),
            )
            .unwrap();
            let sparse = scenario::solve(
                &mut system,
                &setup,
                &NewtonSettings::default().with_backend(Backend::Sparse),
            )
            .unwrap();
            assert!(
                dense.converged() && sparse.converged(),
                "{} [{}]",
                path.display(),
                setup.name
            );
            for (a, b) in dense.x.iter().zip(&sparse.x) {
                assert!(
                    (a - b).abs() <= 1e-8 * a.abs().max(1.0),
                    "{} [{}]: {a} vs {b}",
                    path.display(),
                    setup.name
                );
            }
        }
    }
}

#[test]
fn continuation_recovers_when_the_direct_solve_runs_out_of_iterations() {
    // The 90% output tax of MPSGE M1 takes 10 Newton iterations from the benchmark; with 4 the
    // direct solve fails and continuation must walk the tax up in steps.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reference/mpsge_m1_two_by_two.toml");
    let mut system = tokencge::build(&path).unwrap();
    let i = system.model.scenario_index("otax_0_9").unwrap();
    let setup = scenario::prepare(&mut system, Some(i)).unwrap();
    let settings = NewtonSettings::default().with_max_iterations(4).unwrap();
    let sol = scenario::solve(&mut system, &setup, &settings).unwrap();
    assert!(sol.converged(), "{:?}", sol.status);
    assert!(sol.continuation_steps >= 2, "{}", sol.continuation_steps);
    let px = system.model.commodity_var(0);
    assert!(
        (sol.x[px] - 11.608186765877146).abs() < 1e-6 * 11.6,
        "PX = {}",
        sol.x[px]
    );
}
