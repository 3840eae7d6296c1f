//! Scenarios: a parameter vector, a normalisation and fixed variables applied to a compiled
//! system, and the equilibrium solve with its continuation fallback.
//!
//! A scenario never recompiles: it sets parameters on the `EquationSystem` (which recalibrates
//! its coefficients), builds its benchmark point, fixes what its normalisation and `fix` say, and
//! hands a complementarity problem to the solver. When a full step from the benchmark fails, the
//! changed parameters (and fixed levels) move from the model's benchmark to the scenario's in
//! steps, each solve warm-started from the last.

use crate::calibrate::eval_param;
use crate::compile::EquationSystem;
use crate::expr::EvalError;
use crate::model::{Model, Normaliser, VarKind};
use crate::solve::{
    self, box_residuals, ComplementarityProblem, McpSolution, NewtonSettings, Reduced, SolveInfo,
    SolveStatus,
};

/// A scenario resolved into numbers.
#[derive(Debug, Clone)]
pub struct ScenarioSetup {
    /// `benchmark` for the model as written.
    pub name: String,
    pub index: Option<usize>,
    pub params: Vec<f64>,
    /// What normalises (None when only `fix` does).
    pub numeraire: Option<Normaliser>,
    /// Fixed variables and values, in layout order (numeraire and `fix` entries; not the
    /// structurally inactive ones).
    pub fixed: Vec<(usize, f64)>,
    /// The scenario's benchmark point (fixed values applied).
    pub start: Vec<f64>,
}

/// The outcome of solving one scenario.
#[derive(Debug, Clone)]
pub struct Solution {
    pub setup: ScenarioSetup,
    pub status: SolveStatus,
    pub x: Vec<f64>,
    /// Scaled function values at `x` (the margins), 0 for fixed variables.
    pub f: Vec<f64>,
    /// Largest box residual over the free variables.
    pub residual: f64,
    pub info: SolveInfo,
    /// Number of continuation steps used (0 when the direct solve converged).
    pub continuation_steps: usize,
    /// The functions with the largest residuals, largest first (variable index, residual).
    pub worst: Vec<(usize, f64)>,
}

impl Solution {
    pub fn converged(&self) -> bool {
        self.status == SolveStatus::Converged
    }
}

/// Resolves a scenario (None = benchmark) on a system: sets its parameters, builds its benchmark
/// point and scales, and decides what is fixed.
pub fn prepare(
    system: &mut EquationSystem,
    index: Option<usize>,
) -> Result<ScenarioSetup, EvalError> {
    let model = system.model.clone();
    let mut params = model.param_values();
    let (name, sc) = match index {
        None => ("benchmark".to_string(), None),
        Some(i) => (model.scenarios[i].name.clone(), Some(&model.scenarios[i])),
    };
    if let Some(sc) = sc {
        for &(p, v) in &sc.parameters {
            params[p] = v;
        }
    }
    system.set_parameters(&params)?;
    let mut start = system.benchmark_point()?;
    system.set_scales(&start)?;
    let fix_normalises = sc
        .map(|s| {
            s.fix.iter().any(|(v, _)| {
                matches!(model.var_kind(*v).0, VarKind::Commodity | VarKind::Consumer)
            })
        })
        .unwrap_or(false);
    let numeraire = match sc.and_then(|s| s.numeraire) {
        Some(n) => Some(n),
        None if fix_normalises => None,
        None => model
            .numeraire
            .or_else(|| default_numeraire(&model, &start)),
    };
    let mut fixed: Vec<(usize, f64)> = Vec::new();
    match numeraire {
        Some(Normaliser::Commodity(c)) => {
            fixed.push((model.commodity_var(c), start[model.commodity_var(c)]))
        }
        Some(Normaliser::Consumer(h)) => {
            fixed.push((model.consumer_var(h), start[model.consumer_var(h)]))
        }
        None => {}
    }
    if let Some(sc) = sc {
        for (v, e) in &sc.fix {
            let val = eval_param(e, &params)?;
            fixed.retain(|(w, _)| w != v);
            fixed.push((*v, val));
        }
    }
    fixed.sort_by_key(|(v, _)| *v);
    for &(v, val) in &fixed {
        start[v] = val;
    }
    Ok(ScenarioSetup {
        name,
        index,
        params,
        numeraire,
        fixed,
        start,
    })
}

/// The consumer with the largest benchmark income (first declared on ties).
fn default_numeraire(model: &Model, x0: &[f64]) -> Option<Normaliser> {
    let mut best: Option<(usize, f64)> = None;
    for h in 0..model.consumers.len() {
        let m = x0[model.consumer_var(h)];
        if best.is_none_or(|(_, b)| m > b) {
            best = Some((h, m));
        }
    }
    best.map(|(h, _)| Normaliser::Consumer(h))
}

/// The full-size complementarity problem of a system.
struct SystemProblem<'a> {
    system: &'a EquationSystem,
    lower: Vec<f64>,
    upper: Vec<f64>,
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
    fn residual(&self, x: &[f64], f: &mut [f64]) -> Result<(), String> {
        self.system.residual(x, f).map_err(|e| e.0)
    }
    fn residual_jacobian(
        &self,
        x: &[f64],
        f: &mut [f64],
        jac: &mut Vec<(usize, usize, f64)>,
    ) -> Result<(), String> {
        self.system.residual_jacobian(x, f, jac).map_err(|e| e.0)
    }
}

/// Which variables are fixed: the setup's, plus those without a paired function.
fn fixed_mask(system: &EquationSystem, setup: &ScenarioSetup) -> Vec<bool> {
    let mut mask = system.inactive.clone();
    for &(v, _) in &setup.fixed {
        mask[v] = true;
    }
    mask
}

/// Solves from `x0` with the system's current parameters; returns the full point.
fn solve_from(
    system: &EquationSystem,
    mask: &[bool],
    x0: &[f64],
    settings: &NewtonSettings,
) -> Result<(Vec<f64>, McpSolution), EvalError> {
    let b = system.bounds()?;
    let full = SystemProblem {
        system,
        lower: b.lower,
        upper: b.upper,
    };
    let reduced = Reduced::new(&full, x0.to_vec(), mask);
    let start = reduced.restrict(x0);
    let sol = solve::solve_mcp(&reduced, start, settings);
    let x = reduced.expand(&sol.x);
    Ok((x, sol))
}

/// Margins and residuals of a point under a setup (for reports and the benchmark check).
pub fn assess(
    system: &EquationSystem,
    setup: &ScenarioSetup,
    x: &[f64],
) -> Result<(Vec<f64>, Vec<f64>), EvalError> {
    let mask = fixed_mask(system, setup);
    let mut f = vec![0.0; x.len()];
    system.residual(x, &mut f)?;
    let b = system.bounds()?;
    let mut r = box_residuals(x, &f, &b.lower, &b.upper);
    for i in 0..x.len() {
        if mask[i] {
            f[i] = 0.0;
            r[i] = 0.0;
        }
    }
    Ok((f, r))
}

fn worst(r: &[f64], k: usize) -> Vec<(usize, f64)> {
    let mut idx: Vec<usize> = (0..r.len())
        .filter(|&i| r[i] > 0.0 || r[i].is_nan())
        .collect();
    idx.sort_by(|&a, &b| {
        r[b].partial_cmp(&r[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    idx.into_iter().take(k).map(|i| (i, r[i])).collect()
}

/// Solves a prepared scenario: a direct solve from its benchmark point, then continuation from
/// the model's benchmark if that fails.
pub fn solve(
    system: &mut EquationSystem,
    setup: &ScenarioSetup,
    settings: &NewtonSettings,
) -> Result<Solution, EvalError> {
    // `prepare` left the system calibrated to this scenario; redo it only if it has been used
    // for another one since (scales depend on the parameters alone).
    if system.params() != setup.params.as_slice() {
        system.set_parameters(&setup.params)?;
        system.set_scales(&system.benchmark_point()?)?;
    }
    let mask = fixed_mask(system, setup);
    let (mut x, mut sol) = solve_from(system, &mask, &setup.start, settings)?;
    let mut info = sol.info.clone();
    let mut steps = 0;
    if sol.status != SolveStatus::Converged {
        if let Some((xc, sc, n, inf)) = continuation(system, setup, &mask, settings)? {
            x = xc;
            sol = sc;
            steps = n;
            info.iterations += inf.iterations;
            info.residual_evaluations += inf.residual_evaluations;
            info.jacobian_evaluations += inf.jacobian_evaluations;
            info.seconds += inf.seconds;
        }
    }
    // Continuation recalibrated along its path (scales untouched): leave the system calibrated
    // to the scenario, as the caller expects.
    if steps > 0 || system.params() != setup.params.as_slice() {
        system.set_parameters(&setup.params)?;
    }
    let (f, r) = match assess(system, setup, &x) {
        Ok(v) => v,
        Err(_) => (vec![f64::NAN; x.len()], vec![f64::INFINITY; x.len()]),
    };
    let residual = r.iter().fold(0.0f64, |a, b| a.max(*b));
    let status = if residual <= settings.tolerance {
        SolveStatus::Converged
    } else if sol.status == SolveStatus::Converged {
        SolveStatus::LineSearchFailed
    } else {
        sol.status.clone()
    };
    Ok(Solution {
        setup: setup.clone(),
        status,
        worst: worst(&r, 5),
        x,
        f,
        residual,
        info,
        continuation_steps: steps,
    })
}

/// Moves parameters and fixed levels from the model's benchmark to the scenario's in adaptive
/// steps. Returns the final point when it converged.
#[allow(clippy::type_complexity)]
fn continuation(
    system: &mut EquationSystem,
    setup: &ScenarioSetup,
    mask: &[bool],
    settings: &NewtonSettings,
) -> Result<Option<(Vec<f64>, McpSolution, usize, SolveInfo)>, EvalError> {
    let base_params = system.model.param_values();
    system.set_parameters(&base_params)?;
    let base_point = system.benchmark_point()?;
    let target_point = setup.start.clone();
    let mut x = base_point.clone();
    for &(v, _) in &setup.fixed {
        x[v] = base_point[v];
    }
    let mut lambda: f64 = 0.0;
    let mut step: f64 = 0.5;
    let mut info = SolveInfo::default();
    let mut steps = 0;
    let mut last = None;
    while lambda < 1.0 {
        let next = (lambda + step).min(1.0);
        let params: Vec<f64> = base_params
            .iter()
            .zip(&setup.params)
            .map(|(a, b)| a + next * (b - a))
            .collect();
        system.set_parameters(&params)?;
        let mut x0 = x.clone();
        for &(v, _) in &setup.fixed {
            x0[v] = base_point[v] + next * (target_point[v] - base_point[v]);
        }
        for (v, inactive) in system.inactive.iter().enumerate() {
            if *inactive {
                x0[v] = target_point[v];
            }
        }
        let (xs, sol) = solve_from(system, mask, &x0, settings)?;
        info.iterations += sol.info.iterations;
        info.residual_evaluations += sol.info.residual_evaluations;
        info.jacobian_evaluations += sol.info.jacobian_evaluations;
        info.seconds += sol.info.seconds;
        steps += 1;
        tracing::debug!(target: "tokencge::solve", lambda = next, status = sol.status.label(), "continuation step");
        if sol.status == SolveStatus::Converged {
            lambda = next;
            x = xs;
            step = (step * 2.0).min(1.0);
            last = Some(sol);
        } else {
            step *= 0.5;
            if step < 1e-4 || steps > 200 {
                return Ok(None);
            }
        }
    }
    Ok(last.map(|s| (x, s, steps, info)))
}
