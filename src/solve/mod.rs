//! The complementarity solver. It knows nothing of economics: a problem is a function
//! `F: Rⁿ → Rⁿ` with its Jacobian and box bounds `l ≤ x ≤ u`, solved as the MCP
//! `F_i = 0` strictly inside the bounds, `F_i ≥ 0` at the lower bound, `F_i ≤ 0` at the upper.
//!
//! [`SemismoothNewton`] is an argmin `Solver` run by argmin's `Executor` over its own state type
//! ([`NewtonState`], which never clones the iterate); iterations are logged by
//! [`TracingObserver`] when `tracing` wants them. Every buffer lives in a [`SolverWorkspace`]
//! that a caller keeps from solve to solve. Failure is a [`SolveStatus`], never an `Err`.

pub mod jacobian;
pub mod linalg;
mod newton;
mod state;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use argmin::core::observers::{Observe, ObserverMode};
use argmin::core::{Executor, State, TerminationReason};

pub use jacobian::Jacobian;
pub use linalg::{Backend, LinearSolveError};
pub use newton::{RunStats, SemismoothNewton, SolverWorkspace};
pub use state::{NewtonState, TracingObserver};

/// Why a problem could not be evaluated at a point (the solver backs off from such trial
/// points; at the start point it is a status).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ProblemError(pub String);

/// A mixed complementarity problem.
pub trait ComplementarityProblem {
    fn dim(&self) -> usize;
    fn lower(&self) -> &[f64];
    fn upper(&self) -> &[f64];
    /// `F(x)`.
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), ProblemError>;
    /// `F(x)` and `∂F/∂x`, emitted into `jac` (sparse entries and rank-one terms) in an order
    /// that does not depend on `x`; the caller begins and finishes the evaluation on `jac`.
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Jacobian,
    ) -> Result<(), ProblemError>;
}

impl<P: ComplementarityProblem> ComplementarityProblem for &P {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn lower(&self) -> &[f64] {
        (**self).lower()
    }
    fn upper(&self) -> &[f64] {
        (**self).upper()
    }
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), ProblemError> {
        (**self).residual(x, f)
    }
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Jacobian,
    ) -> Result<(), ProblemError> {
        (**self).residual_jacobian(x, f, jac)
    }
}

/// Why a setting was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

/// Settings of the Newton method.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewtonSettings {
    /// Converged when the largest box residual |mid(x − u, F, x − l)| is at most this.
    pub tolerance: f64,
    pub max_iterations: u64,
    /// Weight λ of the Fischer–Burmeister part in the penalised function
    /// φ = λ·φ_FB + (1 − λ)·a₊b₊ (Chen, Chen & Kanzow 2000); 1 is plain Fischer–Burmeister.
    pub penalty_lambda: f64,
    /// Armijo constant of the line search.
    pub armijo: f64,
    /// Non-monotone memory: the line search compares with the largest merit of this many past
    /// iterates.
    pub memory: usize,
    /// Smallest step before the line search gives up.
    pub min_step: f64,
    /// Scale each function's row of the merit function by its largest Jacobian entry at the
    /// start point (convergence is still judged on the unscaled functions).
    pub scaling: bool,
    pub backend: Backend,
    pub timeout: Option<Duration>,
}

impl Default for NewtonSettings {
    fn default() -> Self {
        NewtonSettings {
            tolerance: 1e-9,
            max_iterations: 200,
            penalty_lambda: 0.95,
            armijo: 1e-4,
            memory: 5,
            min_step: 1e-12,
            scaling: true,
            backend: Backend::Auto,
            timeout: None,
        }
    }
}

impl NewtonSettings {
    /// Sets the tolerance; it must be positive.
    pub fn with_tolerance(mut self, tol: f64) -> Result<Self, SettingsError> {
        if !(tol > 0.0 && tol.is_finite()) {
            return Err(SettingsError(format!(
                "tolerance must be positive and finite, got {tol}"
            )));
        }
        self.tolerance = tol;
        Ok(self)
    }
    /// Sets the iteration limit; it must be at least 1.
    pub fn with_max_iterations(mut self, n: u64) -> Result<Self, SettingsError> {
        if n == 0 {
            return Err(SettingsError("max_iterations must be at least 1".into()));
        }
        self.max_iterations = n;
        Ok(self)
    }
    /// Sets λ of the penalised Fischer–Burmeister function; it must lie in (0, 1].
    pub fn with_penalty_lambda(mut self, l: f64) -> Result<Self, SettingsError> {
        if !(l > 0.0 && l <= 1.0) {
            return Err(SettingsError(format!(
                "penalty_lambda must lie in (0, 1], got {l}"
            )));
        }
        self.penalty_lambda = l;
        Ok(self)
    }
    /// Sets a time limit; it must be positive and at most a year.
    pub fn with_timeout(mut self, seconds: f64) -> Result<Self, SettingsError> {
        if !(seconds > 0.0 && seconds <= 365.0 * 86400.0) {
            return Err(SettingsError(format!(
                "timeout must be positive and at most a year (31536000 s), got {seconds}"
            )));
        }
        self.timeout = Some(Duration::from_secs_f64(seconds));
        Ok(self)
    }
    pub fn with_backend(mut self, b: Backend) -> Self {
        self.backend = b;
        self
    }
}

/// How a solve ended.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SolveStatus {
    Converged,
    MaxIterations,
    /// Neither the Newton step nor the gradient step decreased the merit function.
    LineSearchFailed,
    /// The Newton matrix was singular and the gradient step made no progress either.
    Singular,
    /// The Newton step was not finite and the gradient step made no progress either.
    NonFinite,
    /// The start point (or a Jacobian) could not be evaluated.
    EvaluationFailed(String),
    Timeout,
    /// The solver stopped at a point that the independent check of every function (the
    /// dropped numeraire equation included) rejects. Set by the caller that verifies a solve;
    /// the solver itself never returns it.
    VerificationFailed,
}

impl SolveStatus {
    pub fn label(&self) -> &'static str {
        match self {
            SolveStatus::Converged => "converged",
            SolveStatus::MaxIterations => "max_iterations",
            SolveStatus::LineSearchFailed => "line_search_failed",
            SolveStatus::Singular => "singular",
            SolveStatus::NonFinite => "non_finite",
            SolveStatus::EvaluationFailed(_) => "evaluation_failed",
            SolveStatus::Timeout => "timeout",
            SolveStatus::VerificationFailed => "verification_failed",
        }
    }
}

/// Counts and timings of a solve.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SolveInfo {
    pub iterations: u64,
    pub residual_evaluations: u64,
    pub jacobian_evaluations: u64,
    /// Iterations whose Newton matrix could not be factored (a gradient step was taken).
    pub singular_steps: u64,
    /// Symbolic analyses of the Newton matrix's pattern (1 when the pattern held throughout).
    pub analyses: u64,
    /// Factorisations of Newton matrices, and products with them (GMRES iterations).
    pub factorisations: u64,
    pub products: u64,
    pub seconds: f64,
}

impl SolveInfo {
    /// Adds another solve's counts and time to these.
    pub fn add(&mut self, other: &SolveInfo) {
        self.iterations += other.iterations;
        self.residual_evaluations += other.residual_evaluations;
        self.jacobian_evaluations += other.jacobian_evaluations;
        self.singular_steps += other.singular_steps;
        self.analyses += other.analyses;
        self.factorisations += other.factorisations;
        self.products += other.products;
        self.seconds += other.seconds;
    }
}

/// The result of a complementarity solve.
#[derive(Debug, Clone)]
pub struct McpSolution {
    pub x: Vec<f64>,
    pub f: Vec<f64>,
    pub status: SolveStatus,
    /// Largest box residual at `x`.
    pub residual: f64,
    pub info: SolveInfo,
}

/// The box residual of one component: |mid(x − u, F, x − l)|, which is |x − mid(l, u, x − F)|
/// computed without cancellation (at x = 1e11, x − (x − F) rounds a small F to 0).
#[inline]
pub fn box_residual(x: f64, f: f64, lower: f64, upper: f64) -> f64 {
    // f64::min/max ignore NaN: test F itself.
    let r = f.min(x - lower).max(x - upper);
    if f.is_nan() || r.is_nan() {
        f64::INFINITY
    } else {
        r.abs()
    }
}

/// The box residual of each component.
pub fn box_residuals(x: &[f64], f: &[f64], lower: &[f64], upper: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| box_residual(x[i], f[i], lower[i], upper[i]))
        .collect()
}

/// The largest box residual.
pub fn max_box_residual(x: &[f64], f: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    (0..x.len()).fold(0.0f64, |a, i| {
        a.max(box_residual(x[i], f[i], lower[i], upper[i]))
    })
}

/// Solves an MCP from `x0` (projected into the bounds first), reusing `ws`.
pub fn solve_mcp<P: ComplementarityProblem>(
    problem: P,
    x0: &[f64],
    settings: &NewtonSettings,
    ws: &mut SolverWorkspace,
) -> McpSolution {
    solve_mcp_observed(problem, x0, settings, ws, None::<TracingObserver>)
}

/// [`solve_mcp`] with an extra observer of every iteration (tests, progress displays).
pub fn solve_mcp_observed<P: ComplementarityProblem, Obs: Observe<NewtonState> + 'static>(
    problem: P,
    x0: &[f64],
    settings: &NewtonSettings,
    ws: &mut SolverWorkspace,
    observer: Option<Obs>,
) -> McpSolution {
    let started = Instant::now();
    let n = problem.dim();
    let mut x: Vec<f64> = (0..n)
        .map(|i| x0[i].max(problem.lower()[i]).min(problem.upper()[i]))
        .collect();
    let mut f0 = vec![0.0; n];
    if let Err(e) = problem.residual(&x, &mut f0) {
        return McpSolution {
            x,
            f: f0,
            status: SolveStatus::EvaluationFailed(format!("at the start point: {e}")),
            residual: f64::INFINITY,
            info: SolveInfo {
                residual_evaluations: 1,
                seconds: started.elapsed().as_secs_f64(),
                ..Default::default()
            },
        };
    }
    let solver = SemismoothNewton::new(settings.clone(), std::mem::take(ws));
    let mut state = NewtonState::new();
    state.max_iters = settings.max_iterations;
    std::mem::swap(&mut state.x, &mut x);
    state.f = f0;
    // argmin's timer (needed only for a timeout) builds a record per iteration for observers.
    let mut exec = Executor::new(problem, solver)
        .configure(|_| state)
        .timer(settings.timeout.is_some());
    if let Some(o) = observer {
        exec = exec.add_observer(o, ObserverMode::Always);
    }
    // Observers only when tracing wants their events: argmin builds a key-value record per
    // iteration for observers, which would allocate in the hot loop.
    if tracing::enabled!(target: "tokencge::solve", tracing::Level::DEBUG) {
        exec = exec.add_observer(TracingObserver, ObserverMode::Always);
    }
    if let Some(t) = settings.timeout {
        exec = exec.timeout(t);
    }
    let (solver, state) = match exec.run() {
        Ok(r) => (r.solver, r.state),
        Err(e) => {
            // Our solver never returns Err; an observer might.
            return McpSolution {
                x: x0.to_vec(),
                f: vec![f64::NAN; n],
                status: SolveStatus::EvaluationFailed(e.to_string()),
                residual: f64::INFINITY,
                info: SolveInfo {
                    seconds: started.elapsed().as_secs_f64(),
                    ..Default::default()
                },
            };
        }
    };
    let (solver_ws, stats) = solver.finish();
    *ws = solver_ws;
    let exit = stats.exit;
    let residual = state.get_cost();
    let status = match (state.get_termination_reason(), exit) {
        _ if residual <= settings.tolerance => SolveStatus::Converged,
        (_, Some(status)) => status,
        (Some(TerminationReason::MaxItersReached), _) => SolveStatus::MaxIterations,
        (Some(TerminationReason::Timeout), _) => SolveStatus::Timeout,
        _ => SolveStatus::LineSearchFailed,
    };
    McpSolution {
        info: SolveInfo {
            iterations: state.get_iter(),
            residual_evaluations: state.residual_evaluations(),
            jacobian_evaluations: state.jacobian_evaluations(),
            singular_steps: stats.singular_steps,
            analyses: stats.analyses,
            factorisations: stats.linear.factorisations,
            products: stats.linear.products,
            seconds: started.elapsed().as_secs_f64(),
        },
        x: state.x,
        f: state.f,
        status,
        residual,
    }
}

/// A problem with some variables fixed: their functions are dropped and the rest is solved in
/// the free variables only. Scratch buffers are reused from call to call.
pub struct Reduced<'a, P: ComplementarityProblem> {
    pub inner: &'a P,
    /// Indices of the free variables in the full problem.
    pub free: Vec<usize>,
    /// Full index → reduced index (`usize::MAX` for fixed variables).
    pub position: Vec<usize>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    scratch: RefCell<ReducedScratch>,
}

struct ReducedScratch {
    x: Vec<f64>,
    f: Vec<f64>,
}

impl<'a, P: ComplementarityProblem> Reduced<'a, P> {
    /// `template` holds the fixed values (and the full length).
    pub fn new(inner: &'a P, template: &[f64], fixed: &[bool]) -> Self {
        let free: Vec<usize> = (0..inner.dim()).filter(|&i| !fixed[i]).collect();
        let mut position = vec![usize::MAX; inner.dim()];
        for (k, &i) in free.iter().enumerate() {
            position[i] = k;
        }
        let lower = free.iter().map(|&i| inner.lower()[i]).collect();
        let upper = free.iter().map(|&i| inner.upper()[i]).collect();
        Reduced {
            inner,
            free,
            position,
            lower,
            upper,
            scratch: RefCell::new(ReducedScratch {
                x: template.to_vec(),
                f: vec![0.0; template.len()],
            }),
        }
    }
    /// The full point of a reduced one.
    pub fn expand(&self, x: &[f64]) -> Vec<f64> {
        let mut full = self.scratch.borrow().x.clone();
        for (k, &i) in self.free.iter().enumerate() {
            full[i] = x[k];
        }
        full
    }
    pub fn restrict(&self, full: &[f64]) -> Vec<f64> {
        self.free.iter().map(|&i| full[i]).collect()
    }
}

impl<P: ComplementarityProblem> ComplementarityProblem for Reduced<'_, P> {
    fn dim(&self) -> usize {
        self.free.len()
    }
    fn lower(&self) -> &[f64] {
        &self.lower
    }
    fn upper(&self) -> &[f64] {
        &self.upper
    }
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), ProblemError> {
        let mut s = self.scratch.borrow_mut();
        let ReducedScratch { x: fx, f: ff, .. } = &mut *s;
        for (k, &i) in self.free.iter().enumerate() {
            fx[i] = x[k];
        }
        self.inner.residual(fx, ff)?;
        for (k, &i) in self.free.iter().enumerate() {
            f[k] = ff[i];
        }
        Ok(())
    }
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Jacobian,
    ) -> Result<(), ProblemError> {
        let mut s = self.scratch.borrow_mut();
        let ReducedScratch { x: fx, f: ff } = &mut *s;
        for (k, &i) in self.free.iter().enumerate() {
            fx[i] = x[k];
        }
        // The inner problem emits in its own indices; the map drops the fixed ones.
        jac.set_map(self.free.len(), &self.position);
        self.inner.residual_jacobian(fx, ff, jac)?;
        for (k, &i) in self.free.iter().enumerate() {
            f[k] = ff[i];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small MCP with known solution: bounds [0, ∞) × [0, 1] × free.
    struct Toy {
        lower: Vec<f64>,
        upper: Vec<f64>,
    }
    impl ComplementarityProblem for Toy {
        fn dim(&self) -> usize {
            3
        }
        fn lower(&self) -> &[f64] {
            &self.lower
        }
        fn upper(&self) -> &[f64] {
            &self.upper
        }
        fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), ProblemError> {
            // F0 = x0 + 1 (> 0 always: x0 = 0 at the lower bound)
            // F1 = x1 - 2 (wants x1 = 2, capped at the upper bound 1: F1 = -1 <= 0)
            // F2 = x2^3 + x0 - 8 (free: x2 = 2)
            f[0] = x[0] + 1.0;
            f[1] = x[1] - 2.0;
            f[2] = x[2].powi(3) + x[0] - 8.0;
            Ok(())
        }
        fn residual_jacobian(
            &self,
            x: &[f64],
            f: &mut [f64],
            jac: &mut Jacobian,
        ) -> Result<(), ProblemError> {
            self.residual(x, f)?;
            jac.add(0, 0, 1.0);
            jac.add(1, 1, 1.0);
            jac.add(2, 2, 3.0 * x[2] * x[2]);
            jac.add(2, 0, 1.0);
            Ok(())
        }
    }

    fn toy() -> Toy {
        Toy {
            lower: vec![0.0, 0.0, f64::NEG_INFINITY],
            upper: vec![f64::INFINITY, 1.0, f64::INFINITY],
        }
    }

    #[test]
    fn solves_a_box_constrained_mcp_with_active_bounds() {
        for backend in [Backend::Dense, Backend::Sparse, Backend::Krylov] {
            let mut ws = SolverWorkspace::default();
            let settings = NewtonSettings::default().with_backend(backend);
            let s = solve_mcp(toy(), &[3.0, 0.5, 1.0], &settings, &mut ws);
            assert_eq!(s.status, SolveStatus::Converged, "{backend:?}: {s:?}");
            assert!(s.x[0].abs() < 1e-12);
            assert!((s.x[1] - 1.0).abs() < 1e-12);
            assert!((s.x[2] - 2.0).abs() < 1e-9);
            assert!(s.info.iterations > 0 && s.info.jacobian_evaluations > 0);
            assert_eq!(s.info.analyses, 1);
        }
    }

    #[test]
    fn a_fixed_variable_drops_out_of_the_reduced_problem() {
        let p = toy();
        // Fix x0 at 1: F2 = x2^3 + 1 - 8 gives x2 = 7^(1/3).
        let red = Reduced::new(&p, &[1.0, 0.0, 0.0], &[true, false, false]);
        let mut ws = SolverWorkspace::default();
        let s = solve_mcp(&red, &[0.5, 1.0], &NewtonSettings::default(), &mut ws);
        assert_eq!(s.status, SolveStatus::Converged);
        let full = red.expand(&s.x);
        assert_eq!(full[0], 1.0);
        assert!((full[2] - 7f64.cbrt()).abs() < 1e-9);
    }

    #[test]
    fn settings_setters_validate() {
        let s = NewtonSettings::default();
        assert_eq!(
            s.clone().with_tolerance(0.0).unwrap_err().0,
            "tolerance must be positive and finite, got 0"
        );
        assert_eq!(
            s.clone().with_max_iterations(0).unwrap_err().0,
            "max_iterations must be at least 1"
        );
        assert_eq!(
            s.clone().with_penalty_lambda(1.5).unwrap_err().0,
            "penalty_lambda must lie in (0, 1], got 1.5"
        );
        assert!(s.clone().with_timeout(1e20).is_err());
        assert!(s.clone().with_timeout(f64::NAN).is_err());
        assert_eq!(s.with_tolerance(1e-6).unwrap().tolerance, 1e-6);
    }

    #[test]
    fn box_residual_is_zero_exactly_at_complementary_points() {
        let r = box_residuals(
            &[0.0, 1.0, 2.0],
            &[3.0, -1.0, 0.0],
            &[0.0, 0.0, f64::NEG_INFINITY],
            &[f64::INFINITY, 1.0, f64::INFINITY],
        );
        assert_eq!(r, vec![0.0, 0.0, 0.0]);
        let r = box_residuals(&[0.5], &[3.0], &[0.0], &[f64::INFINITY]);
        assert_eq!(r, vec![0.5]);
    }

    #[test]
    fn box_residual_does_not_cancel_at_huge_levels() {
        // |x − mid(l, u, x − F)| rounds to 0 here; the cancellation-free form does not.
        let (x, f): (f64, f64) = (1e11, 1e-6);
        assert!((x - (x - f)).abs() != f);
        assert_eq!(box_residual(x, f, 0.0, f64::INFINITY), 1e-6);
        assert_eq!(
            box_residual(1.0, f64::NAN, 0.0, f64::INFINITY),
            f64::INFINITY
        );
    }
}
