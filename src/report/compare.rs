//! Side-by-side comparison of scenarios against the benchmark: % change of every activity and
//! price, welfare (EV by consumer and in total), incomes and the model's indicators.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// Splits a scenario name at underscores into pieces of at most `width` characters.
fn wrap_name(name: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in name.split('_') {
        match lines.last_mut() {
            Some(last) if last.len() + 1 + part.len() <= width => {
                last.push('_');
                last.push_str(part);
            }
            _ => lines.push(part.to_string()),
        }
    }
    lines
        .into_iter()
        .flat_map(|l| {
            l.chars()
                .collect::<Vec<_>>()
                .chunks(width)
                .map(|c| c.iter().collect())
                .collect::<Vec<String>>()
        })
        .collect()
}

/// A level in at most 11 characters.
fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e7 || v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else if v.abs() >= 1e4 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}
use super::SolutionReport;

/// One row of the comparison: a label, a unit and one value per column.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: &'static str,
    pub name: String,
    /// "%" for percentage changes against the benchmark, "change" for differences from it,
    /// "level" otherwise.
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

/// Builds the comparison from the benchmark's report and the scenarios' reports.
pub fn build(bench: &SolutionReport, scenarios: &[SolutionReport]) -> Comparison {
    let all: Vec<&SolutionReport> = std::iter::once(bench).chain(scenarios).collect();
    let columns = all.iter().map(|r| r.scenario.clone()).collect();
    let status = all.iter().map(|r| r.status.to_string()).collect();
    let mut rows = Vec::new();
    let mut changes =
        |section: &'static str,
         levels: &dyn Fn(&SolutionReport) -> &indexmap::IndexMap<String, f64>| {
            for (name, &base) in levels(bench) {
                rows.push(Row {
                    section,
                    name: name.clone(),
                    unit: "%",
                    values: all
                        .iter()
                        .map(|r| {
                            if r.converged {
                                pct(levels(r)[name], base)
                            } else {
                                None
                            }
                        })
                        .collect(),
                });
            }
        };
    changes("activity", &|r| &r.sectors);
    changes("price", &|r| &r.commodities);
    changes("income", &|r| &r.consumers);
    for name in bench.auxiliary.keys() {
        rows.push(Row {
            section: "auxiliary",
            name: name.clone(),
            unit: "level",
            values: all
                .iter()
                .map(|r| r.converged.then(|| r.auxiliary[name]))
                .collect(),
        });
    }
    for name in bench.welfare.keys() {
        rows.push(Row {
            section: "welfare",
            name: format!("EV {name}"),
            unit: "level",
            values: all
                .iter()
                .map(|r| r.converged.then(|| r.welfare[name].ev))
                .collect(),
        });
    }
    rows.push(Row {
        section: "welfare",
        name: "EV total".into(),
        unit: "level",
        values: all
            .iter()
            .map(|r| r.converged.then(|| r.welfare.values().map(|w| w.ev).sum()))
            .collect(),
    });
    let indicator = |r: &SolutionReport, name: &str| -> Option<f64> {
        if !r.converged || r.indicator_errors.contains_key(name) {
            return None;
        }
        r.indicators.as_ref().and_then(|i| i.get(name).copied())
    };
    if let Some(ind) = &bench.indicators {
        for name in ind.keys() {
            let base = indicator(bench, name);
            rows.push(Row {
                section: "indicator",
                name: name.clone(),
                unit: "level",
                values: all.iter().map(|r| indicator(r, name)).collect(),
            });
            rows.push(Row {
                section: "indicator",
                name: name.clone(),
                unit: "change",
                values: all
                    .iter()
                    .map(|r| indicator(r, name).and_then(|v| base.map(|b| v - b)))
                    .collect(),
            });
        }
    }
    Comparison {
        model: bench.model.clone(),
        columns,
        status,
        rows,
    }
}

impl Comparison {
    /// A table for people: narrow columns, scenario names stacked over several header lines,
    /// and at most `PAGE` scenarios side by side (more go into further blocks, each with the
    /// benchmark first) so that a block fits a terminal.
    pub fn table(&self) -> String {
        const PAGE: usize = 7;
        let n = self.columns.len();
        if n <= PAGE + 1 {
            return self.table_block(&(0..n).collect::<Vec<_>>());
        }
        let mut s = String::new();
        let pages: Vec<Vec<usize>> = (1..n)
            .collect::<Vec<_>>()
            .chunks(PAGE)
            .map(|c| std::iter::once(0).chain(c.iter().copied()).collect())
            .collect();
        for (k, cols) in pages.iter().enumerate() {
            if k > 0 {
                s.push('\n');
            }
            let _ = writeln!(s, "[block {} of {}]", k + 1, pages.len());
            s.push_str(&self.table_block(cols));
        }
        s
    }

    fn table_block(&self, cols: &[usize]) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "model {}: scenarios against the benchmark", self.model);
        let lw = self
            .rows
            .iter()
            .map(|r| r.name.len() + 4)
            .max()
            .unwrap_or(10)
            .clamp(18, 34);
        let cw = 11;
        let headers: Vec<Vec<String>> = cols
            .iter()
            .map(|&c| wrap_name(&self.columns[c], cw))
            .collect();
        let depth = headers.iter().map(|h| h.len()).max().unwrap_or(1);
        for line in 0..depth {
            let mut l = format!("{:<lw$}", "");
            for h in &headers {
                // Bottom-align the stacked names.
                let k = (line + h.len()).checked_sub(depth);
                let txt = k.and_then(|k| h.get(k)).map(|x| x.as_str()).unwrap_or("");
                let _ = write!(l, " {txt:>cw$}");
            }
            let _ = writeln!(s, "{}", l.trim_end());
        }
        let mut st = format!("{:<lw$}", "converged");
        for &c in cols {
            let c = &self.status[c];
            let _ = write!(
                st,
                " {:>cw$}",
                if c == "converged" { "yes" } else { c.as_str() }
            );
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
                    _ => "indicators (level, and change from the benchmark)",
                };
                let _ = writeln!(s, "\n{title}");
            }
            let label = match (r.section, r.unit) {
                ("indicator", "change") => "  change".to_string(),
                _ => r.name.clone(),
            };
            let mut line = format!("  {:<w$}", label, w = lw - 2);
            for &c in cols {
                let txt = match &r.values[c] {
                    None => "-".to_string(),
                    Some(v) if r.unit == "%" => format!("{v:+.3}"),
                    Some(v) if r.unit == "change" => format!("{v:+.4}"),
                    Some(v) => short(*v),
                };
                let _ = write!(line, " {txt:>cw$}");
            }
            let _ = writeln!(s, "{line}");
        }
        s
    }

    /// CSV: `section,name,index1..indexK,unit,<column>...`: an element's name split into its
    /// base and its labels, as in `solve`'s CSV (no index columns when no name has labels).
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let width = self
            .rows
            .iter()
            .map(|r| super::split_name(&r.name).1.len())
            .max()
            .unwrap_or(0);
        let indices = |name: &str| -> Vec<String> {
            let labels = super::split_name(name).1;
            (0..width)
                .map(|k| labels.get(k).map_or(String::new(), |l| l.to_string()))
                .collect()
        };
        let mut head = vec!["section".to_string(), "name".into()];
        head.extend((1..=width).map(|k| format!("index{k}")));
        head.push("unit".into());
        head.extend(self.columns.iter().cloned());
        let _ = w.write_record(&head);
        let mut st = vec!["status".to_string(), String::new()];
        st.extend(indices(""));
        st.push(String::new());
        st.extend(self.status.iter().cloned());
        let _ = w.write_record(&st);
        for r in &self.rows {
            let mut rec = vec![
                r.section.to_string(),
                super::split_name(&r.name).0.to_string(),
            ];
            rec.extend(indices(&r.name));
            rec.push(r.unit.to_string());
            rec.extend(
                r.values
                    .iter()
                    .map(|v| v.map(super::csv_num).unwrap_or_default()),
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
