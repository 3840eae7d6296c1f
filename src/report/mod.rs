//! Reports: one serialisable [`SolutionReport`] per solved scenario, built from a solution and
//! rendered as the contract's JSON object, a table for people or CSV rows for programs — the
//! formats agree by construction. Also target checks, the benchmark-replication check, the
//! model description, the side-by-side comparison (`compare`) and the reports of dynamic paths
//! (`dynamic`).
//!
//! Every report can show value, margin (the paired function, scaled) and their product, which
//! is zero at a complementary point: the quickest way to find a bad benchmark.

pub mod compare;
pub mod describe;
pub mod dynamic;
pub mod stream;

use std::fmt::Write as _;

use indexmap::IndexMap;
use serde::Serialize;

use crate::compile::{Bounds, EvalWorkspace, EvaluationError, System, VarKind};
use crate::ids::{ConsumerId, VarId};
use crate::model::{Model, Normaliser, TargetCheck};
use crate::scenario::{Scenario, Solution};
use crate::solve::SolveStatus;

/// Name of a normaliser.
pub fn normaliser_name(model: &Model, n: &Option<Normaliser>) -> Option<String> {
    n.map(|n| match n {
        Normaliser::Commodity(c) => model.commodities[c].name.clone(),
        Normaliser::Consumer(h) => model.consumers[h].name.clone(),
    })
}

/// Welfare of one consumer: the money-metric index and the Hicksian equivalent variation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Welfare {
    pub index: f64,
    pub ev: f64,
}

/// An equation with a large residual.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorstEquation {
    pub equation: String,
    pub residual: f64,
}

/// A level far from its benchmark at a failed solve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Runaway {
    pub variable: String,
    /// Level over the scenario's benchmark level.
    pub ratio: f64,
}

impl Runaway {
    /// Levels with their ratios, by name.
    fn named(structure: &crate::compile::Structure, levels: &[(VarId, f64)]) -> Vec<Runaway> {
        levels
            .iter()
            .map(|&(v, ratio)| Runaway {
                variable: structure.var_name(v).to_string(),
                ratio,
            })
            .collect()
    }
}

/// Where the continuation towards a failed scenario stopped (see `scenario::PathStop`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PathStopReport {
    /// The largest fraction of the shock at which a verified equilibrium was found.
    pub reached: f64,
    /// Levels that had moved furthest from the scenario's benchmark there (beyond ×10 or ÷10).
    pub moved: Vec<Runaway>,
}

/// One variable with its paired function: level, margin and slack·margin.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableRow {
    pub kind: VarKind,
    pub name: String,
    pub level: f64,
    pub margin: f64,
    /// Distance of the level from the bound it is complementary to, times the margin.
    pub slack_margin: f64,
}

/// Everything reported about one solved scenario. Serialises to the contract's JSON object
/// (non-finite numbers as `null`); `indicators` and `worst` appear only when there are any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolutionReport {
    pub model: String,
    pub scenario: String,
    pub status: &'static str,
    pub iterations: u64,
    /// The largest residual, recomputed at the returned point independently of the solver.
    pub residual: f64,
    /// The residual of the dropped normalising function (Walras' law); null without one.
    pub walras_residual: Option<f64>,
    pub numeraire: Option<String>,
    pub fixed: IndexMap<String, f64>,
    pub sectors: IndexMap<String, f64>,
    pub commodities: IndexMap<String, f64>,
    pub consumers: IndexMap<String, f64>,
    pub auxiliary: IndexMap<String, f64>,
    pub welfare: IndexMap<String, Welfare>,
    pub pruned: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indicators: Option<IndexMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst: Option<Vec<WorstEquation>>,
    /// When not converged: levels that ran off from the scenario's benchmark (by a factor
    /// beyond 10⁴), furthest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runaway: Option<Vec<Runaway>>,
    /// When not converged after a continuation: how far along the shock the path got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathStopReport>,
    /// Why the scenario could not be solved at all (its calibration failed to evaluate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Levels, margins and products, in layout order (table and CSV).
    #[serde(skip)]
    pub variables: Vec<VariableRow>,
    /// Why an indicator could not be evaluated, beside `indicators`.
    #[serde(skip)]
    pub indicator_errors: IndexMap<String, String>,
    #[serde(skip)]
    pub converged: bool,
}

/// Distance of a level from the bound it is complementary to: the level itself for
/// activities, prices and incomes (MPSGE's level·margin), the distance to the nearer finite
/// bound for an auxiliary, so that the product is zero at every complementary point.
fn slack(kind: VarKind, bounds: Option<&Bounds>, v: usize, x: f64) -> f64 {
    let (Some(b), VarKind::Auxiliary) = (bounds, kind) else {
        return x;
    };
    let (l, u) = (b.lower[v], b.upper[v]);
    match (l.is_finite(), u.is_finite()) {
        (true, true) => (x - l).min(u - x),
        (true, false) => x - l,
        (false, true) => u - x,
        (false, false) => 1.0,
    }
}

impl SolutionReport {
    /// The report of a scenario that could not be set up: status `evaluation_failed`, the
    /// reason, no levels.
    pub fn unsolved(model: &Model, scenario: &str, reason: String) -> SolutionReport {
        SolutionReport {
            model: model.name.clone(),
            scenario: scenario.to_string(),
            status: SolveStatus::EvaluationFailed(String::new()).label(),
            iterations: 0,
            residual: f64::NAN,
            walras_residual: None,
            numeraire: None,
            fixed: IndexMap::new(),
            sectors: IndexMap::new(),
            commodities: IndexMap::new(),
            consumers: IndexMap::new(),
            auxiliary: IndexMap::new(),
            welfare: IndexMap::new(),
            pruned: Vec::new(),
            indicators: None,
            worst: None,
            runaway: None,
            path: None,
            reason: Some(reason),
            variables: Vec::new(),
            indicator_errors: IndexMap::new(),
            converged: false,
        }
    }

    /// Builds the report of a solution; `system` carries the scenario's coefficients.
    pub fn new(system: System<'_>, sol: &Solution) -> SolutionReport {
        Self::new_in(system, sol, &mut EvalWorkspace::new(system.structure))
    }

    /// [`SolutionReport::new`] with the solution's point evaluated in the scratch of `ws`
    /// (the solve's own, which it is done with): the same numbers, since an evaluation writes
    /// every entry it reads, without a second point state of 24 bytes a leaf beside the
    /// solver's (600 MB at N = 5000 for a model over sets).
    pub fn new_in(system: System<'_>, sol: &Solution, ws: &mut EvalWorkspace) -> SolutionReport {
        let structure = system.structure;
        let m = structure.model();
        let layout = structure.layout();
        let bounds = system.bounds().ok();
        let mut r = SolutionReport {
            model: m.name.clone(),
            scenario: sol.scenario.name.clone(),
            status: sol.status.label(),
            iterations: sol.info.iterations,
            residual: sol.residual,
            walras_residual: sol.walras_residual,
            numeraire: normaliser_name(m, &sol.scenario.numeraire),
            fixed: sol
                .scenario
                .fixed
                .iter()
                .map(|&(v, x)| (structure.var_name(v).to_string(), x))
                .collect(),
            sectors: IndexMap::new(),
            commodities: IndexMap::new(),
            consumers: IndexMap::new(),
            auxiliary: IndexMap::new(),
            welfare: IndexMap::new(),
            pruned: system
                .coef
                .pruned()
                .iter()
                .map(|p| p.what.clone())
                .collect(),
            indicators: None,
            worst: None,
            runaway: None,
            path: None,
            reason: match &sol.status {
                SolveStatus::EvaluationFailed(why) if !why.is_empty() => Some(why.clone()),
                _ => None,
            },
            variables: Vec::new(),
            indicator_errors: IndexMap::new(),
            converged: sol.converged(),
        };
        for v in layout.vars() {
            let name = structure.var_name(v).to_string();
            let kind = layout.kind(v);
            let level = sol.x[v];
            match kind {
                VarKind::Sector => r.sectors.insert(name.clone(), level),
                VarKind::Commodity => r.commodities.insert(name.clone(), level),
                VarKind::Consumer => r.consumers.insert(name.clone(), level),
                VarKind::Auxiliary => r.auxiliary.insert(name.clone(), level),
            };
            r.variables.push(VariableRow {
                kind,
                name,
                level,
                margin: sol.f[v],
                slack_margin: slack(kind, bounds.as_ref(), v.index(), level) * sol.f[v],
            });
        }
        let point = system
            .point_into(&sol.x, false, &mut ws.point)
            .map(|()| &ws.point);
        for (h, c) in m.consumers.iter().enumerate() {
            let w = match &point {
                Ok(st) => Welfare {
                    index: st.consumers[h].welfare(),
                    ev: system.ev(ConsumerId::new(h), st),
                },
                Err(_) => Welfare {
                    index: f64::NAN,
                    ev: f64::NAN,
                },
            };
            r.welfare.insert(c.name.clone(), w);
        }
        if !m.indicators.is_empty() {
            let mut values = IndexMap::new();
            let evaluated: Vec<Result<f64, String>> = match &point {
                Ok(st) => system
                    .indicators_at(&sol.x, st)
                    .into_iter()
                    .map(|v| v.map_err(|e| e.to_string()))
                    .collect(),
                Err(e) => vec![Err(e.to_string()); m.indicators.len()],
            };
            for (d, v) in m.indicators.iter().zip(evaluated) {
                match v {
                    Ok(v) => {
                        values.insert(d.name.clone(), v);
                    }
                    Err(e) => {
                        values.insert(d.name.clone(), f64::NAN);
                        r.indicator_errors.insert(d.name.clone(), e);
                    }
                }
            }
            r.indicators = Some(values);
        }
        if !sol.runaway.is_empty() {
            r.runaway = Some(Runaway::named(structure, &sol.runaway));
        }
        if let Some(stop) = &sol.path {
            r.path = Some(PathStopReport {
                reached: stop.reached,
                moved: Runaway::named(structure, &stop.moved),
            });
        }
        if !sol.converged() {
            r.worst = Some(
                sol.worst
                    .iter()
                    .map(|&(v, res)| WorstEquation {
                        equation: structure.equation_name(v),
                        residual: res,
                    })
                    .collect(),
            );
        }
        r
    }

    /// The contract's JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// A table for people: levels, margins and their products, welfare and indicators.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "model {}  scenario {}", self.model, self.scenario);
        let _ = writeln!(
            s,
            "status {}  iterations {}  residual {:.3e}  walras {}  numeraire {}",
            self.status,
            self.iterations,
            self.residual,
            self.walras_residual
                .map(|w| format!("{w:.3e}"))
                .unwrap_or_else(|| "-".into()),
            self.numeraire.as_deref().unwrap_or("(fix)")
        );
        if !self.fixed.is_empty() {
            let f: Vec<String> = self
                .fixed
                .iter()
                .map(|(v, x)| format!("{v} = {}", fmt(*x)))
                .collect();
            let _ = writeln!(s, "fixed {}", f.join(", "));
        }
        let width = self
            .variables
            .iter()
            .map(|v| v.name.len())
            .max()
            .unwrap_or(4)
            .max(9);
        for kind in [
            VarKind::Sector,
            VarKind::Commodity,
            VarKind::Consumer,
            VarKind::Auxiliary,
        ] {
            let rows: Vec<&VariableRow> =
                self.variables.iter().filter(|v| v.kind == kind).collect();
            if rows.is_empty() {
                continue;
            }
            let _ = writeln!(
                s,
                "\n{:<width$}  {:>14}  {:>12}  {:>12}",
                kind.label(),
                "level",
                "margin",
                "slack*margin"
            );
            for v in rows {
                let _ = writeln!(
                    s,
                    "{:<width$}  {:>14}  {:>12}  {:>12}",
                    v.name,
                    fmt(v.level),
                    sci(v.margin),
                    sci(v.slack_margin)
                );
            }
        }
        let _ = writeln!(s, "\n{:<width$}  {:>14}  {:>14}", "welfare", "index", "ev");
        for (name, w) in &self.welfare {
            let _ = writeln!(
                s,
                "{:<width$}  {:>14}  {:>14}",
                name,
                fmt(w.index),
                fmt(w.ev)
            );
        }
        if let Some(ind) = &self.indicators {
            let w = ind.keys().map(|k| k.len()).max().unwrap_or(9).max(9);
            let _ = writeln!(s, "\n{:<w$}  {:>14}", "indicator", "value");
            for (name, v) in ind {
                let v = match self.indicator_errors.get(name) {
                    Some(e) => format!("error: {e}"),
                    None => fmt(*v),
                };
                let _ = writeln!(s, "{:<w$}  {:>14}", name, v);
            }
        }
        if !self.pruned.is_empty() {
            let _ = writeln!(s, "\npruned:");
            for p in &self.pruned {
                let _ = writeln!(s, "  {p}");
            }
        }
        if let Some(worst) = &self.worst {
            let _ = writeln!(s, "\nNOT CONVERGED ({}); worst equations:", self.status);
            for w in worst {
                let _ = writeln!(s, "  {:<40} residual {:.3e}", w.equation, w.residual);
            }
        }
        s
    }

    /// CSV rows `scenario,kind,name,index1..indexK,value,margin` (welfare as
    /// `welfare_index`/`ev`, indicators as `indicator`): tidy, so that pandas or R can pivot
    /// them. With `width` index columns (the reports' [`index_width`]) an element's name is
    /// split into its base and its labels (`Y[agr,srv]` is `Y`, `agr`, `srv`; empty columns
    /// where a name has fewer); with none, as for a plain model, the name is written whole.
    pub fn csv_rows(&self, out: &mut csv::Writer<Vec<u8>>, width: usize) -> csv::Result<()> {
        // Field by field, the numbers formatted into two reused buffers: a report has a row per
        // level, welfare figure and indicator, and `solve --all` writes a thousand reports.
        let sc = self.scenario.as_str();
        let (mut value, mut margin) = (String::new(), String::new());
        let mut row = |kind: &str, name: &str, value: &str, margin: &str| {
            out.write_field(sc)?;
            out.write_field(kind)?;
            for cell in name_cells(name, width) {
                out.write_field(cell)?;
            }
            out.write_field(value)?;
            out.write_field(margin)?;
            out.write_record(None::<&[u8]>)
        };
        // Every scenario has its status row (with the verified residual), solved or not.
        row(
            "status",
            self.status,
            csv_num_in(&mut value, self.residual),
            "",
        )?;
        for v in &self.variables {
            row(
                v.kind.label(),
                &v.name,
                csv_num_in(&mut value, v.level),
                csv_num_in(&mut margin, v.margin),
            )?;
        }
        for (name, w) in &self.welfare {
            row("welfare_index", name, csv_num_in(&mut value, w.index), "")?;
            row("ev", name, csv_num_in(&mut value, w.ev), "")?;
        }
        if let Some(ind) = &self.indicators {
            for (name, v) in ind {
                row("indicator", name, csv_num_in(&mut value, *v), "")?;
            }
        }
        Ok(())
    }
}

/// The header of [`SolutionReport::csv_rows`] with `width` index columns.
pub fn csv_header(width: usize) -> Vec<String> {
    let mut h: Vec<String> = ["scenario", "kind", "name"].map(String::from).to_vec();
    h.extend((1..=width).map(|k| format!("index{k}")));
    h.extend(["value".to_string(), "margin".to_string()]);
    h
}

/// `("Y", "agr")` for `Y[agr]`, `("x", "i, j")` for `x[i, j]`; None for a plain name.
fn base_and_labels(name: &str) -> Option<(&str, &str)> {
    name.split_once('[')
        .and_then(|(b, rest)| Some((b, rest.strip_suffix(']')?)))
}

/// How many labels a name carries (0 for a plain name), without collecting them.
pub fn label_count(name: &str) -> usize {
    base_and_labels(name).map_or(0, |(_, labels)| labels.split(',').count())
}

/// A name's CSV cells with `width` index columns: its base and its labels, empty cells where it
/// has fewer; the name whole when `width` is 0 (a plain model).
pub fn name_columns(name: &str, width: usize) -> Vec<&str> {
    name_cells(name, width).collect()
}

/// [`name_columns`] without collecting them.
fn name_cells(name: &str, width: usize) -> impl Iterator<Item = &str> {
    let (base, labels) = match base_and_labels(name) {
        Some((base, labels)) if width > 0 => (base, Some(labels)),
        _ => (name, None),
    };
    let mut labels = labels.into_iter().flat_map(|l| l.split(',').map(str::trim));
    std::iter::once(base).chain((0..width).map(move |_| labels.next().unwrap_or("")))
}

/// The most labels any name of these reports carries (activities, prices, incomes,
/// auxiliaries, welfare, indicators): the number of index columns of their CSV.
pub fn index_width(reports: &[SolutionReport]) -> usize {
    let labels = label_count;
    reports
        .iter()
        .flat_map(|r| {
            let vars = r.variables.iter().map(|v| labels(&v.name));
            let welfare = r.welfare.keys().map(|n| labels(n));
            let indicators = r.indicators.iter().flatten().map(|(n, _)| labels(n));
            vars.chain(welfare).chain(indicators)
        })
        .max()
        .unwrap_or(0)
}

/// Scientific notation with three decimals, "-" when not finite.
fn sci(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3e}")
    } else {
        "-".into()
    }
}

/// Formats a number for tables: fixed width, enough digits to compare with GAMS listings.
pub fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 || v.abs() < 1e-4 {
        format!("{v:.6e}")
    } else {
        format!("{v:.6}")
    }
}

/// A number for CSV: all its digits, or empty when it is not finite (never "NaN").
pub fn csv_num(v: f64) -> String {
    let mut s = String::new();
    csv_num_in(&mut s, v);
    s
}

/// [`csv_num`] written into a reused buffer, which it returns.
fn csv_num_in(buf: &mut String, v: f64) -> &str {
    buf.clear();
    if v.is_finite() {
        let _ = write!(buf, "{v:?}");
    }
    buf
}

/// The outcome of one target.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub name: String,
    pub scenario: String,
    pub value: Option<f64>,
    /// "= 1.1 ± 1e-6" or "in [a, b]".
    pub expected: String,
    pub pass: bool,
    pub note: String,
}

/// The targets of a scenario that could not be set up: each fails, with the reason.
pub fn unsolved_targets(model: &Model, scenario: Option<usize>, reason: &str) -> Vec<TargetResult> {
    let name = scenario
        .map(|i| model.scenarios[i].name.clone())
        .unwrap_or_else(|| "benchmark".into());
    model
        .targets
        .iter()
        .filter(|t| t.scenario == scenario && t.period.is_none())
        .map(|t| TargetResult {
            name: t.name.clone(),
            scenario: name.clone(),
            value: None,
            expected: String::new(),
            pass: false,
            note: format!("scenario not solved: {reason}"),
        })
        .collect()
}

/// Evaluates the (static) targets of one scenario at its solution (`system` carries the
/// scenario's coefficients).
pub fn check_targets(
    system: System<'_>,
    sol: &Solution,
    scenario: Option<usize>,
) -> Vec<TargetResult> {
    check_targets_where(system, sol, &|t| {
        t.scenario == scenario && t.period.is_none()
    })
}

/// Evaluates the targets `which` selects at a solution (`system` carries its coefficients).
pub fn check_targets_where(
    system: System<'_>,
    sol: &Solution,
    which: &dyn Fn(&crate::model::Target) -> bool,
) -> Vec<TargetResult> {
    let m = system.structure.model();
    let params = system.coef.params();
    let pe = |e: &crate::expr::Expr| crate::calibrate::eval_param(e, params);
    let st = system.point(&sol.x);
    let mut out = Vec::new();
    for t in m.targets.iter().filter(|t| which(t)) {
        let value = match &st {
            Ok(st) => system
                .eval_expr_at(&sol.x, st, &t.expr)
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let (expected, verdict) = match &t.check {
            TargetCheck::Value {
                value: v,
                tolerance,
            } => match (pe(v), pe(tolerance)) {
                (Ok(v), Ok(tol)) => {
                    let bound = tol * v.abs().max(1.0);
                    (
                        format!("= {} ± {}", sig(v), sig(bound)),
                        value.as_ref().map(|x| (x - v).abs() <= bound),
                    )
                }
                (Err(e), _) | (_, Err(e)) => (format!("error: {e}"), Ok(false)),
            },
            TargetCheck::Range { min, max } => {
                let lo = min.as_ref().map(pe).transpose();
                let hi = max.as_ref().map(pe).transpose();
                match (lo, hi) {
                    (Ok(lo), Ok(hi)) => {
                        let txt = format!(
                            "in [{}, {}]",
                            lo.map(sig).unwrap_or_else(|| "-inf".into()),
                            hi.map(sig).unwrap_or_else(|| "inf".into())
                        );
                        (
                            txt,
                            value
                                .as_ref()
                                .map(|x| lo.is_none_or(|l| *x >= l) && hi.is_none_or(|h| *x <= h)),
                        )
                    }
                    (Err(e), _) | (_, Err(e)) => (format!("error: {e}"), Ok(false)),
                }
            }
        };
        let converged = sol.converged();
        let verdict = verdict.map_err(|e| e.clone());
        let (pass, note, v) = match (value, verdict) {
            (Ok(x), Ok(ok)) => (
                ok && converged && x.is_finite(),
                if converged {
                    String::new()
                } else {
                    format!("not converged ({})", sol.status.label())
                },
                Some(x),
            ),
            (Err(e), _) => (false, e, None),
            (_, Err(e)) => (false, e, None),
        };
        out.push(TargetResult {
            name: t.name.clone(),
            scenario: sol.scenario.name.clone(),
            value: v,
            expected,
            pass,
            note,
        });
    }
    out
}

/// Prints a number with all its digits.
/// A number with ten significant digits, trailing zeros dropped: what a reader compares
/// (`0.5833333333`, `1e-6`, `29935`), never `0.5833333333333334`.
pub fn sig(v: f64) -> String {
    const DIGITS: i32 = 10;
    if v == 0.0 || !v.is_finite() {
        return fmt(v);
    }
    let exponent = v.abs().log10().floor() as i32;
    let trim = |t: String| {
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    };
    if (-4..10).contains(&exponent) {
        trim(format!("{v:.*}", (DIGITS - 1 - exponent).max(0) as usize))
    } else {
        let t = format!("{v:.*e}", (DIGITS - 1) as usize);
        match t.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim(m.to_string())),
            None => t,
        }
    }
}

pub fn fmt_full(v: f64) -> String {
    crate::expr::fmt_num(v)
}

/// A benchmark function that does not replicate: variable, residual, unscaled margin.
pub type BenchmarkFailure = (VarId, f64, f64);

/// The benchmark-replication check: every function whose residual at the benchmark point
/// exceeds the tolerance, largest first.
pub fn benchmark_failures(
    system: System<'_>,
    scenario: &Scenario,
    tol: f64,
) -> Result<Vec<BenchmarkFailure>, EvaluationError> {
    let a = crate::scenario::assess(system.structure, system.coef, scenario, &scenario.start)?;
    let (f, r) = (&a.f, &a.r);
    let mut bad: Vec<BenchmarkFailure> = (0..r.len())
        .filter(|&i| r[i] > tol || r[i].is_nan())
        .map(|i| {
            let v = VarId::new(i);
            (v, r[i], f[i] * system.coef.scale_of(v))
        })
        .collect();
    // The numeraire's market is dropped from the solve but must balance at the benchmark too.
    if let (Some(v), Some(w)) = (scenario.walras, a.walras_residual) {
        if w > tol {
            bad.push((v, w, w * system.coef.scale_of(v)));
        }
    }
    bad.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    });
    Ok(bad)
}

/// One line per benchmark failure, naming the function by its family.
pub fn describe_failures(
    structure: &crate::compile::Structure,
    bad: &[BenchmarkFailure],
) -> String {
    let mut s = String::new();
    for &(v, r, margin) in bad {
        let what = match structure.layout().kind(v) {
            VarKind::Sector => "zero-profit margin",
            VarKind::Commodity => "market margin",
            VarKind::Consumer => "income gap",
            VarKind::Auxiliary => "constraint value",
        };
        let _ = writeln!(
            s,
            "  {:<44} residual {:.3e}  ({what} {})",
            structure.equation_name(v),
            r,
            fmt(margin)
        );
    }
    s
}
