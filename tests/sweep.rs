//! Drives the real `tokencge` binary through parameter overrides (`--set`), sensitivity sweeps
//! (`sweep`, shards, `merge`, resumption, plots), run bundles (`--out`, `report`) and logging.

use std::path::{Path, PathBuf};

mod common;
use common::{run, text};

/// Runs and parses JSON from stdout; the exit code must be 0.
fn json(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{args:?}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The value of `section,name` in the column of a `compare --format csv` output.
fn compare_cell(csv: &str, section: &str, name: &str, column: &str) -> f64 {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == column).unwrap();
    let row = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|c| c[0] == section && c[1] == name)
        .unwrap_or_else(|| panic!("no row {section},{name}"));
    row[j].parse().unwrap()
}

/// A copy of the flagship model and its data in a temporary directory, the model edited.
fn flagship_copy(edit: impl Fn(&str) -> String) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = common::root();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let model = dir.path().join("models/token_economy.toml");
    let text = std::fs::read_to_string(root.join("models/token_economy.toml")).unwrap();
    std::fs::write(&model, edit(&text)).unwrap();
    std::fs::copy(
        root.join("data/token_economy_sam.csv"),
        dir.path().join("data/token_economy_sam.csv"),
    )
    .unwrap();
    (dir, model)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ------------------------------------------------------------------------------ --set

#[test]
fn set_reproduces_the_issues_token_efficiency_spread_against_the_same_benchmark() {
    // σ(tokens, labour) from 0.5 to 3: workers' EV under tenfold token efficiency from +49.8 to
    // −28.2 bn and the compute price from −4 % to +44 % (issue 8). The benchmark column carries
    // the same override, so its changes are zero.
    let mut seen = Vec::new();
    for sigma in ["0.5", "3"] {
        let o = run(&[
            "compare",
            "--scenarios",
            "token_efficiency_10x",
            "--set",
            &format!("esub_tok_lab={sigma}"),
            "--format",
            "csv",
        ]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert_eq!(compare_cell(&out, "price", "PCMP", "benchmark"), 0.0);
        seen.push((
            compare_cell(&out, "welfare", "EV WORK", "token_efficiency_10x"),
            compare_cell(&out, "price", "PCMP", "token_efficiency_10x"),
        ));
    }
    assert!((seen[0].0 - 49.757).abs() < 0.01, "{seen:?}");
    assert!((seen[0].1 - -3.826).abs() < 0.01, "{seen:?}");
    assert!((seen[1].0 - -28.201).abs() < 0.01, "{seen:?}");
    assert!((seen[1].1 - 43.467).abs() < 0.01, "{seen:?}");
}

#[test]
fn set_equals_writing_the_override_into_the_scenario() {
    // --set on top of a scenario's own parameters is the scenario with that value written in,
    // to the last bit; and a later --set of the same name wins.
    let (_dir, model) = flagship_copy(|t| {
        t.replacen(
            "parameters = { tok_tax = 0.10 }",
            "parameters = { tok_tax = 0.10, esub_tiers = 6 }",
            1,
        )
    });
    let written = json(&[
        "solve",
        p(&model),
        "--scenario",
        "token_tax_10",
        "--format",
        "json",
    ]);
    let set = json(&[
        "solve",
        "--scenario",
        "token_tax_10",
        "--set",
        "esub_tiers=2",
        "--set",
        "esub_tiers=6",
        "--format",
        "json",
    ]);
    for key in [
        "sectors",
        "commodities",
        "consumers",
        "welfare",
        "indicators",
    ] {
        assert_eq!(written[key], set[key], "{key}");
    }
    // A --set of a parameter the scenario sets overrides the scenario's value.
    let tax3 = json(&["solve", "--scenario", "token_tax_3", "--format", "json"]);
    let reset = json(&[
        "solve",
        "--scenario",
        "token_tax_10",
        "--set",
        "tok_tax=0.03",
        "--format",
        "json",
    ]);
    assert_eq!(tax3["commodities"], reset["commodities"]);
}

#[test]
fn set_re_evaluates_derived_parameters() {
    // for_tot = row_own + hw_for + ai_for + x_tot is the rest of the world's income at the
    // benchmark (PFX = 1): 20 more of ai_for is 20 more income.
    let base = json(&["solve", "--format", "json"]);
    let more = json(&["solve", "--set", "ai_for=40", "--format", "json"]);
    let income = |v: &serde_json::Value| v["consumers"]["FOR"].as_f64().unwrap();
    assert!((income(&more) - income(&base) - 20.0).abs() < 1e-9);
    // Overriding the derived parameter itself keeps the number given: FOR's endowment is
    // for_tot of PFX.
    let fixed = json(&[
        "solve",
        "--set",
        "ai_for=40",
        "--set",
        "for_tot=25000",
        "--format",
        "json",
    ]);
    let pfx = fixed["commodities"]["PFX"].as_f64().unwrap();
    assert!((income(&fixed) - 25000.0 * pfx).abs() < 1e-6, "{fixed}");
}

#[test]
fn bad_set_arguments_are_all_reported_with_exit_2() {
    for cmd in [&["solve"][..], &["compare"], &["check"]] {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend([
            "--set",
            "esub_tk_lab=3",
            "--set",
            "esub_kl=abc",
            "--set",
            "novalue",
            "--set",
            "esub_kl=inf",
        ]);
        let o = run(&args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(out.is_empty(), "{out}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 4, "{err}");
        assert!(lines[0].starts_with("models/token_economy.toml: --set esub_tk_lab=3: 'esub_tk_lab' is not a parameter of the model (nearest: esub_tok_lab"), "{err}");
        assert!(lines[1].contains("--set esub_kl=abc: 'abc' is not a finite number"));
        assert!(lines[2].contains("--set novalue: expected NAME=VALUE"));
        assert!(lines[3].contains("--set esub_kl=inf: 'inf' is not a finite number"));
    }
}

#[test]
fn check_with_set_evaluates_the_targets_under_the_override() {
    // At σ(tokens, labour) = 0.5 token demand is inelastic: the flagship's target that tenfold
    // efficiency raises the compute price fails, and check says so with exit 1.
    let o = run(&["check", "--set", "esub_tok_lab=0.5"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("FAIL  10x efficiency: the compute price rises"),
        "{out}"
    );
    assert!(out.contains("benchmark replicates"), "{out}");
}

// ------------------------------------------------------------------------------ logging

#[test]
fn verbose_logs_one_line_per_scenario_and_very_verbose_names_the_scenario_on_each_iteration() {
    let o = run(&["-v", "compare", "--scenarios", "token_tax_3,dst_3"]);
    let err = text(&o).1;
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains('\u{1b}'), "colour codes on a pipe: {err:?}");
    let solved: Vec<&str> = err.lines().filter(|l| l.contains(" solved ")).collect();
    assert_eq!(solved.len(), 3, "{err}");
    for name in ["benchmark", "token_tax_3", "dst_3"] {
        let line = solved
            .iter()
            .find(|l| l.contains(&format!("scenario=\"{name}\"")))
            .unwrap_or_else(|| panic!("no line for {name}: {err}"));
        for field in ["status=\"converged\"", "iterations=", "seconds="] {
            assert!(line.contains(field), "{line}");
        }
    }
    assert!(
        !err.contains("iteration="),
        "-v shows no Newton iterations: {err}"
    );

    let o = run(&["-vv", "solve", "--scenario", "token_tax_10"]);
    let err = text(&o).1;
    assert!(!err.contains('\u{1b}'), "{err:?}");
    let iterations: Vec<&str> = err.lines().filter(|l| l.contains("iteration=")).collect();
    assert!(iterations.len() >= 2, "{err}");
    for l in iterations {
        assert!(l.contains("scenario{name=\"token_tax_10\"}"), "{l}");
    }
}
