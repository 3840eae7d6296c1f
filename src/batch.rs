//! Solving many scenarios of one model: in parallel (rayon) on one shared structure, each
//! worker thread with its own workspace, results in the order asked whatever the thread count.

use rayon::prelude::*;

use crate::calibrate::Coefficients;
use crate::compile::Structure;
use crate::report::SolutionReport;
use crate::scenario::{self, ScenarioError, Solution, Workspace};
use crate::solve::NewtonSettings;

/// A solved scenario: its calibration, its solution and its report.
#[derive(Debug, Clone)]
pub struct Solved {
    pub coefficients: Coefficients,
    pub solution: Solution,
    pub report: SolutionReport,
}

/// A scenario that could not be set up (its calibration or a fixed value failed to evaluate):
/// reported beside the solved ones, never stopping the batch.
#[derive(Debug, Clone)]
pub struct Unsolved {
    pub scenario: String,
    pub error: ScenarioError,
}

impl Unsolved {
    /// A report with status `evaluation_failed` and the reason.
    pub fn report(&self, structure: &Structure) -> SolutionReport {
        SolutionReport::unsolved(structure.model(), &self.scenario, self.error.to_string())
    }
}

/// What solving one scenario gave.
pub type Outcome = Result<Solved, Unsolved>;

/// Calibrates, solves and reports one scenario (None = the benchmark).
pub fn solve_one(
    structure: &Structure,
    index: Option<usize>,
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> Result<Solved, ScenarioError> {
    solve_one_with(structure, index, &[], settings, ws)
}

/// [`solve_one`] with parameter overrides on top of the scenario's own (`--set`).
pub fn solve_one_with(
    structure: &Structure,
    index: Option<usize>,
    overrides: &[(usize, f64)],
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> Result<Solved, ScenarioError> {
    let (sc, coefficients) = scenario::prepare_with(structure, index, overrides)?;
    let solution = scenario::solve(structure, &coefficients, &sc, settings, ws);
    log_solved(&solution);
    let report = SolutionReport::new_in(structure.with(&coefficients), &solution, ws.eval_mut());
    Ok(Solved {
        coefficients,
        solution,
        report,
    })
}

/// Solves scenarios in parallel; `progress` is called once per finished scenario (from any
/// thread). Outcome `k` belongs to `indices[k]`.
pub fn solve_all(
    structure: &Structure,
    indices: &[Option<usize>],
    settings: &NewtonSettings,
    progress: &(dyn Fn() + Sync),
) -> Vec<Outcome> {
    solve_all_with(structure, indices, &[], settings, progress)
}

/// [`solve_all`] with the same parameter overrides (`--set`) on top of every scenario's own,
/// the benchmark's included: a change is measured against the benchmark with the same
/// overrides.
pub fn solve_all_with(
    structure: &Structure,
    indices: &[Option<usize>],
    overrides: &[(usize, f64)],
    settings: &NewtonSettings,
    progress: &(dyn Fn() + Sync),
) -> Vec<Outcome> {
    let model = structure.model();
    indices
        .par_iter()
        .map_init(
            || Workspace::new(structure),
            |ws, &idx| {
                let r = solve_one_with(structure, idx, overrides, settings, ws).map_err(|error| {
                    Unsolved {
                        scenario: idx
                            .map(|i| model.scenarios[i].name.clone())
                            .unwrap_or_else(|| "benchmark".into()),
                        error,
                    }
                });
                progress();
                r
            },
        )
        .collect()
}

/// The `-v` line of a solved scenario: name, status, iterations (continuation included) and
/// time.
pub fn log_solved(solution: &Solution) {
    tracing::info!(
        target: "tokencge::run",
        scenario = solution.scenario.name.as_str(),
        status = solution.status.label(),
        iterations = solution.info.iterations,
        continuation = solution.continuation_steps,
        seconds = solution.info.seconds,
        "solved"
    );
}
