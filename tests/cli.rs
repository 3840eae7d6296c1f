//! Drives the real `tokencge` binary, as a user would: reference models, output contract, exit
//! codes and the messages bad input gets.

use std::path::{Path, PathBuf};

mod common;
use common::{bin, reference_models, root, run, text};

#[test]
fn every_reference_model_passes_check_with_every_target() {
    let models = reference_models();
    assert_eq!(models.len(), 9);
    let mut args = vec!["check".to_string()];
    args.extend(models.iter().map(|p| p.display().to_string()));
    let o = bin().args(&args).output().unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    let mut total = 0;
    for line in out.lines().filter(|l| l.contains(" passed, ")) {
        assert!(line.ends_with(" 0 failed"), "{line}");
        let n: usize = line
            .rsplit(": ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        total += n;
    }
    // 30 + 40 + 36 + 61 + 36 + 172 + 60 + 210 + 180 targets in the nine files.
    assert_eq!(total, 825, "{out}");
    assert!(!out.contains("FAIL"));
}

fn json(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn solve_json_follows_the_output_contract() {
    let v = json(&[
        "solve",
        "models/reference/mpsge_m1_two_by_two.toml",
        "--scenario",
        "pl_numeraire",
        "--format",
        "json",
    ]);
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "model",
            "scenario",
            "status",
            "iterations",
            "residual",
            "walras_residual",
            "numeraire",
            "fixed",
            "sectors",
            "commodities",
            "consumers",
            "auxiliary",
            "welfare",
            "pruned"
        ]
    );
    assert_eq!(v["model"], "mpsge_m1_two_by_two");
    assert_eq!(v["scenario"], "pl_numeraire");
    assert_eq!(v["status"], "converged");
    assert_eq!(v["numeraire"], "PL");
    assert_eq!(v["fixed"]["PL"], 1.0);
    assert!(v["residual"].as_f64().unwrap() <= 1e-9);
    assert!(v["iterations"].as_u64().unwrap() >= 1);
    let close =
        |a: &serde_json::Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-6 * b.abs().max(1.0);
    assert!(close(&v["sectors"]["X"], 1.0488088481593985));
    assert!(close(&v["commodities"]["PK"], 1.0999999998973022));
    assert!(close(&v["consumers"]["RA"], 164.9999999917842));
    assert!(close(&v["welfare"]["RA"]["index"], 1.0454820635708377));
    assert!(close(&v["welfare"]["RA"]["ev"], 6.822309535625659));
    assert_eq!(v["pruned"], serde_json::json!([]));
    // Sector order follows the file.
    let sectors: Vec<&str> = v["sectors"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(sectors, ["X", "Y", "U"]);
}

#[test]
fn numeraire_is_null_when_only_fix_normalises() {
    let v = json(&[
        "solve",
        "models/reference/mpsge_m1_two_by_two.toml",
        "--scenario",
        "ra157",
        "--format",
        "json",
    ]);
    assert!(v["numeraire"].is_null());
    assert_eq!(v["fixed"]["RA"], 157.0);
    // The default numeraire of the benchmark is the largest-income consumer.
    let b = json(&[
        "solve",
        "models/reference/mpsge_m1_two_by_two.toml",
        "--format",
        "json",
    ]);
    assert_eq!(b["numeraire"], "RA");
    assert_eq!(
        b["iterations"], 0,
        "a benchmark that replicates is accepted without iterating"
    );
}

#[test]
fn idle_activities_stay_at_zero_and_pruned_flows_are_reported() {
    let v = json(&[
        "solve",
        "models/reference/markusen_m41_open_economy.toml",
        "--scenario",
        "tariff_10",
        "--format",
        "json",
    ]);
    // Prohibitive tariff: autarky, every trade activity shut down.
    for s in ["E1", "M2", "E2", "M1"] {
        assert!(
            v["sectors"][s].as_f64().unwrap().abs() < 1e-9,
            "{s} = {}",
            v["sectors"][s]
        );
    }
}

#[test]
fn solve_all_prints_every_scenario_and_csv_has_a_header() {
    let v = json(&[
        "solve",
        "models/reference/markusen_m21.toml",
        "--all",
        "--format",
        "json",
    ]);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["benchmark", "tax_x", "double_labour"]);
    let o = run(&[
        "solve",
        "models/reference/markusen_m21.toml",
        "--scenario",
        "double_labour",
        "--format",
        "csv",
    ]);
    let (out, _) = text(&o);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("scenario,kind,name,value,margin"));
    let x = out
        .lines()
        .find(|l| l.starts_with("double_labour,sector,X,"))
        .unwrap();
    let val: f64 = x.split(',').nth(3).unwrap().parse().unwrap();
    assert!((val - 2f64.powf(0.25)).abs() < 1e-9);
}

#[test]
fn table_output_shows_levels_margins_and_welfare() {
    let o = run(&[
        "solve",
        "models/reference/markusen_m22.toml",
        "--scenario",
        "tax_50",
    ]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.contains("status converged"));
    assert!(out.contains("slack*margin"));
    assert!(out.contains("welfare"));
}

#[test]
fn describe_lists_nests_and_scenarios() {
    let o = run(&["describe", "models/reference/markusen_m22.toml"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(out.contains("sector X"));
    assert!(out.contains("va (σ = 1)"));
    assert!(out.contains("tax_10_sigma_100"));
}

const BASE: &str = r#"commodities = ["PX", "PY", "PL", "PK"]

[model]
name = "base"
numeraire = "PL"

[parameters]
tx = 0.0

[sectors.X]
elasticity = 1
nests = [{ name = "va", parent = "s", elasticity = 0.5 }]
outputs = [{ commodity = "PX", quantity = 100, taxes = [{ agent = "RA", rate = "tx" }] }]
inputs = [{ commodity = "PL", quantity = 50, nest = "va" }, { commodity = "PK", quantity = 50, nest = "va" }]

[sectors.Y]
outputs = [{ commodity = "PY", quantity = 50 }]
inputs = [{ commodity = "PL", quantity = 20 }, { commodity = "PK", quantity = 30 }]

[consumers.RA]
demands = [{ commodity = "PX", quantity = 100 }, { commodity = "PY", quantity = 50 }]
endowments = [{ commodity = "PL", quantity = 70 }, { commodity = "PK", quantity = 80 }]

[scenarios.tax]
parameters = { tx = 0.2 }

[[targets]]
scenario = "tax"
expr = "X"
max = 1
"#;

/// Writes a variant of BASE and runs `check` on it.
fn check_variant(from: &str, to: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.toml");
    let body = if from.is_empty() {
        BASE.to_string()
    } else {
        BASE.replacen(from, to, 1)
    };
    assert!(
        from.is_empty() || body != BASE,
        "variant did not apply: {from}"
    );
    std::fs::write(&path, body).unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (out, err) = text(&o);
    (
        o.status.code().unwrap(),
        out,
        err.replace(path.to_str().unwrap(), "model.toml"),
    )
}

#[test]
fn the_base_fixture_is_valid() {
    let (code, out, err) = check_variant("", "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("1 passed, 0 failed"));
}

#[test]
fn bad_input_is_exit_2_with_file_line_and_field() {
    let cases: &[(&str, &str, &str)] = &[
        // (replace, with, expected message fragment incl. line)
        ("quantity = 20 }", "quantty = 20 }", "model.toml:18:"),
        (
            "quantity = 20 }",
            "quantity = 20, bogus = 1 }",
            "unknown field `bogus`",
        ),
        (r#"rate = "tx""#, r#"rate = "tz""#, "model.toml:13:"),
        (r#"rate = "tx""#, r#"rate = "tz""#, "unknown name 'tz'"),
        ("[sectors.Y]", "[sectors.PX]", "duplicate name 'PX'"),
        (
            r#"parent = "s""#,
            r#"parent = "nope""#,
            "sectors.X.nests[0].parent: parent nest 'nope' does not exist",
        ),
        (
            r#"nests = [{ name = "va", parent = "s", elasticity = 0.5 }]"#,
            r#"nests = [{ name = "va", parent = "vb", elasticity = 0.5 }, { name = "vb", parent = "va" }]"#,
            "cycle",
        ),
        (
            "quantity = 20 }",
            "quantity = -20 }",
            "sectors.Y.inputs[0].quantity: must not be negative (is -20)",
        ),
        (
            r#"{ commodity = "PL", quantity = 20 }"#,
            r#"{ commodity = "PL", quantity = 20, price = 0 }"#,
            "sectors.Y.inputs[0].price: must be positive",
        ),
        (
            "elasticity = 0.5 }",
            "elasticity = -0.5 }",
            "sectors.X.nests[0].elasticity: must not be negative",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "20 * PX" }"#,
            "'PX' is a commodity: only parameters may stand here",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "demand(X, PL)" }"#,
            "demand() may stand only in",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "20 *" }"#,
            "bad expression",
        ),
        (
            r#"commodity = "PL", quantity = 70"#,
            r#"commodity = "PZ", quantity = 70"#,
            "unknown commodity 'PZ'",
        ),
        (
            r#"scenario = "tax""#,
            r#"scenario = "taxx""#,
            "unknown scenario 'taxx'",
        ),
        (
            r#"numeraire = "PL""#,
            r#"numeraire = "X""#,
            "numeraire 'X' is a sector",
        ),
        (
            "parameters = { tx = 0.2 }",
            "parameters = { ty = 0.2 }",
            "'ty' is not a declared parameter",
        ),
        ("[model]", "[model]\nbogus = 1", "unknown field `bogus`"),
        (
            "commodities = [",
            "commodities = [ \"PX\", ",
            "duplicate name 'PX'",
        ),
        ("max = 1", "", "a target needs `value`"),
        (
            r#"demands = [{ commodity = "PX", quantity = 100 }, { commodity = "PY", quantity = 50 }]"#,
            "demands = []",
            "needs at least one final demand",
        ),
        (
            r#"agent = "RA""#,
            r#"agent = "X""#,
            "tax agent 'X' is a sector, expected a consumer",
        ),
        (
            "[scenarios.tax]",
            "[scenarios.benchmark]",
            "'benchmark' is reserved",
        ),
        ("name = \"base\"", "name = \"base\"\n[[[", "model.toml:"),
        // Function names are reserved, calls are checked against the table of functions.
        (
            "tx = 0.0",
            "tx = 0.0\nln = 1",
            "model.toml:9:6: parameters.ln: 'ln' is the name of a function",
        ),
        (
            "[sectors.Y]",
            "[sectors.max]",
            "'max' is the name of a function",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "ln(20, 2)" }"#,
            "ln() is called as ln(x)",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "max(20)" }"#,
            "max() is called as max(x, y, ...)",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "log(20)" }"#,
            "unknown function 'log' (known: ln, exp, sqrt, max, min, demand",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "ln(0) + 20" }"#,
            "ln(0) is outside the function's domain",
        ),
        (
            "quantity = 20 }",
            r#"quantity = "sqrt(PX)" }"#,
            "'PX' is a commodity: only parameters may stand here",
        ),
    ];
    for (from, to, expect) in cases {
        let (code, out, err) = check_variant(from, to);
        assert_eq!(code, 2, "{from} -> {to}: exit {code}\n{out}\n{err}");
        assert!(
            err.contains(expect),
            "{from} -> {to}: expected '{expect}' in:\n{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            out.is_empty() || !out.contains("passed"),
            "nothing is checked on bad input: {out}"
        );
    }
}

#[test]
fn math_functions_calibrate_and_deep_expressions_are_located_errors() {
    // ln/exp/sqrt/max/min of parameters give the same benchmark as the numbers they compute.
    let (code, out, err) = check_variant(
        "quantity = 20 }",
        r#"quantity = "max(ln(exp(20)), sqrt(16)) * min(1, 2)" }"#,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    // Nesting a few thousand levels deep is a located error, never a stack overflow.
    for deep in [
        format!("{}20{}", "(".repeat(5000), ")".repeat(5000)),
        format!("{}20", "-".repeat(5000)),
        vec!["1"; 5000].join(" + "),
        vec!["1"; 5000].join("^"),
        format!("{}20{}", "sqrt(".repeat(5000), ")".repeat(5000)),
    ] {
        let (code, _, err) = check_variant("quantity = 20 }", &format!("quantity = \"{deep}\" }}"));
        assert_eq!(code, 2, "{err}");
        assert!(
            err.contains("model.toml:18:") && err.contains("nested deeper than 256"),
            "{err}"
        );
    }
}

#[test]
fn every_diagnostic_is_reported_at_once() {
    let bad = BASE
        .replacen("quantity = 20 }", "quantity = -20 }", 1)
        .replacen(r#"rate = "tx""#, r#"rate = "tz""#, 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, bad).unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        err.lines().filter(|l| l.contains("m.toml:")).count(),
        2,
        "{err}"
    );
    // In file order: the tax rate (line 13) before the quantity (line 17).
    let first = err.lines().next().unwrap();
    assert!(first.contains(":13:"), "{err}");
}

#[test]
fn an_unbalanced_benchmark_names_every_failing_function_largest_first() {
    // X's output raised from 100 to 110: X makes a loss of 10 at the benchmark and PX is in
    // excess supply by 10; Y's input of PK raised to 33: Y's loss 3, PK excess demand 3.
    let (code, _out, err) = {
        let body = BASE
            .replacen(
                r#"commodity = "PX", quantity = 100, taxes"#,
                r#"commodity = "PX", quantity = 110, taxes"#,
                1,
            )
            .replacen(
                r#"{ commodity = "PK", quantity = 30 }"#,
                r#"{ commodity = "PK", quantity = 33 }"#,
                1,
            );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, body).unwrap();
        let o = run(&["check", path.to_str().unwrap()]);
        let (out, err) = text(&o);
        (o.status.code().unwrap(), out, err)
    };
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("benchmark does not replicate"), "{err}");
    let lines: Vec<&str> = err.lines().skip(1).collect();
    assert!(
        lines[0].contains("zero profit of X") || lines[0].contains("market clearance of PX"),
        "{err}"
    );
    for f in [
        "zero profit of X",
        "market clearance of PX",
        "zero profit of Y",
        "market clearance of PK",
    ] {
        assert!(err.contains(f), "missing {f}: {err}");
    }
    let pos = |f: &str| err.find(f).unwrap();
    assert!(
        pos("zero profit of X") < pos("zero profit of Y"),
        "largest first: {err}"
    );
}

#[test]
fn a_failed_target_exits_1_and_says_which() {
    let (code, out, _) = check_variant("max = 1", "min = 1");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("0 passed, 1 failed"), "{out}");
}

#[test]
fn non_convergence_exits_1_and_names_the_worst_equations() {
    let o = run(&[
        "solve",
        "--max-iterations",
        "1",
        "models/reference/mpsge_m1_two_by_two.toml",
        "--scenario",
        "otax_0_9",
        "--format",
        "json",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("did not converge"), "{err}");
    assert!(err.contains("worst equations"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_ne!(v["status"], "converged");
    assert!(!out.contains("NaN"));
    assert!(v["worst"].as_array().is_some_and(|w| !w.is_empty()));
}

#[test]
fn missing_files_and_unknown_scenarios_are_bad_input() {
    let o = run(&["check", "no/such/model.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("no/such/model.toml"));
    let o = run(&[
        "solve",
        "models/reference/markusen_m21.toml",
        "--scenario",
        "nope",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("unknown scenario 'nope'"));
    let o = run(&["solve", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn flatten_writes_a_plain_model_that_checks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("flat.toml");
    let o = run(&[
        "flatten",
        "models/reference/mpsge_m5_endogenous_tax.toml",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{:?}", text(&o));
    let o = run(&["check", out.to_str().unwrap()]);
    let (stdout, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{err}");
    assert!(stdout.contains("180 passed, 0 failed"));
    // Writing into a directory that does not exist fails cleanly and leaves nothing behind.
    let o = run(&[
        "flatten",
        "models/reference/markusen_m21.toml",
        "-o",
        "/nonexistent/dir/x.toml",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn balance_fixes_an_unbalanced_sam_by_the_least_adjustment() {
    let dir = tempfile::tempdir().unwrap();
    let sam = dir.path().join("sam.csv");
    std::fs::write(&sam, "account,A,B,C\nA,0,10,5\nB,12,0,3\nC,3,5,0\n").unwrap();
    // Row totals A 15, B 15, C 8; column totals A 15, B 15, C 8: balanced. Unbalance it:
    std::fs::write(&sam, "account,A,B,C\nA,0,12,5\nB,12,0,3\nC,3,5,0\n").unwrap();
    let out = dir.path().join("out.csv");
    let o = run(&[
        "balance",
        sam.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    let (stdout, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{err}");
    let balanced = tokencge::sam::Sam::read(&out).unwrap();
    balanced.check_balanced(1e-12).unwrap();
    assert!(stdout.contains("total absolute adjustment 2"), "{stdout}");
}

#[test]
fn regression_an_endowment_zero_only_through_its_parameters_is_not_pruned() {
    // Found by the modeller: "5 * z" with z = 0 in the model and 1 in a scenario used to be
    // pruned for every scenario, silently.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    let body = BASE
        .replacen(
            r#"{ commodity = "PK", quantity = 80 }]"#,
            r#"{ commodity = "PK", quantity = 80 }, { commodity = "PL", quantity = "5 * z" }]"#,
            1,
        )
        .replacen("tx = 0.0", "tx = 0.0\nz = 0.0", 1)
        .replacen("parameters = { tx = 0.2 }", "parameters = { z = 1.0 }", 1);
    std::fs::write(&path, body).unwrap();
    let o = run(&[
        "solve",
        path.to_str().unwrap(),
        "--scenario",
        "tax",
        "--format",
        "json",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // PL is the numeraire: income = 75 PL + 80 PK with PK > 1 as labour got more abundant.
    let income = v["consumers"]["RA"].as_f64().unwrap();
    let pk = v["commodities"]["PK"].as_f64().unwrap();
    assert!(
        (income - (75.0 + 80.0 * pk)).abs() < 1e-6,
        "income {income}, PK {pk}"
    );
    assert!(pk > 1.0);
}

// ---- the flagship model

#[test]
fn no_arguments_compares_every_regime_of_the_default_model() {
    let o = run(&[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let model = tokencge::model::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/token_economy.toml"
    )))
    .unwrap();
    assert!(model.scenarios.len() >= 29);
    // The static regimes: the dynamic scenarios (defined by their paths) are for --dynamic.
    let regimes: Vec<&tokencge::model::Scenario> = model
        .static_scenarios()
        .into_iter()
        .map(|i| &model.scenarios[i])
        .collect();
    assert!(regimes.len() >= 29 && regimes.len() < model.scenarios.len());
    // The first screen answers who gains and who loses: one summary line per scenario.
    let lines: Vec<&str> = out.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.starts_with("Who gains and who loses"))
        .expect("the summary comes first");
    assert!(head < 5, "{out}");
    let table = head
        + lines[head..]
            .iter()
            .position(|l| l.starts_with("scenario"))
            .unwrap();
    assert!(table < head + 3);
    for (k, sc) in regimes.iter().enumerate() {
        let line = lines[table + 1 + k];
        let shown: String = sc.name.chars().take(20).collect();
        assert!(line.starts_with(&shown), "{line} for {}", sc.name);
        assert!(!line.contains("not solved"), "{line}");
        // EVs of the households and the government, the totals, GDP and revenue.
        assert_eq!(line.split_whitespace().count(), 1 + 5 + 2 + 2, "{line}");
    }
    assert!(lines[table].contains("domestic") && lines[table].contains("abroad"));
    assert!(out.contains("not counted: ENTRE (accounting)"));
    for l in &lines {
        assert!(l.chars().count() <= 100, "wider than 100 columns: {l}");
    }
    // One block per scenario with its description, none for a dynamic one.
    for sc in &model.scenarios {
        if !regimes.iter().any(|r| r.name == sc.name) {
            assert!(!out.contains(&format!("{} · ", sc.name)), "{}", sc.name);
            continue;
        }
        assert!(
            out.contains(&format!("{} · {}", sc.name, &sc.description[..20])),
            "no block for {}",
            sc.name
        );
    }
    assert!(out.contains("EV of households and government, bn USD 2025"));
    assert!(out.contains("PPLT (Tokens)"));
    // --full adds every quantity with its description.
    let o = run(&["compare", "--full", "--scenarios", "token_tax_10"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    for word in [
        "activity levels",
        "prices (relative to the numeraire)",
        "incomes (bn USD 2025)",
        "EV (bn USD 2025; % of benchmark income)",
        "PCMP Compute services",
        "gdp_real Real GDP, Fisher index",
        "ev_domestic",
        "free_tier_surplus",
        "welfare_beyond_gdp",
        "markup Frontier markup",
        "mcpf",
    ] {
        assert!(out.contains(word), "missing {word}");
    }
}

#[test]
fn default_check_passes_every_calibration_target() {
    let o = run(&["check"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("benchmark replicates"));
    let summary = out.lines().last().unwrap();
    assert!(
        summary.ends_with(" 0 failed") && !summary.contains(": 0 passed"),
        "{summary}"
    );
}

#[test]
fn every_regime_of_the_flagship_converges_with_the_expected_signs() {
    let v = json(&["solve", "--all", "--format", "json"]);
    let sols = v.as_array().unwrap();
    let get = |name: &str| {
        sols.iter()
            .find(|s| s["scenario"] == name)
            .unwrap_or_else(|| panic!("no scenario {name}"))
    };
    for s in sols {
        assert_eq!(s["status"], "converged", "{}", s["scenario"]);
        assert!(s["residual"].as_f64().unwrap() <= 1e-9);
    }
    let bench = get("benchmark");
    let ratio = |s: &serde_json::Value, kind: &str, name: &str| {
        s[kind][name].as_f64().unwrap() / bench[kind][name].as_f64().unwrap()
    };
    // Service deflation with computing-power inflation.
    let eff = get("token_efficiency_10x");
    assert!(ratio(eff, "commodities", "PPLT") < 0.5);
    assert!(ratio(eff, "commodities", "PCMP") > 1.0);
    // A token tax shrinks platforms and raises government revenue.
    for t in ["token_tax_3", "token_tax_10"] {
        assert!(ratio(get(t), "sectors", "TOK") < 1.0, "{t}");
        assert!(
            get(t)["indicators"]["real_gov_revenue"].as_f64().unwrap()
                > bench["indicators"]["real_gov_revenue"].as_f64().unwrap()
        );
    }
    // Revenue-neutral regimes hold real revenue at its benchmark.
    for t in ["token_tax_10_neutral", "compute_subsidy_20_neutral"] {
        let r = get(t)["indicators"]["real_gov_revenue"].as_f64().unwrap();
        let r0 = bench["indicators"]["real_gov_revenue"].as_f64().unwrap();
        assert!((r - r0).abs() <= 1e-6 * r0, "{t}: {r} vs {r0}");
    }
    // Compute vouchers raise the gross compute price (the installed capacity captures them).
    assert!(ratio(get("compute_subsidy_20"), "commodities", "PCMP") > 1.0);
    assert!(
        ratio(get("compute_subsidy_50"), "commodities", "PCMP")
            > ratio(get("compute_subsidy_20"), "commodities", "PCMP")
    );
}

#[test]
fn the_flagship_indicators_keep_their_accounting_identities_in_every_regime() {
    let v = json(&["solve", "--all", "--format", "json"]);
    for s in v.as_array().unwrap() {
        let name = s["scenario"].as_str().unwrap();
        let ind = |k: &str| s["indicators"][k].as_f64().unwrap();
        let ev = |h: &str| s["welfare"][h]["ev"].as_f64().unwrap();
        let close = |a: f64, b: f64, what: &str| {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "{name}: {what}: {a} vs {b}"
            )
        };
        // Nominal GDP from incomes equals nominal GDP from final expenditure.
        close(
            ind("gdp_nominal"),
            ind("gdp_nominal_expenditure"),
            "GDP income vs expenditure",
        );
        // One definition of each welfare total: domestic = households + GOV, ENTRE in none.
        close(
            ind("ev_domestic"),
            ["WO", "WX", "ELITE", "OWN", "GOV"]
                .iter()
                .map(|h| ev(h))
                .sum(),
            "domestic EV",
        );
        close(ind("ev_rest_of_world"), ev("FOR"), "rest-of-world EV");
        close(
            ind("welfare_beyond_gdp"),
            ind("ev_domestic") - (ind("gdp_real") - 29935.0),
            "welfare beyond GDP",
        );
        // The Fisher index lies between its Laspeyres and Paasche bounds.
        let (l, p, f) = (
            ind("gdp_laspeyres"),
            ind("gdp_paasche"),
            ind("gdp_real") / 29935.0,
        );
        assert!(
            (f - l.min(p)) >= -1e-12 && (l.max(p) - f) >= -1e-12,
            "{name}: {l} {p} {f}"
        );
        close(f * f, l * p, "Fisher = sqrt(Laspeyres x Paasche)");
        // The markup revenue the accounting consumer receives pays the frontier firms' fixed
        // costs, plus their rents when their number is fixed (zero profit of NF).
        close(
            s["consumers"]["ENTRE"].as_f64().unwrap(),
            ind("markup_revenue"),
            "ENTRE's income",
        );
        close(
            ind("markup_revenue"),
            ind("fixed_costs") + ind("frontier_rents"),
            "markup revenue",
        );
        // Free entry leaves no rent; a fixed number of firms does.
        let fixed = name == "merger" || name.ends_with("fixed_firms");
        assert_eq!(ind("frontier_rents").abs() > 1e-9, fixed, "{name}");
    }
}

#[test]
fn only_the_product_of_firms_and_perceived_elasticity_matters_in_the_flagship() {
    // Symmetric Cournot: Lerner = 1 / (N eps), and each frontier firm's fixed cost is 26 / N.
    // Calibrating N = 1.2857 (eps = 1.5, the long-run token-demand elasticity) instead of the
    // observed 3 (eps = 0.64) changes the number of firms by that factor in every scenario and
    // nothing else.
    let (_dir, model) = flagship_copy(
        |t| t.replacen("n_obs = 3.0 ", "n_obs = 1.2857 ", 1),
        str::to_string,
    );
    let a = json(&["solve", "--all", "--format", "json"]);
    let b = json(&[
        "solve",
        model.to_str().unwrap(),
        "--all",
        "--format",
        "json",
    ]);
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        let name = x["scenario"].as_str().unwrap();
        let n = |v: &serde_json::Value| v["sectors"]["NF"].as_f64().unwrap();
        assert!(
            (n(x) * 1.2857 / 3.0 - n(y)).abs() <= 1e-8,
            "{name}: {} vs {}",
            n(x),
            n(y)
        );
        for kind in ["commodities", "consumers", "indicators"] {
            for (k, u) in x[kind].as_object().unwrap() {
                if k == "frontier_firms" {
                    continue;
                }
                let (u, v) = (u.as_f64().unwrap(), y[kind][k].as_f64().unwrap());
                assert!(
                    (u - v).abs() <= 1e-7 * u.abs().max(1.0),
                    "{name}: {kind}.{k}: {u} vs {v}"
                );
            }
        }
    }
}

/// A copy of the flagship model and its data in a temporary directory, both edited.
fn flagship_copy(
    edit_model: impl Fn(&str) -> String,
    edit_sam: impl Fn(&str) -> String,
) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let model = dir.path().join("models/token_economy.toml");
    std::fs::write(&model, edit_model(&read("models/token_economy.toml"))).unwrap();
    std::fs::write(
        dir.path().join("data/token_economy_sam.csv"),
        edit_sam(&read("data/token_economy_sam.csv")),
    )
    .unwrap();
    (dir, model)
}

/// The flagship with its SAM edited.
fn flagship_with_sam(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    flagship_copy(str::to_string, edit)
}

/// Replaces cell (row, col) of a SAM text.
fn set_cell(sam: &str, row: &str, col: &str, value: &str) -> String {
    let header: Vec<&str> = sam
        .lines()
        .find(|l| l.starts_with("account"))
        .unwrap()
        .split(',')
        .collect();
    let j = header.iter().position(|h| *h == col).unwrap();
    sam.lines()
        .map(|l| {
            let mut cells: Vec<String> = l.split(',').map(String::from).collect();
            if cells[0] == row {
                cells[j] = value.to_string();
            }
            cells.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn changing_a_sam_cell_recalibrates_the_model() {
    // Move 5 of platform costs from research labour to compute (and 5 of ROE's compute back to
    // labour): every account still balances, the benchmark still replicates, and the
    // calibration target on the compute share of platform costs now fails.
    let (_dir, model) = flagship_with_sam(|s| {
        let s = set_cell(s, "CMP", "PLT", "40");
        let s = set_cell(&s, "CMP", "ROE", "50");
        let s = set_cell(&s, "LAB", "PLT", "7");
        set_cell(&s, "LAB", "ROE", "15690")
    });
    let o = run(&["check", model.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("benchmark replicates"), "{out}");
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL") && l.to_lowercase().contains("compute share"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        fail.contains("0.66"),
        "compute share is now (35 + 5)/60: {fail}"
    );
}

#[test]
fn one_bad_sam_cell_is_one_message_and_a_non_utf8_model_is_located() {
    // The SAM's problem is reported once, at the [sam] table; the many sam() cells that then
    // cannot be read are not reported again one by one.
    let (_dir, model) = flagship_with_sam(|s| set_cell(s, "CMP", "PLT", "forty"));
    let o = run(&["check", model.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("token_economy.toml:"))
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("sam.file") && err.contains("forty"), "{err}");
    // A byte that is not UTF-8 is located by line and column.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.toml");
    let mut bytes = BASE.as_bytes().to_vec();
    let at = BASE.find("tx = 0.0").unwrap();
    bytes[at + 5] = 0xff;
    std::fs::write(&path, bytes).unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("model.toml:8:6:") && err.contains("not UTF-8"),
        "{err}"
    );
}

#[test]
fn an_unbalanced_sam_is_rejected_with_its_accounts_and_gaps() {
    let (_dir, model) = flagship_with_sam(|s| set_cell(s, "CMP", "PLT", "40"));
    let o = run(&["check", model.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("CMP") && err.contains("PLT"), "{err}");
    assert!(err.contains("token_economy_sam.csv"), "{err}");
    // … and `balance` repairs it by the least adjustment (5), keeping the edited cell if asked.
    let sam = model
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("data/token_economy_sam.csv");
    let out = sam.with_file_name("balanced.csv");
    let o = run(&[
        "balance",
        sam.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--fix",
        "CMP,PLT",
    ]);
    let (stdout, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{err}");
    let b = tokencge::sam::Sam::read(&out).unwrap();
    b.check_balanced(1e-12).unwrap();
    assert_eq!(b.get("CMP", "PLT"), Some(40.0));
}

#[test]
fn the_flattened_flagship_checks_in_the_plain_format() {
    let dir = tempfile::tempdir().unwrap();
    let flat = dir.path().join("plain.toml");
    let o = run(&[
        "flatten",
        "models/token_economy.toml",
        "-o",
        flat.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let txt = std::fs::read_to_string(&flat).unwrap();
    assert!(!txt.contains("sam(") && !txt.contains("[sam]") && !txt.contains("[indicators]"));
    let o = run(&["check", flat.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
}

#[test]
fn compare_csv_and_json_are_long_typed_records() {
    let o = run(&[
        "compare",
        "--scenarios",
        "benchmark,token_tax_3,dst_6",
        "--format",
        "csv",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // Read as a pandas user would: the header, then every number column parses as a number
    // (or is empty).
    let mut r = csv::Reader::from_reader(out.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "scenario",
            "status",
            "kind",
            "name",
            "description",
            "unit",
            "benchmark",
            "value",
            "change",
            "pct_change"
        ]
    );
    let mut rows = 0;
    let mut ev = std::collections::HashMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        rows += 1;
        assert!(["token_tax_3", "dst_6"].contains(&&rec[0]), "{rec:?}");
        assert_eq!(&rec[1], "converged");
        for c in 6..10 {
            assert!(
                rec[c].is_empty() || rec[c].parse::<f64>().is_ok(),
                "column {} is not a number: {rec:?}",
                header[c]
            );
        }
        if &rec[2] == "price" && &rec[3] == "PPLT" && &rec[0] == "token_tax_3" {
            assert!(
                rec[9].parse::<f64>().unwrap() > 0.0,
                "a token tax raises PPLT"
            );
            assert_eq!(&rec[4], "Tokens (composite of the tiers)");
        }
        if &rec[0] == "token_tax_3" && (&rec[2] == "ev" || &rec[3] == "ev_domestic") {
            assert_eq!(
                &rec[5],
                if &rec[2] == "ev" {
                    "bn USD 2025"
                } else {
                    "level"
                }
            );
            // the `value` column, EVs and levels alike
            let v = &rec[8];
            ev.insert(rec[3].to_string(), v.parse::<f64>().unwrap());
        }
    }
    assert!(rows > 100);
    // One definition of domestic EV: the households' and government's, as the indicator.
    let sum: f64 = ["WO", "WX", "ELITE", "OWN", "GOV"]
        .iter()
        .map(|h| ev[*h])
        .sum();
    assert!((ev["domestic"] - sum).abs() < 1e-9, "{ev:?}");
    assert!((ev["domestic"] - ev["ev_domestic"]).abs() < 1e-9, "{ev:?}");
    assert!((ev["rest_of_world"] - ev["FOR"]).abs() < 1e-12);

    let v = json(&["compare", "--scenarios", "token_tax_3", "--format", "json"]);
    assert_eq!(v["unit"], "bn USD 2025");
    assert_eq!(v["scenarios"][0]["name"], "token_tax_3");
    assert_eq!(v["scenarios"][0]["status"], "converged");
    let records = v["records"].as_array().unwrap();
    for rec in records {
        for key in ["benchmark", "value", "change", "pct_change"] {
            assert!(rec[key].is_null() || rec[key].is_f64(), "{rec}");
        }
    }
    let pplt = records
        .iter()
        .find(|r| r["kind"] == "price" && r["name"] == "PPLT")
        .unwrap();
    assert!(pplt["pct_change"].as_f64().unwrap() > 0.0);
}

#[test]
fn invalid_settings_are_bad_input() {
    for args in [
        &["check", "--timeout", "0"][..],
        &["check", "--tolerance", "-1"][..],
        &["check", "--max-iterations", "0"][..],
        &["solve", "--timeout", "1e20"][..],
        &["compare", "--timeout", "nan"][..],
        &["sweep", "--scenario", "token_tax_10", "--tolerance", "inf"][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).1.contains("error:"), "{args:?}");
    }
    // Solver options belong to the commands that solve.
    for args in [
        &[
            "balance",
            "--tolerance",
            "1e-6",
            "data/token_economy_sam.csv",
            "-o",
            "/tmp/x.csv",
        ][..],
        &[
            "flatten",
            "--max-iterations",
            "3",
            "models/token_economy.toml",
            "-o",
            "/tmp/x.toml",
        ][..],
        &["--tolerance", "1e-6", "check"][..],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(text(&o).1.contains("unexpected argument"), "{args:?}");
    }
}

/// The flagship with one more scenario `adv` setting `params` (TOML inline-table body).
fn flagship_with_scenario(params: &str) -> (tempfile::TempDir, PathBuf) {
    flagship_copy(
        |text| {
            text.replacen(
                "[scenarios.token_tax_3]",
                &format!("[scenarios.adv]\nparameters = {{ {params} }}\n\n[scenarios.token_tax_3]"),
                1,
            )
        },
        str::to_string,
    )
}

#[test]
fn pruning_is_decided_per_scenario() {
    // tests/data/scenario_pruning.toml: a final demand, an input and an endowment zero as
    // written and positive in a scenario (their markets must clear), and the reverse.
    let o = run(&["check", "tests/data/scenario_pruning.toml"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("12 passed, 0 failed"), "{out}");
}

#[test]
fn a_point_that_fails_walras_law_is_never_reported_as_converged() {
    // A 99.9% token tax: the solver used to stop at a collapsed point where every equation it
    // solves is met but the numeraire's dropped market is off by 21% of its scale.
    let (_dir, model) = flagship_with_scenario("tok_tax = 0.999");
    let o = run(&[
        "solve",
        model.to_str().unwrap(),
        "--scenario",
        "adv",
        "--format",
        "json",
    ]);
    let (out, err) = text(&o);
    let v: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let status = v["status"].as_str().unwrap();
    let walras = v["walras_residual"].as_f64().unwrap();
    let residual = v["residual"].as_f64().unwrap();
    if status == "converged" {
        assert!(walras <= 1e-6 && residual <= 1e-9, "{v}");
        assert_eq!(o.status.code(), Some(0));
    } else {
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("market clearance of PC (dropped)"), "{err}");
        // The levels that ran off say where it fails: the frontier platforms collapse (their
        // markup cannot cover the fixed costs at any number of firms).
        let runaway = v["runaway"].as_array().unwrap();
        assert!(
            runaway
                .iter()
                .any(|r| ["FRT", "TOK", "NF", "PFRT", "PPLT"]
                    .contains(&r["variable"].as_str().unwrap())),
            "{v}"
        );
        if status == "verification_failed" {
            assert!(walras > 1e-6 || residual > 1e-9, "{v}");
        }
    }
}

#[test]
fn a_scenario_that_cannot_be_set_up_is_reported_beside_the_others() {
    // A 100% compute subsidy makes compute free to its buyers (no equilibrium): that scenario
    // is `evaluation_failed` with its reason and place, every other scenario is still solved
    // and reported.
    let (_dir, model) = flagship_with_scenario("sub_cmp = 1.0");
    let m = model.to_str().unwrap();
    let o = run(&["solve", m, "--all", "--format", "json"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let all = v.as_array().unwrap();
    let n_scenarios = tokencge::model::load(&model)
        .unwrap()
        .static_scenarios()
        .len();
    assert_eq!(all.len(), n_scenarios + 1);
    for r in all {
        if r["scenario"] == "adv" {
            assert_eq!(r["status"], "evaluation_failed");
            let reason = r["reason"].as_str().unwrap();
            assert!(
                reason.contains("sectors.FRT.inputs[0]") && reason.contains("subsidy of 100 %"),
                "{r}"
            );
        } else {
            assert_eq!(r["status"], "converged", "{}", r["scenario"]);
        }
    }
    assert!(err.contains("scenario adv: not solved"), "{err}");
    // CSV: every scenario has its status row, the unsolved one included.
    let o = run(&["solve", m, "--all", "--format", "csv"]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out.lines()
            .any(|l| l.starts_with("adv,status,evaluation_failed,")),
        "{out}"
    );
    assert_eq!(
        out.lines()
            .filter(|l| l.split(',').nth(1) == Some("status"))
            .count(),
        n_scenarios + 1
    );
    // compare: the column is there with its status.
    let o = run(&[
        "compare",
        m,
        "--scenarios",
        "adv,token_tax_3",
        "--format",
        "json",
    ]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["benchmark_status"], "converged");
    let statuses: Vec<&str> = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["evaluation_failed", "converged"]);
    assert!(v["scenarios"][0]["reason"].is_string());
}

/// What a file of the bad-input catalogue must produce: read from its `# exit:`,
/// `# stderr:` and `# diagnostics:` header lines.
struct Expectation {
    exit: i32,
    fragments: Vec<String>,
    diagnostics: Option<usize>,
}

fn expectation(path: &Path) -> Expectation {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let mut e = Expectation {
        exit: -1,
        fragments: Vec::new(),
        diagnostics: None,
    };
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(v) = line.strip_prefix("# exit: ") {
            e.exit = v.trim().parse().unwrap();
        } else if let Some(v) = line.strip_prefix("# stderr: ") {
            e.fragments.push(v.to_string());
        } else if let Some(v) = line.strip_prefix("# diagnostics: ") {
            e.diagnostics = Some(v.trim().parse().unwrap());
        }
    }
    assert!(e.exit >= 0, "{}: no `# exit:` line", path.display());
    e
}

#[test]
fn the_bad_input_catalogue_gives_each_file_its_exit_code_and_messages() {
    // tests/bad_inputs: one defect per file, each with the exit code, the message fragments
    // (with line and column where the defect is in the file) and the number of diagnostics it
    // must produce: one message per defect, never a panic, nothing checked on bad input.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 60, "the catalogue has {} files", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let want = expectation(path);
        let shown = path.to_str().unwrap();
        let o = run(&["check", shown]);
        let (out, err) = text(&o);
        let mut problems = Vec::new();
        if o.status.code() != Some(want.exit) {
            problems.push(format!(
                "exit {:?}, expected {}",
                o.status.code(),
                want.exit
            ));
        }
        for f in &want.fragments {
            if !err.contains(f.as_str()) {
                problems.push(format!("no '{f}'"));
            }
        }
        if let Some(n) = want.diagnostics {
            let got = err
                .lines()
                .filter(|l| l.starts_with(&format!("{shown}:")))
                .count();
            if got != n {
                problems.push(format!("{got} diagnostics, expected {n}"));
            }
        }
        if err.contains("panicked") {
            problems.push("panicked".into());
        }
        if want.exit == 2 && out.contains("passed") {
            problems.push("checked targets on bad input".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n{err}",
                path.display(),
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_indicator_chain_that_doubles_per_level_is_evaluated_once_per_indicator() {
    // i_k = i_(k-1) + i_(k-1), 60 levels: expanded as a tree this is 2^60 terms (it used to run
    // past 25 s at 28 levels and exhaust memory in flatten at 40). Evaluated as a DAG it is
    // immediate and exact (X · 2^59); flatten, which must inline, refuses with a clear message.
    let mut indicators = String::from("\n[indicators]\ni0 = \"X\"\n");
    for k in 1..60 {
        indicators.push_str(&format!("i{k} = \"i{} + i{}\"\n", k - 1, k - 1));
    }
    let body = BASE
        .replacen("[[targets]]", &format!("{indicators}\n[[targets]]"), 1)
        .replacen("expr = \"X\"\nmax = 1", "expr = \"i59 / 2^59\"\nmax = 1", 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.toml");
    std::fs::write(&path, body).unwrap();
    let o = run(&["check", path.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    assert!(out.contains("1 passed, 0 failed"), "{out}");
    let o = run(&[
        "flatten",
        path.to_str().unwrap(),
        "--output",
        dir.path().join("flat.toml").to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot be flattened"), "{err}");
    assert!(!dir.path().join("flat.toml").exists());
}

#[test]
fn a_shock_past_the_end_of_its_path_fails_saying_how_far_the_path_got() {
    // tests/data/m5_laffer.toml: a 95% output tax on labour services has an equilibrium far
    // from the benchmark (TAU ≈ −0.95); at 99.9% the path of equilibria stops near 98% of the
    // shock with TL closing, and the solve fails with that in its report.
    let o = run(&[
        "solve",
        "tests/data/m5_laffer.toml",
        "--all",
        "--format",
        "json",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let by_name = |name: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["scenario"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {v}"))
            .clone()
    };
    let t95 = by_name("t95");
    assert_eq!(t95["status"], "converged", "{t95}");
    let tau = t95["auxiliary"]["TAU"].as_f64().unwrap();
    assert!((tau + 0.952013).abs() < 1e-5, "{tau}");
    assert!(t95.get("path").is_none(), "{t95}");
    let t999 = by_name("t999");
    assert_ne!(t999["status"], "converged", "{t999}");
    let reached = t999["path"]["reached"].as_f64().unwrap();
    assert!((0.95..1.0).contains(&reached), "{reached}");
    let moved = t999["path"]["moved"].as_array().unwrap();
    assert!(
        moved
            .iter()
            .any(|m| m["variable"] == "TL" && m["ratio"].as_f64().unwrap() < 0.1),
        "{t999}"
    );
    assert!(err.contains("% of the shock, none beyond it"), "{err}");
}

#[test]
fn an_indexed_model_gives_the_numbers_of_its_plain_form() {
    // models/indexed/markusen_m22_sets.toml is Markusen M22 over sets (inline tables, a matrix
    // CSV, an alias, sums, entries over sets, tables of parameters set by scenarios).
    let json = |path: &str| -> serde_json::Value {
        let o = run(&["solve", path, "--all", "--format", "json"]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{path}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let plain = json("models/reference/markusen_m22.toml");
    let sets = json("models/indexed/markusen_m22_sets.toml");
    let renamed = [
        ("sectors", "X", "S[X]"),
        ("sectors", "Y", "S[Y]"),
        ("sectors", "W", "W"),
        ("commodities", "PX", "P[X]"),
        ("commodities", "PY", "P[Y]"),
        ("commodities", "PW", "PW"),
        ("commodities", "PL", "PF[L]"),
        ("commodities", "PK", "PF[K]"),
        ("consumers", "CONS", "CONS"),
    ];
    let (plain, sets) = (plain.as_array().unwrap(), sets.as_array().unwrap());
    assert_eq!(plain.len(), 4);
    assert_eq!(plain.len(), sets.len());
    for (a, b) in plain.iter().zip(sets) {
        assert_eq!(a["scenario"], b["scenario"]);
        assert_eq!(b["status"], "converged");
        for (kind, from, to) in renamed {
            let (u, v) = (
                a[kind][from].as_f64().unwrap(),
                b[kind][to].as_f64().unwrap(),
            );
            assert!(
                (u - v).abs() <= 1e-12 * u.abs().max(1.0),
                "{} {kind} {from}: {u} vs {to}: {v}",
                a["scenario"]
            );
        }
    }
}

#[test]
fn every_construct_of_indexed_models_gives_the_numbers_of_the_plain_form() {
    // tests/data/indexed/features_sets.toml: an ordered set and a subset, a block over the
    // subset beside a block keyed by a literal element, nests over a set (elasticities from
    // ord), entries over sets, sum, prod and card, targets over a set, a table of parameters
    // set over the subset by a scenario; features_plain.toml is the same economy by hand.
    let sets = "tests/data/indexed/features_sets.toml";
    let plain = "tests/data/indexed/features_plain.toml";
    let o = run(&["check", sets]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("4 passed, 0 failed"), "{out}");
    assert!(out.contains("benchmark price [g = b]"), "{out}");
    let (a, b) = (
        json(&["solve", plain, "--all", "--format", "json"]),
        json(&["solve", sets, "--all", "--format", "json"]),
    );
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    assert_eq!(a.len(), 2);
    for (a, b) in a.iter().zip(b) {
        assert_eq!(b["status"], "converged");
        for kind in ["sectors", "commodities", "consumers"] {
            let (u, v) = (a[kind].as_object().unwrap(), b[kind].as_object().unwrap());
            assert_eq!(
                u.keys().collect::<Vec<_>>(),
                v.keys().collect::<Vec<_>>(),
                "{kind}: the same names in the same order"
            );
            for (name, x) in u {
                let (x, y) = (x.as_f64().unwrap(), v[name].as_f64().unwrap());
                assert!(
                    (x - y).abs() <= 1e-12 * x.abs().max(1.0),
                    "{name}: {x} vs {y}"
                );
            }
        }
    }
    // The shock moves the economy: the taxed sectors shrink, the untaxed one grows.
    let shock = &b[1];
    assert!(shock["sectors"]["Y[a]"].as_f64().unwrap() < 0.99);
    assert!(shock["sectors"]["Y[c]"].as_f64().unwrap() > 1.01);
}

#[test]
fn auxiliaries_indicators_and_targets_over_sets_give_the_numbers_of_the_plain_form() {
    // tests/data/indexed/taxes_sets.toml: M5's economy with one endogenous tax scale per factor
    // (`[auxiliary."TAU[f]"]`, its tax rate `tx[f] * TAU[f]`), real revenue per factor as an
    // indicator over the set and targets over it. Its targets are the closed form (a scale that
    // keeps real revenue fixed undoes the change of rate: TAU[L] = 2 when tx[L] halves), and
    // every scenario's output is, byte for byte, that of taxes_plain.toml written by hand.
    let sets = "tests/data/indexed/taxes_sets.toml";
    let o = run(&["check", sets]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(out.contains("7 passed, 0 failed"), "{out}");
    assert!(out.contains("tax scale [f = K]"), "{out}");
    let solve = |file: &str| {
        let o = run(&["solve", file, "--all", "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
        text(&o).0
    };
    let over_sets = solve(sets);
    assert_eq!(over_sets, solve("tests/data/indexed/taxes_plain.toml"));
    let runs: serde_json::Value = serde_json::from_str(&over_sets).unwrap();
    let half = &runs[1];
    assert_eq!(half["scenario"], "labour_half");
    assert!((half["auxiliary"]["TAU[L]"].as_f64().unwrap() - 2.0).abs() < 1e-9);
    assert!((half["indicators"]["rev[K]"].as_f64().unwrap() - 20.0).abs() < 1e-9);
}

#[test]
fn csv_output_has_one_column_per_index() {
    // Tidy: an element's name is its base and one column per label, so pandas or R can pivot.
    let o = run(&[
        "solve",
        "tests/data/indexed/features_sets.toml",
        "--scenario",
        "shock",
        "--format",
        "csv",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("scenario,kind,name,index1,value,margin"));
    let find = |prefix: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row {prefix} in\n{out}"));
        line.split(',').nth(4).unwrap().parse().unwrap()
    };
    let v = json(&[
        "solve",
        "tests/data/indexed/features_sets.toml",
        "--scenario",
        "shock",
        "--format",
        "json",
    ]);
    assert_eq!(
        find("shock,commodity,PF,L,"),
        v["commodities"]["PF[L]"].as_f64().unwrap()
    );
    assert_eq!(
        find("shock,sector,W,,"),
        v["sectors"]["W"].as_f64().unwrap()
    );
    assert!(out.contains("\nshock,welfare_index,RA,,"), "{out}");
    // compare's CSV has the index columns too.
    let o = run(&[
        "compare",
        "tests/data/indexed/features_sets.toml",
        "--format",
        "csv",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(
        out.lines().next(),
        Some("scenario,status,kind,name,index1,description,unit,benchmark,value,change,pct_change")
    );
    let pf_k = out
        .lines()
        .find(|l| l.starts_with("shock,converged,price,PF,K,"))
        .unwrap_or_else(|| panic!("no row for PF[K] in\n{out}"));
    let value: f64 = pf_k.split(',').nth(8).unwrap().parse().unwrap();
    assert_eq!(value, v["commodities"]["PF[K]"].as_f64().unwrap());
}

#[test]
fn a_template_failing_for_many_elements_gives_20_messages_and_a_count() {
    // 30 elements, each naming an undeclared commodity: one message per element would bury
    // the rest of the file; 20 are given, then how many more.
    let labels: Vec<String> = (0..30).map(|k| format!("\"e{k}\"")).collect();
    let model = format!(
        r#"commodities = ["P[i]", "PL"]
[model]
name = "many"
[sets]
i = [{}]
[sectors."Y[i]"]
outputs = [{{ commodity = "Q[i]", quantity = 1 }}]
inputs = [{{ commodity = "PL", quantity = 1 }}]
[consumers.RA]
demands = [{{ commodity = "P[i]", over = "i", quantity = 1 }}]
endowments = [{{ commodity = "PL", quantity = 30 }}]
"#,
        labels.join(", ")
    );
    let (_d, path) = indexed_model(&model, &[]);
    let o = run(&["check", path.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let unknown = err
        .lines()
        .filter(|l| l.contains("unknown commodity 'Q[e"))
        .count();
    assert_eq!(unknown, 20, "{err}");
    assert!(
        err.contains("10 more problems here (other elements) not shown"),
        "{err}"
    );
}

/// Writes an indexed model (and its CSV files) into a temporary directory.
fn indexed_model(model: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let path = dir.path().join("model.toml");
    std::fs::write(&path, model).unwrap();
    (dir, path)
}

const SMALL_INDEXED: &str = r#"commodities = ["P[i]", "PL"]

[model]
name = "small"

[sets]
i = { file = "data/goods.csv", column = "i" }

[tables]
y0 = { index = ["i"], file = "data/goods.csv", value = "y0" }

[sectors."Y[i]"]
outputs = [{ commodity = "P[i]", quantity = "y0[i]" }]
inputs = [{ commodity = "PL", quantity = "y0[i]" }]

[consumers.RA]
demands = [{ commodity = "P[i]", over = "i", quantity = "y0[i]" }]
endowments = [{ commodity = "PL", quantity = "sum(i, y0[i])" }]
"#;

#[test]
fn indexed_model_errors_name_the_file_row_and_element() {
    let good = "i,y0\na,1\nb,2\n";
    let (_d, ok) = indexed_model(SMALL_INDEXED, &[("data/goods.csv", good)]);
    let o = run(&["check", ok.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);

    let cases: Vec<(String, &str, Vec<&str>)> = vec![
        // A duplicate element of a set read from a file: its file:row:column.
        (
            SMALL_INDEXED.to_string(),
            "i,y0\na,1\nb,2\na,3\n",
            vec!["model.toml:7:", "data/goods.csv:4:1: duplicate element 'a' in set i"],
        ),
        // A table's label that is not in its set.
        (
            SMALL_INDEXED.replace(
                "y0 = { index = [\"i\"], file = \"data/goods.csv\", value = \"y0\" }",
                "y0 = { index = [\"i\"], file = \"data/goods.csv\", value = \"y0\" }\nz = { index = [\"i\"], values = { a = 1, c = 2 } }",
            ),
            good,
            vec!["tables.z.values", "'c' is not an element of set i"],
        ),
        // A CSV row whose label is not an element (a long table read from another file).
        (
            SMALL_INDEXED.replace(
                "value = \"y0\" }",
                "value = \"y0\" }\nw = { index = [\"i\"], file = \"data/w.csv\" }",
            ),
            good,
            vec!["data/w.csv:3:1: 'zz' is not an element of set i (table w)"],
        ),
        // A template using an index that is not bound.
        (
            SMALL_INDEXED.replace(
                "inputs = [{ commodity = \"PL\", quantity = \"y0[i]\" }]",
                "inputs = [{ commodity = \"PL\", quantity = \"y0[k]\" }]",
            ),
            good,
            vec!["model.toml:14:", "'k' is not an element of set i", "expanding i = a"],
        ),
        // An element named in an expression that the table's set does not have.
        (
            SMALL_INDEXED.replace("\"sum(i, y0[i])\"", "\"y0[a] + y0[q]\""),
            good,
            vec!["model.toml:18:", "'q' is not an element of set i (index 1 of table y0)"],
        ),
        // An `over` naming no set.
        (
            SMALL_INDEXED.replace("over = \"i\"", "over = \"nope\""),
            good,
            vec!["consumers.RA.demands[0].over", "'nope' is not a set"],
        ),
        // An `over` of an index the block is already written over.
        (
            SMALL_INDEXED.replace(
                "inputs = [{ commodity = \"PL\", quantity = \"y0[i]\" }]",
                "inputs = [{ commodity = \"PL\", quantity = \"y0[i]\", over = \"i\" }]",
            ),
            good,
            vec!["sectors.Y[a].inputs[0].over", "index 'i' is already bound here"],
        ),
        // A duplicate element of a set written as a list.
        (
            SMALL_INDEXED.replace(
                "i = { file = \"data/goods.csv\", column = \"i\" }",
                "i = { file = \"data/goods.csv\", column = \"i\" }\nk = [\"x\", \"y\", \"x\"]",
            ),
            good,
            vec!["sets.k", "duplicate element 'x' in set k"],
        ),
        // A matrix file with a cell that is not a number and a row not in its set.
        (
            SMALL_INDEXED.replace(
                "value = \"y0\" }",
                "value = \"y0\" }\nm = { index = [\"i\", \"i\"], file = \"data/m.csv\", form = \"matrix\" }",
            ),
            good,
            vec![
                "data/m.csv:3:3: 'x' is not a finite number (table m)",
                "data/m.csv:4:1: 'q' is not an element of set i (table m)",
            ],
        ),
        // A name over a set that is not declared for some elements: one message per element,
        // the element named.
        (
            SMALL_INDEXED.replace(
                "outputs = [{ commodity = \"P[i]\", quantity = \"y0[i]\" }]",
                "outputs = [{ commodity = \"Q[i]\", quantity = \"y0[i]\" }]",
            ),
            good,
            vec![
                "sectors.Y[a].outputs[0].commodity: unknown commodity 'Q[a]'",
                "unknown commodity 'Q[b]' (declare it in `commodities`) (expanding i = b)",
            ],
        ),
    ];
    for (k, (model, csv, fragments)) in cases.iter().enumerate() {
        let (_d, path) = indexed_model(
            model,
            &[
                ("data/goods.csv", csv),
                ("data/w.csv", "i,value\na,1\nzz,2\n"),
                ("data/m.csv", "i,a,b\na,1,2\nb,3,x\nq,5,6\n"),
            ],
        );
        let o = run(&["check", path.to_str().unwrap()]);
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "case {k}: {err}");
        for f in fragments {
            assert!(err.contains(f), "case {k}: '{f}' not in:\n{err}");
        }
    }
}

#[test]
fn compare_plot_is_valid_svg_with_a_bar_series_per_consumer_and_a_heat_map_row_per_headline() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("cmp.svg");
    let o = run(&[
        "compare",
        "--scenarios",
        "token_tax_10,merger,compute_subsidy_20",
        "--plot",
        svg.to_str().unwrap(),
    ]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("the chart is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    // The legend names every series: households, the government and the rest of the world.
    for series in ["WO", "WX", "ELITE", "OWN", "GOV", "rest of world"] {
        assert!(
            texts.iter().any(|t| t == series),
            "no legend entry {series}"
        );
    }
    assert!(
        !texts.iter().any(|t| t == "ENTRE"),
        "accounting consumers are not a series"
    );
    // Each scenario is labelled twice (under the bars and under the heat map).
    for sc in ["token_tax_10", "merger", "compute_subsidy_20"] {
        assert_eq!(texts.iter().filter(|t| *t == sc).count(), 2, "{sc}");
    }
    // One heat-map row per headline price or activity, labelled with its description.
    for row in [
        "PPLT Tokens",
        "PCMP Compute services",
        "NF Frontier firms' fixed costs",
    ] {
        assert!(texts.iter().any(|t| t == row), "no heat-map row {row}");
    }
    assert!(
        !texts.iter().any(|t| t.starts_with("markup")),
        "indicators are not in the heat map"
    );
    // One bar per consumer and scenario in each series' colour (the first series: WO), plus
    // its legend swatch.
    let fills = |c: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(c))
            .count()
    };
    assert_eq!(fills("#0072B2"), 3 + 1);
    assert_eq!(fills("#D55E00"), 3 + 1);
}

#[test]
fn a_located_error_shows_its_source_line_with_a_caret_under_the_column() {
    let f = "tests/bad_inputs/06_toml_unknown_sector_field.toml";
    let o = run(&["check", f]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    let lines: Vec<&str> = err.lines().collect();
    // The tool-readable line first, then the source line and the caret.
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("{f}:24:1: sectors.Y: unknown field `elastcity`")))
        .expect(&err);
    assert_eq!(lines[at + 2], "24 | elastcity = 1");
    assert_eq!(lines[at + 3], "   | ^");
    // A column further right puts the caret under it.
    let o = run(&["check", "tests/bad_inputs/86_descriptions_of_a_sector.toml"]);
    let (_, err) = text(&o);
    assert!(err.contains("13 | gdp = \"PX\"\n   |       ^\n"), "{err}");
}

#[test]
fn small_fixes_flatten_to_stdout_duplicate_scenarios_and_a_closed_pipe() {
    // flatten -o - writes the plain model to standard output.
    let o = run(&[
        "flatten",
        "models/reference/mpsge_m1_two_by_two.toml",
        "-o",
        "-",
    ]);
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out.starts_with("# Flattened by tokencge") && out.contains("\n[sectors."),
        "{out}"
    );
    // A scenario named twice is an error; an unknown one lists the available ones.
    let o = run(&["compare", "--scenarios", "dst_3,dst_3,nope"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("scenario 'dst_3' is listed twice"), "{err}");
    assert!(
        err.contains("unknown scenario 'nope' (scenarios: benchmark, merger,"),
        "{err}"
    );
    // A reader that goes away (`tokencge | head -1`) ends the run quietly: no panic.
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tokencge"))
        .args(["compare", "--full"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(first.starts_with("token_economy"), "{first}");
}

/// `--linear-solver` is one of the solver options: every backend gives the same equilibrium of
/// the peers' economy (N = 100: `auto` runs GMRES there) to 1e-9, and an unknown backend is
/// bad input (exit 2) naming the values it takes.
#[test]
fn every_linear_solver_gives_the_same_solution_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("peer");
    let o = run(&[
        "generate",
        "--sectors",
        "100",
        "--households",
        "5",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let model = out.join("model.toml");
    let model = model.to_str().unwrap();
    let solve = |backend: &str| {
        json(&[
            "solve",
            model,
            "--scenario",
            "tax1",
            "--format",
            "json",
            "--linear-solver",
            backend,
        ])
    };
    let levels = |v: &serde_json::Value| -> Vec<f64> {
        assert_eq!(v["status"], "converged", "{v}");
        ["sectors", "commodities", "consumers"]
            .iter()
            .flat_map(|k| v[k].as_object().unwrap().values())
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let reference = levels(&solve("dense"));
    assert_eq!(reference.len(), 100 + 102 + 5);
    for backend in ["auto", "sparse", "krylov"] {
        let other = levels(&solve(backend));
        assert_eq!(other.len(), reference.len());
        for (a, b) in reference.iter().zip(&other) {
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                "{backend}: {a} vs {b}"
            );
        }
    }
    let o = run(&["solve", model, "--linear-solver", "lu"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("auto, dense, sparse, krylov"),
        "{}",
        text(&o).1
    );
}

#[test]
fn loading_in_parallel_gives_the_same_numbers_and_messages_whatever_the_thread_count() {
    // Sectors are compiled and matrix CSV rows parsed on rayon's threads: one thread or four,
    // the solution of the generated economy is the same to the byte, and so are the messages
    // for bad cells spread over the matrix (in file order).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["generate", "--sectors", "40", "--households", "3", "-o", d]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o).1);
    let model = dir.path().join("model.toml");
    let with_threads = |n: &str, args: &[&str]| {
        let o = bin()
            .env("RAYON_NUM_THREADS", n)
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), text(&o))
    };
    let m = model.to_str().unwrap();
    let solve = ["solve", m, "--scenario", "tax1", "--format", "json"];
    let (code, (one, _)) = with_threads("1", &solve);
    assert_eq!(code, Some(0));
    assert!(one.contains("\"Y[s39]\""), "{one}");
    assert_eq!(with_threads("4", &solve), (code, (one, String::new())));
    // Three bad cells, in rows 5, 17 and 33 of io.csv.
    let io = dir.path().join("data/io.csv");
    let csv = std::fs::read_to_string(&io).unwrap();
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    for row in [5, 17, 33] {
        let mut cells: Vec<&str> = lines[row - 1].split(',').collect();
        cells[row % 7 + 1] = "oops";
        lines[row - 1] = cells.join(",");
    }
    std::fs::write(&io, lines.join("\n") + "\n").unwrap();
    let check = ["check", m];
    let (code, (_, err)) = with_threads("1", &check);
    assert_eq!(code, Some(2), "{err}");
    let rows: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("'oops' is not a finite number"))
        .collect();
    assert_eq!(rows.len(), 3, "{err}");
    for (line, row) in rows.iter().zip([5, 17, 33]) {
        assert!(
            line.contains(&format!("data/io.csv:{row}:{}:", row % 7 + 2)),
            "{line}"
        );
    }
    assert_eq!(with_threads("4", &check), (code, (String::new(), err)));
}

/// `describe --format json` is the model's structure for programs: the same model the library
/// loads (names, parameter values, scenario settings), and its commodity incidence agrees with
/// its sectors' netputs.
#[test]
fn describe_json_lists_the_structure_as_the_library_loads_it() {
    let v = json(&["describe", "--format", "json"]);
    let model = tokencge::model::load(Path::new("models/token_economy.toml")).unwrap();
    assert_eq!(v["model"], model.name.as_str());
    assert_eq!(v["unit"], "bn USD 2025");
    assert_eq!(v["numeraire"], "PC");
    let names = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    };
    let sectors: Vec<String> = model.sectors.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names("sectors"), sectors);
    let consumers: Vec<String> = model.consumers.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names("consumers"), consumers);
    assert_eq!(
        v["commodities"].as_array().unwrap().len(),
        model.commodities.len()
    );
    // Every parameter with the value the library gives it.
    for (p, j) in model
        .parameters
        .iter()
        .zip(v["parameters"].as_array().unwrap())
    {
        assert_eq!(j["name"], p.name.as_str());
        assert_eq!(j["value"].as_f64().unwrap(), p.value, "{}", p.name);
    }
    let tax = v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "token_tax_10")
        .unwrap();
    assert_eq!(tax["parameters"], serde_json::json!({ "tok_tax": 0.1 }));
    assert_eq!(v["dynamic"]["periods"], 20);
    // Incidence: a sector makes a commodity exactly when one of its outputs is that commodity.
    for c in v["commodities"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        for (side, key) in [("output", "made_by"), ("input", "used_by")] {
            let mut expected: Vec<&str> = v["sectors"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| {
                    s["netputs"].as_array().unwrap().iter().any(|n| {
                        n["commodity"] == name && n["side"] == side && n["quantity"] != "0"
                    })
                })
                .map(|s| s["name"].as_str().unwrap())
                .collect();
            let mut listed: Vec<&str> = c[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            expected.sort();
            listed.sort();
            listed.dedup();
            assert_eq!(listed, expected, "{name} {key}");
        }
    }
    // CSV is not offered for a nested structure: clap says so (exit 2).
    assert_eq!(run(&["describe", "--format", "csv"]).status.code(), Some(2));
}

/// What `solve` printed before its reports were streamed: every report rendered at the end
/// (the JSON objects as one `serde_json` pretty array, the CSV rows under one header with the
/// index columns of all the reports, the tables one after the other). The reference the
/// streamed output must equal byte for byte.
fn reports_rendered_at_the_end(model: &Path, args: &[&str], format: &str) -> String {
    use tokencge::report;
    let (structure, _) = tokencge::build(model).unwrap();
    let m = structure.model();
    let indices: Vec<Option<usize>> = if args.contains(&"--all") {
        std::iter::once(None)
            .chain(m.static_scenarios().into_iter().map(Some))
            .collect()
    } else {
        let name = args[args.iter().position(|a| *a == "--scenario").unwrap() + 1];
        vec![m.scenario_index(name)]
    };
    let settings = tokencge::solve::NewtonSettings::default();
    let reports: Vec<report::SolutionReport> =
        tokencge::batch::solve_all(&structure, &indices, &settings, &|| {})
            .into_iter()
            .map(|o| match o {
                Ok(s) => s.report,
                Err(u) => u.report(&structure),
            })
            .collect();
    match format {
        "json" => {
            let mut all: Vec<serde_json::Value> = reports.iter().map(|r| r.to_json()).collect();
            let v = if all.len() == 1 {
                all.pop().unwrap()
            } else {
                serde_json::Value::Array(all)
            };
            serde_json::to_string_pretty(&v).unwrap() + "\n"
        }
        "csv" => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let width = report::index_width(&reports);
            w.write_record(report::csv_header(width)).unwrap();
            for r in &reports {
                r.csv_rows(&mut w, width).unwrap();
            }
            String::from_utf8(w.into_inner().unwrap()).unwrap()
        }
        _ => tokencge::bundle::solve_tables(&reports),
    }
}

#[test]
fn solve_all_streams_the_bytes_of_rendering_every_report_at_the_end_on_any_thread_count() {
    // Reports are written in order as they are solved (never all held): the output must be
    // what rendering them all at the end gave, on one thread or two. The flagship has indexed
    // names (index columns in the CSV); the plain reference model has none; a batch with a
    // scenario that cannot be set up, and that scenario alone (no report with names: a CSV
    // without index columns), exercise the rows that wait for the header.
    let (_dir, adv) = flagship_with_scenario("sub_cmp = 1.0");
    let flagship = root().join("models/token_economy.toml");
    let plain = root().join("models/reference/mpsge_m1_two_by_two.toml");
    let cases: [(&Path, &[&str]); 4] = [
        (&flagship, &["--all"]),
        (&plain, &["--all"]),
        (&adv, &["--all"]),
        (&adv, &["--scenario", "adv"]),
    ];
    for (model, args) in cases {
        for format in ["json", "csv", "table"] {
            let expected = reports_rendered_at_the_end(model, args, format);
            assert!(expected.lines().count() >= 2, "{expected}");
            for threads in ["1", "2"] {
                let m = model.to_str().unwrap();
                let o = bin()
                    .args(["solve", m, "--format", format])
                    .args(args)
                    .env("RAYON_NUM_THREADS", threads)
                    .output()
                    .unwrap();
                let (out, err) = text(&o);
                assert!(matches!(o.status.code(), Some(0 | 1)), "{err}");
                assert!(
                    out == expected,
                    "{} {args:?} --format {format} on {threads} thread(s) differs from the reports rendered at the end",
                    model.display()
                );
            }
        }
    }
    // --out: the bundle's results are the same bytes as the printed JSON and CSV.
    let dir = tempfile::tempdir().unwrap();
    let m = adv.to_str().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = run(&["solve", m, "--all", "--format", "csv", "--out", out]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("results.csv")).unwrap(),
        reports_rendered_at_the_end(&adv, &["--all"], "csv")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("results.json")).unwrap(),
        reports_rendered_at_the_end(&adv, &["--all"], "json")
    );
}
