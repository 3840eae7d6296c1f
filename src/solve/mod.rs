//! The complementarity solver. It knows nothing of economics: a problem is a function
//! `F: Rⁿ → Rⁿ` with its Jacobian and box bounds `l ≤ x ≤ u`, solved as the MCP
//! `F_i = 0` strictly inside the bounds, `F_i ≥ 0` at the lower bound, `F_i ≤ 0` at the upper.
//!
//! [`SemismoothNewton`] is an argmin `Solver` run by argmin's `Executor`; iterations are logged
//! by [`TracingObserver`]. Failure is a [`SolveStatus`], never an `Err`.

pub mod linalg;
mod newton;

use std::time::{Duration, Instant};

use argmin::core::observers::Observe;
use argmin::core::observers::ObserverMode;
use argmin::core::{Executor, IterState, State, TerminationReason, KV};

pub use linalg::Backend;
pub use newton::SemismoothNewton;

/// A mixed complementarity problem.
pub trait ComplementarityProblem {
    fn dim(&self) -> usize;
    fn lower(&self) -> &[f64];
    fn upper(&self) -> &[f64];
    /// `F(x)`; `Err` means the point is not acceptable (a trial point to back off from).
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), String>;
    /// `F(x)` and `∂F/∂x` as triplets (duplicates add up).
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Vec<(usize, usize, f64)>,
    ) -> Result<(), String>;
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
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), String> {
        (**self).residual(x, f)
    }
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Vec<(usize, usize, f64)>,
    ) -> Result<(), String> {
        (**self).residual_jacobian(x, f, jac)
    }
}

/// Settings of the Newton method.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewtonSettings {
    /// Converged when the largest box residual |x − mid(l, u, x − F)| is at most this.
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
            backend: Backend::Auto,
            timeout: None,
        }
    }
}

impl NewtonSettings {
    /// Sets the tolerance; it must be positive.
    pub fn with_tolerance(mut self, tol: f64) -> Result<Self, String> {
        if !(tol > 0.0 && tol.is_finite()) {
            return Err(format!("tolerance must be positive and finite, got {tol}"));
        }
        self.tolerance = tol;
        Ok(self)
    }
    /// Sets the iteration limit; it must be at least 1.
    pub fn with_max_iterations(mut self, n: u64) -> Result<Self, String> {
        if n == 0 {
            return Err("max_iterations must be at least 1".into());
        }
        self.max_iterations = n;
        Ok(self)
    }
    /// Sets λ of the penalised Fischer–Burmeister function; it must lie in (0, 1].
    pub fn with_penalty_lambda(mut self, l: f64) -> Result<Self, String> {
        if !(l > 0.0 && l <= 1.0) {
            return Err(format!("penalty_lambda must lie in (0, 1], got {l}"));
        }
        self.penalty_lambda = l;
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
    LineSearchFailed,
    /// The start point could not be evaluated.
    EvaluationFailed(String),
    Timeout,
}

impl SolveStatus {
    pub fn label(&self) -> &'static str {
        match self {
            SolveStatus::Converged => "converged",
            SolveStatus::MaxIterations => "max_iterations",
            SolveStatus::LineSearchFailed => "line_search_failed",
            SolveStatus::EvaluationFailed(_) => "evaluation_failed",
            SolveStatus::Timeout => "timeout",
        }
    }
}

/// Counts and timings of a solve.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SolveInfo {
    pub iterations: u64,
    pub residual_evaluations: u64,
    pub jacobian_evaluations: u64,
    pub seconds: f64,
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

/// The box residual |x − mid(l, u, x − F)| of each component.
pub fn box_residuals(x: &[f64], f: &[f64], lower: &[f64], upper: &[f64]) -> Vec<f64> {
    (0..x.len())
        .map(|i| {
            let y = x[i] - f[i];
            let m = y.max(lower[i]).min(upper[i]);
            (x[i] - m).abs()
        })
        .collect()
}

pub(crate) fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |a, b| a.max(b.abs()))
}

/// The state argmin keeps: parameter = x, residuals = F(x), cost = largest box residual.
pub type NewtonState = IterState<Vec<f64>, (), (), (), Vec<f64>, f64>;

/// Turns iterations into `tracing` events (target `tokencge::solve`).
pub struct TracingObserver;

impl Observe<NewtonState> for TracingObserver {
    fn observe_init(
        &mut self,
        name: &str,
        state: &NewtonState,
        _kv: &KV,
    ) -> Result<(), argmin::core::Error> {
        tracing::debug!(target: "tokencge::solve", solver = name, residual = state.get_cost(), "start");
        Ok(())
    }
    fn observe_iter(&mut self, state: &NewtonState, kv: &KV) -> Result<(), argmin::core::Error> {
        let step = kv
            .get("step")
            .and_then(|v| v.get_float())
            .unwrap_or(f64::NAN);
        let direction = kv
            .get("direction")
            .map(|v| v.as_string())
            .unwrap_or_default();
        tracing::debug!(
            target: "tokencge::solve",
            iteration = state.get_iter() + 1,
            residual = state.get_cost(),
            step,
            direction = %direction,
            "iteration"
        );
        Ok(())
    }
}

/// Solves an MCP from `x0` (projected into the bounds first).
pub fn solve_mcp<P: ComplementarityProblem>(
    problem: P,
    x0: Vec<f64>,
    settings: &NewtonSettings,
) -> McpSolution {
    let started = Instant::now();
    let n = problem.dim();
    let (lower, upper) = (problem.lower().to_vec(), problem.upper().to_vec());
    let x0: Vec<f64> = x0
        .iter()
        .enumerate()
        .map(|(i, v)| v.max(lower[i]).min(upper[i]))
        .collect();
    let mut f0 = vec![0.0; n];
    if let Err(e) = problem.residual(&x0, &mut f0) {
        return McpSolution {
            x: x0,
            f: f0,
            status: SolveStatus::EvaluationFailed(e),
            residual: f64::INFINITY,
            info: SolveInfo {
                residual_evaluations: 1,
                seconds: started.elapsed().as_secs_f64(),
                ..Default::default()
            },
        };
    }
    let solver = SemismoothNewton::new(settings.clone());
    let mut exec = Executor::new(problem, solver)
        .configure(|state: NewtonState| {
            state
                .param(x0.clone())
                .max_iters(settings.max_iterations)
                .counting(true)
        })
        .add_observer(TracingObserver, ObserverMode::Always);
    if let Some(t) = settings.timeout {
        exec = exec.timeout(t);
    }
    let result = match exec.run() {
        Ok(r) => r,
        Err(e) => {
            return McpSolution {
                x: x0,
                f: f0,
                status: SolveStatus::EvaluationFailed(e.to_string()),
                residual: f64::INFINITY,
                info: SolveInfo {
                    seconds: started.elapsed().as_secs_f64(),
                    ..Default::default()
                },
            }
        }
    };
    let state = result.state();
    let x = state.get_param().cloned().unwrap_or(x0);
    let f = state.get_residuals().cloned().unwrap_or(f0);
    let residual = state.get_cost();
    let counts = state.get_func_counts();
    let status = match state.get_termination_reason() {
        _ if residual <= settings.tolerance => SolveStatus::Converged,
        Some(TerminationReason::MaxItersReached) => SolveStatus::MaxIterations,
        Some(TerminationReason::Timeout) => SolveStatus::Timeout,
        Some(TerminationReason::SolverExit(msg)) if msg.starts_with("evaluation") => {
            SolveStatus::EvaluationFailed(msg.clone())
        }
        _ => SolveStatus::LineSearchFailed,
    };
    McpSolution {
        x,
        f,
        status,
        residual,
        info: SolveInfo {
            iterations: state.get_iter(),
            residual_evaluations: counts.get("residual_count").copied().unwrap_or(0),
            jacobian_evaluations: counts.get("jacobian_count").copied().unwrap_or(0),
            seconds: started.elapsed().as_secs_f64(),
        },
    }
}

/// A problem with some variables fixed: their functions are dropped and the rest is solved in
/// the free variables only.
pub struct Reduced<'a, P: ComplementarityProblem> {
    pub inner: &'a P,
    /// Full-length template holding the fixed values.
    pub template: Vec<f64>,
    /// Indices of the free variables in the full problem.
    pub free: Vec<usize>,
    /// Full index → reduced index.
    pub position: Vec<Option<usize>>,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl<'a, P: ComplementarityProblem> Reduced<'a, P> {
    pub fn new(inner: &'a P, template: Vec<f64>, fixed: &[bool]) -> Self {
        let free: Vec<usize> = (0..inner.dim()).filter(|&i| !fixed[i]).collect();
        let mut position = vec![None; inner.dim()];
        for (k, &i) in free.iter().enumerate() {
            position[i] = Some(k);
        }
        let lower = free.iter().map(|&i| inner.lower()[i]).collect();
        let upper = free.iter().map(|&i| inner.upper()[i]).collect();
        Reduced {
            inner,
            template,
            free,
            position,
            lower,
            upper,
        }
    }
    pub fn expand(&self, x: &[f64]) -> Vec<f64> {
        let mut full = self.template.clone();
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
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), String> {
        let full = self.expand(x);
        let mut ff = vec![0.0; full.len()];
        self.inner.residual(&full, &mut ff)?;
        for (k, &i) in self.free.iter().enumerate() {
            f[k] = ff[i];
        }
        Ok(())
    }
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Vec<(usize, usize, f64)>,
    ) -> Result<(), String> {
        let full = self.expand(x);
        let mut ff = vec![0.0; full.len()];
        let mut j = Vec::new();
        self.inner.residual_jacobian(&full, &mut ff, &mut j)?;
        for (k, &i) in self.free.iter().enumerate() {
            f[k] = ff[i];
        }
        jac.clear();
        jac.extend(
            j.into_iter()
                .filter_map(|(r, c, v)| Some((self.position[r]?, self.position[c]?, v))),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small LCP-like MCP with known solution: F(x) = M x + q with bounds [0, ∞) × [0, 1] × free.
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
        fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), String> {
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
            jac: &mut Vec<(usize, usize, f64)>,
        ) -> Result<(), String> {
            self.residual(x, f)?;
            jac.clear();
            jac.extend([
                (0, 0, 1.0),
                (1, 1, 1.0),
                (2, 2, 3.0 * x[2] * x[2]),
                (2, 0, 1.0),
            ]);
            Ok(())
        }
    }

    #[test]
    fn solves_a_box_constrained_mcp_with_active_bounds() {
        let p = Toy {
            lower: vec![0.0, 0.0, f64::NEG_INFINITY],
            upper: vec![f64::INFINITY, 1.0, f64::INFINITY],
        };
        let s = solve_mcp(p, vec![3.0, 0.5, 1.0], &NewtonSettings::default());
        assert_eq!(s.status, SolveStatus::Converged, "{s:?}");
        assert!(s.x[0].abs() < 1e-12);
        assert!((s.x[1] - 1.0).abs() < 1e-12);
        assert!((s.x[2] - 2.0).abs() < 1e-9);
        assert!(s.info.iterations > 0 && s.info.jacobian_evaluations > 0);
    }

    #[test]
    fn settings_setters_validate() {
        let s = NewtonSettings::default();
        assert_eq!(
            s.clone().with_tolerance(0.0).unwrap_err(),
            "tolerance must be positive and finite, got 0"
        );
        assert_eq!(
            s.clone().with_max_iterations(0).unwrap_err(),
            "max_iterations must be at least 1"
        );
        assert_eq!(
            s.clone().with_penalty_lambda(1.5).unwrap_err(),
            "penalty_lambda must lie in (0, 1], got 1.5"
        );
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
}
