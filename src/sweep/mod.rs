//! Systematic sensitivity analysis: a scenario solved for every draw of the model's uncertain
//! parameters (`[sensitivity]`), each change measured against the draw's own benchmark, and
//! every reported quantity summarised by its mean, spread, quantiles and the share of draws
//! whose change has the opposite sign of the central case's.
//!
//! A sweep is a sequence of independent solves on one shared [`Structure`]: per draw,
//! `calibrate` + `scenario::resolve` + `scenario::solve_starting` for the benchmark and the
//! scenario, in parallel with rayon (one [`Workspace`] per thread), rows collected in draw
//! order. A draw's parameters depend only on (seed, draw index) ([`draws`]), and its solves
//! only on those parameters and on the central case (its warm start), never on which thread
//! or shard ran it or on what ran before: the same seed gives the same numbers and bytes
//! whatever the thread count, and shards merge to the unsharded result.
//!
//! Warm starts: by default each solve starts where `tokencge solve` starts (the draw's
//! benchmark point), so that `tokencge solve --scenario NAME --set …` with a draw's values
//! reproduces its row to the last bit; a draw whose direct solve fails is tried again from the
//! nearest solved point known independently of scheduling, the central case's equilibrium,
//! before the continuation. With [`WarmStart::Central`] every draw starts from the central
//! equilibrium first (rows then agree with a re-solve to the solver's tolerance, not bitwise).

pub mod draws;

use std::fmt::Write as _;
use std::ops::Range;

use indexmap::IndexMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calibrate::Coefficients;
use crate::compile::Structure;
use crate::ids::ConsumerId;
use crate::model::sensitivity::{Distribution, Quantity, Sensitivity, Unit};
use crate::model::Model;
use crate::scenario::{self, Solution, Start, Workspace};
use crate::solve::{NewtonSettings, SolveStatus};

/// Draws solved between two writes of finished rows (and `-v` log lines).
pub const BATCH: u64 = 250;

/// A change smaller than this (in its unit, % or level) counts as no change for the sign
/// comparison: solutions are accurate to about 1e-9 relative, so smaller changes have no sign.
pub const ZERO_CHANGE: f64 = 1e-6;

/// Why a sweep cannot be set up.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("{file}: the model has no [sensitivity] section: nothing to vary (docs/format_extensions.md §9)")]
    NoSensitivity { file: String },
    #[error("{file}: --set {name}: '{name}' is varied by [sensitivity]; a sweep cannot also hold it fixed (remove it from [sensitivity.parameters] or from --set)")]
    SetVaried { file: String, name: String },
    #[error("{file}: --draws must be at least 1")]
    NoDraws { file: String },
    #[error("--shard {0}: expected K/N with 1 ≤ K ≤ N")]
    Shard(String),
    #[error("{file}: --dynamic: the model has no [dynamics] section: no paths to sweep (docs/format_extensions.md §8)")]
    NotDynamic { file: String },
    #[error(
        "{file}: --years: {year} is not a year of the path ({first} to {last} in steps of {step})"
    )]
    Year {
        file: String,
        year: String,
        first: String,
        last: String,
        step: String,
    },
}

/// How draws start their solves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmStart {
    /// From the draw's benchmark point (bitwise `tokencge solve`), the central equilibrium
    /// only when that fails.
    Fallback,
    /// From the central equilibrium first, then the benchmark point.
    Central,
}

/// One part of a sharded sweep: the `k`-th (1-based) of `n` contiguous ranges of draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub k: u64,
    pub n: u64,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { k: 1, n: 1 };

    /// Parses `K/N`.
    pub fn parse(text: &str) -> Result<Shard, PlanError> {
        let bad = || PlanError::Shard(text.to_string());
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }

    /// Its draws: `[⌊(k−1)D/n⌋, ⌊kD/n⌋)`, so the shards of a sweep partition its draws.
    pub fn range(&self, draws: u64) -> Range<u64> {
        let at = |k: u64| ((k as u128 * draws as u128) / self.n as u128) as u64;
        at(self.k - 1)..at(self.k)
    }
}

/// What a sweep solves: the scenario, the sensitivity section (with `--draws`/`--seed`
/// applied), the `--set` overrides and which varied parameters the scenario itself holds.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenario: usize,
    pub sensitivity: Sensitivity,
    /// `--set` (index, value): applied to the benchmark and the scenario of every draw.
    pub overrides: Vec<(usize, f64)>,
    /// Positions in `sensitivity.varied` that vary in this sweep.
    pub active: Vec<usize>,
    /// Positions the scenario sets itself: held at the scenario's value, not varied.
    pub held: Vec<usize>,
    pub warm_start: WarmStart,
    /// Set for a sweep of paths (`--dynamic`): each draw solves the baseline's and the
    /// scenario's paths over the whole horizon.
    pub path: Option<PathPlan>,
}

/// What a sweep of paths reports: every quantity's change from the baseline path in the
/// chosen years (`NAME@YEAR`), and the present value over the horizon of each change measured
/// in money or levels (`pv(NAME)`: EVs, indicators, auxiliaries), discounted as `compare
/// --dynamic` discounts. The horizon and the discount factors are the model's `[dynamics]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPlan {
    /// The reported periods, with their years.
    pub reported: Vec<(usize, f64)>,
}

/// One reported column of a sweep: a quantity of `[sensitivity] report` as a static change,
/// in a year of the path, or as the present value of its changes along the path.
#[derive(Debug, Clone, Copy)]
enum Column<'a> {
    Static(&'a Quantity),
    Year(&'a Quantity, f64),
    PresentValue(&'a Quantity),
}

impl Plan {
    /// The plan of a sweep of scenario `scenario`.
    pub fn new(
        model: &Model,
        scenario: usize,
        draws: Option<u64>,
        seed: Option<u64>,
        overrides: Vec<(usize, f64)>,
        warm_start: WarmStart,
    ) -> Result<Plan, PlanError> {
        let file = model.path.display().to_string();
        let mut sensitivity = model
            .sensitivity
            .clone()
            .ok_or(PlanError::NoSensitivity { file: file.clone() })?;
        if let Some(d) = draws {
            if d == 0 {
                return Err(PlanError::NoDraws { file });
            }
            sensitivity.draws = d as usize;
        }
        if let Some(s) = seed {
            sensitivity.seed = s;
        }
        for &(p, _) in &overrides {
            if sensitivity.varied.iter().any(|v| v.parameter == p) {
                return Err(PlanError::SetVaried {
                    file,
                    name: model.parameters[p].name.clone(),
                });
            }
        }
        let own = &model.scenarios[scenario].parameters;
        let (held, active): (Vec<usize>, Vec<usize>) =
            (0..sensitivity.varied.len()).partition(|&k| {
                own.iter()
                    .any(|&(p, _)| p == sensitivity.varied[k].parameter)
            });
        Ok(Plan {
            scenario,
            sensitivity,
            overrides,
            active,
            held,
            warm_start,
            path: None,
        })
    }

    /// This plan as a sweep of paths reporting `years` (default: the last year of the
    /// horizon).
    pub fn over_paths(mut self, model: &Model, years: &[f64]) -> Result<Plan, PlanError> {
        let file = model.path.display().to_string();
        let d = model
            .dynamics
            .as_ref()
            .ok_or(PlanError::NotDynamic { file: file.clone() })?;
        let n = crate::expr::fmt_num;
        let reported = if years.is_empty() {
            vec![(d.periods - 1, d.year(d.periods - 1))]
        } else {
            years
                .iter()
                .map(|&y| {
                    (0..d.periods)
                        .find(|&t| (d.year(t) - y).abs() < 1e-9)
                        .map(|t| (t, d.year(t)))
                        .ok_or_else(|| PlanError::Year {
                            file: file.clone(),
                            year: n(y),
                            first: n(d.year(0)),
                            last: n(d.year(d.periods - 1)),
                            step: n(d.step),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        self.path = Some(PathPlan { reported });
        Ok(self)
    }

    pub fn draws(&self) -> u64 {
        self.sensitivity.draws as u64
    }

    /// The varied values of draw `d` (active parameters, in order).
    pub fn values(&self, d: u64) -> Vec<f64> {
        let all = draws::draw(&self.sensitivity, self.sensitivity.seed, d);
        self.active.iter().map(|&k| all[k]).collect()
    }

    /// The overrides of a point: `--set`, then the given values of the active parameters.
    pub fn overrides_with(&self, values: &[f64]) -> Vec<(usize, f64)> {
        let mut o = self.overrides.clone();
        o.extend(
            self.active
                .iter()
                .zip(values)
                .map(|(&k, &v)| (self.sensitivity.varied[k].parameter, v)),
        );
        o
    }

    /// Names of the active parameters.
    pub fn active_names(&self, model: &Model) -> Vec<String> {
        self.active
            .iter()
            .map(|&k| {
                model.parameters[self.sensitivity.varied[k].parameter]
                    .name
                    .clone()
            })
            .collect()
    }

    /// The reported columns, in order: the quantities of `[sensitivity] report`, or for a
    /// sweep of paths each of them in each reported year, then the present values of those
    /// measured as level changes.
    fn columns(&self) -> Vec<Column<'_>> {
        let report = &self.sensitivity.report;
        let Some(path) = &self.path else {
            return report.iter().map(Column::Static).collect();
        };
        let years = path
            .reported
            .iter()
            .flat_map(|&(_, year)| report.iter().map(move |q| Column::Year(q, year)));
        let present_values = report
            .iter()
            .filter(|q| q.unit() == Unit::Change)
            .map(Column::PresentValue);
        years.chain(present_values).collect()
    }

    /// Names of the reported quantities (`NAME`, `NAME@YEAR`, `pv(NAME)`; [`Plan::columns`]).
    pub fn quantity_names(&self, model: &Model) -> Vec<String> {
        self.columns()
            .into_iter()
            .map(|c| match c {
                Column::Static(q) => q.name(model),
                Column::Year(q, year) => {
                    format!("{}@{}", q.name(model), crate::expr::fmt_num(year))
                }
                Column::PresentValue(q) => format!("pv({})", q.name(model)),
            })
            .collect()
    }

    /// The unit of each reported quantity, in the order of [`Plan::quantity_names`] (a
    /// present value is of a level change).
    pub fn quantity_units(&self) -> Vec<Unit> {
        self.columns()
            .into_iter()
            .map(|c| match c {
                Column::Static(q) | Column::Year(q, _) | Column::PresentValue(q) => q.unit(),
            })
            .collect()
    }

    /// Everything that decides the numbers of the draws, as JSON: two directories of draws
    /// may be resumed or merged only when these agree (the model files' hashes are added by
    /// the caller).
    pub fn identity(&self, model: &Model, settings: &NewtonSettings) -> serde_json::Value {
        let name = |p: usize| model.parameters[p].name.clone();
        let varied: Vec<serde_json::Value> = self
            .sensitivity
            .varied
            .iter()
            .map(|v| {
                serde_json::json!({
                    "parameter": name(v.parameter),
                    "distribution": describe_distribution(&v.distribution),
                })
            })
            .collect();
        let groups: Vec<serde_json::Value> = self
            .sensitivity
            .groups
            .iter()
            .map(|g| {
                serde_json::json!({
                    "parameters": g.members.iter().map(|&k| name(self.sensitivity.varied[k].parameter)).collect::<Vec<_>>(),
                    "correlation": g.correlation,
                })
            })
            .collect();
        let overrides: IndexMap<String, f64> =
            self.overrides.iter().map(|&(p, v)| (name(p), v)).collect();
        serde_json::json!({
            "model": model.name,
            "scenario": model.scenarios[self.scenario].name,
            "draws": self.draws(),
            "seed": self.sensitivity.seed,
            "overrides": overrides,
            "varied": varied,
            "groups": groups,
            "report": self.quantity_names(model),
            "tolerance": settings.tolerance,
            "max_iterations": settings.max_iterations,
            "warm_start": self.warm_start,
            "years": self.path.as_ref().map(|p| p.reported.iter().map(|&(_, y)| y).collect::<Vec<f64>>()),
        })
    }
}

/// A distribution as text: `uniform(0.4, 1)`, `normal(1, 0.3) on [0, inf]`.
pub fn describe_distribution(d: &Distribution) -> String {
    let n = crate::expr::fmt_num;
    let range = |lo: f64, hi: f64| {
        if lo == f64::NEG_INFINITY && hi == f64::INFINITY {
            String::new()
        } else {
            let b = |x: f64| {
                if x.is_infinite() {
                    if x > 0.0 {
                        "inf".into()
                    } else {
                        "-inf".into()
                    }
                } else {
                    n(x)
                }
            };
            format!(" on [{}, {}]", b(lo), b(hi))
        }
    };
    match d {
        Distribution::Uniform { min, max } => format!("uniform({}, {})", n(*min), n(*max)),
        Distribution::Triangular { min, mode, max } => {
            format!("triangular({}, {}, {})", n(*min), n(*mode), n(*max))
        }
        Distribution::Normal { mean, sd, min, max } => {
            format!("normal({}, {}){}", n(*mean), n(*sd), range(*min, *max))
        }
        Distribution::LogNormal {
            median,
            log_sd,
            min,
            max,
        } => format!(
            "lognormal({}, {}){}",
            n(*median),
            n(*log_sd),
            range(*min, *max)
        ),
        Distribution::Grid { values, weights } => {
            let v: Vec<String> = values
                .iter()
                .zip(weights)
                .map(|(v, w)| format!("{}:{}", n(*v), n(*w)))
                .collect();
            format!("grid({})", v.join(", "))
        }
    }
}

/// One solved draw (or the central case, or a tornado point): its varied values, status and
/// the change of every reported quantity (NaN when not solved or not defined).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub draw: u64,
    pub values: Vec<f64>,
    /// `converged`, the scenario's failure status, or `benchmark_` + the benchmark's.
    pub status: String,
    pub changes: Vec<f64>,
    /// Newton iterations of the draw's benchmark and scenario solves.
    pub iterations: u64,
    /// Why the draw could not be set up (a calibration that failed), when it could not.
    pub reason: Option<String>,
}

impl Row {
    pub fn converged(&self) -> bool {
        self.status == "converged"
    }
}

/// The level of every reported quantity at a solution (NaN where it cannot be evaluated).
fn levels(structure: &Structure, coef: &Coefficients, sol: &Solution, q: &[Quantity]) -> Vec<f64> {
    let system = structure.with(coef);
    let layout = structure.layout();
    let model = structure.model();
    let point = system.point(&sol.x);
    q.iter()
        .map(|q| match (q, &point) {
            (Quantity::Variable(v), _) => sol.x[layout.index_of(*v)],
            (Quantity::Ev(h), Ok(st)) => system.ev(ConsumerId::new(*h), st),
            (Quantity::Indicator(i), Ok(st)) => system
                .eval_expr_at(&sol.x, st, &model.indicators[*i].expr)
                .unwrap_or(f64::NAN),
            _ => f64::NAN,
        })
        .collect()
}

/// The change of each quantity from `base` to `new`: % for activities, prices and incomes
/// (as `compare` reports them), the difference for auxiliaries and indicators, the EV itself.
pub fn changes(q: &[Quantity], base: &[f64], new: &[f64]) -> Vec<f64> {
    q.iter()
        .zip(base.iter().zip(new))
        .map(|(q, (&b, &n))| match (q, q.unit()) {
            (Quantity::Ev(_), _) => n,
            (_, Unit::Percent) if b.abs() > 0.0 && n.is_finite() => 100.0 * (n / b - 1.0),
            (_, Unit::Percent) => f64::NAN,
            (_, Unit::Change) => n - b,
        })
        .collect()
}

/// A solved point: its coefficients and solution.
type Solved = (Coefficients, Solution);

/// Calibrates and solves one point (None = the benchmark) with `overrides` on top of the
/// scenario's own parameters, EVs measured from `benchmark`'s incomes (the draw's own).
fn solve_point(
    structure: &Structure,
    (index, benchmark): (Option<usize>, Option<&Coefficients>),
    overrides: &[(usize, f64)],
    settings: &NewtonSettings,
    ws: &mut Workspace,
    starts: &[Start<'_>],
) -> Result<Solved, String> {
    let (sc, coef) = scenario::prepare_against(structure, index, overrides, benchmark)
        .map_err(|e| e.to_string())?;
    let sol = scenario::solve_starting(structure, &coef, &sc, settings, ws, starts);
    Ok((coef, sol))
}

/// Solves one draw's baseline and scenario paths over the whole horizon and measures, in each
/// reported year, the change of every quantity from the baseline path (EVs as the difference
/// of the two paths' EVs, as `compare --dynamic` reports them), then the present values.
fn solve_path_row(
    structure: &Structure,
    plan: &Plan,
    path: &PathPlan,
    (draw, values, overrides): (u64, Vec<f64>, &[(usize, f64)]),
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> Row {
    let q = &plan.sensitivity.report;
    let failed = |status: String, iterations: u64, reason: Option<String>| Row {
        draw,
        values: values.clone(),
        status,
        changes: vec![f64::NAN; plan.columns().len()],
        iterations,
        reason,
    };
    // `Plan::over_paths` accepted only a model with [dynamics].
    let Ok(dynamics) = crate::dynamic::dynamics_of(structure.model()) else {
        return failed("not_dynamic".into(), 0, None);
    };
    let mut run = |index: Option<usize>| {
        crate::dynamic::solve_path_with(structure, index, dynamics.periods, overrides, settings, ws)
    };
    let (Ok(base), Ok(scen)) = (run(None), run(Some(plan.scenario))) else {
        return failed("not_dynamic".into(), 0, None);
    };
    let iterations: u64 = base
        .periods
        .iter()
        .chain(&scen.periods)
        .filter_map(|p| p.solved())
        .map(|s| s.solution.info.iterations)
        .sum();
    // The earlier stop of the two paths (the baseline's on a tie) fails the draw.
    let stop = [("baseline", &base), ("scenario", &scen)]
        .into_iter()
        .filter_map(|(which, run)| run.stopped_at().map(|p| (which, p)))
        .min_by_key(|(_, p)| p.period);
    if let Some((which, p)) = stop {
        let why = match &p.outcome {
            crate::dynamic::PeriodOutcome::Solved(x) => x.solution.status.label().to_string(),
            crate::dynamic::PeriodOutcome::Unsolved(e) => e.to_string(),
        };
        let year = crate::expr::fmt_num(p.year);
        return failed(
            format!("{which}_path_failed_at_{year}"),
            iterations,
            Some(why),
        );
    }
    // Per period: the change of every quantity from the baseline (both paths complete).
    let per_period: Vec<Vec<f64>> = base
        .periods
        .iter()
        .zip(&scen.periods)
        .filter_map(|(b, s)| Some((b.solved()?, s.solved()?)))
        .map(|(b, s)| {
            let lb = levels(structure, &b.coefficients, &b.solution, q);
            let ls = levels(structure, &s.coefficients, &s.solution, q);
            let mut c = changes(q, &lb, &ls);
            for (k, quantity) in q.iter().enumerate() {
                if let Quantity::Ev(_) = quantity {
                    c[k] = ls[k] - lb[k];
                }
            }
            c
        })
        .collect();
    let mut out: Vec<f64> = path
        .reported
        .iter()
        .flat_map(|&(t, _)| per_period[t].iter().copied())
        .collect();
    for (k, quantity) in q.iter().enumerate() {
        if quantity.unit() == Unit::Change {
            out.push(
                per_period
                    .iter()
                    .enumerate()
                    .map(|(t, c)| c[k] * dynamics.discount(t))
                    .sum(),
            );
        }
    }
    Row {
        draw,
        values,
        status: "converged".into(),
        changes: out,
        iterations,
        reason: None,
    }
}

/// The central case: the benchmark and the scenario with `--set` only, and their solutions
/// (the warm start of every draw).
#[derive(Debug, Clone)]
pub struct Central {
    pub row: Row,
    pub benchmark: Option<Solution>,
    pub scenario: Option<Solution>,
}

/// Solves the benchmark and the scenario at one parameter point (draw, varied values, all
/// overrides) and measures the changes. `warm` = (benchmark, scenario) points to start from, per the plan's [`WarmStart`].
fn solve_row(
    structure: &Structure,
    plan: &Plan,
    point: (u64, Vec<f64>, &[(usize, f64)]),
    warm: Option<(&[f64], &[f64])>,
    settings: &NewtonSettings,
    ws: &mut Workspace,
) -> (Row, Option<Solution>, Option<Solution>) {
    if let Some(path) = &plan.path {
        let (draw, values, overrides) = point;
        return (
            solve_path_row(
                structure,
                plan,
                path,
                (draw, values, overrides),
                settings,
                ws,
            ),
            None,
            None,
        );
    }
    let (draw, values, overrides) = point;
    let q = &plan.sensitivity.report;
    fn starts(w: Option<&[f64]>, mode: WarmStart) -> Vec<Start<'_>> {
        match (w, mode) {
            (None, _) => vec![Start::Benchmark],
            (Some(p), WarmStart::Fallback) => vec![Start::Benchmark, Start::Point(p)],
            (Some(p), WarmStart::Central) => vec![Start::Point(p), Start::Benchmark],
        }
    }
    let failed = |status: String, iterations: u64, reason: Option<String>| Row {
        draw,
        values: values.clone(),
        status,
        changes: vec![f64::NAN; q.len()],
        iterations,
        reason,
    };
    let bench = solve_point(
        structure,
        (None, None),
        overrides,
        settings,
        ws,
        // The draw's calibrated benchmark point is its benchmark equilibrium (replication): a
        // warm start there could only find another equilibrium of a model with several
        // (Cournot entry), and changes would then be measured from it.
        &starts(None, plan.warm_start),
    );
    let (bcoef, bsol) = match bench {
        Ok(b) => b,
        Err(e) => {
            return (
                failed("benchmark_evaluation_failed".into(), 0, Some(e)),
                None,
                None,
            )
        }
    };
    let bit = bsol.info.iterations;
    if !bsol.converged() {
        let status = format!("benchmark_{}", bsol.status.label());
        return (failed(status, bit, None), Some(bsol), None);
    }
    let scen = solve_point(
        structure,
        (Some(plan.scenario), Some(&bcoef)),
        overrides,
        settings,
        ws,
        &starts(warm.map(|w| w.1), plan.warm_start),
    );
    let (scoef, ssol) = match scen {
        Ok(s) => s,
        Err(e) => {
            return (
                failed("evaluation_failed".into(), bit, Some(e)),
                Some(bsol),
                None,
            )
        }
    };
    let iterations = bit + ssol.info.iterations;
    if !ssol.converged() {
        let reason = match &ssol.status {
            SolveStatus::EvaluationFailed(why) if !why.is_empty() => Some(why.clone()),
            _ => None,
        };
        return (
            failed(ssol.status.label().into(), iterations, reason),
            Some(bsol),
            Some(ssol),
        );
    }
    let base = levels(structure, &bcoef, &bsol, q);
    let new = levels(structure, &scoef, &ssol, q);
    let row = Row {
        draw,
        values,
        status: "converged".into(),
        changes: changes(q, &base, &new),
        iterations,
        reason: None,
    };
    (row, Some(bsol), Some(ssol))
}

/// Solves the central case (the model's values of the varied parameters, `--set` applied).
pub fn central(structure: &Structure, plan: &Plan, settings: &NewtonSettings) -> Central {
    let mut ws = Workspace::new(structure);
    let values: Vec<f64> = plan
        .active
        .iter()
        .map(|&k| structure.model().parameters[plan.sensitivity.varied[k].parameter].value)
        .collect();
    let (row, benchmark, scenario) = solve_row(
        structure,
        plan,
        (u64::MAX, values, &plan.overrides),
        None,
        settings,
        &mut ws,
    );
    Central {
        row,
        benchmark: benchmark.filter(|s| s.converged()),
        scenario: scenario.filter(|s| s.converged()),
    }
}

/// Solves draws `draws` (in parallel, each thread with its own workspace); `progress` is
/// called once per finished draw from any thread. Rows come back in draw order.
pub fn solve_draws(
    structure: &Structure,
    plan: &Plan,
    central: &Central,
    draws: Range<u64>,
    settings: &NewtonSettings,
    progress: &(dyn Fn() + Sync),
) -> Vec<Row> {
    let warm = match (&central.benchmark, &central.scenario) {
        (Some(b), Some(s)) => Some((b.x.as_slice(), s.x.as_slice())),
        _ => None,
    };
    draws
        .into_par_iter()
        .map_init(
            || Workspace::new(structure),
            |ws, d| {
                let _span = tracing::debug_span!("draw", d).entered();
                let values = plan.values(d);
                let overrides = plan.overrides_with(&values);
                let row = solve_row(structure, plan, (d, values, &overrides), warm, settings, ws).0;
                progress();
                row
            },
        )
        .collect()
}

/// One bar of a tornado chart: a parameter at the 5 % and at the 95 % quantile of its
/// distribution, every other at its central value, and the change of every reported quantity
/// there (`None` when that solve failed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TornadoBar {
    pub parameter: String,
    pub low_value: f64,
    pub high_value: f64,
    pub low: Vec<Option<f64>>,
    pub high: Vec<Option<f64>>,
}

/// One-at-a-time low/high solves of every varied parameter (in parallel).
pub fn tornado(
    structure: &Structure,
    plan: &Plan,
    central: &Central,
    settings: &NewtonSettings,
) -> Vec<TornadoBar> {
    let model = structure.model();
    let centre: Vec<f64> = plan
        .active
        .iter()
        .map(|&k| model.parameters[plan.sensitivity.varied[k].parameter].value)
        .collect();
    let warm = match (&central.benchmark, &central.scenario) {
        (Some(b), Some(s)) => Some((b.x.as_slice(), s.x.as_slice())),
        _ => None,
    };
    let points: Vec<(usize, f64)> = (0..plan.active.len())
        .flat_map(|j| {
            let d = &plan.sensitivity.varied[plan.active[j]].distribution;
            [(j, draws::quantile(d, 0.05)), (j, draws::quantile(d, 0.95))]
        })
        .collect();
    let rows: Vec<Row> = points
        .par_iter()
        .map_init(
            || Workspace::new(structure),
            |ws, &(j, v)| {
                let mut values = centre.clone();
                values[j] = v;
                let overrides = plan.overrides_with(&values);
                solve_row(structure, plan, (0, values, &overrides), warm, settings, ws).0
            },
        )
        .collect();
    let finite = |r: &Row| -> Vec<Option<f64>> {
        r.changes
            .iter()
            .map(|&c| c.is_finite().then_some(c))
            .collect()
    };
    plan.active_names(model)
        .into_iter()
        .enumerate()
        .map(|(j, parameter)| TornadoBar {
            parameter,
            low_value: points[2 * j].1,
            high_value: points[2 * j + 1].1,
            low: finite(&rows[2 * j]),
            high: finite(&rows[2 * j + 1]),
        })
        .collect()
}

/// Summary statistics of one quantity's change over the solved draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub central: Option<f64>,
    pub mean: Option<f64>,
    pub sd: Option<f64>,
    pub q05: Option<f64>,
    pub q50: Option<f64>,
    pub q95: Option<f64>,
    pub sign_flip_share: Option<f64>,
    /// `%` or `change`.
    pub unit: String,
}

/// The quantile of sorted values at probability `p` by linear interpolation between order
/// statistics (Hyndman & Fan's type 7, R's and NumPy's default): h = (n − 1)p,
/// Q = x⌊h⌋ + (h − ⌊h⌋)(x⌊h⌋+1 − x⌊h⌋).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Statistics of `values` (draw order; NaN = not solved) against the central change.
pub fn stats(values: &[f64], central: f64, unit: Unit) -> Stats {
    let x: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let n = x.len();
    let some = |v: f64| v.is_finite().then_some(v);
    let mean = x.iter().sum::<f64>() / n as f64;
    let sd = if n > 1 {
        (x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        f64::NAN
    };
    let mut sorted = x.clone();
    sorted.sort_by(f64::total_cmp);
    let sign = |v: f64| {
        if v.abs() <= ZERO_CHANGE {
            0.0
        } else {
            v.signum()
        }
    };
    let flip = if central.is_finite() && sign(central) != 0.0 && n > 0 {
        let s = sign(central);
        x.iter().filter(|&&v| sign(v) == -s).count() as f64 / n as f64
    } else {
        f64::NAN
    };
    Stats {
        central: some(central),
        mean: some(mean),
        sd: some(sd),
        q05: some(quantile_sorted(&sorted, 0.05)),
        q50: some(quantile_sorted(&sorted, 0.5)),
        q95: some(quantile_sorted(&sorted, 0.95)),
        sign_flip_share: some(flip),
        unit: unit.label().into(),
    }
}

/// A draw that was not solved, with its parameters and status: never dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedDraw {
    pub draw: u64,
    pub parameters: IndexMap<String, f64>,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A varied parameter as the summary states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariedSummary {
    pub parameter: String,
    pub distribution: String,
    pub central: f64,
}

/// The result of a sweep: the keys first (`model`, `scenario`, `draws`, `solved`,
/// `failed`, `quantities`), then what was varied and the tornado.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub model: String,
    pub scenario: String,
    pub draws: u64,
    pub solved: u64,
    pub failed: Vec<FailedDraw>,
    pub quantities: IndexMap<String, Stats>,
    pub seed: u64,
    pub warm_start: WarmStart,
    pub overrides: IndexMap<String, f64>,
    pub varied: Vec<VariedSummary>,
    /// Varied parameters the scenario sets itself (held at its value).
    pub held: Vec<String>,
    /// Status of the central case.
    pub central_status: String,
    pub tornado: Vec<TornadoBar>,
}

/// Summarises all the rows of a sweep (in draw order) with its central case and tornado.
pub fn summarise(
    model: &Model,
    plan: &Plan,
    central: &Row,
    rows: &[Row],
    tornado: Vec<TornadoBar>,
) -> Summary {
    let names = plan.quantity_names(model);
    let params = plan.active_names(model);
    let solved: Vec<&Row> = rows.iter().filter(|r| r.converged()).collect();
    let mut quantities = IndexMap::new();
    for (j, (name, unit)) in names.iter().zip(plan.quantity_units()).enumerate() {
        let values: Vec<f64> = rows
            .iter()
            .map(|r| {
                if r.converged() {
                    r.changes[j]
                } else {
                    f64::NAN
                }
            })
            .collect();
        quantities.insert(name.clone(), stats(&values, central.changes[j], unit));
    }
    let failed = rows
        .iter()
        .filter(|r| !r.converged())
        .map(|r| FailedDraw {
            draw: r.draw,
            parameters: params
                .iter()
                .cloned()
                .zip(r.values.iter().copied())
                .collect(),
            status: r.status.clone(),
            reason: r.reason.clone(),
        })
        .collect();
    Summary {
        model: model.name.clone(),
        scenario: model.scenarios[plan.scenario].name.clone(),
        draws: rows.len() as u64,
        solved: solved.len() as u64,
        failed,
        quantities,
        seed: plan.sensitivity.seed,
        warm_start: plan.warm_start,
        overrides: plan
            .overrides
            .iter()
            .map(|&(p, v)| (model.parameters[p].name.clone(), v))
            .collect(),
        varied: plan
            .active
            .iter()
            .map(|&k| {
                let v = &plan.sensitivity.varied[k];
                VariedSummary {
                    parameter: model.parameters[v.parameter].name.clone(),
                    distribution: describe_distribution(&v.distribution),
                    central: model.parameters[v.parameter].value,
                }
            })
            .collect(),
        held: plan
            .held
            .iter()
            .map(|&k| {
                model.parameters[plan.sensitivity.varied[k].parameter]
                    .name
                    .clone()
            })
            .collect(),
        central_status: central.status.clone(),
        tornado,
    }
}

/// A number for the summary table.
fn cell(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(v) if v.abs() >= 1e6 || v.abs() < 1e-3 => format!("{v:.3e}"),
        Some(v) => format!("{v:.4}"),
    }
}

impl Summary {
    /// The table for people: what was varied, then one line per quantity, then the failures.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model {}  scenario {}: sensitivity over {} draws (seed {}), {} solved, {} failed; central case {}",
            self.model,
            self.scenario,
            self.draws,
            self.seed,
            self.solved,
            self.failed.len(),
            self.central_status
        );
        for v in &self.varied {
            let _ = writeln!(
                s,
                "  {:<24} {} (central {})",
                v.parameter,
                v.distribution,
                crate::expr::fmt_num(v.central)
            );
        }
        if !self.held.is_empty() {
            let _ = writeln!(
                s,
                "  held at the scenario's values: {}",
                self.held.join(", ")
            );
        }
        if !self.overrides.is_empty() {
            let o: Vec<String> = self
                .overrides
                .iter()
                .map(|(k, v)| format!("{k} = {}", crate::expr::fmt_num(*v)))
                .collect();
            let _ = writeln!(s, "  --set {}", o.join(", "));
        }
        let w = self
            .quantities
            .keys()
            .map(|k| k.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let _ = writeln!(
            s,
            "\n{:<w$}  {:>6}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}",
            "quantity", "unit", "central", "mean", "sd", "q05", "q50", "q95", "sign flip"
        );
        for (name, q) in &self.quantities {
            let flip = q
                .sign_flip_share
                .map(|f| format!("{:.1} %", 100.0 * f))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "{:<w$}  {:>6}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}  {:>11}",
                name,
                q.unit,
                cell(q.central),
                cell(q.mean),
                cell(q.sd),
                cell(q.q05),
                cell(q.q50),
                cell(q.q95),
                flip
            );
        }
        if !self.failed.is_empty() {
            let _ = writeln!(s, "\nfailed draws ({}):", self.failed.len());
            for f in &self.failed {
                let p: Vec<String> = f
                    .parameters
                    .iter()
                    .map(|(k, v)| format!("{k}={}", crate::report::csv_num(*v)))
                    .collect();
                let _ = writeln!(
                    s,
                    "  draw {}: {}{}  {}",
                    f.draw,
                    f.status,
                    f.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default(),
                    p.join(" ")
                );
            }
        }
        s
    }

    /// CSV: `quantity,unit,central,mean,sd,q05,q50,q95,sign_flip_share`.
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "quantity",
            "unit",
            "central",
            "mean",
            "sd",
            "q05",
            "q50",
            "q95",
            "sign_flip_share",
        ]);
        let num = |v: Option<f64>| v.map(crate::report::csv_num).unwrap_or_default();
        for (name, q) in &self.quantities {
            let _ = w.write_record([
                name.clone(),
                q.unit.clone(),
                num(q.central),
                num(q.mean),
                num(q.sd),
                num(q.q05),
                num(q.q50),
                num(q.q95),
                num(q.sign_flip_share),
            ]);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// JSON text (pretty, newline-terminated).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// Rows as CSV: `draw`, each varied parameter, `status`, each quantity's change (all digits;
/// empty when not a number), one row per draw in the order given.
pub fn rows_csv(parameters: &[String], quantities: &[String], rows: &[Row]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut head = vec!["draw".to_string()];
    head.extend(parameters.iter().cloned());
    head.push("status".into());
    head.extend(quantities.iter().cloned());
    let _ = w.write_record(&head);
    for r in rows {
        let mut rec = vec![r.draw.to_string()];
        rec.extend(r.values.iter().map(|&v| crate::report::csv_num(v)));
        rec.push(r.status.clone());
        rec.extend(r.changes.iter().map(|&v| crate::report::csv_num(v)));
        let _ = w.write_record(&rec);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Why rows could not be read back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct RowsError(pub String);

/// Reads rows written by [`rows_csv`]; the header must name the same parameters and quantities.
/// Rows read back carry no iteration count or reason (0, None).
pub fn parse_rows(
    text: &str,
    parameters: &[String],
    quantities: &[String],
) -> Result<Vec<Row>, RowsError> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let head: Vec<String> = r
        .headers()
        .map_err(|e| RowsError(e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let mut expected = vec!["draw".to_string()];
    expected.extend(parameters.iter().cloned());
    expected.push("status".into());
    expected.extend(quantities.iter().cloned());
    if head != expected {
        return Err(RowsError(format!(
            "the header is not this sweep's (expected {})",
            expected.join(",")
        )));
    }
    let np = parameters.len();
    let num = |s: &str| -> Result<f64, RowsError> {
        if s.is_empty() {
            Ok(f64::NAN)
        } else {
            s.parse()
                .map_err(|_| RowsError(format!("'{s}' is not a number")))
        }
    };
    let mut rows = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| RowsError(e.to_string()))?;
        let at = |e: RowsError| RowsError(format!("row {}: {}", line + 2, e.0));
        if rec.len() != expected.len() {
            return Err(at(RowsError(format!(
                "{} cells, expected {}",
                rec.len(),
                expected.len()
            ))));
        }
        let draw = rec[0]
            .parse()
            .map_err(|_| at(RowsError(format!("draw '{}' is not a number", &rec[0]))))?;
        let values = (1..=np)
            .map(|i| num(&rec[i]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(at)?;
        let changes = (np + 2..rec.len())
            .map(|i| num(&rec[i]))
            .collect::<Result<Vec<_>, _>>()
            .map_err(at)?;
        rows.push(Row {
            draw,
            values,
            status: rec[np + 1].to_string(),
            changes,
            iterations: 0,
            reason: None,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_draws_in_order() {
        for (draws, n) in [(1000u64, 3u64), (7, 7), (5, 8), (100_000, 64)] {
            let mut next = 0;
            for k in 1..=n {
                let r = Shard { k, n }.range(draws);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, draws);
        }
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { k: 2, n: 5 });
        for bad in ["0/3", "4/3", "1", "a/b", "1/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn type_7_quantiles_interpolate_between_order_statistics() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile_sorted(&x, 0.5), 3.0);
        assert_eq!(quantile_sorted(&x, 0.05), 1.2);
        assert!((quantile_sorted(&x, 0.95) - 4.8).abs() < 1e-15);
        assert_eq!(quantile_sorted(&[7.0], 0.05), 7.0);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn stats_count_opposite_signs_and_ignore_unsolved_draws() {
        let v = [1.0, -2.0, f64::NAN, 3.0, 0.0, -1e-9];
        let s = stats(&v, 0.5, Unit::Percent);
        // Five solved draws: mean 0.4 (to rounding), one strictly negative change beyond 1e-6.
        assert!((s.mean.unwrap() - (1.0 - 2.0 + 3.0 + 0.0 - 1e-9) / 5.0).abs() < 1e-15);
        assert_eq!(s.sign_flip_share, Some(0.2));
        let sd = {
            let m = s.mean.unwrap();
            ([1.0, -2.0, 3.0, 0.0, -1e-9]
                .iter()
                .map(|x| (x - m) * (x - m))
                .sum::<f64>()
                / 4.0)
                .sqrt()
        };
        assert!((s.sd.unwrap() - sd).abs() < 1e-15);
        // No sign at the centre: no share.
        assert_eq!(stats(&v, 0.0, Unit::Percent).sign_flip_share, None);
    }

    #[test]
    fn rows_round_trip_through_csv_to_the_last_bit() {
        let rows = vec![
            Row {
                draw: 3,
                values: vec![0.1 + 0.2, 1.0 / 3.0],
                status: "converged".into(),
                changes: vec![-1.234_567_890_123_456_7e-5, f64::NAN],
                iterations: 4,
                reason: None,
            },
            Row {
                draw: 4,
                values: vec![2.0, 3.0],
                status: "max_iterations".into(),
                changes: vec![f64::NAN, f64::NAN],
                iterations: 200,
                reason: None,
            },
        ];
        let p = vec!["a".to_string(), "b".to_string()];
        let q = vec!["PX".to_string(), "ev(RA)".to_string()];
        let text = rows_csv(&p, &q, &rows);
        let back = parse_rows(&text, &p, &q).unwrap();
        assert_eq!(rows_csv(&p, &q, &back), text);
        assert_eq!(back[0].values[0].to_bits(), (0.1f64 + 0.2).to_bits());
        assert!(parse_rows(&text, &q, &p).is_err());
    }
}
