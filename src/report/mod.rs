//! Reports: the contract's JSON object, tables for people, CSV for programs, target checks and
//! the benchmark-replication check.
//!
//! Every report can show value, margin (the paired function, scaled) and their product, which
//! is zero at a complementary point: the quickest way to find a bad benchmark.

pub mod compare;

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::compile::{Bounds, EquationSystem};
use crate::expr::EvalError;
use crate::model::{Model, Normaliser, TargetCheck, VarKind};
use crate::scenario::{ScenarioSetup, Solution};

/// Name of a normaliser.
pub fn normaliser_name(model: &Model, n: &Option<Normaliser>) -> Option<String> {
    n.map(|n| match n {
        Normaliser::Commodity(c) => model.commodities[c].name.clone(),
        Normaliser::Consumer(h) => model.consumers[h].name.clone(),
    })
}

/// Values that a report needs from a solved point, evaluated with the scenario's parameters.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub welfare: Vec<(f64, f64)>,
    pub indicators: Vec<Result<f64, String>>,
}

/// Evaluates welfare and indicators at a solution (the system must carry the scenario's
/// parameters, as `scenario::solve` leaves it).
pub fn evaluate(system: &EquationSystem, sol: &Solution) -> Result<Evaluated, EvalError> {
    let m = &system.model;
    let st = system.point(&sol.x, false)?;
    let mut welfare = Vec::new();
    for h in 0..m.consumers.len() {
        let w = st.consumers[h].welfare;
        let ev = system.eval_expr_at(
            &sol.x,
            &st,
            &crate::expr::Expr::Func(crate::expr::Func::Ev { consumer: h }),
        )?;
        welfare.push((w, ev));
    }
    let indicators = m
        .indicators
        .iter()
        .map(|i| system.eval_expr_at(&sol.x, &st, &i.expr).map_err(|e| e.0))
        .collect();
    Ok(Evaluated {
        welfare,
        indicators,
    })
}

fn num(v: f64) -> Value {
    serde_json::Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The contract's JSON object for one solve (plus `indicators`, an extension, when the model has
/// any).
pub fn solution_json(system: &EquationSystem, sol: &Solution, ev: &Evaluated) -> Value {
    let m = &system.model;
    let mut sectors = Map::new();
    let mut commodities = Map::new();
    let mut consumers = Map::new();
    let mut auxiliary = Map::new();
    for v in 0..m.n_vars() {
        let name = m.var_name(v).to_string();
        let val = num(sol.x[v]);
        match m.var_kind(v).0 {
            VarKind::Sector => sectors.insert(name, val),
            VarKind::Commodity => commodities.insert(name, val),
            VarKind::Consumer => consumers.insert(name, val),
            VarKind::Auxiliary => auxiliary.insert(name, val),
        };
    }
    let mut fixed = Map::new();
    for &(v, val) in &sol.setup.fixed {
        fixed.insert(m.var_name(v).to_string(), num(val));
    }
    let mut welfare = Map::new();
    for (h, c) in m.consumers.iter().enumerate() {
        welfare.insert(
            c.name.clone(),
            json!({ "index": num(ev.welfare[h].0), "ev": num(ev.welfare[h].1) }),
        );
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(m.name));
    out.insert("scenario".into(), json!(sol.setup.name));
    out.insert("status".into(), json!(sol.status.label()));
    out.insert("iterations".into(), json!(sol.info.iterations));
    out.insert("residual".into(), num(sol.residual));
    out.insert(
        "numeraire".into(),
        normaliser_name(m, &sol.setup.numeraire)
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    out.insert("fixed".into(), Value::Object(fixed));
    out.insert("sectors".into(), Value::Object(sectors));
    out.insert("commodities".into(), Value::Object(commodities));
    out.insert("consumers".into(), Value::Object(consumers));
    out.insert("auxiliary".into(), Value::Object(auxiliary));
    out.insert("welfare".into(), Value::Object(welfare));
    out.insert(
        "pruned".into(),
        json!(system
            .pruned
            .iter()
            .map(|p| p.what.clone())
            .collect::<Vec<_>>()),
    );
    if !m.indicators.is_empty() {
        let mut ind = Map::new();
        for (i, d) in m.indicators.iter().enumerate() {
            ind.insert(
                d.name.clone(),
                ev.indicators[i]
                    .as_ref()
                    .map(|v| num(*v))
                    .unwrap_or(Value::Null),
            );
        }
        out.insert("indicators".into(), Value::Object(ind));
    }
    if !sol.converged() {
        let worst: Vec<Value> = sol
            .worst
            .iter()
            .map(|&(v, r)| json!({ "equation": m.equation_name(v), "residual": num(r) }))
            .collect();
        out.insert("worst".into(), Value::Array(worst));
    }
    Value::Object(out)
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

/// Distance of a level from the bound it is complementary to: the level itself for
/// activities, prices and incomes (MPSGE's level·margin), the distance to the nearer finite
/// bound for an auxiliary, so that the product is zero at every complementary point.
fn slack(system: &EquationSystem, bounds: Option<&Bounds>, v: usize, x: f64) -> f64 {
    let (Some(b), VarKind::Auxiliary) = (bounds, system.model.var_kind(v).0) else {
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

/// A table for people: levels, margins and their products, welfare and indicators.
pub fn solution_table(system: &EquationSystem, sol: &Solution, ev: &Evaluated) -> String {
    let m = &system.model;
    let mut s = String::new();
    let _ = writeln!(s, "model {}  scenario {}", m.name, sol.setup.name);
    let _ = writeln!(
        s,
        "status {}  iterations {}  residual {:.3e}  numeraire {}",
        sol.status.label(),
        sol.info.iterations,
        sol.residual,
        normaliser_name(m, &sol.setup.numeraire).unwrap_or_else(|| "(fix)".into())
    );
    if !sol.setup.fixed.is_empty() {
        let f: Vec<String> = sol
            .setup
            .fixed
            .iter()
            .map(|&(v, x)| format!("{} = {}", m.var_name(v), fmt(x)))
            .collect();
        let _ = writeln!(s, "fixed {}", f.join(", "));
    }
    let groups = [
        (VarKind::Sector, "sector"),
        (VarKind::Commodity, "commodity"),
        (VarKind::Consumer, "consumer"),
        (VarKind::Auxiliary, "auxiliary"),
    ];
    let width = (0..m.n_vars())
        .map(|v| m.var_name(v).len())
        .max()
        .unwrap_or(4)
        .max(9);
    let bounds = system.bounds().ok();
    for (kind, label) in groups {
        let vars: Vec<usize> = (0..m.n_vars())
            .filter(|&v| m.var_kind(v).0 == kind)
            .collect();
        if vars.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "\n{:<width$}  {:>14}  {:>12}  {:>12}",
            label, "level", "margin", "slack*margin"
        );
        for v in vars {
            let _ = writeln!(
                s,
                "{:<width$}  {:>14}  {:>12}  {:>12}",
                m.var_name(v),
                fmt(sol.x[v]),
                sci(sol.f[v]),
                sci(slack(system, bounds.as_ref(), v, sol.x[v]) * sol.f[v])
            );
        }
    }
    let _ = writeln!(s, "\n{:<width$}  {:>14}  {:>14}", "welfare", "index", "ev");
    for (h, c) in m.consumers.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:<width$}  {:>14}  {:>14}",
            c.name,
            fmt(ev.welfare[h].0),
            fmt(ev.welfare[h].1)
        );
    }
    if !m.indicators.is_empty() {
        let w = m
            .indicators
            .iter()
            .map(|i| i.name.len())
            .max()
            .unwrap_or(9)
            .max(9);
        let _ = writeln!(s, "\n{:<w$}  {:>14}", "indicator", "value");
        for (i, d) in m.indicators.iter().enumerate() {
            let v = match &ev.indicators[i] {
                Ok(v) => fmt(*v),
                Err(e) => format!("error: {e}"),
            };
            let _ = writeln!(s, "{:<w$}  {:>14}", d.name, v);
        }
    }
    if !system.pruned.is_empty() {
        let _ = writeln!(s, "\npruned:");
        for p in &system.pruned {
            let _ = writeln!(s, "  {}", p.what);
        }
    }
    if !sol.converged() {
        let _ = writeln!(
            s,
            "\nNOT CONVERGED ({}); worst equations:",
            sol.status.label()
        );
        for &(v, r) in &sol.worst {
            let _ = writeln!(s, "  {:<40} residual {:.3e}", m.equation_name(v), r);
        }
    }
    s
}

/// CSV rows `scenario,kind,name,value,margin` (welfare as `welfare_index`/`ev`, indicators as
/// `indicator`).
pub fn solution_csv_rows(
    system: &EquationSystem,
    sol: &Solution,
    ev: &Evaluated,
    out: &mut csv::Writer<Vec<u8>>,
) -> csv::Result<()> {
    let m = &system.model;
    for v in 0..m.n_vars() {
        let kind = match m.var_kind(v).0 {
            VarKind::Sector => "sector",
            VarKind::Commodity => "commodity",
            VarKind::Consumer => "consumer",
            VarKind::Auxiliary => "auxiliary",
        };
        out.write_record([
            sol.setup.name.as_str(),
            kind,
            m.var_name(v),
            &csv_num(sol.x[v]),
            &csv_num(sol.f[v]),
        ])?;
    }
    for (h, c) in m.consumers.iter().enumerate() {
        out.write_record([
            sol.setup.name.as_str(),
            "welfare_index",
            &c.name,
            &csv_num(ev.welfare[h].0),
            "",
        ])?;
        out.write_record([
            sol.setup.name.as_str(),
            "ev",
            &c.name,
            &csv_num(ev.welfare[h].1),
            "",
        ])?;
    }
    for (i, d) in m.indicators.iter().enumerate() {
        let v = ev.indicators[i]
            .as_ref()
            .map(|v| csv_num(*v))
            .unwrap_or_default();
        out.write_record([sol.setup.name.as_str(), "indicator", &d.name, &v, ""])?;
    }
    Ok(())
}

/// A number for CSV: all its digits, or empty when it is not finite (never "NaN").
pub fn csv_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        String::new()
    }
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

/// Evaluates the targets of one scenario at its solution.
pub fn check_targets(
    system: &EquationSystem,
    sol: &Solution,
    scenario: Option<usize>,
) -> Vec<TargetResult> {
    let m = &system.model;
    let params = system.params().to_vec();
    let pe = |e: &crate::expr::Expr| crate::calibrate::eval_param(e, &params);
    let st = system.point(&sol.x, false);
    let mut out = Vec::new();
    for t in m.targets.iter().filter(|t| t.scenario == scenario) {
        let value = match &st {
            Ok(st) => system.eval_expr_at(&sol.x, st, &t.expr).map_err(|e| e.0),
            Err(e) => Err(e.0.clone()),
        };
        let (expected, verdict) = match &t.check {
            TargetCheck::Value {
                value: v,
                tolerance,
            } => match (pe(v), pe(tolerance)) {
                (Ok(v), Ok(tol)) => {
                    let bound = tol * v.abs().max(1.0);
                    (
                        format!("= {} ± {}", fmt_full(v), fmt_full(bound)),
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
                            lo.map(fmt_full).unwrap_or_else(|| "-inf".into()),
                            hi.map(fmt_full).unwrap_or_else(|| "inf".into())
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
            scenario: sol.setup.name.clone(),
            value: v,
            expected,
            pass,
            note,
        });
    }
    out
}

/// Prints a number with all its digits.
pub fn fmt_full(v: f64) -> String {
    crate::expr::fmt_num(v)
}

/// The benchmark-replication check: every function whose residual at the benchmark point
/// exceeds the tolerance, largest first (variable index, residual, margin).
pub fn benchmark_failures(
    system: &EquationSystem,
    setup: &ScenarioSetup,
    tol: f64,
) -> Result<Vec<(usize, f64, f64)>, EvalError> {
    let (f, r) = crate::scenario::assess(system, setup, &setup.start)?;
    let mut bad: Vec<(usize, f64, f64)> = (0..r.len())
        .filter(|&i| r[i] > tol || r[i].is_nan())
        .map(|i| (i, r[i], f[i] * system.scale_of(i)))
        .collect();
    bad.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.0.cmp(&b.0))
    });
    Ok(bad)
}

/// One line per benchmark failure, naming the function by its family.
pub fn describe_failures(model: &Model, bad: &[(usize, f64, f64)]) -> String {
    let mut s = String::new();
    for &(v, r, margin) in bad {
        let what = match model.var_kind(v).0 {
            VarKind::Sector => "zero-profit margin",
            VarKind::Commodity => "market margin",
            VarKind::Consumer => "income gap",
            VarKind::Auxiliary => "constraint value",
        };
        let _ = writeln!(
            s,
            "  {:<44} residual {:.3e}  ({what} {})",
            model.equation_name(v),
            r,
            fmt(margin)
        );
    }
    s
}
