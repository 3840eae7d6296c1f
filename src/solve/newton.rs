//! Semismooth Newton on the penalised Fischer–Burmeister reformulation of a box MCP, with a
//! non-monotone projected Armijo line search and a steepest-descent fallback.
//!
//! Each component is mapped to Φᵢ(x) whose zeros are exactly the complementary points:
//! free: Φ = F; [l, ∞): φ(x − l, F); (−∞, u]: −φ(u − x, −F); [l, u]: φ(x − l, −φ(u − x, −F))
//! (Billups). The generalized Jacobian row is Daᵢ·eᵢ + Dbᵢ·∇Fᵢ. Iterates are projected into
//! the box so that the economic functions are only evaluated where they are defined.
//!
//! All vectors live in [`SolverWorkspace`]. The Jacobian's pattern is recorded at the first
//! iteration of a solve (and compared with the last one recorded, so a workspace reused on the
//! same problem keeps its analysis); later iterations write values only, and the linear solver
//! refactors in place, so an iteration allocates nothing.

use std::collections::VecDeque;

use argmin::core::{Error, Problem, Solver, State, TerminationReason, TerminationStatus, KV};

use super::jacobian::Jacobian;
use super::linalg::{self, LinearSolveError, LinearSolver, LinearWork, NewtonMatrix};
use super::{max_box_residual, ComplementarityProblem, NewtonSettings, NewtonState, SolveStatus};

/// Every buffer of the Newton method, kept from solve to solve (by a thread, a sweep, a
/// dynamic path) so that only the first iteration of the first solve allocates.
#[derive(Default)]
pub struct SolverWorkspace {
    phi: Vec<f64>,
    da: Vec<f64>,
    db: Vec<f64>,
    grad: Vec<f64>,
    direction: Vec<f64>,
    trial_x: Vec<f64>,
    trial_f: Vec<f64>,
    trial_phi: Vec<f64>,
    scratch: Vec<f64>,
    jac: Jacobian,
    /// The linear solver, analysed for the pattern last recorded in `jac`.
    linear: Option<(linalg::Choice, Box<dyn LinearSolver>)>,
    history: VecDeque<f64>,
    /// Row scales of the merit function (1 when scaling is off), set at the first iteration.
    scale: Vec<f64>,
}

impl std::fmt::Debug for SolverWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolverWorkspace")
            .field("n", &self.phi.len())
            .field("entries", &self.jac.nnz())
            .field("rank", &self.jac.rank())
            .finish()
    }
}

/// The solver: its settings and the workspace it borrows for the run.
pub struct SemismoothNewton {
    settings: NewtonSettings,
    ws: SolverWorkspace,
    lower: Vec<f64>,
    upper: Vec<f64>,
    /// Why the iteration stopped early, decided here (never read back from a message).
    exit: Option<SolveStatus>,
    singular_steps: u64,
    analyses: u64,
    /// Work of the linear solvers during this run, and the work the current one had done
    /// before it (in an earlier run on the same workspace).
    linear_work: LinearWork,
    baseline: LinearWork,
    /// The Jacobian's pattern changed at the last evaluation: the linear solver must analyse it.
    pattern_changed: bool,
}

/// What a run did besides iterating: its early exit, singular Newton matrices met, symbolic
/// analyses, and the linear solvers' work.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub exit: Option<SolveStatus>,
    pub singular_steps: u64,
    pub analyses: u64,
    pub linear: LinearWork,
}

impl SemismoothNewton {
    pub fn new(settings: NewtonSettings, ws: SolverWorkspace) -> Self {
        SemismoothNewton {
            settings,
            ws,
            lower: Vec::new(),
            upper: Vec::new(),
            exit: None,
            singular_steps: 0,
            analyses: 0,
            linear_work: LinearWork::default(),
            baseline: LinearWork::default(),
            // The first iteration records the pattern and says whether it changed since the
            // workspace's linear solver analysed it.
            pattern_changed: false,
        }
    }
    /// The workspace and what the run did.
    pub fn finish(mut self) -> (SolverWorkspace, RunStats) {
        self.account_linear_work();
        let stats = RunStats {
            exit: self.exit,
            singular_steps: self.singular_steps,
            analyses: self.analyses,
            linear: self.linear_work,
        };
        (self.ws, stats)
    }
    /// Adds the current linear solver's work during this run to the run's (before it is
    /// replaced or returned).
    fn account_linear_work(&mut self) {
        if let Some((_, solver)) = self.ws.linear.as_ref() {
            let w = solver.work();
            self.linear_work.factorisations += w.factorisations - self.baseline.factorisations;
            self.linear_work.products += w.products - self.baseline.products;
        }
        self.baseline = LinearWork::default();
    }
}

/// Penalised Fischer–Burmeister function φ(a, b) = λ(a + b − √(a² + b²)) + (1 − λ)a₊b₊ and
/// an element of its generalized gradient.
#[inline]
fn phi(a: f64, b: f64, lambda: f64) -> (f64, f64, f64) {
    let r = a.hypot(b);
    let (fa, fb) = if r > 0.0 {
        (1.0 - a / r, 1.0 - b / r)
    } else {
        (
            1.0 - std::f64::consts::FRAC_1_SQRT_2,
            1.0 - std::f64::consts::FRAC_1_SQRT_2,
        )
    };
    let (ap, bp) = (a.max(0.0), b.max(0.0));
    let v = lambda * (a + b - r) + (1.0 - lambda) * ap * bp;
    let da = lambda * fa + (1.0 - lambda) * if a > 0.0 { bp } else { 0.0 };
    let db = lambda * fb + (1.0 - lambda) * if b > 0.0 { ap } else { 0.0 };
    (v, da, db)
}

/// Φ and, when `scalings` is given, the diagonal scalings Da (of x) and Db (of F).
fn reformulate(
    x: &[f64],
    f: &[f64],
    (lower, upper): (&[f64], &[f64]),
    scale: &[f64],
    lambda: f64,
    p: &mut [f64],
    mut scalings: Option<(&mut [f64], &mut [f64])>,
) {
    for i in 0..x.len() {
        let (l, u) = (lower[i], upper[i]);
        // Φ is built on F_i / s_i: the same complementary points, a better-balanced merit.
        let fi = f[i] / scale[i];
        let (v, a, b) = match (l.is_finite(), u.is_finite()) {
            (false, false) => (fi, 0.0, 1.0),
            (true, false) => phi(x[i] - l, fi, lambda),
            (false, true) => {
                let (v, a, b) = phi(u - x[i], -fi, lambda);
                (-v, a, b)
            }
            (true, true) => {
                let (w, wa, wb) = phi(u - x[i], -fi, lambda);
                let (v, va, vb) = phi(x[i] - l, -w, lambda);
                (v, va + vb * wa, vb * wb)
            }
        };
        p[i] = v;
        if let Some((da, db)) = scalings.as_mut() {
            da[i] = a;
            // The row of Φ's Jacobian is Da·eᵢ + Db·∇Fᵢ/sᵢ.
            db[i] = b / scale[i];
        }
    }
}

/// Forcing term η of the Newton step (‖H d + Φ‖ ≤ η‖Φ‖, for iterative linear solvers):
/// ‖Φ‖, which keeps Newton's local convergence superlinear, at most 10⁻², and at least what
/// the stopping test needs (Eisenstat–Walker's safeguard, as in Kelley's `nsoli`): a step
/// solved to η leaves a residual of about η‖Φ‖ (the quadratic term is far smaller near the
/// solution), so η = 0.1·tol/(‖Φ‖·max scale) already meets a tolerance `tol` on the unscaled
/// functions (Φ is built on F/scale). Solving tighter than that is oversolving: at scale the
/// last step's GMRES products to ‖Φ‖ ≈ 10⁻⁷ cost a Newton iteration's worth of passes over
/// the input-output block for digits the test does not ask for. Should the looser step miss
/// the tolerance after all, the next iteration takes another.
fn forcing_term(psi: f64, tolerance: f64, scale: &[f64]) -> f64 {
    let norm = (2.0 * psi).sqrt();
    let smax = scale.iter().copied().fold(1.0f64, f64::max);
    let floor = if norm > 0.0 {
        0.1 * tolerance / (norm * smax)
    } else {
        0.0
    };
    norm.max(floor).min(1e-2)
}

fn merit(p: &[f64]) -> f64 {
    0.5 * p.iter().map(|v| v * v).sum::<f64>()
}

fn resize(v: &mut Vec<f64>, n: usize) {
    v.clear();
    v.resize(n, 0.0);
}

impl SemismoothNewton {
    /// Projected backtracking along `ws.direction`; on success the accepted point is in
    /// `ws.trial_x`/`ws.trial_f` and its merit and step are returned.
    fn line_search<O: ComplementarityProblem>(
        &mut self,
        problem: &mut Problem<O>,
        x: &[f64],
        slope: f64,
        sufficient: f64,
    ) -> Option<(f64, f64)> {
        let lambda = self.settings.penalty_lambda;
        let ws = &mut self.ws;
        let mut t = 1.0;
        while t >= self.settings.min_step {
            for (i, xt) in ws.trial_x.iter_mut().enumerate() {
                *xt = (x[i] + t * ws.direction[i])
                    .max(self.lower[i])
                    .min(self.upper[i]);
            }
            let ok = problem
                .problem("residual_count", |pp| {
                    Ok(pp.residual(&ws.trial_x, &mut ws.trial_f).is_ok())
                })
                .unwrap_or(false);
            if ok && ws.trial_f.iter().all(|v| v.is_finite()) {
                reformulate(
                    &ws.trial_x,
                    &ws.trial_f,
                    (&self.lower, &self.upper),
                    &ws.scale,
                    lambda,
                    &mut ws.trial_phi,
                    None,
                );
                let psit = merit(&ws.trial_phi);
                if psit <= sufficient + self.settings.armijo * t * slope {
                    return Some((psit, t));
                }
            }
            t *= 0.5;
        }
        None
    }

    /// Factors H = Da + Db·J (analysing the Jacobian's pattern first when it changed or the
    /// backend choice did) and solves H d = −Φ into `direction`, to a relative residual of
    /// `rtol` for an iterative solver.
    fn newton_direction(&mut self, n: usize, rtol: f64) -> Result<(), LinearSolveError> {
        let choice = linalg::choose(self.settings.backend, &self.ws.jac);
        let analysed = matches!(&self.ws.linear, Some((c, _)) if *c == choice);
        if self.pattern_changed || !analysed {
            self.account_linear_work();
            self.ws.linear = None;
            let mut solver = linalg::new_solver(choice);
            solver.analyse(&self.ws.jac)?;
            self.ws.linear = Some((choice, solver));
            self.analyses += 1;
            self.pattern_changed = false;
        }
        let ws = &mut self.ws;
        let h = NewtonMatrix {
            jac: &ws.jac,
            row_scale: &ws.db,
            diag: &ws.da,
        };
        let (_, solver) = ws.linear.as_mut().expect("analysed above");
        solver.factor(&h)?;
        for i in 0..n {
            ws.direction[i] = -ws.phi[i];
        }
        solver.solve_in_place(&h, &mut ws.direction, rtol)?;
        if ws.direction.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(LinearSolveError::NotFinite)
        }
    }

    /// Evaluates F and its Jacobian at `x` into `f` and the workspace's Jacobian: recording the
    /// pattern at a solve's first iteration (or when the values no longer fit it).
    fn evaluate<O: ComplementarityProblem>(
        &mut self,
        problem: &mut Problem<O>,
        x: &[f64],
        f: &mut [f64],
        first: bool,
    ) -> Result<Result<(), super::ProblemError>, Error> {
        let n = x.len();
        let mut record = first;
        loop {
            let jac = &mut self.ws.jac;
            jac.begin(n, record);
            let evaluated =
                problem.problem("jacobian_count", |p| Ok(p.residual_jacobian(x, f, jac)))?;
            if evaluated.is_err() {
                return Ok(evaluated);
            }
            match jac.finish() {
                Ok(changed) => {
                    self.pattern_changed |= changed;
                    return Ok(Ok(()));
                }
                // The values did not fit the recorded pattern: record it again.
                Err(_) if !record => record = true,
                Err(e) => return Ok(Err(super::ProblemError(e.to_string()))),
            }
        }
    }
}

impl<O: ComplementarityProblem> Solver<O, NewtonState> for SemismoothNewton {
    fn name(&self) -> &str {
        "semismooth Newton (penalised Fischer-Burmeister)"
    }

    fn init(
        &mut self,
        problem: &mut Problem<O>,
        mut state: NewtonState,
    ) -> Result<(NewtonState, Option<KV>), Error> {
        let Some(inner) = problem.problem.as_ref() else {
            return Err(Error::msg("no problem"));
        };
        self.lower = inner.lower().to_vec();
        self.upper = inner.upper().to_vec();
        let n = state.x.len();
        // The caller evaluated F at the start point; count it here.
        problem.problem("residual_count", |_| Ok(()))?;
        let ws = &mut self.ws;
        for v in [
            &mut ws.phi,
            &mut ws.da,
            &mut ws.db,
            &mut ws.grad,
            &mut ws.direction,
            &mut ws.trial_x,
            &mut ws.trial_f,
            &mut ws.trial_phi,
            &mut ws.scratch,
        ] {
            resize(v, n);
        }
        ws.scale.clear();
        ws.scale.resize(n, 1.0);
        ws.jac.clear_map();
        self.baseline = ws
            .linear
            .as_ref()
            .map(|(_, s)| s.work())
            .unwrap_or_default();

        state.cost = max_box_residual(&state.x, &state.f, &self.lower, &self.upper);
        reformulate(
            &state.x,
            &state.f,
            (&self.lower, &self.upper),
            &ws.scale,
            self.settings.penalty_lambda,
            &mut ws.phi,
            None,
        );
        ws.history.clear();
        ws.history.reserve(self.settings.memory.max(1) + 1);
        ws.history.push_back(merit(&ws.phi));
        Ok((state, None))
    }

    fn next_iter(
        &mut self,
        problem: &mut Problem<O>,
        mut state: NewtonState,
    ) -> Result<(NewtonState, Option<KV>), Error> {
        let n = state.x.len();
        let first = state.get_iter() == 0;
        let mut f = std::mem::take(&mut state.f);
        let evaluated = self.evaluate(problem, &state.x, &mut f, first);
        state.f = f;
        if let Err(e) = evaluated? {
            self.exit = Some(SolveStatus::EvaluationFailed(format!(
                "evaluation of the Jacobian failed: {e}"
            )));
            let reason = TerminationReason::SolverExit("evaluation failed".into());
            return Ok((state.terminate_with(reason), None));
        }
        let lambda = self.settings.penalty_lambda;
        let rescale = self.settings.scaling && state.get_iter() == 0;
        if rescale {
            // Each function scaled by its largest Jacobian entry at the start (at least 1), as
            // PATH scales: the merit function then weighs a market of value 1e3 like one of
            // value 1, and the line search stops being ruled by the largest rows.
            let ws = &mut self.ws;
            ws.scale.iter_mut().for_each(|s| *s = 1.0);
            ws.jac.row_max_abs(&mut ws.scale);
        }
        {
            let ws = &mut self.ws;
            reformulate(
                &state.x,
                &state.f,
                (&self.lower, &self.upper),
                &ws.scale,
                lambda,
                &mut ws.phi,
                Some((&mut ws.da, &mut ws.db)),
            );
        }
        let psi = merit(&self.ws.phi);
        if rescale {
            // The start's merit, unscaled in `init`, is the line search's first reference.
            self.ws.history.clear();
            self.ws.history.push_back(psi);
        }
        let reference = self.ws.history.iter().copied().fold(psi, f64::max);
        let eta = forcing_term(psi, self.settings.tolerance, &self.ws.scale);
        let newton = self.newton_direction(n, eta);
        if newton.is_err() {
            self.singular_steps += 1;
        }
        let mut outcome = None;
        state.direction = "newton";
        if newton.is_ok() {
            // For a Newton step solved to η, ∇Ψᵀd ≤ −(1 − η)‖Φ‖².
            outcome = self.line_search(problem, &state.x, -2.0 * (1.0 - eta) * psi, reference);
        }
        if outcome.is_none() {
            state.direction = "gradient";
            let ws = &mut self.ws;
            // ∇Ψ = Hᵀ Φ with H = Da + Db·J, at the current point (Φ, Da, Db and J are still
            // its own): only this fallback needs it, and a product with Jᵀ streams the whole
            // Jacobian (the input-output block at scale), so a Newton step that succeeds
            // skips it.
            for i in 0..n {
                ws.scratch[i] = ws.db[i] * ws.phi[i];
                ws.grad[i] = ws.da[i] * ws.phi[i];
            }
            ws.jac.tr_mul_add(&ws.scratch, &mut ws.grad);
            for i in 0..n {
                ws.direction[i] = -ws.grad[i];
            }
            let slope = -ws.grad.iter().map(|g| g * g).sum::<f64>();
            if slope < 0.0 {
                outcome = self.line_search(problem, &state.x, slope, psi);
            }
        }
        let Some((psit, t)) = outcome else {
            state.cost = max_box_residual(&state.x, &state.f, &self.lower, &self.upper);
            state.direction = "none";
            self.exit = Some(match newton {
                Err(LinearSolveError::Singular) => SolveStatus::Singular,
                Err(LinearSolveError::NotFinite) => SolveStatus::NonFinite,
                _ => SolveStatus::LineSearchFailed,
            });
            let reason = TerminationReason::SolverExit("line search failed".into());
            return Ok((state.terminate_with(reason), None));
        };
        let ws = &mut self.ws;
        ws.history.push_back(psit);
        while ws.history.len() > self.settings.memory.max(1) {
            ws.history.pop_front();
        }
        std::mem::swap(&mut state.x, &mut ws.trial_x);
        std::mem::swap(&mut state.f, &mut ws.trial_f);
        state.cost = max_box_residual(&state.x, &state.f, &self.lower, &self.upper);
        state.step = t;
        Ok((state, None))
    }

    fn terminate(&mut self, state: &NewtonState) -> TerminationStatus {
        if state.get_cost() <= self.settings.tolerance {
            TerminationStatus::Terminated(TerminationReason::SolverConverged)
        } else {
            TerminationStatus::NotTerminated
        }
    }
}
