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
) -> Vec<Result<Solved, ScenarioError>> {
    indices
        .par_iter()
        .map_init(
            || Workspace::new(structure),
            |ws, &idx| {
                let r = solve_one(structure, idx, settings, ws);
                progress();
                r
            },
        )
        .collect()
}
