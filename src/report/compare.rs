//! Side-by-side comparison of scenarios against the benchmark: % change of every activity and
//! price, welfare (EV by consumer and in total), incomes and the model's indicators.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::{fmt, Evaluated};
use crate::model::{Model, VarKind};
use crate::scenario::Solution;

/// One row of the comparison: a label, a unit and one value per column.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: &'static str,
    pub name: String,
    /// "%" for percentage changes against the benchmark, "level" otherwise.
    pub unit: &'static str,
    pub values: Vec<Option<f64>>,
}

/// A comparison table: columns are the benchmark followed by each scenario.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub model: String,
    pub columns: Vec<String>,
    pub status: Vec<String>,
    pub rows: Vec<Row>,
}

fn pct(new: f64, base: f64) -> Option<f64> {
    if base.abs() > 0.0 && new.is_finite() {
        Some(100.0 * (new / base - 1.0))
    } else {
        None
    }
}

/// Builds the comparison from the benchmark solution and scenario solutions, with their
/// evaluated welfare and indicators.
pub fn build(
    model: &Model,
    bench: (&Solution, &Evaluated),
    scenarios: &[(Solution, Evaluated)],
) -> Comparison {
    let mut columns = vec!["benchmark".to_string()];
    let mut status = vec![bench.0.status.label().to_string()];
    for (s, _) in scenarios {
        columns.push(s.setup.name.clone());
        status.push(s.status.label().to_string());
    }
    let all: Vec<(&Solution, &Evaluated)> = std::iter::once(bench)
        .chain(scenarios.iter().map(|(s, e)| (s, e)))
        .collect();
    let ok = |s: &Solution| s.converged();
    let mut rows = Vec::new();
    for (kind, section) in [
        (VarKind::Sector, "activity"),
        (VarKind::Commodity, "price"),
        (VarKind::Consumer, "income"),
    ] {
        for v in (0..model.n_vars()).filter(|&v| model.var_kind(v).0 == kind) {
            let base = bench.0.x[v];
            rows.push(Row {
                section,
                name: model.var_name(v).to_string(),
                unit: "%",
                values: all
                    .iter()
                    .map(|(s, _)| if ok(s) { pct(s.x[v], base) } else { None })
                    .collect(),
            });
        }
    }
    for (a, aux) in model.auxiliaries.iter().enumerate() {
        let v = model.aux_var(a);
        rows.push(Row {
            section: "auxiliary",
            name: aux.name.clone(),
            unit: "level",
            values: all
                .iter()
                .map(|(s, _)| if ok(s) { Some(s.x[v]) } else { None })
                .collect(),
        });
    }
    for (h, c) in model.consumers.iter().enumerate() {
        rows.push(Row {
            section: "welfare",
            name: format!("EV {}", c.name),
            unit: "level",
            values: all
                .iter()
                .map(|(s, e)| if ok(s) { Some(e.welfare[h].1) } else { None })
                .collect(),
        });
    }
    rows.push(Row {
        section: "welfare",
        name: "EV total".into(),
        unit: "level",
        values: all
            .iter()
            .map(|(s, e)| {
                if ok(s) {
                    Some(e.welfare.iter().map(|w| w.1).sum())
                } else {
                    None
                }
            })
            .collect(),
    });
    for (i, ind) in model.indicators.iter().enumerate() {
        let base = bench.1.indicators[i].as_ref().ok().copied();
        rows.push(Row {
            section: "indicator",
            name: ind.name.clone(),
            unit: "level",
            values: all
                .iter()
                .map(|(s, e)| {
                    if ok(s) {
                        e.indicators[i].as_ref().ok().copied()
                    } else {
                        None
                    }
                })
                .collect(),
        });
        rows.push(Row {
            section: "indicator",
            name: ind.name.clone(),
            unit: "%",
            values: all
                .iter()
                .map(|(s, e)| {
                    if ok(s) {
                        e.indicators[i]
                            .as_ref()
                            .ok()
                            .and_then(|v| base.and_then(|b| pct(*v, b)))
                    } else {
                        None
                    }
                })
                .collect(),
        });
    }
    Comparison {
        model: model.name.clone(),
        columns,
        status,
        rows,
    }
}

impl Comparison {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "model {}: scenarios against the benchmark", self.model);
        let lw = self
            .rows
            .iter()
            .map(|r| r.name.len() + r.unit.len() + 3)
            .max()
            .unwrap_or(10)
            .max(18);
        let cw = self
            .columns
            .iter()
            .map(|c| c.len())
            .max()
            .unwrap_or(10)
            .max(12);
        let mut header = format!("{:<lw$}", "");
        for c in &self.columns {
            let _ = write!(header, "  {c:>cw$}");
        }
        let _ = writeln!(s, "{header}");
        let mut st = format!("{:<lw$}", "status");
        for c in &self.status {
            let _ = write!(st, "  {c:>cw$}");
        }
        let _ = writeln!(s, "{st}");
        let mut section = "";
        for r in &self.rows {
            if r.section != section {
                section = r.section;
                let title = match section {
                    "activity" => "activity levels (% change)",
                    "price" => "prices (% change)",
                    "income" => "incomes (% change)",
                    "auxiliary" => "auxiliary variables (level)",
                    "welfare" => "welfare: Hicksian EV (benchmark money)",
                    _ => "indicators",
                };
                let _ = writeln!(s, "\n{title}");
            }
            let label = if r.section == "indicator" {
                format!("{} ({})", r.name, r.unit)
            } else {
                r.name.clone()
            };
            let mut line = format!("  {:<w$}", label, w = lw - 2);
            for v in &r.values {
                let txt = match v {
                    None => "-".to_string(),
                    Some(v) if r.unit == "%" => format!("{v:+.3}"),
                    Some(v) => fmt(*v),
                };
                let _ = write!(line, "  {txt:>cw$}");
            }
            let _ = writeln!(s, "{line}");
        }
        s
    }

    /// CSV: `section,name,unit,<column>...`.
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut head = vec!["section".to_string(), "name".into(), "unit".into()];
        head.extend(self.columns.iter().cloned());
        let _ = w.write_record(&head);
        let mut st = vec!["status".to_string(), String::new(), String::new()];
        st.extend(self.status.iter().cloned());
        let _ = w.write_record(&st);
        for r in &self.rows {
            let mut rec = vec![r.section.to_string(), r.name.clone(), r.unit.to_string()];
            rec.extend(
                r.values
                    .iter()
                    .map(|v| v.map(|v| format!("{v:?}")).unwrap_or_default()),
            );
            let _ = w.write_record(&rec);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// JSON: `{ model, columns, status, rows: [{section, name, unit, values: {column: value}}] }`.
    pub fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut vals = Map::new();
                for (c, v) in self.columns.iter().zip(&r.values) {
                    vals.insert(
                        c.clone(),
                        v.and_then(serde_json::Number::from_f64)
                            .map(Value::Number)
                            .unwrap_or(Value::Null),
                    );
                }
                json!({ "section": r.section, "name": r.name, "unit": r.unit, "values": vals })
            })
            .collect();
        json!({ "model": self.model, "columns": self.columns, "status": self.status, "rows": rows })
    }
}
