//! Solving many scenarios of one model: in parallel (rayon) on one shared structure, each
//! worker thread with its own workspace, results in the order asked whatever the thread count
//! — all at once ([`solve_all`]) or streamed in order as they finish ([`solve_in_order`], what
//! `solve --all` writes from, so that its memory stays bounded and its output overlaps the
//! solves).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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
    let mut out = Vec::with_capacity(indices.len());
    solve_in_order(
        structure,
        indices,
        overrides,
        settings,
        progress,
        &|outcome| outcome,
        &mut |outcome| out.push(outcome),
    );
    out
}

/// Solves scenarios in parallel and hands them over in the order asked as soon as each and
/// all before it are done, so that a long batch is written while it is solved and never held
/// whole in memory.
///
/// Each worker thread (as many as rayon's current pool has) takes the next scenario in order,
/// solves it with its own workspace and passes the outcome through `finish` (on that worker:
/// the place for per-scenario work such as rendering a report); `emit` then receives the
/// results in the order of `indices`, one at a time, on whichever worker completes the
/// sequence. Since scenarios are taken in order, the results waiting for an earlier one are
/// at most those finished while it was solved. `progress` is called once per scenario.
pub fn solve_in_order<T: Send>(
    structure: &Structure,
    indices: &[Option<usize>],
    overrides: &[(usize, f64)],
    settings: &NewtonSettings,
    progress: &(dyn Fn() + Sync),
    finish: &(dyn Fn(Outcome) -> T + Sync),
    emit: &mut (dyn FnMut(T) + Send),
) {
    let model = structure.model();
    let next = AtomicUsize::new(0);
    let order = Mutex::new(Reorder {
        next: 0,
        waiting: BTreeMap::new(),
        emit,
    });
    let worker = || {
        let mut ws = Workspace::new(structure);
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(&idx) = indices.get(k) else { break };
            let outcome =
                solve_one_with(structure, idx, overrides, settings, &mut ws).map_err(|error| {
                    Unsolved {
                        scenario: idx
                            .map(|i| model.scenarios[i].name.clone())
                            .unwrap_or_else(|| "benchmark".into()),
                        error,
                    }
                });
            progress();
            let result = finish(outcome);
            // A worker that panicked while emitting left the order poisoned: the panic is
            // rethrown by the scope, so carrying on with the data as it is is harmless.
            let mut order = order.lock().unwrap_or_else(|p| p.into_inner());
            order.waiting.insert(k, result);
            order.release();
        }
    };
    let workers = rayon::current_num_threads().clamp(1, indices.len().max(1));
    if workers == 1 {
        // On the calling thread: its allocator arena still holds what loading freed, which a
        // pool thread's fresh arena would allocate again (a single large solve's peak memory).
        worker();
        return;
    }
    rayon::scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| worker());
        }
    });
}

/// The results finished ahead of their turn, and where they go when it comes.
struct Reorder<'a, T> {
    /// Position of the next result to emit.
    next: usize,
    waiting: BTreeMap<usize, T>,
    emit: &'a mut (dyn FnMut(T) + Send),
}

impl<T> Reorder<'_, T> {
    /// Emits every waiting result whose turn has come.
    fn release(&mut self) {
        while let Some(result) = self.waiting.remove(&self.next) {
            (self.emit)(result);
            self.next += 1;
        }
    }
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
