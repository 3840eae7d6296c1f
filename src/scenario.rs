//! Scenarios as values, and the equilibrium solve with its continuation fallback.
//!
//! A [`Scenario`] is a parameter vector, a normalisation, fixed variables and a start point;
//! with the [`Coefficients`] calibrated to its parameters it is everything a solve needs
//! besides the shared [`Structure`]. Nothing here mutates the structure: scenarios of one model
//! solve in parallel on one structure, each thread with its own [`Workspace`]. When a direct
//! solve from the scenario's benchmark fails, the changed parameters (and fixed levels) move
//! from the model's benchmark to the scenario's in steps, each calibrated afresh and each solve
//! warm-started from the last.

use std::cell::RefCell;

use crate::calibrate::{self, eval_param, CalibrationError, Coefficients};
use crate::compile::{EvalWorkspace, Structure, System, VarKind};
use crate::ids::{CommodityId, ConsumerId, VarId};
use crate::model::Normaliser;
use crate::solve::{
    self, box_residuals, ComplementarityProblem, McpSolution, NewtonSettings, ProblemError,
    Reduced, SolveInfo, SolveStatus, SolverWorkspace,
};

/// Why a scenario could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Calibration(#[from] CalibrationError),
    #[error("{0}")]
    Parameter(#[from] crate::model::ParameterError),
    #[error("fix.{name}: {error}")]
    Fix {
        name: String,
        error: crate::expr::EvalError,
    },
}

/// A scenario resolved into numbers.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// `benchmark` for the model as written.
    pub name: String,
    pub index: Option<usize>,
    pub params: Vec<f64>,
    /// What normalises (None when only `fix` does).
    pub numeraire: Option<Normaliser>,
    /// Fixed variables and values, in layout order (numeraire and `fix` entries; not the
    /// structurally inactive ones).
    pub fixed: Vec<(VarId, f64)>,
    /// The scenario's benchmark point (fixed values applied).
    pub start: Vec<f64>,
    /// The normalising variable whose function is dropped from the solve (the numeraire, or
    /// the one commodity or consumer `fix` holds): by Walras' law that function holds at an
    /// equilibrium, so verification checks it.
    pub walras: Option<VarId>,
}

/// Every buffer a thread needs to solve scenarios: evaluation and Newton scratch.
#[derive(Debug)]
pub struct Workspace {
    eval: EvalWorkspace,
    solver: SolverWorkspace,
}

impl Workspace {
    /// Scratch sized for one structure.
    pub fn new(structure: &Structure) -> Workspace {
        Workspace {
            eval: EvalWorkspace::new(structure),
            solver: SolverWorkspace::default(),
        }
    }

    /// The evaluation scratch, for work after a solve on the same structure (its report).
    pub(crate) fn eval_mut(&mut self) -> &mut EvalWorkspace {
        &mut self.eval
    }
}

/// The outcome of solving one scenario.
#[derive(Debug, Clone)]
pub struct Solution {
    pub scenario: Scenario,
    pub status: SolveStatus,
    pub x: Vec<f64>,
    /// Scaled function values at `x` (the margins), 0 for fixed variables.
    pub f: Vec<f64>,
    /// Largest box residual over the free variables, recomputed at `x` independently of the
    /// solver's bookkeeping.
    pub residual: f64,
    /// |scaled value| of the dropped normalising function at `x` (Walras' law), when there is
    /// one.
    pub walras_residual: Option<f64>,
    pub info: SolveInfo,
    /// Number of continuation steps used (0 when the direct solve converged).
    pub continuation_steps: usize,
    /// The functions with the largest residuals, largest first (variable, residual).
    pub worst: Vec<(VarId, f64)>,
    /// When not converged: the free levels furthest from the scenario's benchmark, by a factor
    /// beyond 10⁴ either way (variable, level / benchmark level), furthest first. Prices
    /// running off or activities collapsing say where an equilibrium at finite prices fails.
    pub runaway: Vec<(VarId, f64)>,
    /// When not converged and the continuation ran: how far along the shock it got.
    pub path: Option<PathStop>,
}

/// Where the continuation from the model's benchmark stopped: the largest fraction of the shock
/// (parameters and fixed levels moved from the model's values towards the scenario's) at which
/// a verified equilibrium was found, and the free levels that had moved furthest from their
/// benchmark there (by more than a factor 10, furthest first). A path that stops short of the
/// shock, with a sector closing or a price exploding at its end, is what an equilibrium that
/// ceases to exist looks like: a fold, or a regime the shock cannot enter.
#[derive(Debug, Clone, PartialEq)]
pub struct PathStop {
    pub reached: f64,
    pub moved: Vec<(VarId, f64)>,
}

impl Solution {
    pub fn converged(&self) -> bool {
        self.status == SolveStatus::Converged
    }
}

/// The parameter vector of a scenario (None = the model as written): its overrides applied and
/// every derived parameter evaluated again (`Model::parameters_with`).
pub fn parameters(structure: &Structure, index: Option<usize>) -> Result<Vec<f64>, ScenarioError> {
    parameters_with(structure, index, &[])
}

/// The parameter vector of a scenario with `extra` overrides (`--set`, a sensitivity draw)
/// applied on top of the scenario's own (later ones win), every derived parameter not
/// overridden evaluated again.
pub fn parameters_with(
    structure: &Structure,
    index: Option<usize>,
    extra: &[(usize, f64)],
) -> Result<Vec<f64>, ScenarioError> {
    let model = structure.model();
    let own = index.map_or(&[][..], |i| &model.scenarios[i].parameters[..]);
    if extra.is_empty() {
        return Ok(model.parameters_with(own)?);
    }
    let all: Vec<(usize, f64)> = own.iter().chain(extra).copied().collect();
    Ok(model.parameters_with(&all)?)
}

/// Calibrates a scenario (None = benchmark) and resolves it: its coefficients, benchmark point
/// and what is fixed.
pub fn prepare(
    structure: &Structure,
    index: Option<usize>,
) -> Result<(Scenario, Coefficients), ScenarioError> {
    prepare_with(structure, index, &[])
}

/// [`prepare`] with `extra` parameter overrides on top of the scenario's own
/// ([`parameters_with`]).
pub fn prepare_with(
    structure: &Structure,
    index: Option<usize>,
    extra: &[(usize, f64)],
) -> Result<(Scenario, Coefficients), ScenarioError> {
    prepare_against(structure, index, extra, None)
}

/// [`prepare_with`] measuring equivalent variations from `benchmark`'s incomes: the benchmark
/// calibrated under the same `extra` overrides, when the caller has it already (a sweep's
/// draw). Without it, and with overrides that may move benchmark incomes (a labour-supply
/// elasticity sizes the leisure endowment), the benchmark is calibrated here for them; a
/// benchmark is its own reference.
pub fn prepare_against(
    structure: &Structure,
    index: Option<usize>,
    extra: &[(usize, f64)],
    benchmark: Option<&Coefficients>,
) -> Result<(Scenario, Coefficients), ScenarioError> {
    let coef = calibrate::calibrate(structure, &parameters_with(structure, index, extra)?)?;
    let coef = match (index, benchmark) {
        (_, Some(base)) => coef.with_reference_income(base.benchmark_incomes(structure)),
        (_, None) if extra.is_empty() => coef,
        (None, None) => {
            let incomes = coef.benchmark_incomes(structure);
            coef.with_reference_income(incomes)
        }
        (Some(_), None) => {
            let base = calibrate::calibrate(structure, &parameters_with(structure, None, extra)?)?;
            coef.with_reference_income(base.benchmark_incomes(structure))
        }
    };
    let scenario = resolve(structure, &coef, index)?;
    Ok((scenario, coef))
}

/// Resolves a scenario against coefficients calibrated to its parameters.
pub fn resolve(
    structure: &Structure,
    coef: &Coefficients,
    index: Option<usize>,
) -> Result<Scenario, ScenarioError> {
    let model = structure.model();
    let layout = structure.layout();
    let params = coef.params().to_vec();
    let (name, sc) = match index {
        None => ("benchmark".to_string(), None),
        Some(i) => (model.scenarios[i].name.clone(), Some(&model.scenarios[i])),
    };
    let mut start = coef.start().to_vec();
    let fix_normalises = sc.is_some_and(|s| {
        s.fix
            .iter()
            .any(|(v, _)| matches!(v.kind(), VarKind::Commodity | VarKind::Consumer))
    });
    let numeraire = match sc.and_then(|s| s.numeraire) {
        Some(n) => Some(n),
        None if fix_normalises => None,
        None => model
            .numeraire
            .or_else(|| default_numeraire(structure, &start)),
    };
    let mut fixed: Vec<(VarId, f64)> = Vec::new();
    match numeraire {
        Some(Normaliser::Commodity(c)) => {
            let v = layout.commodity(CommodityId::new(c));
            fixed.push((v, start[v]))
        }
        Some(Normaliser::Consumer(h)) => {
            let v = layout.consumer(ConsumerId::new(h));
            fixed.push((v, start[v]))
        }
        None => {}
    }
    if let Some(sc) = sc {
        for (v, e) in &sc.fix {
            let v = layout.index_of(*v);
            let val = eval_param(e, &params).map_err(|error| ScenarioError::Fix {
                name: structure.var_name(v).to_string(),
                error,
            })?;
            fixed.retain(|(w, _)| *w != v);
            fixed.push((v, val));
        }
    }
    fixed.sort_by_key(|(v, _)| *v);
    for &(v, val) in &fixed {
        start[v.index()] = val;
    }
    let walras = match numeraire {
        Some(Normaliser::Commodity(c)) => Some(layout.commodity(CommodityId::new(c))),
        Some(Normaliser::Consumer(h)) => Some(layout.consumer(ConsumerId::new(h))),
        None => {
            let mut normalising = fixed
                .iter()
                .map(|&(v, _)| v)
                .filter(|&v| matches!(layout.kind(v), VarKind::Commodity | VarKind::Consumer));
            match (normalising.next(), normalising.next()) {
                (Some(v), None) => Some(v),
                // Several fixed prices or incomes: the others are restrictions, not a
                // normalisation, and their functions need not hold.
                _ => None,
            }
        }
    };
    Ok(Scenario {
        name,
        index,
        params,
        numeraire,
        fixed,
        start,
        walras,
    })
}

/// The consumer with the largest benchmark income (first declared on ties).
fn default_numeraire(structure: &Structure, x0: &[f64]) -> Option<Normaliser> {
    let layout = structure.layout();
    let mut best: Option<(usize, f64)> = None;
    for h in 0..structure.model().consumers.len() {
        let m = x0[layout.consumer(ConsumerId::new(h))];
        if best.is_none_or(|(_, b)| m > b) {
            best = Some((h, m));
        }
    }
    best.map(|(h, _)| Normaliser::Consumer(h))
}

/// The full-size complementarity problem of a system, evaluating into a borrowed workspace.
struct SystemProblem<'a> {
    system: System<'a>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    ws: RefCell<&'a mut EvalWorkspace>,
    /// The point whose whole state (gradients included) `ws` holds, empty when none: the last
    /// evaluation's, if it succeeded. A Jacobian there skips recomputing it.
    state_at: RefCell<Vec<f64>>,
}

impl ComplementarityProblem for SystemProblem<'_> {
    fn dim(&self) -> usize {
        self.system.dim()
    }
    fn lower(&self) -> &[f64] {
        &self.lower
    }
    fn upper(&self) -> &[f64] {
        &self.upper
    }
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), ProblemError> {
        let mut ws = self.ws.borrow_mut();
        let mut state_at = self.state_at.borrow_mut();
        state_at.clear();
        // The solver evaluates a residual at every trial point and the Jacobian at the one it
        // accepts: keeping the whole state of each trial lets that Jacobian skip it.
        self.system
            .residual_keeping_state(x, f, &mut ws)
            .map_err(|e| ProblemError(e.to_string()))?;
        state_at.extend_from_slice(x);
        Ok(())
    }
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut solve::Jacobian,
    ) -> Result<(), ProblemError> {
        let mut ws = self.ws.borrow_mut();
        let mut state_at = self.state_at.borrow_mut();
        // Bit for bit the same point (same coefficients: one problem, one system).
        let kept = state_at.len() == x.len()
            && state_at
                .iter()
                .zip(x)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        state_at.clear();
        if kept {
            self.system.residual_jacobian_from_state(x, f, jac, &mut ws)
        } else {
            self.system.residual_jacobian(x, f, jac, &mut ws)
        }
        .map_err(|e| ProblemError(e.to_string()))?;
        state_at.extend_from_slice(x);
        Ok(())
    }
}

/// Which variables are fixed: the scenario's, plus those without a paired function.
fn fixed_mask(coef: &Coefficients, scenario: &Scenario) -> Vec<bool> {
    let mut mask = coef.inactive();
    for &(v, _) in &scenario.fixed {
        mask[v.index()] = true;
    }
    mask
}

/// No observer beyond the tracing one (argmin wants a concrete type even for `None`).
const NO_OBSERVER: Option<solve::TracingObserver> = None;

/// Solves from `x0` with one set of coefficients; returns the full point.
fn solve_from<Obs>(
    structure: &Structure,
    coef: &Coefficients,
    mask: &[bool],
    x0: &[f64],
    settings: &NewtonSettings,
    ws: &mut Workspace,
    observer: Option<Obs>,
) -> (Vec<f64>, McpSolution)
where
    Obs: argmin::core::observers::Observe<solve::NewtonState> + 'static,
{
    let system = structure.with(coef);
    let bounds = match system.bounds() {
        Ok(b) => b,
        Err(e) => {
            let sol = McpSolution {
                x: x0.to_vec(),
                f: vec![f64::NAN; x0.len()],
                status: SolveStatus::EvaluationFailed(format!("bounds: {e}")),
                residual: f64::INFINITY,
                info: SolveInfo::default(),
            };
            return (x0.to_vec(), sol);
        }
    };
    let Workspace { eval, solver } = ws;
    let full = SystemProblem {
        system,
        lower: bounds.lower,
        upper: bounds.upper,
        ws: RefCell::new(eval),
        state_at: RefCell::new(Vec::with_capacity(x0.len())),
    };
    let reduced = Reduced::new(&full, x0, mask);
    let start = reduced.restrict(x0);
    let sol = solve::solve_mcp_observed(&reduced, &start, settings, solver, observer);
    let x = reduced.expand(&sol.x);
    (x, sol)
}

/// The direct solve of a scenario from its benchmark point (no continuation), with an observer
/// of every Newton iteration.
pub fn solve_observed<Obs>(
    structure: &Structure,
    coef: &Coefficients,
    scenario: &Scenario,
    settings: &NewtonSettings,
    ws: &mut Workspace,
    observer: Obs,
) -> McpSolution
where
    Obs: argmin::core::observers::Observe<solve::NewtonState> + 'static,
{
    let mask = fixed_mask(coef, scenario);
    solve_from(
        structure,
        coef,
        &mask,
        &scenario.start,
        settings,
        ws,
        Some(observer),
    )
    .1
}

/// The independent check of a point: every function recomputed from `x` in the
/// cancellation-free box form (fixed variables excluded), and the dropped normalising function
/// (Walras' law).
#[derive(Debug, Clone)]
pub struct Assessment {
    /// Scaled function values, 0 for fixed variables.
    pub f: Vec<f64>,
    /// Box residuals, 0 for fixed variables.
    pub r: Vec<f64>,
    pub residual: f64,
    pub walras_residual: Option<f64>,
}

impl Assessment {
    /// True when the point is an equilibrium to `tolerance`. The dropped function is a sum of
    /// all the others weighted by prices and levels, so its tolerance is wider by
    /// [`WALRAS_FACTOR`]; a false convergence misses it by orders of magnitude more.
    pub fn verified(&self, tolerance: f64) -> bool {
        self.residual <= tolerance
            && self
                .walras_residual
                .is_none_or(|w| w <= tolerance * WALRAS_FACTOR)
    }
}

/// How much wider than the solver's tolerance the check of the dropped function is.
pub const WALRAS_FACTOR: f64 = 1e3;

/// Recomputes every function at `x` for a scenario.
pub fn assess(
    structure: &Structure,
    coef: &Coefficients,
    scenario: &Scenario,
    x: &[f64],
) -> Result<Assessment, crate::compile::EvaluationError> {
    assess_with(
        structure,
        coef,
        scenario,
        x,
        &mut EvalWorkspace::new(structure),
    )
}

/// [`assess`] in the scratch of an evaluation workspace already sized for `structure` (a
/// solve's own, once the solver is done with it). The check is just as independent: the
/// evaluation writes every entry it reads, so the numbers are those of a fresh workspace, and
/// a model over sets does not hold a second point state of 24 bytes a leaf at its peak
/// (600 MB at N = 5000).
pub fn assess_with(
    structure: &Structure,
    coef: &Coefficients,
    scenario: &Scenario,
    x: &[f64],
    ws: &mut EvalWorkspace,
) -> Result<Assessment, crate::compile::EvaluationError> {
    let system = structure.with(coef);
    let mask = fixed_mask(coef, scenario);
    let mut f = vec![0.0; x.len()];
    system.residual(x, &mut f, ws)?;
    let b = system
        .bounds()
        .map_err(|error| crate::compile::EvaluationError::Expression {
            what: "bounds".into(),
            error,
        })?;
    let walras_residual = scenario.walras.map(|v| {
        let w = f[v.index()].abs();
        if w.is_nan() {
            f64::INFINITY
        } else {
            w
        }
    });
    let mut r = box_residuals(x, &f, &b.lower, &b.upper);
    for i in 0..x.len() {
        if mask[i] {
            f[i] = 0.0;
            r[i] = 0.0;
        }
    }
    let residual = r.iter().fold(0.0f64, |a, b| a.max(*b));
    Ok(Assessment {
        f,
        r,
        residual,
        walras_residual,
    })
}

/// Levels with their ratios to the benchmark, as `NAME ×R, …` for messages.
pub fn describe_ratios(structure: &Structure, levels: &[(VarId, f64)]) -> String {
    let parts: Vec<String> = levels
        .iter()
        .map(|&(v, r)| format!("{} ×{r:.2e}", structure.var_name(v)))
        .collect();
    parts.join(", ")
}

/// Free levels that moved by more than `factor` either way from `start`, furthest first.
fn runaway(x: &[f64], start: &[f64], fixed: &[bool], factor: f64, k: usize) -> Vec<(VarId, f64)> {
    let mut far: Vec<(VarId, f64)> = (0..x.len())
        .filter(|&i| !fixed[i] && start[i] > 0.0 && x[i].is_finite() && x[i] >= 0.0)
        .map(|i| (VarId::new(i), x[i] / start[i]))
        .filter(|&(_, r)| !(1.0 / factor..=factor).contains(&r))
        .collect();
    let distance = |r: f64| if r > 0.0 { r.ln().abs() } else { f64::INFINITY };
    far.sort_by(|a, b| {
        distance(b.1)
            .partial_cmp(&distance(a.1))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    });
    far.truncate(k);
    far
}

fn worst(r: &[f64], k: usize) -> Vec<(VarId, f64)> {
    let mut idx: Vec<usize> = (0..r.len())
        .filter(|&i| r[i] > 0.0 || r[i].is_nan())
        .collect();
    idx.sort_by(|&a, &b| {
        r[b].partial_cmp(&r[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    idx.into_iter()
        .take(k)
        .map(|i| (VarId::new(i), r[i]))
        .collect()
}

/// Where a direct solve starts.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// The scenario's benchmark point (what `tokencge solve` does).
    Benchmark,
    /// A point solved before (a warm start), its fixed levels replaced by the scenario's.
    Point(&'a [f64]),
}

/// Solves a scenario: a direct solve from its benchmark point, then continuation from the
/// model's benchmark if that fails. A solve that fails is a status, never an error.
pub fn solve(
    structure: &Structure,
    coef: &Coefficients,
    scenario: &Scenario,
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> Solution {
    solve_starting(structure, coef, scenario, settings, ws, &[Start::Benchmark])
}

/// [`solve`] with direct solves from each of `starts` in turn until one converges, and the
/// continuation only when none does. The result is verified as [`solve`]'s is.
pub fn solve_starting(
    structure: &Structure,
    coef: &Coefficients,
    scenario: &Scenario,
    settings: &NewtonSettings,
    ws: &mut Workspace,
    starts: &[Start<'_>],
) -> Solution {
    // At -vv every Newton iteration's line carries the scenario's name.
    let _span = tracing::debug_span!("scenario", name = scenario.name.as_str()).entered();
    let mask = fixed_mask(coef, scenario);
    let mut info = SolveInfo::default();
    let mut attempt = |start: &Start<'_>, info: &mut SolveInfo| {
        let x0 = match start {
            Start::Benchmark => scenario.start.clone(),
            Start::Point(p) => {
                let mut x0 = p.to_vec();
                for (v, fixed) in mask.iter().enumerate() {
                    if *fixed {
                        x0[v] = scenario.start[v];
                    }
                }
                x0
            }
        };
        let (x, sol) = solve_from(structure, coef, &mask, &x0, settings, ws, NO_OBSERVER);
        info.add(&sol.info);
        (x, sol)
    };
    let (first, rest) = starts.split_first().unwrap_or((&Start::Benchmark, &[]));
    let (mut x, mut sol) = attempt(first, &mut info);
    for start in rest {
        if sol.status == SolveStatus::Converged {
            break;
        }
        (x, sol) = attempt(start, &mut info);
    }
    let mut steps = 0;
    let mut stop = None;
    if sol.status != SolveStatus::Converged {
        match continuation(structure, scenario, &mask, settings, ws) {
            Continued::Reached(xc, sc, n, inf) => {
                x = xc;
                sol = sc;
                steps = n;
                info.add(&inf);
            }
            Continued::Stalled(reached, at, n, inf) => {
                steps = n;
                info.add(&inf);
                stop = Some((reached, at));
            }
            Continued::NotStarted => {}
        }
    }
    let a = match assess_with(structure, coef, scenario, &x, &mut ws.eval) {
        Ok(a) => a,
        Err(_) => Assessment {
            f: vec![f64::NAN; x.len()],
            r: vec![f64::INFINITY; x.len()],
            residual: f64::INFINITY,
            walras_residual: scenario.walras.map(|_| f64::INFINITY),
        },
    };
    let status = if a.verified(settings.tolerance) {
        SolveStatus::Converged
    } else if sol.status == SolveStatus::Converged {
        tracing::warn!(
            target: "tokencge::solve",
            scenario = scenario.name.as_str(),
            residual = a.residual,
            walras = a.walras_residual,
            "the solver's point fails the independent check"
        );
        SolveStatus::VerificationFailed
    } else {
        sol.status.clone()
    };
    let mut worst_r = a.r.clone();
    if let (Some(v), Some(w)) = (scenario.walras, a.walras_residual) {
        // The dropped function is listed among the worst when it fails.
        if w > settings.tolerance * WALRAS_FACTOR {
            worst_r[v.index()] = w;
        }
    }
    let far = if status == SolveStatus::Converged {
        Vec::new()
    } else {
        runaway(&x, &scenario.start, &mask, 1e4, 5)
    };
    let path = match stop {
        Some((reached, at)) if status != SolveStatus::Converged => Some(PathStop {
            reached,
            moved: runaway(&at, &scenario.start, &mask, 10.0, 5),
        }),
        _ => None,
    };
    Solution {
        scenario: scenario.clone(),
        status,
        worst: worst(&worst_r, 5),
        runaway: far,
        path,
        x,
        f: a.f,
        residual: a.residual,
        walras_residual: a.walras_residual,
        info,
        continuation_steps: steps,
    }
}

/// How a continuation ended.
enum Continued {
    /// The scenario's own equilibrium, with the number of steps and the work done.
    Reached(Vec<f64>, McpSolution, usize, SolveInfo),
    /// The path stopped: the furthest fraction reached, the point there, steps and work.
    Stalled(f64, Vec<f64>, usize, SolveInfo),
    /// The model's benchmark itself does not calibrate.
    NotStarted,
}

/// Moves parameters and fixed levels from the model's benchmark to the scenario's in adaptive
/// steps, each with its own calibration.
fn continuation(
    structure: &Structure,
    scenario: &Scenario,
    mask: &[bool],
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> Continued {
    let base_params = structure.model().param_values();
    let Ok(base) = calibrate::calibrate(structure, &base_params) else {
        return Continued::NotStarted;
    };
    let base_point = base.start().to_vec();
    let target_point = &scenario.start;
    let mut x = base_point.clone();
    for &(v, _) in &scenario.fixed {
        x[v.index()] = base_point[v.index()];
    }
    let mut lambda: f64 = 0.0;
    let mut step: f64 = 0.5;
    let mut info = SolveInfo::default();
    let mut steps = 0;
    let mut last = None;
    let mut previous: Option<(f64, Vec<f64>)> = None;
    // A step starts near its answer: if it is not found in 50 iterations a shorter step is
    // cheaper than more iterations.
    let mut step_settings = settings.clone();
    step_settings.max_iterations = settings.max_iterations.min(50);
    let settings = &step_settings;
    while lambda < 1.0 {
        let next = (lambda + step).min(1.0);
        let params: Vec<f64> = base_params
            .iter()
            .zip(&scenario.params)
            .map(|(a, b)| a + next * (b - a))
            .collect();
        let Ok(coef) = calibrate::calibrate(structure, &params) else {
            return Continued::Stalled(lambda, x, steps, info);
        };
        // Secant predictor: extrapolate the path through the last two converged points (in
        // logs for positive levels, which follow taxes multiplicatively); the solver projects
        // the start into the box.
        let mut x0 = x.clone();
        if let Some((lp, xp)) = &previous {
            let r = (next - lambda) / (lambda - lp);
            for (i, v) in x0.iter_mut().enumerate() {
                let (a, b) = (xp[i], x[i]);
                *v = if a > 0.0 && b > 0.0 {
                    b * (b / a).powf(r)
                } else {
                    b + r * (b - a)
                };
            }
        }
        for &(v, _) in &scenario.fixed {
            let v = v.index();
            x0[v] = base_point[v] + next * (target_point[v] - base_point[v]);
        }
        for (v, fixed) in mask.iter().enumerate() {
            if *fixed && !scenario.fixed.iter().any(|(w, _)| w.index() == v) {
                x0[v] = target_point[v];
            }
        }
        let (mut xs, mut sol) = solve_from(structure, &coef, mask, &x0, settings, ws, NO_OBSERVER);
        info.add(&sol.info);
        steps += 1;
        if sol.status != SolveStatus::Converged && previous.is_some() {
            // Where the path bends the secant overshoots: retry from the last point itself.
            for (v, fixed) in mask.iter().enumerate() {
                if !*fixed {
                    x0[v] = x[v];
                }
            }
            (xs, sol) = solve_from(structure, &coef, mask, &x0, settings, ws, NO_OBSERVER);
            info.add(&sol.info);
            steps += 1;
        }
        tracing::debug!(target: "tokencge::solve", lambda = next, status = sol.status.label(), "continuation step");
        if sol.status == SolveStatus::Converged {
            previous = Some((lambda, std::mem::replace(&mut x, xs)));
            lambda = next;
            step = (step * 2.0).min(1.0);
            last = Some(sol);
        } else {
            // Halve the step actually taken (the last one may have been cut short at 1).
            step = 0.5 * (next - lambda);
            if step < 1e-4 || steps > 200 {
                return Continued::Stalled(lambda, x, steps, info);
            }
        }
    }
    match last {
        Some(s) => Continued::Reached(x, s, steps, info),
        None => Continued::Stalled(lambda, x, steps, info),
    }
}
