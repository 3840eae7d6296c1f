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

/// A number of `compare --format csv` (long records): the `column` of the record of
/// (scenario, kind, name).
fn compare_cell(csv_text: &str, scenario: &str, kind: &str, name: &str, column: &str) -> f64 {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    let head = r.headers().unwrap().clone();
    let j = head.iter().position(|h| h == column).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        if &rec[0] == scenario && &rec[2] == kind && &rec[3] == name {
            return rec[j].parse().unwrap();
        }
    }
    panic!("no record {scenario},{kind},{name}")
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
    // σ(tokens, labour) from 0.5 to 3 turns exposed workers' EV under tenfold token efficiency
    // from a gain into a loss and the compute price from a fall into a rise (issue 8). The
    // comparison's benchmark carries the same override: its numbers are those of
    // `solve --set` for the benchmark and the scenario.
    let mut seen = Vec::new();
    for sigma in ["0.5", "3"] {
        let set = format!("esub_tok_lab={sigma}");
        let o = run(&[
            "compare",
            "--scenarios",
            "token_efficiency_10x",
            "--set",
            &set,
            "--format",
            "csv",
        ]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{err}");
        let scen = json(&[
            "solve",
            "--scenario",
            "token_efficiency_10x",
            "--set",
            &set,
            "--format",
            "json",
        ]);
        let bench = json(&["solve", "--set", &set, "--format", "json"]);
        let ev = compare_cell(&out, "token_efficiency_10x", "ev", "WX", "value");
        let pcmp = compare_cell(&out, "token_efficiency_10x", "price", "PCMP", "value");
        assert_eq!(ev, scen["welfare"]["WX"]["ev"].as_f64().unwrap());
        assert_eq!(pcmp, scen["commodities"]["PCMP"].as_f64().unwrap());
        assert_eq!(
            compare_cell(&out, "token_efficiency_10x", "price", "PCMP", "benchmark"),
            bench["commodities"]["PCMP"].as_f64().unwrap()
        );
        seen.push((ev, pcmp));
    }
    assert!(seen[0].0 > 10.0 && seen[1].0 < -10.0, "{seen:?}");
    assert!(seen[0].1 < 1.0 && seen[1].1 > 1.3, "{seen:?}");
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
fn ev_under_set_is_measured_from_the_benchmark_with_the_same_set() {
    // Labour-supply elasticities size the workers' leisure endowments, so they move benchmark
    // incomes: under --set, a scenario's EV must be measured from the benchmark with the same
    // override — exactly what editing the central values in the file gives. (Measured from the
    // file's benchmark instead, the token tax's EV of other workers was +1,924 bn at
    // lsup_comp = 0.4 against -0.22 at the central value.)
    let (_dir, model) = flagship_copy(|t| {
        t.replacen("lsup_comp = 0.3 ", "lsup_comp = 0.45 ", 1)
            .replacen("lsup_unc = 0.15 ", "lsup_unc = 0.2 ", 1)
    });
    let args = ["--scenario", "token_tax_10", "--format", "json"];
    let edited = json(&[&["solve", p(&model)][..], &args].concat());
    let set = json(
        &[
            &["solve", "--set", "lsup_comp=0.45", "--set", "lsup_unc=0.2"][..],
            &args,
        ]
        .concat(),
    );
    let central = json(&[&["solve"][..], &args].concat());
    let ev = |v: &serde_json::Value, h: &str| v["welfare"][h]["ev"].as_f64().unwrap();
    for h in ["WO", "WX", "ELITE", "OWN", "GOV", "FOR"] {
        let (a, b) = (ev(&edited, h), ev(&set, h));
        assert!(
            (a - b).abs() <= 1e-9 * (1.0 + a.abs()),
            "{h}: file {a} vs --set {b}"
        );
        // The tax costs other workers a fraction of a billion whatever the elasticities.
        assert!(
            (a - ev(&central, h)).abs() < 0.5,
            "{h}: {a} vs central {}",
            ev(&central, h)
        );
    }
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
        out.lines().any(
            |l| l.starts_with("FAIL ") && l.contains("10x efficiency: the compute price rises")
        ),
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

// ------------------------------------------------------------------------------ sweep

/// Runs tokencge; the exit code must be `code`. Returns stdout and stderr.
fn ok(args: &[&str], code: i32) -> (String, String) {
    let o = run(args);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "{args:?}\n{out}\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    (out, err)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `draws.csv` as (header, rows of cells).
fn draws_csv(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = read(&dir.join("draws.csv"));
    let mut lines = text.lines();
    let head = lines.next().unwrap().split(',').map(String::from).collect();
    let rows = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    (head, rows)
}

#[test]
fn sweep_json_has_the_issues_shape_and_its_statistics_are_those_of_draws_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let (json_text, _) = ok(
        &[
            "sweep",
            "--scenario",
            "compute_subsidy_20",
            "--draws",
            "120",
            "--format",
            "json",
            "--out",
            p(&out),
        ],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(
        &keys[..6],
        &[
            "model",
            "scenario",
            "draws",
            "solved",
            "failed",
            "quantities"
        ]
    );
    assert_eq!(v["draws"], 120);
    assert_eq!(v["solved"], 120);
    assert_eq!(v["failed"], serde_json::json!([]));
    let q = v["quantities"].as_object().unwrap();
    assert_eq!(q.len(), 23);
    let stats: Vec<&str> = q["PCMP"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        &stats[..7],
        &[
            "central",
            "mean",
            "sd",
            "q05",
            "q50",
            "q95",
            "sign_flip_share"
        ]
    );
    // The file's JSON is what was printed.
    assert_eq!(read(&out.join("sweep.json")), json_text);
    // Mean, sd, type-7 quantiles and sign flips recomputed from draws.csv.
    let (head, rows) = draws_csv(&out);
    assert_eq!(rows.len(), 120);
    assert_eq!(head[0], "draw");
    let status = head.iter().position(|h| h == "status").unwrap();
    assert_eq!(status, 40, "draw, 39 varied parameters, status");
    for name in ["ev(WX)", "PCMP", "gdp_real"] {
        let j = head.iter().position(|h| h == name).unwrap();
        let mut x: Vec<f64> = rows.iter().map(|r| r[j].parse().unwrap()).collect();
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let sd = (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)).sqrt();
        x.sort_by(f64::total_cmp);
        let quantile = |p: f64| {
            let h = (x.len() - 1) as f64 * p;
            let lo = h.floor() as usize;
            x[lo] + (h - lo as f64) * (x[(lo + 1).min(x.len() - 1)] - x[lo])
        };
        let s = &q[name];
        let close = |a: f64, b: &serde_json::Value| {
            (a - b.as_f64().unwrap()).abs() <= 1e-12 * a.abs().max(1.0)
        };
        assert!(close(mean, &s["mean"]), "{name}");
        assert!(close(sd, &s["sd"]), "{name}");
        assert!(close(quantile(0.05), &s["q05"]), "{name}");
        assert!(close(quantile(0.5), &s["q50"]), "{name}");
        assert!(close(quantile(0.95), &s["q95"]), "{name}");
        let central = s["central"].as_f64().unwrap();
        let flips = x
            .iter()
            .filter(|v| v.abs() > 1e-6 && v.signum() != central.signum())
            .count();
        assert!(close(flips as f64 / n, &s["sign_flip_share"]), "{name}");
    }
    // The subsidy's known spread: other workers' EV changes sign within the facts' ranges.
    let work = &q["ev(WO)"];
    assert!(
        work["q05"].as_f64().unwrap() < 0.0 && work["q95"].as_f64().unwrap() > 0.0,
        "{work}"
    );
}

#[test]
fn a_sweep_gives_the_same_bytes_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = dir.path().join(format!("t{threads}"));
        let (json, _) = ok(
            &[
                "sweep",
                "--scenario",
                "token_tax_10",
                "--draws",
                "300",
                "--seed",
                "7",
                "--threads",
                threads,
                "--format",
                "json",
                "--out",
                p(&out),
            ],
            0,
        );
        outputs.push((json, read(&out.join("draws.csv"))));
    }
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], outputs[2]);
    // Another seed, other draws.
    let (json, _) = ok(
        &[
            "sweep",
            "--scenario",
            "token_tax_10",
            "--draws",
            "300",
            "--seed",
            "8",
            "--format",
            "json",
        ],
        0,
    );
    assert_ne!(json, outputs[0].0);
}

#[test]
fn a_draw_re_solved_with_solve_set_reproduces_its_row_exactly() {
    // By default bitwise; with --warm-start (every draw from the central equilibrium) to the
    // solver's accuracy — where the draw has one equilibrium: tenfold token efficiency has two
    // in some draws of the flagship's second edition (Cournot entry: a concentrated one found
    // from the benchmark, a competitive one from the central case; docs/token_economy.md
    // section 10), so the warm start is checked on the token tax.
    re_solve_rows("token_efficiency_10x", false);
    re_solve_rows("token_tax_10", true);
}

fn re_solve_rows(scenario: &str, warm: bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let mut args = vec![
        "sweep",
        "--scenario",
        scenario,
        "--draws",
        "12",
        "--out",
        p(&out),
    ];
    if warm {
        args.push("--warm-start");
    }
    ok(&args, 0);
    let summary: serde_json::Value = serde_json::from_str(&read(&out.join("sweep.json"))).unwrap();
    let (head, rows) = draws_csv(&out);
    let status = head.iter().position(|h| h == "status").unwrap();
    for row in [&rows[0], &rows[5], &rows[11]] {
        assert_eq!(row[status], "converged");
        let mut sets = Vec::new();
        for j in 1..status {
            sets.push("--set".to_string());
            sets.push(format!("{}={}", head[j], row[j]));
        }
        let solve = |scenario: Option<&str>| {
            let mut args: Vec<String> = vec!["solve".into(), "--format".into(), "json".into()];
            if let Some(s) = scenario {
                args.extend(["--scenario".to_string(), s.to_string()]);
            }
            args.extend(sets.iter().cloned());
            let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            serde_json::from_str::<serde_json::Value>(&ok(&a, 0).0).unwrap()
        };
        let (base, new) = (solve(None), solve(Some(scenario)));
        for j in status + 1..head.len() {
            let name = head[j].as_str();
            let unit = summary["quantities"][name]["unit"].as_str().unwrap();
            let level = |v: &serde_json::Value| -> f64 {
                for section in [
                    "sectors",
                    "commodities",
                    "consumers",
                    "auxiliary",
                    "indicators",
                ] {
                    if let Some(x) = v[section][name].as_f64() {
                        return x;
                    }
                }
                panic!("{name} not in the solve's JSON")
            };
            let expected =
                if let Some(h) = name.strip_prefix("ev(").and_then(|r| r.strip_suffix(')')) {
                    new["welfare"][h]["ev"].as_f64().unwrap()
                } else if unit == "%" {
                    100.0 * (level(&new) / level(&base) - 1.0)
                } else {
                    level(&new) - level(&base)
                };
            let got: f64 = row[j].parse().unwrap();
            if warm {
                assert!(
                    (got - expected).abs() <= 1e-5 * expected.abs().max(1.0),
                    "draw {} {name}: {got} vs {expected}",
                    row[0]
                );
            } else {
                assert_eq!(
                    got.to_bits(),
                    expected.to_bits(),
                    "draw {} {name}: {got} vs {expected}",
                    row[0]
                );
            }
        }
    }
}

#[test]
fn shards_merge_to_the_unsharded_result_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "sweep",
            "--scenario",
            "token_tax_10",
            "--draws",
            "620",
            "--seed",
            "11",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let call = |a: Vec<String>, code: i32| {
        let a: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
        ok(&a, code)
    };
    let (table, _) = call(args(&["--out", p(&whole)]), 0);
    let mut shards = Vec::new();
    for k in 1..=3 {
        let d = dir.path().join(format!("shard{k}"));
        let (out, err) = call(args(&["--shard", &format!("{k}/3"), "--out", p(&d)]), 0);
        assert!(out.is_empty(), "a shard prints no result: {out}");
        assert!(err.contains(&format!("shard {k}/3")), "{err}");
        assert!(!d.join("draws.csv").exists());
        shards.push(d);
    }
    // Merging only two of three is incomplete: exit 2 naming what is missing.
    let merged = dir.path().join("merged");
    let (_, err) = ok(
        &["merge", p(&shards[0]), p(&shards[2]), "--out", p(&merged)],
        2,
    );
    assert!(
        err.contains("207 of 620 draws are missing (206..413)"),
        "{err}"
    );
    let (merged_table, _) = ok(
        &[
            "merge",
            p(&shards[2]),
            p(&shards[0]),
            p(&shards[1]),
            "--out",
            p(&merged),
        ],
        0,
    );
    assert_eq!(merged_table, table);
    for f in ["draws.csv", "sweep.json", "sweep.csv", "report.json"] {
        assert!(read(&merged.join(f)) == read(&whole.join(f)), "{f} differs");
    }
    // A shard of another sweep does not merge.
    let other = dir.path().join("other");
    ok(
        &[
            "sweep",
            "--scenario",
            "token_tax_10",
            "--draws",
            "620",
            "--seed",
            "12",
            "--shard",
            "2/3",
            "--out",
            p(&other),
        ],
        0,
    );
    let (_, err) = ok(
        &[
            "merge",
            p(&shards[0]),
            p(&other),
            p(&shards[2]),
            "--out",
            p(&merged),
        ],
        2,
    );
    assert!(err.contains("holds the draws of another sweep"), "{err}");
}

#[test]
fn an_interrupted_sweep_resumes_without_solving_its_finished_draws_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let args = [
        "-v",
        "sweep",
        "--scenario",
        "dst_3",
        "--draws",
        "600",
        "--out",
        p(&out),
    ];
    let (first, err) = ok(&args, 0);
    assert_eq!(
        err.lines().filter(|l| l.contains("sweep batch")).count(),
        3,
        "{err}"
    );
    let draws = read(&out.join("draws.csv"));
    // The interruption: the last batch and the final files were never written.
    std::fs::remove_file(out.join("batches/draws-0000000500-0000000599.csv")).unwrap();
    for f in ["draws.csv", "sweep.json"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    let (again, err) = ok(&args, 0);
    assert!(
        err.contains("500 draw(s) of 0..600 already solved"),
        "{err}"
    );
    let batches: Vec<&str> = err.lines().filter(|l| l.contains("sweep batch")).collect();
    assert_eq!(batches.len(), 1, "{err}");
    assert!(
        batches[0].contains("first=500") && batches[0].contains("last=599"),
        "{err}"
    );
    assert_eq!(again, first);
    assert_eq!(read(&out.join("draws.csv")), draws);
    // The same directory with another seed: refused, nothing mixed.
    let (_, err) = ok(
        &[
            "sweep",
            "--scenario",
            "dst_3",
            "--draws",
            "600",
            "--seed",
            "3",
            "--out",
            p(&out),
        ],
        2,
    );
    assert!(err.contains("holds the draws of another sweep"), "{err}");
}

#[test]
fn sweep_plot_is_valid_svg_with_the_fans_and_the_tornado() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("sweep.svg");
    ok(
        &[
            "sweep",
            "--scenario",
            "token_efficiency_10x",
            "--draws",
            "60",
            "--plot",
            p(&svg),
            "--tornado",
            "PCMP",
        ],
        0,
    );
    let text = read(&svg);
    let doc = roxmltree::Document::parse(&text).expect("the chart is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect();
    let has = |s: &str| texts.iter().any(|t| t.contains(s));
    for series in [
        "5-95 % band",
        "median",
        "central case",
        "parameter at its 5 % quantile",
        "parameter at its 95 % quantile",
    ] {
        // Once per fan panel (two) or once in the tornado's legend.
        assert!(has(series), "no legend entry '{series}'");
    }
    assert!(has("tornado of PCMP"), "{texts:?}");
    for quantity in ["ev(WX)", "PCMP", "PPLT", "gdp_real", "welfare_beyond_gdp"] {
        assert!(
            texts.iter().any(|t| t.starts_with(quantity)),
            "no row for {quantity}"
        );
    }
    for parameter in ["esub_tok_lab", "esub_tiers", "esub_kl", "esub_hh_ai"] {
        assert!(
            texts.iter().any(|t| t.starts_with(parameter)),
            "no tornado bar for {parameter}"
        );
    }
    // One band per quantity: 23 rectangles in the band colour (plus the legend's two).
    let bands = doc
        .descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("#A6CEE3"))
        .count();
    assert_eq!(bands, 23 + 2, "{bands}");
    // An unknown tornado quantity is bad input.
    let (_, err) = ok(
        &[
            "sweep",
            "--scenario",
            "token_tax_10",
            "--draws",
            "5",
            "--plot",
            p(&svg),
            "--tornado",
            "nope",
        ],
        2,
    );
    assert!(
        err.contains("--tornado nope: not a reported quantity"),
        "{err}"
    );
}

#[test]
fn failed_draws_are_listed_with_their_parameters_and_never_dropped() {
    // A grid that puts half the draws at a negative elasticity: those cannot be calibrated.
    let (_dir, model) = flagship_copy(|t| {
        t.replacen(
            "esub_kl = { distribution = \"triangular\", min = 0.4, max = 1.0 }",
            "esub_kl = { distribution = \"grid\", values = [0.7, -1] }",
            1,
        )
    });
    let (out, err) = ok(
        &[
            "sweep",
            p(&model),
            "--scenario",
            "token_tax_10",
            "--draws",
            "40",
            "--format",
            "json",
        ],
        1,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let failed = v["failed"].as_array().unwrap();
    assert!(!failed.is_empty());
    assert_eq!(v["solved"].as_u64().unwrap() + failed.len() as u64, 40);
    for f in failed {
        assert_eq!(f["parameters"]["esub_kl"], -1.0, "{f}");
        assert_eq!(f["status"], "benchmark_evaluation_failed", "{f}");
        // every parameter of [sensitivity]: 12 of the facts file, 27 judgments
        assert_eq!(f["parameters"].as_object().unwrap().len(), 39);
        let d = f["draw"].as_u64().unwrap();
        assert!(err.contains(&format!("draw {d} not solved")), "{err}");
    }
}

#[test]
fn sweep_input_errors_are_exit_2() {
    let (_, err) = ok(
        &[
            "sweep",
            "models/reference/mpsge_m1_two_by_two.toml",
            "--scenario",
            "pl_numeraire",
        ],
        2,
    );
    assert!(err.contains("has no [sensitivity] section"), "{err}");
    let (_, err) = ok(&["sweep", "--scenario", "nope"], 2);
    assert!(err.contains("unknown scenario 'nope'"), "{err}");
    let (_, err) = ok(&["sweep", "--scenario", "dst_3", "--shard", "1/2"], 2);
    assert!(err.contains("give --out DIR"), "{err}");
    let (_, err) = ok(
        &[
            "sweep",
            "--scenario",
            "dst_3",
            "--shard",
            "3/2",
            "--out",
            "/tmp/x",
        ],
        2,
    );
    assert!(err.contains("--shard 3/2: expected K/N"), "{err}");
    let (_, err) = ok(&["sweep", "--scenario", "dst_3", "--set", "esub_kl=0.5"], 2);
    assert!(
        err.contains("'esub_kl' is varied by [sensitivity]"),
        "{err}"
    );
    let (_, err) = ok(&["sweep", "--scenario", "dst_3", "--draws", "0"], 2);
    assert!(err.contains("--draws must be at least 1"), "{err}");
}

#[test]
fn a_scenario_that_sets_a_varied_parameter_holds_it() {
    // token_efficiency_10x_inelastic sets esub_tok_lab, esub_tiers, esub_hh_ai and
    // esub_arm_us_cn: they are held at its values, the other 35 vary.
    let (out, _) = ok(
        &[
            "sweep",
            "--scenario",
            "token_efficiency_10x_inelastic",
            "--draws",
            "10",
            "--format",
            "json",
        ],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["held"],
        serde_json::json!(["esub_tok_lab", "esub_tiers", "esub_arm_us_cn", "esub_hh_ai"])
    );
    assert_eq!(v["varied"].as_array().unwrap().len(), 35);
}

// ------------------------------------------------------------------------------ bundles

#[test]
fn report_re_renders_every_bundles_tables_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<(&str, Vec<&str>)> = vec![
        ("solve", vec!["solve", "--all"]),
        (
            "one",
            vec![
                "solve",
                "--scenario",
                "token_tax_10",
                "--set",
                "esub_kl=0.5",
            ],
        ),
        (
            "compare",
            vec!["compare", "--scenarios", "token_tax_10,dst_3"],
        ),
        (
            "sweep",
            vec!["sweep", "--scenario", "token_tax_10", "--draws", "30"],
        ),
        (
            "failed",
            vec!["solve", "tests/data/m5_laffer.toml", "--all"],
        ),
    ];
    for (name, args) in runs {
        let out = dir.path().join(name);
        let mut a = args.clone();
        a.extend(["--out", p(&out)]);
        let o = run(&a);
        let printed = text(&o).0;
        assert!(matches!(o.status.code(), Some(0 | 1)), "{name}");
        let (again, _) = ok(&["report", p(&out)], 0);
        assert_eq!(again, printed, "{name}");
        let run_json: serde_json::Value =
            serde_json::from_str(&read(&out.join("run.json"))).unwrap();
        assert_eq!(run_json["tokencge"], env!("CARGO_PKG_VERSION"));
        assert!(run_json.get("git_commit").is_some());
        assert_eq!(run_json["settings"]["tolerance"], 1e-9);
        let inputs = run_json["inputs"].as_array().unwrap();
        for i in inputs {
            use sha2::Digest;
            let bytes = std::fs::read(common::root().join(i["path"].as_str().unwrap())).unwrap();
            let hex: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(i["sha256"], hex.as_str(), "{name}");
        }
        let scenarios = run_json["scenarios"].as_array().unwrap();
        assert!(!scenarios.is_empty(), "{name}");
        for s in scenarios {
            for key in ["iterations", "residual", "verified", "status"] {
                assert!(s.get(key).is_some(), "{name}: {s}");
            }
        }
        if name != "sweep" {
            assert!(out.join("results.json").exists() && out.join("results.csv").exists());
        }
    }
    let one: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join("one/run.json"))).unwrap();
    assert_eq!(one["overrides"]["esub_kl"], 0.5);
    assert_eq!(
        one["inputs"].as_array().unwrap().len(),
        2,
        "the model and its SAM"
    );
    let (_, err) = ok(&["report", "/nonexistent/dir"], 2);
    assert!(err.contains("report.json: cannot read"), "{err}");
}

#[test]
fn sensitivity_keys_over_sets_vary_every_element_as_if_named_one_by_one() {
    // `"tax[g]"` in [sensitivity.parameters], `tax[tr]` in a group and `Y[tr]` in `report`
    // are one entry per element: the sweep of the model over sets gives the bytes of the same
    // sweep of the economy written out by hand with every element named.
    let root = common::root();
    let dir = tempfile::tempdir().unwrap();
    let scenario = "\n[scenarios.hold_c]\nparameters = { \"tax[c]\" = 0.05 }\n";
    let sweep_of = |file: &str, section: &str| -> (String, Vec<Vec<String>>) {
        let text = read(&root.join("tests/data/indexed").join(file));
        let text = text
            .replace("name = \"features_plain\"", "name = \"features\"")
            .split("\n[[targets]]")
            .next()
            .unwrap()
            .to_string();
        let model = dir.path().join(file);
        std::fs::write(&model, format!("{text}{scenario}{section}")).unwrap();
        let out = dir.path().join(format!("{file}.sweep"));
        let (stdout, _) = ok(
            &[
                "sweep",
                p(&model),
                "--scenario",
                "hold_c",
                "--format",
                "csv",
                "--out",
                p(&out),
            ],
            0,
        );
        let (head, rows) = draws_csv(&out);
        assert_eq!(rows.len(), 12);
        let mut all = vec![head];
        all.extend(rows);
        (stdout, all)
    };
    let (over_sets, draws_sets) = sweep_of(
        "features_sets.toml",
        r#"
[sensitivity]
draws = 12
seed = 7
report = ["Y[tr]", "ev(RA)", "P[g]"]

[sensitivity.parameters]
"tax[g]" = { distribution = "uniform", min = 0, max = "0.2" }

[[sensitivity.groups]]
parameters = ["tax[tr]"]
correlation = 0.5
"#,
    );
    let (by_hand, draws_hand) = sweep_of(
        "features_plain.toml",
        r#"
[sensitivity]
draws = 12
seed = 7
report = ["Y[a]", "Y[b]", "ev(RA)", "P[a]", "P[b]", "P[c]"]

[sensitivity.parameters]
"tax[a]" = { distribution = "uniform", min = 0, max = "0.2" }
"tax[b]" = { distribution = "uniform", min = 0, max = "0.2" }
"tax[c]" = { distribution = "uniform", min = 0, max = "0.2" }

[[sensitivity.groups]]
parameters = ["tax[a]", "tax[b]"]
correlation = 0.5
"#,
    );
    assert_eq!(draws_sets, draws_hand);
    assert_eq!(over_sets, by_hand);
    // The draws vary: tax[a] and tax[b] take different values in the 12 draws.
    let head = &draws_sets[0];
    let col = head.iter().position(|h| h == "tax[a]").unwrap();
    let first = &draws_sets[1][col];
    assert!(
        draws_sets[2..].iter().any(|r| &r[col] != first),
        "{draws_sets:?}"
    );
    assert!(head.iter().any(|h| h.contains("Y[b]")), "{head:?}");
}

#[test]
fn the_flagships_robust_results_keep_their_sign_in_every_draw() {
    // docs/token_economy.md section 10 names these robust over 1,000 draws of all 39 uncertain
    // parameters; 200 draws of the same seed must not flip them either. The fragile ones it
    // names must flip in some draws (otherwise the docs overstate the uncertainty).
    let sweep = |scenario: &str| -> serde_json::Value {
        let v = json(&[
            "sweep",
            "--scenario",
            scenario,
            "--draws",
            "200",
            "--format",
            "json",
        ]);
        assert_eq!(v["solved"], 200, "{scenario}");
        v
    };
    for (scenario, robust, fragile) in [
        (
            "token_tax_10",
            &[
                "ev_domestic",
                "ev(OWN)",
                "ev(GOV)",
                "PCMP",
                "PPLT",
                "real_gov_revenue",
                "gdp_real",
            ][..],
            &["ev(WO)", "ev(WX)"][..],
        ),
        (
            "compute_subsidy_20",
            &["ev(OWN)", "ev(GOV)", "PCMP", "PPLT", "gdp_real"][..],
            &["ev(WO)", "ev(FOR)"][..],
        ),
    ] {
        let v = sweep(scenario);
        let share = |q: &str| v["quantities"][q]["sign_flip_share"].as_f64().unwrap();
        for q in robust {
            assert_eq!(share(q), 0.0, "{scenario} {q}");
        }
        for q in fragile {
            assert!(share(q) > 0.05, "{scenario} {q}: {}", share(q));
        }
    }
}

/// The `value` of a `compare --dynamic --format csv` record (scenario, section, name, unit,
/// year; an empty year for present values).
fn path_cell(csv_text: &str, key: [&str; 5]) -> f64 {
    let mut r = csv::Reader::from_reader(csv_text.as_bytes());
    for rec in r.records() {
        let rec = rec.unwrap();
        let year = rec[5]
            .parse::<f64>()
            .map(|y| y.to_string())
            .unwrap_or_default();
        if [&rec[0], &rec[1], &rec[2], &rec[3], year.as_str()] == key {
            return rec[6].parse().unwrap();
        }
    }
    panic!("no record {key:?}")
}

#[test]
fn a_sweep_of_paths_reproduces_compare_dynamic_draw_by_draw() {
    // Each draw solves the baseline's and the scenario's paths with its parameters; its row
    // must be what `compare --dynamic --set …` gives with the same values, to the last bit:
    // prices in % of the baseline path in the year, EVs as the difference of the paths, present
    // values discounted as compare discounts them. The central case is compare without --set.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s");
    let scenario = "dyn_efficiency_10x";
    ok(
        &[
            "sweep",
            "--scenario",
            scenario,
            "--dynamic",
            "--years",
            "2030,2044",
            "--draws",
            "3",
            "--out",
            p(&out),
        ],
        0,
    );
    let summary: serde_json::Value = serde_json::from_str(&read(&out.join("sweep.json"))).unwrap();
    let (head, rows) = draws_csv(&out);
    let status = head.iter().position(|h| h == "status").unwrap();
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let checks: [(&str, [&str; 5]); 4] = [
        ("PCMP@2030", [scenario, "price", "PCMP", "%", "2030"]),
        ("NF@2044", [scenario, "activity", "NF", "%", "2044"]),
        (
            "ev(WX)@2030",
            [scenario, "welfare", "EV WX", "level", "2030"],
        ),
        (
            "pv(ev(OWN))",
            [scenario, "welfare", "EV OWN", "present_value", ""],
        ),
    ];
    let compare = |sets: &[String]| -> String {
        let mut args: Vec<&str> = vec![
            "compare",
            "--dynamic",
            "--scenarios",
            scenario,
            "--format",
            "csv",
        ];
        args.extend(sets.iter().map(String::as_str));
        ok(&args, 0).0
    };
    let central = compare(&[]);
    for (name, key) in &checks {
        let c = summary["quantities"][*name]["central"].as_f64().unwrap();
        assert_eq!(
            c.to_bits(),
            path_cell(&central, *key).to_bits(),
            "central {name}"
        );
    }
    for row in [&rows[0], &rows[2]] {
        assert_eq!(row[status], "converged");
        let sets: Vec<String> = (1..status)
            .flat_map(|j| ["--set".to_string(), format!("{}={}", head[j], row[j])])
            .collect();
        let text = compare(&sets);
        for (name, key) in &checks {
            let got: f64 = row[col(name)].parse().unwrap();
            let want = path_cell(&text, *key);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "draw {} {name}: {got} vs {want}",
                row[0]
            );
            // The draw moved it: the row is not the central case.
            let c = summary["quantities"][*name]["central"].as_f64().unwrap();
            assert!(
                (got - c).abs() > 1e-6 * c.abs().max(1.0),
                "draw {} {name} = central",
                row[0]
            );
        }
    }
}

#[test]
fn sweeps_of_paths_reject_what_they_cannot_do() {
    // A scenario with paths of its own needs --dynamic; a year off the path and --years
    // without --dynamic are bad input.
    let (_, err) = ok(
        &["sweep", "--scenario", "dyn_efficiency_10x", "--draws", "2"],
        2,
    );
    assert!(
        err.contains("is defined over time") && err.contains("--dynamic"),
        "{err}"
    );
    let (_, err) = ok(
        &[
            "sweep",
            "--scenario",
            "token_tax_10",
            "--dynamic",
            "--years",
            "2030.5",
            "--draws",
            "2",
        ],
        2,
    );
    assert!(
        err.contains("--years: 2030.5 is not a year of the path (2025 to 2044"),
        "{err}"
    );
    let (_, err) = ok(
        &["sweep", "--scenario", "token_tax_10", "--years", "2030"],
        2,
    );
    assert!(err.contains("--dynamic"), "{err}");
}
