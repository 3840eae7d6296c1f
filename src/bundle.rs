//! Run bundles: what `--out DIR` writes beside the results so that a run can be traced and its
//! tables rendered again (`tokencge report DIR`).
//!
//! `run.json` ([`RunRecord`]) says what ran: the tokencge version and git commit (embedded at
//! build time by `build.rs` when git is there), the SHA-256 of the model file and of every
//! data file it reads, the solver settings, the overrides, and per scenario the iterations,
//! residuals and whether the point passed the independent check. `report.json`
//! ([`ReportData`]) holds every number a table shows — the full reports, margins included,
//! of `solve` and `compare`, or a sweep's summary — so that `tokencge report DIR` renders
//! the same bytes as the run printed. The library builds the contents; the command line
//! writes the files (atomically).

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compile::VarKind;
use crate::model::Model;
use crate::report::{PathStopReport, Runaway, SolutionReport, VariableRow, Welfare, WorstEquation};
use crate::scenario::Solution;
use crate::solve::{NewtonSettings, SolveStatus};

/// The file that says what ran.
pub const RUN_FILE: &str = "run.json";
/// The file `tokencge report` renders.
pub const REPORT_FILE: &str = "report.json";

/// The tokencge version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit tokencge was built from, when the build could ask git.
pub fn git_commit() -> Option<&'static str> {
    option_env!("TOKENCGE_GIT_COMMIT").filter(|c| !c.is_empty())
}

/// An input file and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub sha256: String,
}

/// The SHA-256 of bytes, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The model file and every data file it reads (the SAM, the CSV files of `[sets]` and
/// `[tables]`), each with its SHA-256, in that order.
pub fn inputs(model: &Model) -> std::io::Result<Vec<InputFile>> {
    let mut paths: Vec<PathBuf> = vec![model.path.clone()];
    if let Some(sam) = &model.sam {
        paths.push(sam.resolved.clone());
    }
    // The data files of an indexed model are named in the file itself.
    if let Ok(src) = crate::model::load::read(&model.path) {
        for written in src.data.keys() {
            paths.push(model.source_dir().join(written));
        }
    }
    paths
        .into_iter()
        .map(|p| {
            // The built-in model's files are read from the binary, like at load.
            let bytes = crate::model::sources::provider_for(&p)
                .read(&p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
            // Absolute, so that `tokencge report` finds the model from any directory.
            let p = crate::model::sources::canonical(&p);
            Ok(InputFile {
                path: p.display().to_string(),
                sha256: sha256_hex(&bytes),
            })
        })
        .collect()
}

/// One solved scenario in `run.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRecord {
    pub scenario: String,
    pub status: String,
    pub iterations: u64,
    pub continuation_steps: usize,
    /// The largest residual recomputed at the returned point (null when not a number).
    pub residual: Option<f64>,
    pub walras_residual: Option<f64>,
    /// Whether the point passed the independent check of every equation.
    pub verified: bool,
    pub seconds: f64,
}

impl ScenarioRecord {
    /// The record of a solution.
    pub fn of(sol: &Solution) -> ScenarioRecord {
        ScenarioRecord {
            scenario: sol.scenario.name.clone(),
            status: sol.status.label().into(),
            iterations: sol.info.iterations,
            continuation_steps: sol.continuation_steps,
            residual: sol.residual.is_finite().then_some(sol.residual),
            walras_residual: sol.walras_residual.filter(|w| w.is_finite()),
            verified: sol.converged(),
            seconds: sol.info.seconds,
        }
    }

    /// The record of a scenario that could not be set up.
    pub fn unsolved(scenario: &str) -> ScenarioRecord {
        ScenarioRecord {
            scenario: scenario.into(),
            status: SolveStatus::EvaluationFailed(String::new()).label().into(),
            iterations: 0,
            continuation_steps: 0,
            residual: None,
            walras_residual: None,
            verified: false,
            seconds: 0.0,
        }
    }
}

/// `run.json`: what ran, on what, with which settings, and how each solve went.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub tokencge: String,
    pub git_commit: Option<String>,
    /// The command line as given.
    pub command: Vec<String>,
    pub inputs: Vec<InputFile>,
    pub settings: serde_json::Value,
    /// `--set` overrides.
    pub overrides: IndexMap<String, f64>,
    pub threads: usize,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    pub scenarios: Vec<ScenarioRecord>,
    /// A sweep's own figures (draws, seed, shard, solved, failed, iterations, rate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sweep: Option<serde_json::Value>,
}

impl RunRecord {
    /// A record with the version, commit, inputs and settings filled in.
    pub fn new(
        command: Vec<String>,
        inputs: Vec<InputFile>,
        settings: &NewtonSettings,
        overrides: IndexMap<String, f64>,
    ) -> RunRecord {
        RunRecord {
            tokencge: VERSION.into(),
            git_commit: git_commit().map(String::from),
            command,
            inputs,
            settings: serde_json::to_value(settings).unwrap_or(serde_json::Value::Null),
            overrides,
            threads: rayon::current_num_threads(),
            seconds: 0.0,
            scenarios: Vec::new(),
            sweep: None,
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// A number that may not be finite: JSON `null` stands for NaN (tables print both as `-`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_none()
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Num, D::Error> {
        Ok(Num(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN)))
    }
}

fn nums(m: &IndexMap<String, f64>) -> IndexMap<String, Num> {
    m.iter().map(|(k, v)| (k.clone(), Num(*v))).collect()
}

fn floats(m: IndexMap<String, Num>) -> IndexMap<String, f64> {
    m.into_iter().map(|(k, v)| (k, v.0)).collect()
}

/// One variable row of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariableRecord {
    pub kind: String,
    pub name: String,
    pub level: Num,
    pub margin: Num,
    pub slack_margin: Num,
}

/// Everything a [`SolutionReport`] holds, margins and indicator errors included, so that the
/// report comes back exactly (non-finite numbers as `null`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRecord {
    pub model: String,
    pub scenario: String,
    pub status: String,
    pub iterations: u64,
    pub residual: Num,
    pub walras_residual: Option<Num>,
    pub numeraire: Option<String>,
    pub fixed: IndexMap<String, Num>,
    pub sectors: IndexMap<String, Num>,
    pub commodities: IndexMap<String, Num>,
    pub consumers: IndexMap<String, Num>,
    pub auxiliary: IndexMap<String, Num>,
    pub welfare: IndexMap<String, (Num, Num)>,
    pub pruned: Vec<String>,
    pub indicators: Option<IndexMap<String, Num>>,
    pub worst: Option<Vec<(String, Num)>>,
    pub runaway: Option<Vec<(String, Num)>>,
    pub path: Option<(Num, Vec<(String, Num)>)>,
    pub reason: Option<String>,
    pub variables: Vec<VariableRecord>,
    pub indicator_errors: IndexMap<String, String>,
    pub converged: bool,
}

/// Why a bundle's report could not be read back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BundleError(pub String);

/// The `&'static str` label of a status name written by this version.
fn status_label(s: &str) -> Result<&'static str, BundleError> {
    use SolveStatus::*;
    [
        Converged,
        MaxIterations,
        LineSearchFailed,
        Singular,
        NonFinite,
        EvaluationFailed(String::new()),
        Timeout,
        VerificationFailed,
    ]
    .iter()
    .map(SolveStatus::label)
    .find(|l| *l == s)
    .ok_or_else(|| BundleError(format!("unknown status '{s}'")))
}

fn kind_of(label: &str) -> Result<VarKind, BundleError> {
    [
        VarKind::Sector,
        VarKind::Commodity,
        VarKind::Consumer,
        VarKind::Auxiliary,
    ]
    .into_iter()
    .find(|k| k.label() == label)
    .ok_or_else(|| BundleError(format!("unknown variable kind '{label}'")))
}

fn runaway(v: &[Runaway]) -> Vec<(String, Num)> {
    v.iter()
        .map(|r| (r.variable.clone(), Num(r.ratio)))
        .collect()
}

fn runaway_back(v: Vec<(String, Num)>) -> Vec<Runaway> {
    v.into_iter()
        .map(|(variable, r)| Runaway {
            variable,
            ratio: r.0,
        })
        .collect()
}

impl ReportRecord {
    /// The record of a report.
    pub fn of(r: &SolutionReport) -> ReportRecord {
        ReportRecord {
            model: r.model.clone(),
            scenario: r.scenario.clone(),
            status: r.status.into(),
            iterations: r.iterations,
            residual: Num(r.residual),
            walras_residual: r.walras_residual.map(Num),
            numeraire: r.numeraire.clone(),
            fixed: nums(&r.fixed),
            sectors: nums(&r.sectors),
            commodities: nums(&r.commodities),
            consumers: nums(&r.consumers),
            auxiliary: nums(&r.auxiliary),
            welfare: r
                .welfare
                .iter()
                .map(|(k, w)| (k.clone(), (Num(w.index), Num(w.ev))))
                .collect(),
            pruned: r.pruned.clone(),
            indicators: r.indicators.as_ref().map(nums),
            worst: r.worst.as_ref().map(|w| {
                w.iter()
                    .map(|w| (w.equation.clone(), Num(w.residual)))
                    .collect()
            }),
            runaway: r.runaway.as_deref().map(runaway),
            path: r.path.as_ref().map(|p| (Num(p.reached), runaway(&p.moved))),
            reason: r.reason.clone(),
            variables: r
                .variables
                .iter()
                .map(|v| VariableRecord {
                    kind: v.kind.label().into(),
                    name: v.name.clone(),
                    level: Num(v.level),
                    margin: Num(v.margin),
                    slack_margin: Num(v.slack_margin),
                })
                .collect(),
            indicator_errors: r.indicator_errors.clone(),
            converged: r.converged,
        }
    }

    /// The report back.
    pub fn report(self) -> Result<SolutionReport, BundleError> {
        Ok(SolutionReport {
            model: self.model,
            scenario: self.scenario,
            status: status_label(&self.status)?,
            iterations: self.iterations,
            residual: self.residual.0,
            walras_residual: self.walras_residual.map(|w| w.0),
            numeraire: self.numeraire,
            fixed: floats(self.fixed),
            sectors: floats(self.sectors),
            commodities: floats(self.commodities),
            consumers: floats(self.consumers),
            auxiliary: floats(self.auxiliary),
            welfare: self
                .welfare
                .into_iter()
                .map(|(k, (i, e))| {
                    (
                        k,
                        Welfare {
                            index: i.0,
                            ev: e.0,
                        },
                    )
                })
                .collect(),
            pruned: self.pruned,
            indicators: self.indicators.map(floats),
            worst: self.worst.map(|w| {
                w.into_iter()
                    .map(|(equation, r)| WorstEquation {
                        equation,
                        residual: r.0,
                    })
                    .collect()
            }),
            runaway: self.runaway.map(runaway_back),
            path: self.path.map(|(reached, moved)| PathStopReport {
                reached: reached.0,
                moved: runaway_back(moved),
            }),
            reason: self.reason,
            variables: self
                .variables
                .into_iter()
                .map(|v| {
                    Ok(VariableRow {
                        kind: kind_of(&v.kind)?,
                        name: v.name,
                        level: v.level.0,
                        margin: v.margin.0,
                        slack_margin: v.slack_margin.0,
                    })
                })
                .collect::<Result<_, BundleError>>()?,
            indicator_errors: self.indicator_errors,
            converged: self.converged,
        })
    }
}

/// What `tokencge report DIR` renders: the reports of `solve` or `compare`, or a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum ReportData {
    /// `solve`: one table per report, in order.
    Solve { reports: Vec<ReportRecord> },
    /// `compare`: the benchmark's report first; `full` for `--full` tables. The comparison's
    /// presentation (unit, headline, consumer roles, descriptions) comes from the model file,
    /// which `tokencge report` reads again after checking its hash.
    Compare {
        reports: Vec<ReportRecord>,
        full: bool,
    },
    /// `sweep` and `merge`.
    Sweep { summary: Box<crate::sweep::Summary> },
}

impl ReportData {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Reads `report.json` text.
    pub fn parse(text: &str) -> Result<ReportData, BundleError> {
        serde_json::from_str(text).map_err(|e| BundleError(e.to_string()))
    }

    /// Whether rendering needs the model (a comparison's presentation).
    pub fn needs_model(&self) -> bool {
        matches!(self, ReportData::Compare { .. })
    }

    /// The tables, as the run printed them; `model` is the run's model (needed for a
    /// comparison).
    pub fn table(&self, model: Option<&Model>) -> Result<String, BundleError> {
        let reports = |r: &[ReportRecord]| -> Result<Vec<SolutionReport>, BundleError> {
            r.iter().cloned().map(ReportRecord::report).collect()
        };
        Ok(match self {
            ReportData::Solve { reports: r } => solve_tables(&reports(r)?),
            ReportData::Compare { reports: r, full } => {
                let model =
                    model.ok_or_else(|| BundleError("a comparison needs its model".into()))?;
                let mut all = reports(r)?;
                if all.is_empty() {
                    return Err(BundleError("a comparison without a benchmark".into()));
                }
                let bench = all.remove(0);
                let cmp = crate::report::compare::build(model, &bench, &all);
                if *full {
                    cmp.full()
                } else {
                    cmp.headline()
                }
            }
            ReportData::Sweep { summary } => summary.table(),
        })
    }
}

/// The text `tokencge solve` prints for reports: each table followed by a blank line.
pub fn solve_tables(reports: &[SolutionReport]) -> String {
    let mut text = String::new();
    for r in reports {
        text.push_str(&r.table());
        text.push('\n');
    }
    text
}

/// The path of a bundle file.
pub fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
