//! The binary outside the repository (issue 13, item 5): the built-in flagship when no model is
//! named and `models/token_economy.toml` is not found from the current directory, with the same
//! numbers as the file on disk; shell completions, manual pages, and the JSON Schema of the
//! model format validated against every model file of the repository.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{bin, root, run, text};

/// Runs the binary in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    let mut c = bin();
    c.current_dir(dir).args(args);
    c.output().expect("run tokencge")
}

const NOTE: &str = "model: built-in token_economy.toml (models/token_economy.toml not found from ";

/// The built-in model's runs from an empty directory print what the repository's runs print
/// (byte for byte, up to the model's path in `check`), with a note on stderr only.
#[test]
fn the_built_in_flagship_runs_anywhere_with_the_repositorys_numbers() {
    let away = tempfile::tempdir().unwrap();
    let runs: [&[&str]; 4] = [
        &[],
        &["check"],
        &["solve", "--scenario", "token_tax_10", "--format", "json"],
        &[
            "compare",
            "--scenarios",
            "benchmark,token_tax_10",
            "--format",
            "csv",
        ],
    ];
    for args in runs {
        let here = run(args);
        let there = run_in(away.path(), args);
        let (out_here, err_here) = text(&here);
        let (out_there, err_there) = text(&there);
        assert_eq!(
            here.status.code(),
            Some(0),
            "{args:?} in the repository: {err_here}"
        );
        assert_eq!(there.status.code(), Some(0), "{args:?} away: {err_there}");
        // The note names the directory searched and says built-in; the repository's run has none.
        let dir = std::env::current_dir()
            .map(|_| away.path().display().to_string())
            .unwrap();
        assert!(
            err_there.contains(&format!("{NOTE}{dir}")),
            "{args:?}: {err_there}"
        );
        assert!(!err_here.contains("built-in"), "{args:?}: {err_here}");
        // `check` names the model file: the built-in one by its virtual path.
        let out_there = out_there.replace(
            "built-in:/models/token_economy.toml",
            "models/token_economy.toml",
        );
        assert_eq!(out_there, out_here, "{args:?}");
    }
    // The machine formats stay clean: stdout is exactly the JSON object.
    let o = run_in(
        away.path(),
        &["solve", "--scenario", "token_tax_10", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scenario"], "token_tax_10");
    assert_eq!(v["status"], "converged");
}

/// A run bundle of the built-in model records the embedded files with the SHA-256 of the files
/// in the repository (the embedded copies are the files of this build), and `report` and a
/// resumed sweep find the built-in model again from any directory.
#[test]
fn a_bundle_of_the_built_in_model_records_and_reopens_it() {
    let away = tempfile::tempdir().unwrap();
    let o = run_in(
        away.path(),
        &["compare", "--scenarios", "token_tax_10", "--out", "bundle"],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(away.path().join("bundle/run.json")).unwrap())
            .unwrap();
    let inputs = run_json["inputs"].as_array().unwrap();
    let recorded: Vec<(&str, &str)> = inputs
        .iter()
        .map(|i| (i["path"].as_str().unwrap(), i["sha256"].as_str().unwrap()))
        .collect();
    let sha = |rel: &str| tokencge::bundle::sha256_hex(&std::fs::read(root().join(rel)).unwrap());
    assert_eq!(
        recorded,
        [
            (
                "built-in:/models/token_economy.toml",
                sha("models/token_economy.toml").as_str()
            ),
            (
                "built-in:/data/token_economy_sam.csv",
                sha("data/token_economy_sam.csv").as_str()
            ),
        ]
    );
    // `report` from yet another directory prints the tables the run printed.
    let elsewhere = tempfile::tempdir().unwrap();
    let bundle = away.path().join("bundle");
    let r = run_in(elsewhere.path(), &["report", bundle.to_str().unwrap()]);
    let (report, err) = text(&r);
    assert_eq!(r.status.code(), Some(0), "{err}");
    assert_eq!(report, out);
}

/// Every command with an optional model falls back to the built-in flagship.
#[test]
fn every_command_with_an_optional_model_falls_back() {
    let away = tempfile::tempdir().unwrap();
    let runs: [&[&str]; 4] = [
        &["describe"],
        &["flatten", "-o", "-"],
        &["sweep", "--scenario", "token_tax_10", "--draws", "3"],
        &[
            "compare",
            "--dynamic",
            "--scenarios",
            "benchmark",
            "--format",
            "csv",
        ],
    ];
    for args in runs {
        let o = run_in(away.path(), args);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.contains(NOTE), "{args:?}: {err}");
        assert!(!out.is_empty(), "{args:?}");
    }
    // A named model is never replaced by the built-in one.
    let o = run_in(away.path(), &["check", "models/token_economy.toml"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("models/token_economy.toml") && err.contains("cannot read"),
        "{err}"
    );
    assert!(!err.contains("built-in"), "{err}");
}

/// The subcommands, as `tokencge --help` lists them.
fn subcommands() -> Vec<String> {
    let o = run(&["--help"]);
    let (out, _) = text(&o);
    let names: Vec<String> = out
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    for expected in ["solve", "check", "compare", "completions", "man", "schema"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    names
}

#[test]
fn completions_for_each_shell_complete_every_subcommand() {
    let commands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "{shell}: {err}");
        assert!(out.contains("tokencge"), "{shell}");
        for c in &commands {
            assert!(out.contains(c.as_str()), "{shell} completion lacks {c}");
        }
        // Options of the subcommands too, e.g. compare's --scenarios.
        assert!(out.contains("scenarios"), "{shell}");
    }
    let o = run(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
}

/// The bash script completes as bash runs it: the function it registers, called as bash calls
/// it on <TAB>, offers the subcommands, an option and the values of `--format`.
#[cfg(unix)]
#[test]
fn the_bash_completion_completes_in_bash() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("tokencge.bash");
    std::fs::write(&script, run(&["completions", "bash"]).stdout).unwrap();
    // COMP_WORDS/COMP_CWORD as bash sets them; the function's arguments are the command, the
    // word being completed and the word before it.
    let complete = |words: &[&str]| -> Vec<String> {
        let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let n = words.len();
        let program = format!(
            "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _tokencge tokencge '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            quoted.join(" "),
            n - 1,
            words[n - 1],
            words[n - 2]
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &program])
            .output()
            .expect("bash");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(complete(&["tokencge", "com"]), ["compare", "completions"]);
    assert_eq!(complete(&["tokencge", "compare", "--sc"]), ["--scenarios"]);
    assert_eq!(
        complete(&["tokencge", "solve", "--format", ""]),
        ["csv", "json", "table"]
    );
}

#[test]
fn the_man_page_lists_every_subcommand_and_out_writes_one_page_each() {
    let commands = subcommands();
    let o = run(&["man"]);
    let (page, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(page.contains(".TH tokencge 1"), "{page}");
    for c in &commands {
        assert!(
            page.contains(&format!("tokencge\\-{c}")) || page.contains(c.as_str()),
            "{c}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let o = run(&["man", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut expected: Vec<String> = commands
        .iter()
        .map(|c| format!("tokencge-{c}.1"))
        .chain(std::iter::once("tokencge.1".to_string()))
        .collect();
    expected.sort();
    assert_eq!(written, expected);
    let solve = std::fs::read_to_string(out.join("tokencge-solve.1")).unwrap();
    assert!(
        solve.contains("\\-\\-scenario") && solve.contains("\\-\\-tolerance"),
        "{solve}"
    );
    // The main page on stdout is the one written into the directory.
    assert_eq!(
        std::fs::read_to_string(out.join("tokencge.1")).unwrap(),
        page
    );
}

/// The schema `tokencge schema` prints, compiled by a JSON Schema validator.
fn schema_validator() -> (serde_json::Value, jsonschema::Validator) {
    let o = run(&["schema"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    (schema, validator)
}

/// Every `.toml` below `dir`.
fn toml_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            toml_files(&p, into);
        } else if p.extension().is_some_and(|e| e == "toml") {
            into.push(p);
        }
    }
}

/// A TOML file as the JSON value a TOML editor validates against the schema.
fn as_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let value: toml::Value = toml::from_str(&text).unwrap();
    serde_json::to_value(value).unwrap()
}

/// The schema accepts every model file of the repository that loads (models/ and tests/data/),
/// and rejects what the loader rejects for its shape: an unknown field, a table where a list
/// belongs, a missing required field.
#[test]
fn the_schema_accepts_every_model_that_loads_and_rejects_bad_shapes() {
    let (schema, validator) = schema_validator();
    // The schema names every top-level table of the format: exactly those the loader's serde
    // mirror knows, as its message for an unknown one lists them.
    let message = toml::from_str::<tokencge::model::file::ModelFile>("not_a_table = 1")
        .err()
        .unwrap()
        .message()
        .to_string();
    let known: Vec<&str> = message
        .split_once("expected one of")
        .unwrap()
        .1
        .split(',')
        .map(|k| k.trim().trim_matches('`'))
        .collect();
    let properties: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(properties, known);
    assert!(
        known.len() >= 16 && known.contains(&"dynamics"),
        "{known:?}"
    );
    assert_eq!(schema["additionalProperties"], false);

    let mut files = Vec::new();
    toml_files(&root().join("models"), &mut files);
    toml_files(&root().join("tests/data"), &mut files);
    files.sort();
    let mut checked = 0;
    for file in &files {
        if tokencge::model::load(file).is_err() {
            continue;
        }
        let json = as_json(file);
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
        checked += 1;
    }
    // The flagship, the nine references, the dynamic and indexed examples, the test models.
    assert!(checked >= 15, "only {checked} model files checked");

    let flagship = as_json(&root().join("models/token_economy.toml"));
    let mut bad = Vec::new();
    // A misspelt field of a sector.
    let mut typo = flagship.clone();
    let sector = typo["sectors"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    sector["elastcity"] = 1.into();
    bad.push(("a misspelt field", typo));
    // An unknown top-level table.
    let mut unknown = flagship.clone();
    unknown["solver"] = serde_json::json!({ "tolerance": 1e-9 });
    bad.push(("an unknown table", unknown));
    // The model's name missing.
    let mut nameless = flagship.clone();
    nameless["model"].as_object_mut().unwrap().remove("name");
    bad.push(("no model name", nameless));
    // A quantity that is neither a number nor an expression.
    let mut boolean = flagship.clone();
    boolean["parameters"]
        .as_object_mut()
        .unwrap()
        .insert("x".into(), true.into());
    bad.push(("a boolean parameter", boolean));
    // Commodities as a table.
    let mut table = flagship;
    table["commodities"] = serde_json::json!({ "PC": 1 });
    bad.push(("commodities as a table", table));
    for (what, json) in bad {
        assert!(!validator.is_valid(&json), "{what} passes the schema");
    }
    // Every file of the bad-input catalogue that the loader rejects for an unknown field, the
    // schema rejects too (an editor underlines what `tokencge check` would report).
    let mut unknown = 0;
    for entry in std::fs::read_dir(root().join("tests/bad_inputs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let Err(e) = tokencge::model::load(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let Ok(value) = toml::from_str::<toml::Value>(&text) else {
            continue;
        };
        if e.to_string().contains("unknown field") {
            let json = serde_json::to_value(value).unwrap();
            assert!(
                !validator.is_valid(&json),
                "{} passes the schema",
                path.display()
            );
            unknown += 1;
        }
    }
    assert!(unknown >= 4, "{unknown} files with unknown fields");
}
