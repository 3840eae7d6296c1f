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
        (flagship_file(), Some("dyn_efficiency_10x")),
        (flagship_file(), Some("dyn_infrastructure_boom")),
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
    for path in [solow_path(), two_sector_path(), flagship_file()] {
        let structure = build(&path);
        let base = run(&structure, None);
        let p0 = base.converged_period(0).unwrap();
        assert_eq!(p0.solution.info.iterations, 0, "{}", path.display());
        let (bench, _) = scenario::prepare(&structure, None).unwrap();
        assert_eq!(p0.solution.x, bench.start);
    }
}

// ---- the command line

fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tokencge"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// Runs the binary: exit code, stdout, stderr.
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let o = bin().args(args).output().expect("run tokencge");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn cli_json(args: &[&str]) -> serde_json::Value {
    let (code, out, err) = cli(args);
    assert_eq!(code, Some(0), "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const SOLOW: &str = "models/dynamic/solow.toml";

#[test]
fn solve_dynamic_prints_the_contract_object_of_every_period_with_period_and_year() {
    let base = cli_json(&["solve", SOLOW, "--dynamic", "--format", "json"]);
    let thrift = cli_json(&[
        "solve",
        SOLOW,
        "--scenario",
        "thrift",
        "--dynamic",
        "--format",
        "json",
    ]);
    let (base, thrift) = (base.as_array().unwrap(), thrift.as_array().unwrap());
    assert_eq!(base.len(), 30);
    assert_eq!(thrift.len(), 30);
    let mut kstock: f64 = 300.0;
    for (t, p) in base.iter().enumerate() {
        assert_eq!(p["period"], t);
        assert_eq!(p["year"], 2025.0 + t as f64);
        assert_eq!(p["status"], "converged");
        assert_eq!(p["scenario"], "benchmark");
        // The contract's keys, then the moving parameters.
        for key in [
            "model",
            "numeraire",
            "fixed",
            "sectors",
            "commodities",
            "consumers",
            "auxiliary",
            "welfare",
            "pruned",
        ] {
            assert!(p.get(key).is_some(), "period {t}: no {key}");
        }
        let y = 100.0 * (0.1 * kstock / 30.0).powf(0.3) * 1.01f64.powi(t as i32).powf(0.7);
        let got = 100.0 * p["sectors"]["Y"].as_f64().unwrap();
        assert!((got - y).abs() <= 1e-8 * y, "period {t}: Y {got} vs {y}");
        assert!((p["parameters"]["kstock"].as_f64().unwrap() - kstock).abs() <= 1e-8 * kstock);
        kstock = 0.95 * kstock + 0.2 * y;
    }
    // Before 2030 the thrift path is the baseline's, number for number.
    for t in 0..5 {
        let (mut a, mut b) = (base[t].clone(), thrift[t].clone());
        a["scenario"] = "x".into();
        b["scenario"] = "x".into();
        assert_eq!(a, b, "period {t}");
    }
    assert_ne!(base[5]["sectors"], thrift[5]["sectors"]);
}

#[test]
fn solve_dynamic_csv_and_table() {
    let (code, out, err) = cli(&["solve", SOLOW, "--dynamic", "--format", "csv"]);
    assert_eq!(code, Some(0), "{err}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("scenario,period,year,kind,name,value,margin")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.iter().filter(|r| r[3] == "status").count(), 30);
    let k29 = rows
        .iter()
        .find(|r| r[1] == "29" && r[3] == "parameter" && r[4] == "kstock")
        .unwrap();
    assert_eq!(k29[2], "2054.0");
    assert!((k29[5].parse::<f64>().unwrap() - 446.0909214791707).abs() < 1e-6);
    let (code, out, _) = cli(&["solve", SOLOW, "--dynamic"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("path by period"), "{out}");
    assert!(out.contains("[periods 24 to 29]"), "{out}");
    assert!(out.contains("parameters moving along the path"));
    let (code, out, _) = cli(&["describe", SOLOW]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("dynamics: 30 periods from 2025 every 1 year(s), discounted at 3 % a year"),
        "{out}"
    );
    assert!(
        out.contains("update kstock = (1 - delta) * kstock + final(RA, PI)"),
        "{out}"
    );
    assert!(
        out.contains("scenario productivity from period 5, paths A = 1.01^(t - 4)"),
        "{out}"
    );
}

#[test]
fn compare_dynamic_gives_changes_by_period_and_the_present_value_of_ev() {
    let cmp = cli_json(&["compare", SOLOW, "--dynamic", "--format", "json"]);
    let all = cli_json(&["solve", SOLOW, "--all", "--dynamic", "--format", "json"]);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 90, "three paths of 30 periods");
    let ev_of = |scenario: &str, t: usize| {
        all.iter()
            .find(|p| p["scenario"] == scenario && p["period"] == t)
            .unwrap()["welfare"]["RA"]["ev"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(cmp["discount_rate"], 0.03);
    let scenarios = cmp["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    for sc in scenarios {
        let name = sc["scenario"].as_str().unwrap();
        assert_eq!(sc["from"], 5);
        // Nothing changes before the policy starts.
        for row in sc["rows"].as_array().unwrap() {
            for t in 0..5 {
                assert_eq!(
                    row["values"][t].as_f64(),
                    Some(0.0),
                    "{name} {}: {t}",
                    row["name"]
                );
            }
        }
        let y = sc["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["section"] == "activity" && r["name"] == "Y")
            .unwrap();
        assert_eq!(y["unit"], "%");
        assert!(
            y["values"][29].as_f64().unwrap() > 1.0,
            "{name}: Y {}",
            y["values"][29]
        );
        let ev = &sc["ev"][0];
        assert_eq!(ev["consumer"], "RA");
        let mut pv = 0.0;
        for t in 0..30 {
            let want = ev_of(name, t) - ev_of("benchmark", t);
            let got = ev["values"][t].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{name} EV {t}"
            );
            pv += want / 1.03f64.powi(t as i32);
        }
        let got = ev["present_value"].as_f64().unwrap();
        assert!(
            (got - pv).abs() <= 1e-9 * pv.abs(),
            "{name}: PV {got} vs {pv}"
        );
        // One household: the domestic total is its EV; no foreign consumer, no rest of world.
        assert_eq!(sc["ev"][1]["consumer"], "domestic");
        assert_eq!(sc["ev"][1]["values"], ev["values"]);
        assert_eq!(sc["ev"].as_array().unwrap().len(), 2);
    }
    let (code, out, _) = cli(&[
        "compare",
        SOLOW,
        "--dynamic",
        "--scenarios",
        "productivity",
        "--format",
        "csv",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("scenario,section,name,unit,period,year,value\n"));
    assert!(
        out.contains("productivity,welfare,EV RA,present_value,,,"),
        "{out}"
    );
    let (code, out, _) = cli(&["compare", SOLOW, "--dynamic"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("present value of EV at 3 % a year"), "{out}");
}

#[test]
fn plot_draws_one_line_per_scenario_in_each_panel_as_valid_svg() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("paths.svg");
    let shown = file.to_str().unwrap();
    let (code, _, err) = cli(&[
        "compare",
        SOLOW,
        "--dynamic",
        "--plot",
        shown,
        "--series",
        "Y,kstock,PK",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for label in ["benchmark", "thrift", "productivity", "Y", "kstock", "PK"] {
        assert!(texts.contains(&label), "no text '{label}' in {texts:?}");
    }
    // The data lines: one per scenario and panel, 30 points each, the baseline in black and
    // each scenario in its own colour, the same in every panel.
    let lines: Vec<(String, usize)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter_map(|n| {
            let points = n.attribute("points")?.split_whitespace().count();
            (points > 2).then(|| (n.attribute("stroke").unwrap_or("").to_string(), points))
        })
        .collect();
    assert_eq!(lines.len(), 3 * 3, "{lines:?}");
    for panel in lines.chunks(3) {
        assert!(panel.iter().all(|(_, n)| *n == 30), "{panel:?}");
        assert_eq!(panel[0].0, "#000000");
        assert_ne!(panel[1].0, panel[2].0);
        assert_eq!(panel, &lines[0..3]);
    }
    // A solve plots the scenario with the baseline beside it.
    let (code, _, err) = cli(&[
        "solve",
        SOLOW,
        "--scenario",
        "thrift",
        "--dynamic",
        "--plot",
        shown,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let texts: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    assert!(texts.contains(&"benchmark") && texts.contains(&"thrift") && texts.contains(&"I"));
}

#[test]
fn dynamic_mode_refuses_bad_requests_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.svg");
    let shown = file.to_str().unwrap();
    for (args, message) in [
        (
            vec![
                "solve",
                SOLOW,
                "--dynamic",
                "--plot",
                shown,
                "--series",
                "GDP",
            ],
            "--series: unknown quantity 'GDP'",
        ),
        (
            vec!["solve", SOLOW, "--scenario", "nope", "--dynamic"],
            "unknown scenario 'nope'",
        ),
        (
            vec!["compare", SOLOW, "--dynamic", "--scenarios", "nope"],
            "unknown scenario 'nope'",
        ),
        (
            vec!["solve", "models/reference/markusen_m21.toml", "--dynamic"],
            "--dynamic: the model has no [dynamics] section",
        ),
        (vec!["solve", SOLOW, "--plot", shown], "--dynamic"),
        (
            vec!["compare", SOLOW, "--dynamic", "--out", shown],
            "run bundles hold static results",
        ),
        (
            vec!["solve", SOLOW, "--dynamic", "--out", shown],
            "run bundles hold static results",
        ),
        (
            vec!["solve", SOLOW, "--dynamic", "--set", "nope=1"],
            "'nope' is not a parameter",
        ),
    ] {
        let (code, out, err) = cli(&args);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    assert!(!file.exists());
}

/// The Solow model with a subsidy on the investment good's input and extra text appended.
fn solow_variant(dir: &Path, extra: &str, update: Option<&str>) -> PathBuf {
    let mut text = std::fs::read_to_string(solow_path()).unwrap();
    text = text.replace("A = 1 ", "A = 1\nsub_i = 0 ");
    text = text.replace(
        "inputs = [{ commodity = \"PY\", quantity = 20 }]",
        "inputs = [{ commodity = \"PY\", quantity = 20, taxes = [{ agent = \"RA\", rate = \"-sub_i\" }] }]",
    );
    if let Some(u) = update {
        text = text.replace(
            "update = { kstock = \"(1 - delta) * kstock + final(RA, PI)\" }",
            u,
        );
    }
    text.push_str(extra);
    let path = dir.join("solow_variant.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_failed_period_stops_its_path_with_a_clear_status_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    // A subsidy that reaches 120 % in period 3: the input becomes free, no equilibrium exists.
    let path = solow_variant(
        dir.path(),
        "\n[scenarios.runaway_subsidy]\npaths = { sub_i = \"0.4 * t\" }\n\n[[targets]]\nscenario = \"runaway_subsidy\"\nperiod = 5\nexpr = \"Y\"\nmin = 0\n",
        None,
    );
    let shown = path.to_str().unwrap();
    let (code, out, err) = cli(&["solve", shown, "--all", "--dynamic", "--format", "json"]);
    assert_eq!(code, Some(1), "{err}");
    let all: serde_json::Value = serde_json::from_str(&out).unwrap();
    let of = |s: &str| -> Vec<&serde_json::Value> {
        all.as_array()
            .unwrap()
            .iter()
            .filter(|p| p["scenario"] == s)
            .collect()
    };
    for s in ["benchmark", "thrift", "productivity"] {
        assert_eq!(of(s).len(), 30, "{s}");
    }
    let failed = of("runaway_subsidy");
    assert_eq!(failed.len(), 4, "periods 0 to 2 and the failed period 3");
    assert!(failed[..3].iter().all(|p| p["status"] == "converged"));
    assert_eq!(failed[3]["period"], 3);
    assert_eq!(failed[3]["status"], "evaluation_failed");
    let reason = failed[3]["reason"].as_str().unwrap();
    assert!(reason.contains("subsidy of 100 % or more"), "{reason}");
    assert!(err.contains("scenario runaway_subsidy: the path stopped at period 3 (year 2028); periods 0 to 2 are reported"), "{err}");
    // check: the target past the stop fails and says why; the others pass.
    let (code, out, _) = cli(&["check", shown]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAIL") && out.contains("the path stopped at period 3"),
        "{out}"
    );
    assert!(out.contains("6 passed, 1 failed"), "{out}");
}

#[test]
fn an_update_that_cannot_be_evaluated_stops_the_path_after_that_period() {
    let dir = tempfile::tempdir().unwrap();
    let path = solow_variant(
        dir.path(),
        "",
        Some("update = { kstock = \"(1 - delta) * kstock + final(RA, PI) * (t - 2) / (t - 2)\" }"),
    );
    let (code, out, err) = cli(&[
        "solve",
        path.to_str().unwrap(),
        "--dynamic",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(1), "{err}");
    let periods: serde_json::Value = serde_json::from_str(&out).unwrap();
    let periods = periods.as_array().unwrap();
    assert_eq!(periods.len(), 4);
    assert_eq!(periods[2]["status"], "converged");
    assert_eq!(periods[3]["status"], "evaluation_failed");
    let reason = periods[3]["reason"].as_str().unwrap();
    assert!(
        reason.contains("dynamics.update.kstock")
            && reason.contains("at the solution of period 2: division by zero"),
        "{reason}"
    );
}

#[test]
fn check_runs_the_paths_its_period_targets_need() {
    let (code, out, err) = cli(&["check", SOLOW]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("6 passed, 0 failed"), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("PASS ")
            && l.ends_with("capital stock in 2054 (period 29), closed form")),
        "{out}"
    );
}

fn flagship_file() -> PathBuf {
    common::root().join("models/token_economy.toml")
}

/// The flagship, whose `[dynamics]` accumulates compute capacity and model capital.
fn dynamic_flagship() -> Structure {
    build(&flagship_file())
}

/// A path of the flagship by scenario name.
fn flagship_path<'a>(runs: &'a [PathRun], name: &str) -> &'a PathRun {
    runs.iter().find(|r| r.scenario == name).unwrap()
}

#[test]
fn the_flagship_solves_a_twenty_year_path_in_every_scenario() {
    let structure = dynamic_flagship();
    let model = structure.model();
    assert!(
        model.sectors.len() >= 12,
        "a model the size of the flagship"
    );
    let indices: Vec<Option<usize>> = std::iter::once(None)
        .chain((0..model.scenarios.len()).map(Some))
        .collect();
    let runs =
        dynamic::solve_paths(&structure, &indices, 20, &NewtonSettings::default(), &|| {}).unwrap();
    for run in &runs {
        assert!(
            run.complete(),
            "{}: stopped at {:?}",
            run.scenario,
            run.stopped_at().map(|p| p.period)
        );
    }
    // The baseline is the benchmark's steady state: every period replicates period 0, and the
    // stocks stay at their benchmark index.
    let base = &runs[0];
    for t in 1..20 {
        for (u, v) in levels(base, t).iter().zip(levels(base, 0)) {
            assert!(
                (u - v).abs() <= 1e-9 * v.abs().max(1.0),
                "baseline period {t}"
            );
        }
        for stock in ["kc_stock", "km_stock", "kc_pub"] {
            let want = if stock == "kc_pub" { 0.0 } else { 1.0 };
            assert!((param(&structure, base, t, stock) - want).abs() < 1e-9);
        }
    }
    // The accumulation rule at every period of a path with investment on the move: next year's
    // capacity is this year's less 15 % depreciation plus this year's investment (the saving
    // pool's servers, INV at its level 1, and the owners' extra), and the investment index is
    // the stock times the return on capacity relative to the cost of servers (psi_kc = 1).
    let boom = flagship_path(&runs, "dyn_infrastructure_boom");
    for t in 1..19 {
        let (kc, xkc) = (
            param(&structure, boom, t, "kc_stock"),
            level(&structure, boom, t, "XKC"),
        );
        assert!((level(&structure, boom, t, "INV") - 1.0).abs() < 1e-9);
        let next = 0.85 * kc + 0.15 * xkc;
        assert!(
            (param(&structure, boom, t + 1, "kc_stock") - next).abs() < 1e-12,
            "{t}"
        );
        let boom_kc = if t <= 5 { 2.0 } else { 1.0 };
        let rule =
            boom_kc * kc * level(&structure, boom, t, "PKC") / level(&structure, boom, t, "PHW");
        assert!((xkc - rule).abs() < 1e-8, "period {t}: XKC {xkc} vs {rule}");
    }
    // From = 1: 2025 of every dynamic scenario is the baseline's, number for number.
    for run in runs.iter().filter(|r| r.scenario.starts_with("dyn_")) {
        for (u, v) in levels(run, 0).iter().zip(levels(base, 0)) {
            assert!(
                (u - v).abs() <= 1e-12 * v.abs().max(1.0),
                "{}",
                run.scenario
            );
        }
    }
    // Tenfold efficiency phased in over 2026-2030 raises the compute price while capacity is
    // short; as capacity accumulates the rise fades. With investment held at the benchmark the
    // path ends in the static short run: the same equilibrium as the static scenario.
    let pcmp = |run: &PathRun, t| level(&structure, run, t, "PCMP");
    let phased = flagship_path(&runs, "dyn_efficiency_10x");
    assert!(pcmp(phased, 5) > 1.1, "{}", pcmp(phased, 5));
    assert!(pcmp(phased, 19) - 1.0 < 0.2 * (pcmp(phased, 5) - 1.0));
    assert!(param(&structure, phased, 19, "kc_stock") > 1.25);
    let fixed = flagship_path(&runs, "dyn_efficiency_10x_fixed_capacity");
    let static_10x = flagship_path(&runs, "token_efficiency_10x");
    for t in 5..20 {
        for (u, v) in levels(fixed, t).iter().zip(levels(static_10x, 0)) {
            assert!(
                (u - v).abs() <= 1e-8 * v.abs().max(1.0),
                "fixed capacity, period {t}"
            );
        }
    }
    // A temporary subsidy's effects vanish after it ends; a permanent one keeps capacity up.
    let temporary = flagship_path(&runs, "dyn_subsidy_temporary");
    let permanent = flagship_path(&runs, "dyn_subsidy_permanent");
    assert!(pcmp(temporary, 6) < 0.95, "overcapacity once vouchers end");
    assert!((pcmp(temporary, 19) - 1.0).abs() < 0.01);
    assert!((param(&structure, temporary, 19, "kc_stock") - 1.0).abs() < 0.02);
    assert!(param(&structure, permanent, 19, "kc_stock") > 1.15);
}

#[test]
fn flattened_dynamic_models_give_the_same_paths() {
    let dir = tempfile::tempdir().unwrap();
    let settings = NewtonSettings::default();
    let flagship = dynamic_flagship();
    let models = [
        tokencge::model::load(&solow_path()).unwrap(),
        tokencge::model::load(&two_sector_path()).unwrap(),
        flagship.model().clone(),
    ];
    for model in models {
        let text = tokencge::flatten::flatten(&model).unwrap();
        let flat_path = dir.path().join(format!("{}.toml", model.name));
        std::fs::write(&flat_path, &text).unwrap();
        let flat = tokencge::model::load(&flat_path).unwrap();
        assert!(flat.dynamics.is_some(), "{}: [dynamics] kept", model.name);
        let n = model.scenarios.len();
        let periods = model.dynamics.as_ref().unwrap().periods.min(40);
        let a = tokencge::build_model(model).unwrap().0;
        let b = tokencge::build_model(flat).unwrap().0;
        let indices: Vec<Option<usize>> = std::iter::once(None).chain((0..n).map(Some)).collect();
        let ra = dynamic::solve_paths(&a, &indices, periods, &settings, &|| {}).unwrap();
        let rb = dynamic::solve_paths(&b, &indices, periods, &settings, &|| {}).unwrap();
        for (pa, pb) in ra.iter().zip(&rb) {
            assert!(pa.complete() && pb.complete(), "{}", pa.scenario);
            for t in 0..periods {
                for (u, v) in levels(pa, t).iter().zip(levels(pb, t)) {
                    assert!(
                        (u - v).abs() <= 1e-10 * u.abs().max(1.0),
                        "{} period {t}: {u} vs {v}",
                        pa.scenario
                    );
                }
            }
        }
    }
}

#[test]
fn indexed_models_update_every_element_of_a_table_of_parameters() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in tokencge::generate::generate(3, 2, 1).indexed_files() {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let path = dir.path().join("model.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    // One update and one path per element of the sector set j.
    text.push_str(
        "\n[dynamics]\nperiods = 4\nupdate = { \"tax[j]\" = \"0.5 * tax[j] + 0 * Y[j]\" }\n",
    );
    std::fs::write(&path, &text).unwrap();
    let structure = build(&path);
    let model = structure.model();
    assert_eq!(model.dynamics.as_ref().unwrap().updates.len(), 3);
    let base = run(&structure, None);
    assert!(base.complete());
    for j in ["s0", "s1", "s2"] {
        let name = format!("tax[{j}]");
        let t0 = param(&structure, &base, 0, &name);
        assert!(t0 > 0.0);
        assert_eq!(param(&structure, &base, 3, &name), t0 / 8.0, "{name}");
    }
}

#[test]
fn the_flagship_chains_real_gdp_year_to_year() {
    // gdp_chained(t) = gdp_chained(t − 1) × the Fisher link between the two years, the link
    // computed here from the reported prices and net final quantities of both years; the
    // quantities add up to nominal GDP at the year's prices and to GDP at benchmark prices.
    let structure = dynamic_flagship();
    let path = run(
        &structure,
        structure.model().scenario_index("dyn_efficiency_10x"),
    );
    assert!(path.complete());
    let ind = |t: usize, name: &str| {
        path.converged_period(t)
            .unwrap()
            .report
            .indicators
            .as_ref()
            .unwrap()[name]
    };
    // (net final quantity, its price); no DST on this path, so households pay PPLT and PAPP.
    let goods = [
        ("fq_pplt_c", "PPLT"),
        ("fq_papp_c", "PAPP"),
        ("fq_pplt", "PPLT"),
        ("fq_papp", "PAPP"),
        ("fq_pene", "PENE"),
        ("fq_proe", "PROE"),
        ("fq_pcmp", "PCMP"),
        ("fq_phw", "PHW"),
        ("fq_pfx", "PFX"),
        ("fq_phwm", "PHWM"),
    ];
    let value = |prices: usize, quantities: usize| -> f64 {
        goods
            .iter()
            .map(|(q, p)| level(&structure, &path, prices, p) * ind(quantities, q))
            .sum()
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-10 * b.abs();
    for t in 0..20 {
        assert!(close(value(t, t), ind(t, "gdp_nominal_expenditure")), "{t}");
        let at_benchmark: f64 = goods.iter().map(|(q, _)| ind(t, q)).sum();
        assert!(close(at_benchmark, ind(t, "gdp_bench_prices")), "{t}");
    }
    assert!(close(ind(0, "gdp_chained"), ind(0, "gdp_real")));
    for t in 1..20 {
        let laspeyres = value(t - 1, t) / value(t - 1, t - 1);
        let paasche = value(t, t) / value(t, t - 1);
        let want = ind(t - 1, "gdp_chained") * (laspeyres * paasche).sqrt();
        assert!(close(ind(t, "gdp_chained"), want), "period {t}");
    }
    // Chained over the years of the phase-in, the volume gain is well below the one-link index.
    assert!(ind(5, "gdp_chained") - ind(5, "gdp_real") < -100.0);
}

#[test]
fn the_flagships_dynamic_ev_totals_follow_the_consumers_roles() {
    let flagship = flagship_file();
    let cmp = cli_json(&[
        "compare",
        flagship.to_str().unwrap(),
        "--dynamic",
        "--scenarios",
        "dyn_subsidy_temporary",
        "--format",
        "json",
    ]);
    let ev = cmp["scenarios"][0]["ev"].as_array().unwrap();
    let names: Vec<&str> = ev.iter().map(|e| e["consumer"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "WO",
            "WX",
            "ELITE",
            "OWN",
            "GOV",
            "FOR",
            "ENTRE",
            "domestic",
            "rest_of_world"
        ]
    );
    let of = |name: &str| ev.iter().find(|e| e["consumer"] == name).unwrap();
    let at = |name: &str, t: usize| of(name)["values"][t].as_f64().unwrap();
    let pv = |name: &str| of(name)["present_value"].as_f64().unwrap();
    let households_and_government = ["WO", "WX", "ELITE", "OWN", "GOV"];
    for t in 0..20 {
        let sum: f64 = households_and_government.iter().map(|c| at(c, t)).sum();
        assert!(
            (at("domestic", t) - sum).abs() <= 1e-9 * sum.abs().max(1.0),
            "{t}"
        );
        assert_eq!(at("rest_of_world", t), at("FOR", t));
    }
    // The accounting consumer ENTRE is in neither total; the present values add up too.
    let sum: f64 = households_and_government.iter().map(|c| pv(c)).sum();
    assert!((pv("domestic") - sum).abs() <= 1e-9 * sum.abs());
    assert!(
        at("ENTRE", 5).abs() > 0.1,
        "ENTRE's EV moves, and is left out"
    );
}

#[test]
fn updates_and_paths_keyed_over_sets_give_the_paths_of_the_economy_written_by_hand() {
    // Two Solow regions over a set r = {a, b}: `"kstock[r]"` is one update per region and
    // `"L[r]"` one path per region (labour growing 1 % in a, 2 % in b, from ord(r)). Every
    // period of every scenario is the same, byte for byte, as the file with each element
    // written out.
    let args = |file: &str| {
        let (code, out, err) = cli(&["solve", file, "--dynamic", "--all", "--format", "json"]);
        assert_eq!(code, Some(0), "{err}");
        out
    };
    let over_sets = args("tests/data/indexed/solow_regions_sets.toml");
    assert_eq!(
        over_sets,
        args("tests/data/indexed/solow_regions_plain.toml")
    );
    let runs: serde_json::Value = serde_json::from_str(&over_sets).unwrap();
    let period = |scenario: &str, t: u64| {
        runs.as_array()
            .unwrap()
            .iter()
            .find(|r| r["scenario"] == scenario && r["period"] == t)
            .unwrap_or_else(|| panic!("no period {t} of {scenario}"))
    };
    // By hand: after the benchmark period each stock is 95 % of itself plus the benchmark's
    // investment (20 in a, 12 in b); labour follows its own region's path.
    let p1 = &period("benchmark", 1)["parameters"];
    assert!(
        (p1["kstock[a]"].as_f64().unwrap() - 305.0).abs() < 1e-9,
        "{p1}"
    );
    assert!(
        (p1["kstock[b]"].as_f64().unwrap() - 202.0).abs() < 1e-9,
        "{p1}"
    );
    assert!((p1["L[a]"].as_f64().unwrap() - 70.7).abs() < 1e-12, "{p1}");
    assert!((p1["L[b]"].as_f64().unwrap() - 40.8).abs() < 1e-12, "{p1}");
    // Region b's labour grows faster, so does its output; thrift raises both.
    let last = &period("benchmark", 11)["sectors"];
    let (ya, yb) = (
        last["Y[a]"].as_f64().unwrap(),
        last["Y[b]"].as_f64().unwrap(),
    );
    assert!(1.0 < ya && ya < yb, "{last}");
    let thrift = &period("thrift", 11)["sectors"];
    assert!(thrift["Y[a]"].as_f64().unwrap() > ya, "{thrift}");
    assert!(thrift["Y[b]"].as_f64().unwrap() > yb, "{thrift}");
    // The path's CSV keeps the index in a column of its own, parameters included.
    let (code, csv, err) = cli(&[
        "solve",
        "tests/data/indexed/solow_regions_sets.toml",
        "--dynamic",
        "--format",
        "csv",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        csv.lines().next(),
        Some("scenario,period,year,kind,name,index1,value,margin")
    );
    let row = csv
        .lines()
        .find(|l| l.starts_with("benchmark,1,1.0,parameter,kstock,b,"))
        .unwrap_or_else(|| panic!("no row for kstock[b] in period 1:\n{csv}"));
    let kb: f64 = row.split(',').nth(6).unwrap().parse().unwrap();
    assert!((kb - 202.0).abs() < 1e-9, "{row}");
    assert!(csv.contains("\nbenchmark,11,11.0,sector,Y,b,"), "{csv}");
}
