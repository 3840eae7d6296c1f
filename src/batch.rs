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
    let (sc, coefficients) = scenario::prepare(structure, index)?;
    let solution = scenario::solve(structure, &coefficients, &sc, settings, ws);
    let report = SolutionReport::new(structure.with(&coefficients), &solution);
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
    let model = structure.model();
    indices
        .par_iter()
        .map_init(
            || Workspace::new(structure),
            |ws, &idx| {
                let r = solve_one(structure, idx, settings, ws).map_err(|error| Unsolved {
                    scenario: idx
                        .map(|i| model.scenarios[i].name.clone())
                        .unwrap_or_else(|| "benchmark".into()),
                    error,
                });
                progress();
                r
            },
        )
        .collect()
}
