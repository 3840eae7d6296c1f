//! Recursive dynamics (an extension, `docs/format_extensions.md`): a scenario's path over time,
//! a sequence of static equilibria linked by parameter updates, as in GTAP-RD, MONASH or MIT
//! EPPA.
//!
//! Period t's parameter vector is formed from the model's, with, in rising precedence: the
//! values the updates gave after period t − 1, the model's paths, the scenario's `parameters`
//! (from its `from` period on; a stock the scenario sets only at `from`, after which it follows
//! its update) and the scenario's own paths; every derived parameter not overridden is
//! evaluated again (`Model::parameters_with`). Each period is then an ordinary static solve —
//! `calibrate` + `scenario::resolve` + `scenario::solve` on the shared, immutable structure —
//! warm-started from the previous period's equilibrium, and verified like any other
//! (`scenario::assess`). After it converges, every update is evaluated at its solution, all at
//! once, and the results carry into period t + 1. A period that does not converge, or cannot
//! be set up, ends its path there with that status; the periods before it stand, and other
//! scenarios' paths are not affected (they run in parallel, one workspace per thread).

use rayon::prelude::*;

use crate::batch::Solved;
use crate::calibrate::{self, Coefficients};
use crate::compile::Structure;
use crate::expr::EvalError;
use crate::model::{Dynamics, Model, ParamPath, ParameterError, Site};
use crate::report::SolutionReport;
use crate::scenario::{self, ScenarioError, Workspace};
use crate::solve::NewtonSettings;

/// A model without `[dynamics]` has no path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the model has no [dynamics] section")]
pub struct NotDynamic;

/// Why a period could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeriodError {
    #[error("{0}")]
    Parameter(#[from] ParameterError),
    #[error("{site}: {error}")]
    Path { site: Site, error: EvalError },
    #[error("{site}: evaluates to {value}")]
    NonFinite { site: Site, value: f64 },
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    /// An update could not be evaluated at the previous period's solution.
    #[error("{site} at the solution of period {period}: {error}")]
    Update {
        site: Site,
        period: usize,
        error: String,
    },
}

/// What one period gave.
#[derive(Debug, Clone)]
pub enum PeriodOutcome {
    /// Solved (converged or not: see the solution's status).
    Solved(Box<Solved>),
    /// The period could not be set up.
    Unsolved(PeriodError),
}

/// One period of a path.
#[derive(Debug, Clone)]
pub struct PeriodResult {
    pub period: usize,
    pub year: f64,
    pub outcome: PeriodOutcome,
}

impl PeriodResult {
    /// The solved period, if it could be set up.
    pub fn solved(&self) -> Option<&Solved> {
        match &self.outcome {
            PeriodOutcome::Solved(s) => Some(s),
            PeriodOutcome::Unsolved(_) => None,
        }
    }
    /// A verified equilibrium.
    pub fn converged(&self) -> bool {
        self.solved().is_some_and(|s| s.solution.converged())
    }
    /// The report of the period (status `evaluation_failed` with the reason when it could not be
    /// set up).
    pub fn report(&self, model: &Model, scenario: &str) -> SolutionReport {
        match &self.outcome {
            PeriodOutcome::Solved(s) => s.report.clone(),
            PeriodOutcome::Unsolved(e) => SolutionReport::unsolved(model, scenario, e.to_string()),
        }
    }
}

/// A scenario's path: its periods from 0, up to the one asked for or the first that failed.
#[derive(Debug, Clone)]
pub struct PathRun {
    /// `benchmark` for the baseline path.
    pub scenario: String,
    pub index: Option<usize>,
    /// The number of periods asked for.
    pub wanted: usize,
    pub periods: Vec<PeriodResult>,
}

impl PathRun {
    /// True when every period asked for is a verified equilibrium.
    pub fn complete(&self) -> bool {
        self.periods.len() == self.wanted && self.periods.iter().all(PeriodResult::converged)
    }
    /// The period that ended the path early, if one did.
    pub fn stopped_at(&self) -> Option<&PeriodResult> {
        self.periods.iter().find(|p| !p.converged())
    }
    /// Period `t`, when the path got there and it converged.
    pub fn converged_period(&self, t: usize) -> Option<&Solved> {
        self.periods
            .get(t)
            .filter(|p| p.converged())
            .and_then(PeriodResult::solved)
    }
}

/// The parameters that move along some path of the model (updates, the model's paths, every
/// scenario's own paths), in declaration order: what path reports show beside the levels, so
/// that a scenario's path and the baseline's have the same rows.
pub fn moving_parameters(model: &Model) -> Vec<usize> {
    let Some(d) = model.dynamics.as_ref() else {
        return Vec::new();
    };
    let mut moving: Vec<usize> = d.updates.iter().map(|u| u.parameter).collect();
    moving.extend(d.paths.iter().map(|p| p.parameter));
    for sd in &d.scenarios {
        moving.extend(sd.paths.iter().map(|p| p.parameter));
    }
    moving.sort_unstable();
    moving.dedup();
    moving
}

/// The dynamics of a model, or why there are none.
pub fn dynamics_of(model: &Model) -> Result<&Dynamics, NotDynamic> {
    model.dynamics.as_ref().ok_or(NotDynamic)
}

/// The parameter vector of period `t` of scenario `index` (None: the baseline), given the
/// values the updates carried from period t − 1 (empty in period 0). See the module
/// documentation for the precedence.
pub fn period_parameters(
    model: &Model,
    index: Option<usize>,
    t: usize,
    carried: &[(usize, f64)],
) -> Result<Vec<f64>, PeriodError> {
    period_parameters_with(model, index, t, carried, &[])
}

/// [`period_parameters`] with `extra` overrides (`--set`, a sensitivity draw) of parameters
/// that neither follow an update nor a path: as if written into the model file, so the
/// scenario's own settings still win over them.
pub fn period_parameters_with(
    model: &Model,
    index: Option<usize>,
    t: usize,
    carried: &[(usize, f64)],
    extra: &[(usize, f64)],
) -> Result<Vec<f64>, PeriodError> {
    let Some(d) = model.dynamics.as_ref() else {
        return Ok(model.parameters_with(extra)?);
    };
    let year = d.year(t);
    let scenario = index.map(|i| (i, d.scenario(i)));
    // Before its `from` period a scenario is the baseline.
    let active = scenario.filter(|(_, sd)| t >= sd.from);
    let (set, own_paths, from) = match &active {
        Some((i, sd)) => (&model.scenarios[*i].parameters[..], &sd.paths[..], sd.from),
        None => (&[][..], &[][..], 0),
    };
    // Paths use only parameters that do not move (validation checks it): their values with
    // the overrides and the scenario's settings.
    let file_and_set: Vec<(usize, f64)> = extra.iter().chain(set).copied().collect();
    let steady = model.parameters_with(&file_and_set)?;
    let at = |p: &ParamPath| -> Result<(usize, f64), PeriodError> {
        let v = p
            .values
            .value_at(&steady, t, year)
            .map_err(|error| PeriodError::Path {
                site: p.site.clone(),
                error,
            })?;
        if !v.is_finite() {
            return Err(PeriodError::NonFinite {
                site: p.site.clone(),
                value: v,
            });
        }
        Ok((p.parameter, v))
    };
    let mut overrides: Vec<(usize, f64)> = extra
        .iter()
        .filter(|&&(p, _)| !d.is_updated(p) && !d.paths.iter().any(|q| q.parameter == p))
        .copied()
        .collect();
    overrides.extend_from_slice(carried);
    for p in &d.paths {
        let replaced = set.iter().any(|&(q, _)| q == p.parameter)
            || own_paths.iter().any(|q| q.parameter == p.parameter);
        if !replaced {
            overrides.push(at(p)?);
        }
    }
    for &(p, v) in set {
        // A stock the scenario sets takes that value at `from`, then follows its update.
        if !d.is_updated(p) || t == from {
            overrides.push((p, v));
        }
    }
    for p in own_paths {
        overrides.push(at(p)?);
    }
    Ok(model.parameters_with(&overrides)?)
}

/// Every update evaluated at period `t`'s solution `x` (with the coefficients it was solved
/// with), all at once: the values carried into period t + 1.
pub fn evaluate_updates(
    structure: &Structure,
    coef: &Coefficients,
    x: &[f64],
    t: usize,
) -> Result<Vec<(usize, f64)>, PeriodError> {
    let Some(d) = structure.model().dynamics.as_ref() else {
        return Ok(Vec::new());
    };
    let system = structure.with(coef);
    let failed = |site: &Site, error: String| PeriodError::Update {
        site: site.clone(),
        period: t,
        error,
    };
    let point = match system.point(x) {
        Ok(p) => p,
        Err(e) => {
            let site = d
                .updates
                .first()
                .map(|u| u.site.clone())
                .unwrap_or_default();
            return Err(failed(&site, e.to_string()));
        }
    };
    let year = d.year(t);
    let mut carried = Vec::with_capacity(d.updates.len());
    for u in &d.updates {
        let v = system
            .eval_expr_in_period(x, &point, &u.expr, t, year)
            .map_err(|e| failed(&u.site, e.to_string()))?;
        if !v.is_finite() {
            return Err(failed(&u.site, format!("evaluates to {v}")));
        }
        carried.push((u.parameter, v));
    }
    Ok(carried)
}

/// Sets up one period: its coefficients and its scenario value, warm-started from `previous`
/// (the last period's equilibrium) where there is one.
fn setup(
    structure: &Structure,
    index: Option<usize>,
    name: &str,
    t: usize,
    carried: &[(usize, f64)],
    extra: &[(usize, f64)],
    previous: Option<&[f64]>,
) -> Result<(scenario::Scenario, Coefficients), PeriodError> {
    let model = structure.model();
    let params = period_parameters_with(model, index, t, carried, extra)?;
    let coef = calibrate::calibrate(structure, &params).map_err(ScenarioError::from)?;
    let from = index.map_or(0, |i| dynamics_of(model).map_or(0, |d| d.scenario(i).from));
    // Before `from`, the baseline's numeraire and fixed levels.
    let active = index.filter(|_| t >= from);
    let mut sc = scenario::resolve(structure, &coef, active)?;
    sc.name = name.to_string();
    sc.index = index;
    if let Some(prev) = previous {
        // Levels without a function stay at this period's start, fixed ones at their values.
        let mut x0 = prev.to_vec();
        for (v, x) in x0.iter_mut().enumerate() {
            if !coef.is_active(crate::ids::VarId::new(v)) {
                *x = coef.start()[v];
            }
        }
        for &(v, value) in &sc.fixed {
            x0[v.index()] = value;
        }
        sc.start = x0;
    }
    Ok((sc, coef))
}

/// Solves the first `periods` periods of the path of scenario `index` (None: the baseline).
pub fn solve_path(
    structure: &Structure,
    index: Option<usize>,
    periods: usize,
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> Result<PathRun, NotDynamic> {
    solve_path_with(structure, index, periods, &[], settings, ws)
}

/// [`solve_path`] with `extra` parameter overrides in every period
/// ([`period_parameters_with`]): a sensitivity draw's path.
pub fn solve_path_with(
    structure: &Structure,
    index: Option<usize>,
    periods: usize,
    extra: &[(usize, f64)],
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> Result<PathRun, NotDynamic> {
    let model = structure.model();
    let d = dynamics_of(model)?;
    let name = index.map_or_else(
        || "benchmark".to_string(),
        |i| model.scenarios[i].name.clone(),
    );
    let wanted = periods.min(d.periods);
    let mut run = PathRun {
        scenario: name.clone(),
        index,
        wanted,
        periods: Vec::with_capacity(wanted),
    };
    let mut carried: Vec<(usize, f64)> = Vec::new();
    let mut previous: Option<Vec<f64>> = None;
    for t in 0..wanted {
        let year = d.year(t);
        let (sc, coef) = match setup(
            structure,
            index,
            &name,
            t,
            &carried,
            extra,
            previous.as_deref(),
        ) {
            Ok(s) => s,
            Err(e) => {
                run.periods.push(PeriodResult {
                    period: t,
                    year,
                    outcome: PeriodOutcome::Unsolved(e),
                });
                break;
            }
        };
        let solution = scenario::solve(structure, &coef, &sc, settings, ws);
        tracing::debug!(
            target: "tokencge::solve",
            scenario = name.as_str(),
            period = t,
            status = solution.status.label(),
            iterations = solution.info.iterations,
            "period solved"
        );
        let converged = solution.converged();
        let next = if converged && t + 1 < wanted {
            Some(evaluate_updates(structure, &coef, &solution.x, t))
        } else {
            None
        };
        let report = SolutionReport::new(structure.with(&coef), &solution);
        let x = solution.x.clone();
        run.periods.push(PeriodResult {
            period: t,
            year,
            outcome: PeriodOutcome::Solved(Box::new(Solved {
                coefficients: coef,
                solution,
                report,
            })),
        });
        match next {
            Some(Ok(values)) => carried = values,
            Some(Err(e)) => {
                run.periods.push(PeriodResult {
                    period: t + 1,
                    year: d.year(t + 1),
                    outcome: PeriodOutcome::Unsolved(e),
                });
                break;
            }
            None if !converged => break,
            None => {}
        }
        previous = Some(x);
    }
    Ok(run)
}

/// Solves the paths of several scenarios in parallel (each path in order, one workspace per
/// thread); `progress` is called once per finished path. Path `k` belongs to `indices[k]`,
/// whatever the thread count.
pub fn solve_paths(
    structure: &Structure,
    indices: &[Option<usize>],
    periods: usize,
    settings: &NewtonSettings,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<PathRun>, NotDynamic> {
    solve_paths_with(structure, indices, periods, &[], settings, progress)
}

/// [`solve_paths`] with the same `extra` overrides (`--set`) in every path and period.
pub fn solve_paths_with(
    structure: &Structure,
    indices: &[Option<usize>],
    periods: usize,
    extra: &[(usize, f64)],
    settings: &NewtonSettings,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<PathRun>, NotDynamic> {
    dynamics_of(structure.model())?;
    indices
        .par_iter()
        .map_init(
            || Workspace::new(structure),
            |ws, &idx| {
                let run = solve_path_with(structure, idx, periods, extra, settings, ws);
                progress();
                run
            },
        )
        .collect()
}
