//! `--out DIR` run bundles of `solve` and `compare`, and `tokencge report DIR`, which renders a
//! bundle's tables again, byte for byte (the contents come from `tokencge::bundle`).

use std::path::Path;
use std::time::Instant;

use indexmap::IndexMap;
use tokencge::bundle::{self, ReportData, ReportRecord, RunRecord, ScenarioRecord};
use tokencge::compile::Structure;
use tokencge::report::SolutionReport;
use tokencge::solve::NewtonSettings;

use super::{write_atomic, BAD_INPUT, OK};

/// What a run bundle needs besides the results: the command line, the start time, the
/// overrides and the record of every solve.
pub(super) struct RunLog {
    pub started: Instant,
    pub overrides: Vec<(usize, f64)>,
    pub scenarios: Vec<ScenarioRecord>,
}

impl RunLog {
    pub fn new(overrides: &[(usize, f64)]) -> RunLog {
        RunLog {
            started: Instant::now(),
            overrides: overrides.to_vec(),
            scenarios: Vec::new(),
        }
    }

    /// The outcome's record.
    pub fn record(&mut self, outcome: &tokencge::batch::Outcome) {
        self.scenarios.push(match outcome {
            Ok(s) => ScenarioRecord::of(&s.solution),
            Err(u) => ScenarioRecord::unsolved(&u.scenario),
        });
    }

    /// `run.json` for a run on `structure`, or the message of an input that cannot be hashed.
    pub fn run_record(
        &self,
        structure: &Structure,
        settings: &NewtonSettings,
    ) -> Result<RunRecord, String> {
        let model = structure.model();
        let inputs = bundle::inputs(model).map_err(|e| format!("cannot hash the inputs: {e}"))?;
        let overrides: IndexMap<String, f64> = self
            .overrides
            .iter()
            .map(|&(p, v)| (model.parameters[p].name.clone(), v))
            .collect();
        let mut r = RunRecord::new(std::env::args().collect(), inputs, settings, overrides);
        r.seconds = self.started.elapsed().as_secs_f64();
        r.scenarios = self.scenarios.clone();
        Ok(r)
    }
}

/// Creates `dir` and writes each file into it atomically; a failure is reported (exit 2).
pub(super) fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<(), i32> {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("{}: cannot create: {e}", dir.display());
        return Err(BAD_INPUT);
    }
    for (name, text) in files {
        let path = dir.join(name);
        if let Err(e) = write_atomic(&path, text.as_bytes()) {
            eprintln!("{}: cannot write: {e}", path.display());
            return Err(BAD_INPUT);
        }
    }
    Ok(())
}

/// The bundle of `solve` or `compare`: `results.json`, `results.csv`, `report.json` and
/// `run.json`.
pub(super) fn write_solve_bundle(
    dir: &Path,
    structure: &Structure,
    settings: &NewtonSettings,
    log: &RunLog,
    results: (String, String),
    data: ReportData,
) -> Result<(), i32> {
    let run = log.run_record(structure, settings).map_err(|e| {
        eprintln!("{}: {e}", structure.model().path.display());
        BAD_INPUT
    })?;
    write_files(
        dir,
        &[
            ("results.json", results.0),
            ("results.csv", results.1),
            (bundle::REPORT_FILE, data.json()),
            (bundle::RUN_FILE, run.json()),
        ],
    )
}

/// The records of reports.
pub(super) fn records(reports: &[SolutionReport]) -> Vec<ReportRecord> {
    reports.iter().map(record).collect()
}

/// The bundle's record of one report.
pub(super) fn record(report: &SolutionReport) -> ReportRecord {
    ReportRecord::of(report)
}

/// `tokencge report DIR`: the bundle's tables, as the run printed them.
pub(super) fn cmd_report(dir: &Path) -> i32 {
    let path = dir.join(bundle::REPORT_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "{}: cannot read: {e} (a bundle written by --out DIR has it)",
                path.display()
            );
            return BAD_INPUT;
        }
    };
    let data = match ReportData::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return BAD_INPUT;
        }
    };
    let model = if data.needs_model() {
        match run_model(dir) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                return BAD_INPUT;
            }
        }
    } else {
        None
    };
    match data.table(model.as_ref()) {
        Ok(table) => {
            print!("{table}");
            OK
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            BAD_INPUT
        }
    }
}

/// The model a bundle was made from: the first input of its `run.json`, loaded again, every
/// input's SHA-256 the same as when it ran.
fn run_model(dir: &Path) -> Result<tokencge::model::Model, String> {
    let path = dir.join(bundle::RUN_FILE);
    let run: serde_json::Value = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let recorded: Vec<bundle::InputFile> = serde_json::from_value(run["inputs"].clone())
        .map_err(|e| format!("{}: inputs: {e}", path.display()))?;
    let first = recorded
        .first()
        .ok_or_else(|| format!("{}: no inputs recorded", path.display()))?;
    let model = tokencge::model::load(Path::new(&first.path)).map_err(|e| e.to_string())?;
    let now = bundle::inputs(&model).map_err(|e| e.to_string())?;
    if now != recorded {
        return Err(format!(
            "the model or its data changed since the run (their SHA-256 differ from {}): the comparison cannot be rendered as it was",
            path.display()
        ));
    }
    Ok(model)
}
