//! Reports of dynamic paths (`[dynamics]`): one scenario's path (the contract's solution object
//! per period with its `period` and `year`, a table of levels by period, CSV rows), the
//! comparison of scenarios' paths with the baseline path (per period % changes, EV by period and
//! its present value), the series a chart of paths draws, and the targets a path is checked
//! against. Kept apart from the static reports so that each can change on its own.

use std::fmt::Write as _;

/// One quantity of a dynamic comparison: per period, its change against the baseline path.
#[derive(Debug, Clone)]
pub struct Row {
    pub section: &'static str,
    pub name: String,
    /// "%" for percentage changes against the baseline, "change" for differences from it.
    pub unit: &'static str,
    pub values: Vec<Option<f64>>,
}

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{json, Value};

use super::{csv_num, name_columns, SolutionReport, TargetResult};
use crate::compile::Structure;
use crate::dynamic::{moving_parameters, PathRun};
use crate::model::{ConsumerRole, Model};

/// One period of a path: the contract's solution object with its period and year, and the
/// values of the parameters that move along the path (stocks, paths).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodReport {
    pub period: usize,
    pub year: f64,
    #[serde(flatten)]
    pub report: SolutionReport,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub parameters: IndexMap<String, f64>,
}

/// A scenario's path as reported: its periods up to the last asked for or the first that
/// failed (which is included, with its status).
#[derive(Debug, Clone, PartialEq)]
pub struct PathReport {
    pub model: String,
    pub scenario: String,
    /// The number of periods asked for.
    pub wanted: usize,
    pub periods: Vec<PeriodReport>,
}

impl PathReport {
    pub fn new(model: &Model, run: &PathRun) -> PathReport {
        let moving = moving_parameters(model);
        let periods = run
            .periods
            .iter()
            .map(|p| PeriodReport {
                period: p.period,
                year: p.year,
                report: p.report(model, &run.scenario),
                parameters: p
                    .solved()
                    .map(|s| {
                        moving
                            .iter()
                            .map(|&i| {
                                let name = model.parameters[i].name.clone();
                                (name, s.coefficients.params()[i])
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        PathReport {
            model: model.name.clone(),
            scenario: run.scenario.clone(),
            wanted: run.wanted,
            periods,
        }
    }

    /// True when every period asked for converged.
    pub fn complete(&self) -> bool {
        self.periods.len() == self.wanted && self.periods.iter().all(|p| p.report.converged)
    }

    /// The JSON objects, one per period.
    pub fn json(&self) -> Vec<Value> {
        self.periods
            .iter()
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
            .collect()
    }

    /// CSV rows `scenario,period,year,kind,name,index1..indexK,value,margin`: the static
    /// report's rows of each period (`SolutionReport::csv_rows`, an element's name split into
    /// its base and `width` label columns as there) with the period and year, then the moving
    /// parameters as rows of kind `parameter`.
    pub fn csv_rows(&self, out: &mut csv::Writer<Vec<u8>>, width: usize) -> csv::Result<()> {
        for p in &self.periods {
            let (t, year) = (p.period.to_string(), csv_num(p.year));
            let mut rows = csv::Writer::from_writer(Vec::new());
            p.report.csv_rows(&mut rows, width)?;
            let bytes = rows.into_inner().map_err(|e| e.into_error())?;
            let mut read = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(bytes.as_slice());
            for record in read.records() {
                let record = record?;
                let mut fields: Vec<&str> = record.iter().collect();
                fields.splice(1..1, [t.as_str(), year.as_str()]);
                out.write_record(&fields)?;
            }
            for (name, v) in &p.parameters {
                let value = csv_num(*v);
                let mut rec: Vec<&str> = vec![&self.scenario, &t, &year, "parameter"];
                rec.extend(name_columns(name, width));
                rec.extend([value.as_str(), ""]);
                out.write_record(&rec)?;
            }
        }
        Ok(())
    }

    /// The header of [`PathReport::csv_rows`] with `width` index columns.
    pub fn csv_header(width: usize) -> Vec<String> {
        let mut h = super::csv_header(width);
        h.splice(1..1, ["period".to_string(), "year".to_string()]);
        h
    }

    /// The most labels any name of these paths carries (their reports' and their moving
    /// parameters'): the number of index columns of their CSV, none for a plain model.
    pub fn index_width(paths: &[&PathReport]) -> usize {
        paths
            .iter()
            .flat_map(|r| &r.periods)
            .map(|p| {
                let parameters = p.parameters.iter().map(|(n, _)| super::label_count(n));
                let reports = super::index_width(std::slice::from_ref(&p.report));
                parameters.max().unwrap_or(0).max(reports)
            })
            .max()
            .unwrap_or(0)
    }

    /// A table for people: every level by period (periods as columns, in blocks that fit a
    /// terminal), welfare, indicators and the moving parameters.
    pub fn table(&self) -> String {
        let columns: Vec<(usize, f64)> = self.periods.iter().map(|p| (p.period, p.year)).collect();
        let status: Vec<String> = self
            .periods
            .iter()
            .map(|p| p.report.status.to_string())
            .collect();
        let Some(first) = self.periods.first() else {
            return format!(
                "model {}  scenario {}: no period\n",
                self.model, self.scenario
            );
        };
        // One row per name: its value in every period.
        let rows = |names: Vec<&String>, get: &dyn Fn(&PeriodReport, &str) -> Option<f64>| {
            names
                .into_iter()
                .map(|n| (n.clone(), self.periods.iter().map(|p| get(p, n)).collect()))
                .collect::<Vec<(String, Vec<Option<f64>>)>>()
        };
        let r = &first.report;
        let mut sections: Vec<Section> = LEVELS
            .iter()
            .map(|&(_, _, title, get)| {
                let values = rows(get(r).keys().collect(), &|p, n| {
                    get(&p.report).get(n).copied()
                });
                Section::new(title, Format::Level, values)
            })
            .collect();
        let welfare = |p: &PeriodReport, n: &str, ev: bool| {
            p.report
                .welfare
                .get(n)
                .map(|w| if ev { w.ev } else { w.index })
        };
        let consumers: Vec<&String> = r.welfare.keys().collect();
        sections.push(Section::new(
            "welfare index",
            Format::Level,
            rows(consumers.clone(), &|p, n| welfare(p, n, false)),
        ));
        sections.push(Section::new(
            "EV (benchmark money)",
            Format::Level,
            rows(consumers, &|p, n| welfare(p, n, true)),
        ));
        if let Some(ind) = &r.indicators {
            let values = rows(ind.keys().collect(), &|p, n| indicator(&p.report, n));
            sections.push(Section::new("indicators", Format::Level, values));
        }
        let values = rows(first.parameters.keys().collect(), &|p, n| {
            p.parameters.get(n).copied()
        });
        sections.push(Section::new(
            "parameters moving along the path",
            Format::Level,
            values,
        ));
        let title = format!(
            "model {}  scenario {}: path by period",
            self.model, self.scenario
        );
        let mut s = grid(&title, &columns, &status, &sections);
        if let Some(stop) = self.periods.iter().find(|p| !p.report.converged) {
            let _ = writeln!(
                s,
                "\nTHE PATH STOPPED at period {} ({}): {}{}",
                stop.period,
                year_label(stop.year),
                stop.report.status,
                stop.report
                    .reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            if let Some(worst) = &stop.report.worst {
                for w in worst {
                    let _ = writeln!(s, "  {:<40} residual {:.3e}", w.equation, w.residual);
                }
            }
        }
        s
    }

    /// The levels of a quantity by period: a variable, an indicator or a parameter that moves
    /// along the path (None at periods that did not converge). None when no period knows the
    /// name.
    pub fn series(&self, name: &str) -> Option<Vec<(f64, Option<f64>)>> {
        // Names are unique across kinds, so the order of the look-ups does not matter.
        let level = |p: &PeriodReport| -> Option<f64> {
            let r = &p.report;
            r.sectors
                .get(name)
                .or_else(|| r.commodities.get(name))
                .or_else(|| r.consumers.get(name))
                .or_else(|| r.auxiliary.get(name))
                .copied()
                .or_else(|| indicator(r, name))
                .or_else(|| p.parameters.get(name).copied())
        };
        let values: Vec<(f64, Option<f64>)> = self
            .periods
            .iter()
            .map(|p| {
                (
                    p.year,
                    level(p).filter(|v| p.report.converged && v.is_finite()),
                )
            })
            .collect();
        values.iter().any(|v| v.1.is_some()).then_some(values)
    }
}

/// Names [`PathReport::series`] knows, for messages: variables, indicators, moving parameters.
pub fn series_names(structure: &Structure) -> Vec<String> {
    let m = structure.model();
    let mut names: Vec<String> = structure
        .layout()
        .vars()
        .map(|v| structure.var_name(v).to_string())
        .collect();
    names.extend(m.indicators.iter().map(|i| i.name.clone()));
    names.extend(
        moving_parameters(m)
            .into_iter()
            .map(|i| m.parameters[i].name.clone()),
    );
    names
}

/// An indicator's value in a report, when it could be evaluated.
fn indicator(r: &SolutionReport, name: &str) -> Option<f64> {
    r.indicators
        .as_ref()
        .and_then(|i| i.get(name).copied())
        .filter(|_| !r.indicator_errors.contains_key(name))
}

/// The level maps of a report: section and unit in a comparison, title in a path's table.
type Levels = fn(&SolutionReport) -> &IndexMap<String, f64>;
const LEVELS: [(&str, &str, &str, Levels); 4] = [
    ("activity", "%", "activity levels", |r| &r.sectors),
    ("price", "%", "prices", |r| &r.commodities),
    ("income", "%", "incomes", |r| &r.consumers),
    ("auxiliary", "change", "auxiliary variables", |r| {
        &r.auxiliary
    }),
];

/// A year as a label: whole years without decimals.
fn year_label(y: f64) -> String {
    crate::expr::fmt_num(y)
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Level,
    Percent,
    Change,
}

/// A titled block of rows in a table by period.
struct Section {
    title: String,
    format: Format,
    rows: Vec<(String, Vec<Option<f64>>)>,
}

impl Section {
    fn new(title: &str, format: Format, rows: Vec<(String, Vec<Option<f64>>)>) -> Section {
        Section {
            title: title.to_string(),
            format,
            rows,
        }
    }
}

/// Renders sections as a table with one column per period, at most `PAGE` periods side by
/// side (further periods in further blocks), so a block fits a terminal.
fn grid(title: &str, columns: &[(usize, f64)], status: &[String], sections: &[Section]) -> String {
    const PAGE: usize = 8;
    const CW: usize = 11;
    let lw = sections
        .iter()
        .flat_map(|s| s.rows.iter().map(|r| r.0.len() + 2))
        .max()
        .unwrap_or(10)
        .clamp(16, 34);
    let mut s = String::new();
    let _ = writeln!(s, "{title}");
    let blocks: Vec<Vec<usize>> = (0..columns.len())
        .collect::<Vec<_>>()
        .chunks(PAGE)
        .map(|c| c.to_vec())
        .collect();
    for cols in &blocks {
        if blocks.len() > 1 {
            let _ = writeln!(
                s,
                "\n[periods {} to {}]",
                columns[cols[0]].0,
                columns[*cols.last().unwrap_or(&0)].0
            );
        }
        let mut head = format!("{:<lw$}", "period");
        let mut years = format!("{:<lw$}", "year");
        let mut st = format!("{:<lw$}", "converged");
        for &c in cols {
            let _ = write!(head, " {:>CW$}", columns[c].0);
            let _ = write!(years, " {:>CW$}", year_label(columns[c].1));
            let label = status.get(c).map(String::as_str).unwrap_or("-");
            let label = if label == "converged" { "yes" } else { label };
            let _ = write!(st, " {:>CW$}", truncate(label, CW));
        }
        let _ = writeln!(s, "{head}\n{years}\n{st}");
        for sec in sections.iter().filter(|sec| !sec.rows.is_empty()) {
            let _ = writeln!(s, "\n{}", sec.title);
            for (name, values) in &sec.rows {
                let mut line = format!("  {:<w$}", truncate(name, lw - 2), w = lw - 2);
                for &c in cols {
                    let txt = match values.get(c).copied().flatten() {
                        None => "-".to_string(),
                        Some(v) if !v.is_finite() => "-".to_string(),
                        Some(v) => match sec.format {
                            Format::Percent => format!("{v:+.3}"),
                            Format::Change => format!("{v:+.4}"),
                            Format::Level => super::compare::num(v),
                        },
                    };
                    let _ = write!(line, " {txt:>CW$}");
                }
                let _ = writeln!(s, "{line}");
            }
        }
    }
    s
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The % change of `new` against `base`, when it is defined.
fn pct(new: f64, base: f64) -> Option<f64> {
    (base.abs() > 0.0 && new.is_finite() && base.is_finite()).then(|| 100.0 * (new / base - 1.0))
}

/// Per consumer, and domestic and rest-of-world totals: the EV of a scenario's path against the
/// baseline's, by period, and its present value.
#[derive(Debug, Clone, PartialEq)]
pub struct EvRow {
    /// A consumer's name, `domestic` (households and government) or `rest_of_world` (foreign
    /// consumers, when the model has any).
    pub consumer: String,
    /// EV_t = ev_t(scenario) − ev_t(baseline), where both periods converged.
    pub values: Vec<Option<f64>>,
    /// Σ_t EV_t (1 + r)^−(year_t − start_year), when every period converged.
    pub present_value: Option<f64>,
}

/// One scenario's path against the baseline path.
#[derive(Debug, Clone)]
pub struct ScenarioPaths {
    pub scenario: String,
    /// The period from which the scenario applies.
    pub from: usize,
    /// Per period: the status, or `-` where the path did not get.
    pub status: Vec<String>,
    /// % changes of activities, prices and incomes; differences of auxiliaries, indicators and
    /// moving parameters; by period.
    pub rows: Vec<Row>,
    pub ev: Vec<EvRow>,
}

/// Scenarios' paths compared period by period with the baseline path.
#[derive(Debug, Clone)]
pub struct DynamicComparison {
    pub model: String,
    /// (period, year) of every period asked for.
    pub periods: Vec<(usize, f64)>,
    pub discount_rate: f64,
    /// Per period: the baseline's status.
    pub baseline_status: Vec<String>,
    pub scenarios: Vec<ScenarioPaths>,
}

/// The status of each period asked for, `-` where the path did not get.
fn statuses(path: &PathReport) -> Vec<String> {
    (0..path.wanted)
        .map(|t| {
            path.periods
                .get(t)
                .map(|p| p.report.status.to_string())
                .unwrap_or_else(|| "-".into())
        })
        .collect()
}

/// Builds the comparison of scenarios' paths with the baseline path (`baseline`, the
/// benchmark's).
pub fn compare_paths(
    model: &Model,
    baseline: &PathReport,
    scenarios: &[PathReport],
) -> DynamicComparison {
    let dynamics = model.dynamics.as_ref();
    let periods: Vec<(usize, f64)> = (0..baseline.wanted)
        .map(|t| (t, dynamics.map_or(t as f64, |d| d.year(t))))
        .collect();
    fn converged(p: &PathReport, t: usize) -> Option<&PeriodReport> {
        p.periods.get(t).filter(|q| q.report.converged)
    }
    let mut out = Vec::new();
    for sc in scenarios {
        let from = model
            .scenario_index(&sc.scenario)
            .and_then(|i| dynamics.map(|d| d.scenario(i).from))
            .unwrap_or(0);
        let mut rows = Vec::new();
        let mut per_period =
            |section: &'static str,
             unit: &'static str,
             names: Vec<String>,
             get: &dyn Fn(&PeriodReport, &str) -> Option<f64>| {
                for name in names {
                    let values = (0..baseline.wanted)
                        .map(|t| {
                            let (b, s) = (converged(baseline, t)?, converged(sc, t)?);
                            let (b, s) = (get(b, &name)?, get(s, &name)?);
                            match unit {
                                "%" => pct(s, b),
                                _ => Some(s - b).filter(|d| d.is_finite()),
                            }
                        })
                        .collect();
                    rows.push(Row {
                        section,
                        name,
                        unit,
                        values,
                    });
                }
            };
        let Some(first) = baseline.periods.first() else {
            continue;
        };
        let r = &first.report;
        for (section, unit, _, get) in LEVELS {
            let names = get(r).keys().cloned().collect();
            per_period(section, unit, names, &|p, n| get(&p.report).get(n).copied());
        }
        if let Some(ind) = &r.indicators {
            per_period(
                "indicator",
                "change",
                ind.keys().cloned().collect(),
                &|p, n| indicator(&p.report, n),
            );
        }
        let params: Vec<String> = first.parameters.keys().cloned().collect();
        per_period("parameter", "change", params, &|p, n| {
            p.parameters.get(n).copied()
        });
        let mut ev = Vec::new();
        // Each consumer, then the totals of the one definition the static comparison uses
        // (report::compare): domestic = households + government, rest of world = foreign
        // consumers; accounting consumers are in neither.
        let role = |name: &str| {
            model
                .consumers
                .iter()
                .find(|c| c.name == name)
                .map_or(ConsumerRole::Household, |c| c.role)
        };
        let mut groups: Vec<(String, Vec<String>)> = r
            .welfare
            .keys()
            .map(|c| (c.clone(), vec![c.clone()]))
            .collect();
        let members = |pick: &dyn Fn(ConsumerRole) -> bool| -> Vec<String> {
            r.welfare
                .keys()
                .filter(|c| pick(role(c)))
                .cloned()
                .collect()
        };
        groups.push(("domestic".into(), members(&ConsumerRole::domestic)));
        let foreign = members(&|x| x == ConsumerRole::Foreign);
        if !foreign.is_empty() {
            groups.push(("rest_of_world".into(), foreign));
        }
        let ev_of = |t: usize, names: &[String]| -> Option<f64> {
            let (b, s) = (converged(baseline, t)?, converged(sc, t)?);
            let total = |p: &PeriodReport| -> f64 {
                names
                    .iter()
                    .map(|n| p.report.welfare.get(n).map_or(f64::NAN, |w| w.ev))
                    .sum()
            };
            Some(total(s) - total(b)).filter(|v| v.is_finite())
        };
        for (name, names) in groups {
            let values: Vec<Option<f64>> = (0..baseline.wanted).map(|t| ev_of(t, &names)).collect();
            let present_value = values
                .iter()
                .enumerate()
                .map(|(t, v)| v.map(|v| v * dynamics.map_or(1.0, |d| d.discount(t))))
                .sum::<Option<f64>>();
            ev.push(EvRow {
                consumer: name,
                values,
                present_value,
            });
        }
        out.push(ScenarioPaths {
            scenario: sc.scenario.clone(),
            from,
            status: statuses(sc),
            rows,
            ev,
        });
    }
    DynamicComparison {
        model: model.name.clone(),
        periods,
        discount_rate: dynamics.map_or(0.0, |d| d.discount_rate),
        baseline_status: statuses(baseline),
        scenarios: out,
    }
}

impl DynamicComparison {
    /// A table for people: per scenario, changes against the baseline by period, then EV by
    /// period and its present value.
    pub fn table(&self) -> String {
        let mut s = String::new();
        for sc in &self.scenarios {
            let mut sections: Vec<Section> = Vec::new();
            let mut current: Option<(&str, &str)> = None;
            for r in &sc.rows {
                if current != Some((r.section, r.unit)) {
                    current = Some((r.section, r.unit));
                    let title = match r.section {
                        "activity" => "activity levels (% change from the baseline)",
                        "price" => "prices (% change)",
                        "income" => "incomes (% change)",
                        "auxiliary" => "auxiliary variables (change)",
                        "indicator" => "indicators (change)",
                        _ => "parameters moving along the path (change)",
                    };
                    let format = if r.unit == "%" {
                        Format::Percent
                    } else {
                        Format::Change
                    };
                    sections.push(Section::new(title, format, Vec::new()));
                }
                if let Some(last) = sections.last_mut() {
                    last.rows.push((r.name.clone(), r.values.clone()));
                }
            }
            sections.push(Section::new(
                "welfare: EV against the baseline (benchmark money)",
                Format::Change,
                sc.ev
                    .iter()
                    .map(|e| (e.consumer.clone(), e.values.clone()))
                    .collect(),
            ));
            let title = format!(
                "model {}: scenario {} against the baseline path{}",
                self.model,
                sc.scenario,
                if sc.from > 0 {
                    format!(" (applies from period {})", sc.from)
                } else {
                    String::new()
                }
            );
            let status: Vec<String> = sc
                .status
                .iter()
                .zip(&self.baseline_status)
                .map(|(a, b)| {
                    if b != "converged" {
                        format!("base {b}")
                    } else {
                        a.clone()
                    }
                })
                .collect();
            s.push_str(&grid(&title, &self.periods, &status, &sections));
            let _ = writeln!(
                s,
                "\npresent value of EV at {} % a year (to {}):",
                crate::expr::fmt_num(100.0 * self.discount_rate),
                self.periods
                    .first()
                    .map(|p| year_label(p.1))
                    .unwrap_or_default()
            );
            for e in &sc.ev {
                let v = e
                    .present_value
                    .map(|v| format!("{v:+.4}"))
                    .unwrap_or_else(|| "- (the path did not reach every period)".into());
                let _ = writeln!(s, "  {:<20} {v}", e.consumer);
            }
            s.push('\n');
        }
        s
    }

    /// CSV, long: `scenario,section,name,unit,period,year,value`; statuses as rows of section
    /// `status` (the value is the status), present values with unit `present_value` and no
    /// period.
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record([
            "scenario", "section", "name", "unit", "period", "year", "value",
        ]);
        let period = |t: usize| (t.to_string(), csv_num(self.periods[t].1));
        for (t, st) in self.baseline_status.iter().enumerate() {
            let (p, y) = period(t);
            let _ = w.write_record(["benchmark", "status", "", "", &p, &y, st]);
        }
        for sc in &self.scenarios {
            for (t, st) in sc.status.iter().enumerate() {
                let (p, y) = period(t);
                let _ = w.write_record([&sc.scenario, "status", "", "", &p, &y, st]);
            }
            for r in &sc.rows {
                for (t, v) in r.values.iter().enumerate() {
                    let (p, y) = period(t);
                    let v = v.map(csv_num).unwrap_or_default();
                    let _ = w.write_record([&sc.scenario, r.section, &r.name, r.unit, &p, &y, &v]);
                }
            }
            for e in &sc.ev {
                let name = format!("EV {}", e.consumer);
                for (t, v) in e.values.iter().enumerate() {
                    let (p, y) = period(t);
                    let v = v.map(csv_num).unwrap_or_default();
                    let _ = w.write_record([&sc.scenario, "welfare", &name, "level", &p, &y, &v]);
                }
                let pv = e.present_value.map(csv_num).unwrap_or_default();
                let _ =
                    w.write_record([&sc.scenario, "welfare", &name, "present_value", "", "", &pv]);
            }
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// JSON: `{ model, discount_rate, periods: [{period, year}], baseline_status, scenarios:
    /// [{ scenario, from, status, rows: [{section, name, unit, values}], ev: [{consumer,
    /// values, present_value}] }] }`; values by period, null where undefined.
    pub fn json(&self) -> Value {
        let num = |v: &Option<f64>| {
            v.and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        };
        let scenarios: Vec<Value> = self
            .scenarios
            .iter()
            .map(|sc| {
                let rows: Vec<Value> = sc
                    .rows
                    .iter()
                    .map(|r| {
                        json!({ "section": r.section, "name": r.name, "unit": r.unit,
                                "values": r.values.iter().map(num).collect::<Vec<_>>() })
                    })
                    .collect();
                let ev: Vec<Value> = sc
                    .ev
                    .iter()
                    .map(|e| {
                        json!({ "consumer": e.consumer,
                                "values": e.values.iter().map(num).collect::<Vec<_>>(),
                                "present_value": num(&e.present_value) })
                    })
                    .collect();
                json!({ "scenario": sc.scenario, "from": sc.from, "status": sc.status,
                        "rows": rows, "ev": ev })
            })
            .collect();
        let periods: Vec<Value> = self
            .periods
            .iter()
            .map(|&(t, y)| json!({ "period": t, "year": y }))
            .collect();
        json!({ "model": self.model, "discount_rate": self.discount_rate, "periods": periods,
                "baseline_status": self.baseline_status, "scenarios": scenarios })
    }
}

/// Checks the targets that name a period of this path's scenario: each at its period's
/// solution; those past the period where the path stopped fail with the reason.
pub fn check_path_targets(structure: &Structure, run: &PathRun) -> Vec<TargetResult> {
    let model = structure.model();
    let mut out = Vec::new();
    for t in model.targets.iter().filter(|t| t.scenario == run.index) {
        let Some(k) = t.period else { continue };
        let which = |x: &crate::model::Target| std::ptr::eq(x, t);
        match run.periods.get(k).and_then(|p| p.solved()) {
            Some(solved) => {
                let mut r = super::check_targets_where(
                    structure.with(&solved.coefficients),
                    &solved.solution,
                    &which,
                );
                out.append(&mut r);
            }
            None => {
                let reason = match run.stopped_at() {
                    Some(p) => format!(
                        "the path stopped at period {}: {}",
                        p.period,
                        p.report(model, &run.scenario).reason.unwrap_or_else(|| {
                            p.solved()
                                .map_or(String::new(), |s| s.solution.status.label().to_string())
                        })
                    ),
                    None => format!("period {k} was not solved"),
                };
                out.push(TargetResult {
                    name: t.name.clone(),
                    scenario: run.scenario.clone(),
                    value: None,
                    expected: String::new(),
                    pass: false,
                    note: reason,
                });
            }
        }
    }
    out
}
