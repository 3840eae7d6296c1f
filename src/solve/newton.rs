//! Semismooth Newton on the penalised Fischer–Burmeister reformulation of a box MCP, with a
//! non-monotone projected Armijo line search and a steepest-descent fallback.
//!
//! Each component is mapped to Φᵢ(x) whose zeros are exactly the complementary points:
//! free: Φ = F; [l, ∞): φ(x − l, F); (−∞, u]: −φ(u − x, −F); [l, u]: φ(x − l, −φ(u − x, −F))
//! (Billups). The generalized Jacobian row is Daᵢ·eᵢ + Dbᵢ·∇Fᵢ. Iterates are projected into
//! the box so that the economic functions are only evaluated where they are defined.

use std::collections::VecDeque;

use argmin::core::{Error, Problem, Solver, State, TerminationReason, TerminationStatus, KV};
use argmin::kv;

use super::linalg::LinearSolver;
use super::{box_residuals, max_abs, ComplementarityProblem, NewtonSettings, NewtonState};

/// The solver: settings, plus the workspace it reuses between iterations (the symbolic
/// factorisation, the merit history of the non-monotone line search, and the problem's bounds,
/// read once in `init`).
pub struct SemismoothNewton {
    settings: NewtonSettings,
    linear: LinearSolver,
    history: VecDeque<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

impl SemismoothNewton {
    pub fn new(settings: NewtonSettings) -> Self {
        let linear = LinearSolver::new(settings.backend);
        SemismoothNewton {
            settings,
            linear,
            history: VecDeque::new(),
            lower: Vec::new(),
            upper: Vec::new(),
        }
    }
}

/// Penalised Fischer–Burmeister function φ(a, b) = λ(a + b − √(a² + b²)) + (1 − λ)a₊b₊ and
/// an element of its generalized gradient.
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

/// Φ and the diagonal scalings Da (of x) and Db (of F).
fn reformulate(
    x: &[f64],
    f: &[f64],
    lower: &[f64],
    upper: &[f64],
    lambda: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = x.len();
    let (mut p, mut da, mut db) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for i in 0..n {
        let (l, u) = (lower[i], upper[i]);
        match (l.is_finite(), u.is_finite()) {
            (false, false) => {
                p[i] = f[i];
                db[i] = 1.0;
            }
            (true, false) => {
                let (v, a, b) = phi(x[i] - l, f[i], lambda);
                (p[i], da[i], db[i]) = (v, a, b);
            }
            (false, true) => {
                let (v, a, b) = phi(u - x[i], -f[i], lambda);
                (p[i], da[i], db[i]) = (-v, a, b);
            }
            (true, true) => {
                let (w, wa, wb) = phi(u - x[i], -f[i], lambda);
                let (v, va, vb) = phi(x[i] - l, -w, lambda);
                (p[i], da[i], db[i]) = (v, va + vb * wa, vb * wb);
            }
        }
    }
    (p, da, db)
}

fn merit(p: &[f64]) -> f64 {
    0.5 * p.iter().map(|v| v * v).sum::<f64>()
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
        let x = state
            .take_param()
            .ok_or_else(|| Error::msg("no start point"))?;
        let n = x.len();
        let mut f = vec![0.0; n];
        problem
            .problem("residual_count", |p| {
                p.residual(&x, &mut f).map_err(Error::msg)
            })
            .map_err(|e| Error::msg(format!("evaluation at the start point failed: {e}")))?;
        let Some(inner) = problem.problem.as_ref() else {
            return Err(Error::msg("no problem"));
        };
        self.lower = inner.lower().to_vec();
        self.upper = inner.upper().to_vec();
        let (lower, upper) = (&self.lower, &self.upper);
        let cost = max_abs(&box_residuals(&x, &f, lower, upper));
        let (p, _, _) = reformulate(&x, &f, lower, upper, self.settings.penalty_lambda);
        self.history.clear();
        self.history.push_back(merit(&p));
        Ok((
            state.param(x).residuals(f).cost(cost),
            Some(kv!("tolerance" => self.settings.tolerance;)),
        ))
    }

    fn next_iter(
        &mut self,
        problem: &mut Problem<O>,
        mut state: NewtonState,
    ) -> Result<(NewtonState, Option<KV>), Error> {
        let x = state.take_param().ok_or_else(|| Error::msg("no iterate"))?;
        let n = x.len();
        let (lower, upper) = (&self.lower, &self.upper);
        let mut f = vec![0.0; n];
        let mut jac = Vec::new();
        if let Err(e) = problem.problem("jacobian_count", |p| {
            p.residual_jacobian(&x, &mut f, &mut jac)
                .map_err(Error::msg)
        }) {
            let reason =
                TerminationReason::SolverExit(format!("evaluation of the Jacobian failed: {e}"));
            return Ok((state.param(x).terminate_with(reason), None));
        }
        let lambda = self.settings.penalty_lambda;
        let (p, da, db) = reformulate(&x, &f, lower, upper, lambda);
        let psi = merit(&p);
        // H = Da + Db·J, row by row.
        let mut h: Vec<(usize, usize, f64)> =
            jac.iter().map(|&(r, c, v)| (r, c, db[r] * v)).collect();
        h.extend((0..n).map(|i| (i, i, da[i])));
        // ∇Ψ = Hᵀ Φ
        let mut grad = vec![0.0; n];
        for &(r, c, v) in &h {
            grad[c] += v * p[r];
        }
        let reference = self.history.iter().copied().fold(psi, f64::max);
        let mut newton = p.iter().map(|v| -v).collect::<Vec<f64>>();
        let newton_ok = self.linear.solve(n, &h, &mut newton).is_ok();

        let try_direction = |d: &[f64],
                             slope: f64,
                             problem: &mut Problem<O>,
                             sufficient: f64|
         -> Option<(Vec<f64>, Vec<f64>, f64, f64)> {
            let mut t = 1.0;
            while t >= self.settings.min_step {
                let xt: Vec<f64> = (0..n)
                    .map(|i| (x[i] + t * d[i]).max(lower[i]).min(upper[i]))
                    .collect();
                let mut ft = vec![0.0; n];
                let ok = problem
                    .problem("residual_count", |pp| {
                        pp.residual(&xt, &mut ft).map_err(Error::msg)
                    })
                    .is_ok();
                if ok && ft.iter().all(|v| v.is_finite()) {
                    let (pt, _, _) = reformulate(&xt, &ft, lower, upper, lambda);
                    let psit = merit(&pt);
                    if psit <= sufficient + self.settings.armijo * t * slope {
                        return Some((xt, ft, psit, t));
                    }
                }
                t *= 0.5;
            }
            None
        };

        let mut outcome = None;
        let mut direction = "newton";
        if newton_ok {
            // For an exact Newton step ∇Ψᵀd = −‖Φ‖².
            outcome = try_direction(&newton, -2.0 * psi, problem, reference);
        }
        if outcome.is_none() {
            direction = "gradient";
            let d: Vec<f64> = grad.iter().map(|g| -g).collect();
            let slope = -grad.iter().map(|g| g * g).sum::<f64>();
            if slope < 0.0 {
                outcome = try_direction(&d, slope, problem, psi);
            }
        }
        let Some((xt, ft, psit, t)) = outcome else {
            let cost = max_abs(&box_residuals(&x, &f, lower, upper));
            let reason = TerminationReason::SolverExit("line search failed".into());
            return Ok((
                state
                    .param(x)
                    .residuals(f)
                    .cost(cost)
                    .terminate_with(reason),
                Some(kv!("direction" => "none";)),
            ));
        };
        self.history.push_back(psit);
        while self.history.len() > self.settings.memory.max(1) {
            self.history.pop_front();
        }
        let cost = max_abs(&box_residuals(&xt, &ft, lower, upper));
        Ok((
            state.param(xt).residuals(ft).cost(cost),
            Some(kv!("step" => t; "direction" => direction; "merit" => psit;)),
        ))
    }

    fn terminate(&mut self, state: &NewtonState) -> TerminationStatus {
        if state.get_cost() <= self.settings.tolerance {
            TerminationStatus::Terminated(TerminationReason::SolverConverged)
        } else {
            TerminationStatus::NotTerminated
        }
    }
}
