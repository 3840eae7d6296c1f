//! Recursive dynamics (`[dynamics]`, docs/format_extensions.md section 7): paths against closed
//! forms, convergence of returns, policies from a later period, and every period's equilibrium
//! checked for Walras' law and homogeneity.

mod common;

use std::path::{Path, PathBuf};

use tokencge::compile::{EvalWorkspace, Structure, VarKind};
use tokencge::dynamic::{self, PathRun};
use tokencge::ids::VarId;
use tokencge::scenario::{self, Workspace};
use tokencge::solve::NewtonSettings;

fn solow_path() -> PathBuf {
    common::root().join("models/dynamic/solow.toml")
}

fn build(path: &Path) -> Structure {
    tokencge::build(path).unwrap().0
}

fn run(structure: &Structure, index: Option<usize>) -> PathRun {
    let periods = structure.model().dynamics.as_ref().unwrap().periods;
    let mut ws = Workspace::new(structure);
    dynamic::solve_path(
        structure,
        index,
        periods,
        &NewtonSettings::default(),
        &mut ws,
    )
    .unwrap()
}

/// The level of a named variable in period `t`.
fn level(structure: &Structure, run: &PathRun, t: usize, name: &str) -> f64 {
    let v = (0..structure.dim())
        .map(VarId::new)
        .find(|&v| structure.var_name(v) == name)
        .unwrap_or_else(|| panic!("no variable {name}"));
    run.converged_period(t)
        .unwrap_or_else(|| panic!("{}: period {t} not solved", run.scenario))
        .solution
        .x[v.index()]
}

/// A parameter's value in period `t` of a path.
fn param(structure: &Structure, run: &PathRun, t: usize, name: &str) -> f64 {
    let p = structure
        .model()
        .parameters
        .iter()
        .position(|p| p.name == name)
        .unwrap();
    run.converged_period(t).unwrap().coefficients.params()[p]
}

#[test]
fn solow_path_matches_the_closed_form_recursion() {
    let structure = build(&solow_path());
    let run = run(&structure, None);
    assert!(run.complete(), "{:?}", run.stopped_at().map(|p| p.period));
    // Y = 100 (k/30)^0.3 (L/70)^0.7 with k = rk * kstock, I = s Y, K' = (1 - delta) K + I.
    let (s, delta, rk) = (0.2, 0.05, 0.1);
    let mut kstock: f64 = 300.0;
    let mut worst: f64 = 0.0;
    for t in 0..30 {
        let labour = 70.0 * 1.01f64.powi(t as i32);
        let y = 100.0 * (rk * kstock / 30.0).powf(0.3) * (labour / 70.0).powf(0.7);
        let investment = s * y;
        let solved_k = param(&structure, &run, t, "kstock");
        let solved_y = 100.0 * level(&structure, &run, t, "Y");
        let solved_i = 20.0 * level(&structure, &run, t, "I");
        for (what, got, want) in [
            ("kstock", solved_k, kstock),
            ("Y", solved_y, y),
            ("I", solved_i, investment),
        ] {
            let dev = (got - want).abs() / want;
            worst = worst.max(dev);
            assert!(
                dev <= 1e-8,
                "period {t}: {what} = {got}, closed form {want}"
            );
        }
        kstock = (1.0 - delta) * kstock + investment;
    }
    // The worst relative deviation, for the record (docs/format_extensions.md).
    println!("Solow path: worst relative deviation from the closed form {worst:e}");
    // Capital deepens along the path: not a constant path that would pass trivially.
    assert!(param(&structure, &run, 29, "kstock") > 1.4 * 300.0);
}

fn two_sector_path() -> PathBuf {
    common::root().join("tests/data/two_sector_dynamic.toml")
}

#[test]
fn investment_by_relative_returns_converges_to_equal_returns() {
    let structure = build(&two_sector_path());
    let run = run(&structure, None);
    assert!(run.complete(), "{:?}", run.stopped_at().map(|p| p.period));
    // The gross return on a unit of stock in each sector.
    let gap = |t: usize| {
        let rx = 0.12 * level(&structure, &run, t, "PKX");
        let ry = 0.08 * level(&structure, &run, t, "PKY");
        rx / ry - 1.0
    };
    assert!(
        (gap(0) - 0.5).abs() < 1e-12,
        "benchmark returns 0.12 vs 0.08"
    );
    let last = run.periods.len() - 1;
    assert!(
        gap(last).abs() < 1e-6,
        "returns still differ by {:e} after {last} periods",
        gap(last)
    );
    // Capital moves towards the sector with the higher return: X's share of the stock rises
    // while its return is the higher one.
    let share = |t: usize| {
        let kx = param(&structure, &run, t, "kx");
        kx / (kx + param(&structure, &run, t, "ky"))
    };
    assert!(share(10) > share(0) + 0.01, "{} vs {}", share(10), share(0));
    // A steady state: investment replaces depreciation in each sector, the stocks stand still.
    for k in ["kx", "ky"] {
        let (a, b) = (
            param(&structure, &run, last - 1, k),
            param(&structure, &run, last, k),
        );
        assert!((b / a - 1.0).abs() < 1e-6, "{k} still moves: {a} -> {b}");
    }
    let inv = 20.0 * level(&structure, &run, last, "INV");
    let stock = param(&structure, &run, last, "kx") + param(&structure, &run, last, "ky");
    assert!(
        (inv - 0.05 * stock).abs() < 1e-4 * inv,
        "I = {inv}, delta K = {}",
        0.05 * stock
    );
}

/// Every level of a path's period `t`.
fn levels(run: &PathRun, t: usize) -> &[f64] {
    &run.converged_period(t).unwrap().solution.x
}

#[test]
fn a_policy_from_period_k_leaves_the_earlier_periods_as_the_baseline() {
    for (path, scenario, k) in [
        (solow_path(), "thrift", 5),
        (two_sector_path(), "tax_x_from_4", 4),
        (two_sector_path(), "quake_from_6", 6),
    ] {
        let structure = build(&path);
        let idx = structure.model().scenario_index(scenario);
        let base = run(&structure, None);
        let policy = run(&structure, idx);
        assert!(policy.complete(), "{scenario}");
        for t in 0..k {
            assert_eq!(
                levels(&base, t),
                levels(&policy, t),
                "{scenario}: period {t}"
            );
            assert_eq!(
                base.converged_period(t).unwrap().coefficients.params(),
                policy.converged_period(t).unwrap().coefficients.params(),
                "{scenario}: parameters of period {t}"
            );
        }
        let moved = levels(&base, k)
            .iter()
            .zip(levels(&policy, k))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(moved > 1e-3, "{scenario}: period {k} equals the baseline");
    }
}

#[test]
fn a_stock_a_scenario_sets_starts_there_at_from_and_then_follows_its_update() {
    let structure = build(&two_sector_path());
    let idx = structure.model().scenario_index("quake_from_6");
    let base = run(&structure, None);
    let quake = run(&structure, idx);
    // The baseline's stock in period 6 is the update at period 5's solution.
    let update = |run: &PathRun, t: usize| {
        let (kx, ky) = (
            param(&structure, run, t, "kx"),
            param(&structure, run, t, "ky"),
        );
        let inv = 20.0 * level(&structure, run, t, "INV");
        let rx = 0.12 * level(&structure, run, t, "PKX");
        let ry = 0.08 * level(&structure, run, t, "PKY");
        0.95 * kx + inv * kx * rx.powf(4.0) / (kx * rx.powf(4.0) + ky * ry.powf(4.0))
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    assert!(close(param(&structure, &base, 6, "kx"), update(&base, 5)));
    assert!(!close(param(&structure, &base, 6, "kx"), 200.0));
    assert_eq!(param(&structure, &quake, 6, "kx"), 200.0);
    // Then the update again, from the scenario's own period 6.
    let (got, want) = (param(&structure, &quake, 7, "kx"), update(&quake, 6));
    assert!(close(got, want), "{got} vs {want}");
}

/// Unscaled functions at x.
fn raw(structure: &Structure, coef: &tokencge::calibrate::Coefficients, x: &[f64]) -> Vec<f64> {
    let system = structure.with(coef);
    let mut f = vec![0.0; x.len()];
    system
        .residual(x, &mut f, &mut EvalWorkspace::new(structure))
        .unwrap();
    f.iter()
        .enumerate()
        .map(|(i, v)| v * coef.scale_of(VarId::new(i)))
        .collect()
}

#[test]
fn every_period_satisfies_walras_law_and_is_homogeneous_in_prices_and_incomes() {
    let settings = NewtonSettings::default();
    for (path, scenario) in [
        (solow_path(), None),
        (solow_path(), Some("thrift")),
        (two_sector_path(), None),
        (two_sector_path(), Some("tax_x_from_4")),
    ] {
        let structure = build(&path);
        let idx = scenario.and_then(|s| structure.model().scenario_index(s));
        let path_run = run(&structure, idx);
        assert!(path_run.complete());
        let kind = |v: usize| structure.layout().kind(VarId::new(v));
        let mut ws = Workspace::new(&structure);
        for p in &path_run.periods {
            let solved = p.solved().unwrap();
            let (sol, coef) = (&solved.solution, &solved.coefficients);
            let label = format!("{} period {}", path_run.scenario, p.period);
            // Walras: the dropped numeraire market clears, and the value of excess supplies plus
            // the activities' profits equals the income not spent.
            assert!(sol.walras_residual.unwrap() <= 1e-9, "{label}");
            let f = raw(&structure, coef, &sol.x);
            let (mut total, mut size) = (0.0f64, 0.0f64);
            for (v, fv) in f.iter().enumerate() {
                let term = match kind(v) {
                    VarKind::Commodity | VarKind::Sector => sol.x[v] * fv,
                    VarKind::Consumer => *fv,
                    VarKind::Auxiliary => 0.0,
                };
                total += term;
                size = size.max(term.abs());
            }
            assert!(
                total.abs() <= 1e-9 * size.max(1.0),
                "{label}: Walras {total:e}"
            );
            // Homogeneity: with the numeraire at twice its level the period solves to the same
            // quantities at twice the prices and incomes.
            let mut doubled = sol.scenario.clone();
            let nominal = |v: usize| matches!(kind(v), VarKind::Commodity | VarKind::Consumer);
            for (v, value) in doubled.fixed.iter_mut() {
                if nominal(v.index()) {
                    *value *= 2.0;
                }
            }
            doubled.start = sol
                .x
                .iter()
                .enumerate()
                .map(|(v, x)| if nominal(v) { 2.0 * x } else { 1.1 * x })
                .collect();
            let again = scenario::solve(&structure, coef, &doubled, &settings, &mut ws);
            assert!(again.converged(), "{label}: {:?}", again.status);
            for v in 0..structure.dim() {
                let want = if nominal(v) { 2.0 * sol.x[v] } else { sol.x[v] };
                assert!(
                    (again.x[v] - want).abs() <= 1e-8 * want.abs().max(1.0),
                    "{label}: {} = {} not {want}",
                    structure.var_name(VarId::new(v)),
                    again.x[v]
                );
            }
        }
    }
}

#[test]
fn period_zero_of_the_baseline_is_the_benchmark() {
    for path in [solow_path(), two_sector_path()] {
        let structure = build(&path);
        let base = run(&structure, None);
        let p0 = base.converged_period(0).unwrap();
        assert_eq!(p0.solution.info.iterations, 0, "{}", path.display());
        let (bench, _) = scenario::prepare(&structure, None).unwrap();
        assert_eq!(p0.solution.x, bench.start);
    }
}
