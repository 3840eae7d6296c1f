//! Scenarios compared with the benchmark, for people and for programs.
//!
//! For people, [`Comparison::headline`] answers first who gains and who loses under each
//! scenario (EV by consumer, domestic and rest-of-world EV, real GDP and real government
//! revenue) and then gives one compact block per scenario with its description and the
//! quantities the model marks as headline; [`Comparison::full`] adds every activity, price,
//! income, auxiliary and indicator with its description. For programs, [`Comparison::records`]
//! is one long, typed table (`scenario, status, kind, name, description, unit, benchmark, value,
//! change, pct_change`) written as CSV or JSON: every number column holds numbers only.
//!
//! One definition of the welfare totals is used everywhere: domestic EV is the sum over the
//! consumers whose role is `household` or `government`; rest-of-world EV the sum over the
//! `foreign` ones; `accounting` consumers (whose spending is a firm's cost) are in neither.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{json, Value};

use super::SolutionReport;
use crate::compile::Layout;
use crate::model::{ConsumerRole, Headline, Model};

/// The widest line the tables for people write.
pub const WIDTH: usize = 100;

/// A change smaller than this fraction of its scale (the larger of 1 and the benchmark level)
/// is rounding noise from the solver's tolerance, shown as 0.
const NOISE: f64 = 1e-9;

/// What a record measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Activity,
    Price,
    Income,
    Auxiliary,
    /// Hicksian equivalent variation of one consumer, or a total (`domestic`,
    /// `rest_of_world`); `pct_change` is the EV as % of benchmark income.
    Ev,
    /// The money-metric welfare index of one consumer (1 at the benchmark).
    Welfare,
    Indicator,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Activity => "activity",
            Kind::Price => "price",
            Kind::Income => "income",
            Kind::Auxiliary => "auxiliary",
            Kind::Ev => "ev",
            Kind::Welfare => "welfare",
            Kind::Indicator => "indicator",
        }
    }
}

/// One quantity across the benchmark and every scenario.
#[derive(Debug, Clone)]
pub struct Row {
    pub kind: Kind,
    pub name: String,
    pub description: String,
    pub unit: String,
    /// The level at the benchmark (0 for EVs: the benchmark's own EV).
    pub benchmark: Option<f64>,
    /// One value per scenario (None when it did not solve or could not be evaluated).
    pub values: Vec<Option<f64>>,
    /// For EVs: the benchmark income the percentage refers to.
    pub income: Option<f64>,
}

impl Row {
    /// The change from the benchmark, with rounding noise set to 0.
    pub fn change(&self, k: usize) -> Option<f64> {
        let v = self.values[k]?;
        let b = self.benchmark?;
        let d = v - b;
        Some(if d.abs() <= NOISE * b.abs().max(1.0) {
            0.0
        } else {
            d
        })
    }
    /// The % change from the benchmark (for EVs: % of benchmark income).
    pub fn pct(&self, k: usize) -> Option<f64> {
        let d = self.change(k)?;
        let base = match self.kind {
            Kind::Ev => self.income?,
            _ => self.benchmark?,
        };
        (base.abs() > 0.0).then(|| 100.0 * d / base.abs())
    }
}

/// A consumer as the comparison shows it.
#[derive(Debug, Clone)]
pub struct ConsumerInfo {
    pub name: String,
    pub description: String,
    pub role: ConsumerRole,
}

/// One compared scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    pub description: String,
    pub status: String,
    /// Why it was not solved, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub iterations: u64,
    pub residual: Option<f64>,
}

/// Scenarios against the benchmark.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub model: String,
    pub description: String,
    pub unit: String,
    /// The benchmark's own status (a benchmark that does not solve makes every change
    /// meaningless).
    pub benchmark_status: String,
    pub columns: Vec<Column>,
    pub consumers: Vec<ConsumerInfo>,
    pub rows: Vec<Row>,
    /// Rows of `rows` marked as headline by the model, in its order.
    pub headline: Vec<usize>,
    /// The rows of the indicators that measure real GDP and real government revenue.
    pub gdp: Option<usize>,
    pub revenue: Option<usize>,
    /// Rows of the EV totals.
    pub ev_domestic: usize,
    pub ev_foreign: Option<usize>,
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Builds the comparison from the benchmark's report and the scenarios' reports.
pub fn build(model: &Model, bench: &SolutionReport, scenarios: &[SolutionReport]) -> Comparison {
    let unit = model.presentation.unit.clone();
    let columns: Vec<Column> = scenarios
        .iter()
        .map(|r| Column {
            name: r.scenario.clone(),
            description: model
                .scenario_index(&r.scenario)
                .map(|i| model.scenarios[i].description.clone())
                .unwrap_or_default(),
            status: r.status.to_string(),
            reason: r.reason.clone(),
            iterations: r.iterations,
            residual: finite(r.residual),
        })
        .collect();
    let solved = |r: &SolutionReport| r.converged;
    let mut rows: Vec<Row> = Vec::new();
    let mut row_of_var = std::collections::HashMap::new();
    let mut levels =
        |kind: Kind,
         unit: &str,
         describe: &dyn Fn(usize) -> String,
         get: &dyn Fn(&SolutionReport) -> &indexmap::IndexMap<String, f64>| {
            for (i, (name, &b)) in get(bench).iter().enumerate() {
                row_of_var.insert((kind, name.clone()), rows.len());
                rows.push(Row {
                    kind,
                    name: name.clone(),
                    description: describe(i),
                    unit: unit.to_string(),
                    benchmark: bench.converged.then_some(b).and_then(finite),
                    values: scenarios
                        .iter()
                        .map(|r| {
                            solved(r)
                                .then(|| get(r).get(name).copied())
                                .flatten()
                                .and_then(finite)
                        })
                        .collect(),
                    income: None,
                });
            }
        };
    levels(
        Kind::Activity,
        "level",
        &|i| model.sectors[i].description.clone(),
        &|r| &r.sectors,
    );
    let price_unit = "price";
    levels(
        Kind::Price,
        price_unit,
        &|i| model.commodities[i].description.clone(),
        &|r| &r.commodities,
    );
    levels(
        Kind::Income,
        &unit,
        &|i| model.consumers[i].description.clone(),
        &|r| &r.consumers,
    );
    levels(
        Kind::Auxiliary,
        "level",
        &|i| model.auxiliaries[i].description.clone(),
        &|r| &r.auxiliary,
    );
    let consumers: Vec<ConsumerInfo> = model
        .consumers
        .iter()
        .map(|c| ConsumerInfo {
            name: c.name.clone(),
            description: c.description.clone(),
            role: c.role,
        })
        .collect();
    let ev_of = |r: &SolutionReport, name: &str| -> Option<f64> {
        solved(r)
            .then(|| r.welfare.get(name).map(|w| w.ev))
            .flatten()
            .and_then(finite)
    };
    let first_ev = rows.len();
    for c in &consumers {
        rows.push(Row {
            kind: Kind::Ev,
            name: c.name.clone(),
            description: c.description.clone(),
            unit: unit.clone(),
            benchmark: Some(0.0),
            values: scenarios.iter().map(|r| ev_of(r, &c.name)).collect(),
            income: bench.consumers.get(&c.name).copied().and_then(finite),
        });
    }
    let total = |pick: &dyn Fn(ConsumerRole) -> bool| -> (Vec<Option<f64>>, Option<f64>) {
        let members: Vec<&ConsumerInfo> = consumers.iter().filter(|c| pick(c.role)).collect();
        let values = scenarios
            .iter()
            .map(|r| members.iter().map(|c| ev_of(r, &c.name)).sum())
            .collect();
        let income = members
            .iter()
            .map(|c| bench.consumers.get(&c.name).copied().and_then(finite))
            .sum();
        (values, income)
    };
    let (values, income) = total(&ConsumerRole::domestic);
    let ev_domestic = rows.len();
    rows.push(Row {
        kind: Kind::Ev,
        name: "domestic".into(),
        description: "households and government".into(),
        unit: unit.clone(),
        benchmark: Some(0.0),
        values,
        income,
    });
    let ev_foreign = consumers
        .iter()
        .any(|c| c.role == ConsumerRole::Foreign)
        .then(|| {
            let (values, income) = total(&|r| r == ConsumerRole::Foreign);
            rows.push(Row {
                kind: Kind::Ev,
                name: "rest_of_world".into(),
                description: "foreign consumers".into(),
                unit: unit.clone(),
                benchmark: Some(0.0),
                values,
                income,
            });
            rows.len() - 1
        });
    debug_assert!(first_ev <= ev_domestic);
    for c in &consumers {
        rows.push(Row {
            kind: Kind::Welfare,
            name: c.name.clone(),
            description: c.description.clone(),
            unit: "index".into(),
            benchmark: bench.welfare.get(&c.name).map(|w| w.index).and_then(finite),
            values: scenarios
                .iter()
                .map(|r| {
                    solved(r)
                        .then(|| r.welfare.get(&c.name).map(|w| w.index))
                        .flatten()
                        .and_then(finite)
                })
                .collect(),
            income: None,
        });
    }
    let indicator = |r: &SolutionReport, name: &str| -> Option<f64> {
        if !r.converged || r.indicator_errors.contains_key(name) {
            return None;
        }
        r.indicators
            .as_ref()
            .and_then(|i| i.get(name).copied())
            .and_then(finite)
    };
    let first_indicator = rows.len();
    for ind in &model.indicators {
        rows.push(Row {
            kind: Kind::Indicator,
            name: ind.name.clone(),
            description: ind.description.clone(),
            unit: "level".into(),
            benchmark: indicator(bench, &ind.name),
            values: scenarios.iter().map(|r| indicator(r, &ind.name)).collect(),
            income: None,
        });
    }
    let var_kind = |v: crate::ids::Var| match v {
        crate::ids::Var::Sector(_) => Kind::Activity,
        crate::ids::Var::Commodity(_) => Kind::Price,
        crate::ids::Var::Consumer(_) => Kind::Income,
        crate::ids::Var::Auxiliary(_) => Kind::Auxiliary,
    };
    let headline = model
        .presentation
        .headline
        .iter()
        .filter_map(|h| match *h {
            Headline::Var(v) => row_of_var
                .get(&(var_kind(v), Layout::entity_name(model, v).to_string()))
                .copied(),
            Headline::Indicator(i) => Some(first_indicator + i),
        })
        .collect();
    Comparison {
        model: model.name.clone(),
        description: model.description.clone(),
        unit,
        benchmark_status: bench.status.to_string(),
        columns,
        consumers,
        rows,
        headline,
        gdp: model.presentation.gdp.map(|i| first_indicator + i),
        revenue: model.presentation.revenue.map(|i| first_indicator + i),
        ev_domestic,
        ev_foreign,
    }
}

/// A level or money amount in at most 10 characters, with about four significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e7).contains(&a) {
        format!("{v:.2e}")
    } else if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// A signed amount (an EV or a change), about three significant digits.
pub fn signed(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e7).contains(&a) {
        format!("{v:+.1e}")
    } else if a >= 100.0 {
        format!("{v:+.0}")
    } else if a >= 10.0 {
        format!("{v:+.1}")
    } else if a >= 1.0 {
        format!("{v:+.2}")
    } else {
        format!("{v:+.3}")
    }
}

/// A signed percentage: about three significant digits, tiny ones in scientific notation.
pub fn pct(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0%".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:+.0e}%")
    } else if a >= 10.0 {
        format!("{v:+.1}%")
    } else if a >= 0.1 {
        format!("{v:+.2}%")
    } else {
        format!("{v:+.3}%")
    }
}

/// `text` cut to `width` characters (with an ellipsis when cut).
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Items joined by `sep` into lines of at most `width` characters, each starting with
/// `indent`.
fn flow(items: &[String], sep: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for it in items {
        let fresh = line.len() == indent.len();
        if !fresh && line.chars().count() + sep.len() + it.chars().count() > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push_str(sep);
        }
        line.push_str(it);
    }
    if line.len() > indent.len() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

impl Comparison {
    fn solved(&self, k: usize) -> bool {
        self.columns[k].status == "converged"
    }

    /// The consumers shown one by one in the summary (households and government).
    fn domestic_consumers(&self) -> Vec<usize> {
        (0..self.consumers.len())
            .filter(|&h| self.consumers[h].role.domestic())
            .collect()
    }

    /// The EV row of consumer `h`.
    fn ev_row(&self, h: usize) -> &Row {
        &self.rows[self.ev_domestic - self.consumers.len() + h]
    }

    /// For people: who gains and who loses under each scenario (one line each), then one
    /// compact block per scenario. Fits [`WIDTH`] columns.
    pub fn headline(&self) -> String {
        let mut s = String::new();
        let title = if self.description.is_empty() {
            self.model.clone()
        } else {
            format!("{}: {}", self.model, self.description)
        };
        let _ = writeln!(s, "{}", cut(&title, WIDTH));
        if self.benchmark_status != "converged" {
            let _ = writeln!(
                s,
                "the benchmark did not solve ({}): no change below is meaningful",
                self.benchmark_status
            );
        }
        s.push('\n');
        s.push_str(&self.summary());
        for k in 0..self.columns.len() {
            s.push('\n');
            s.push_str(&self.block(k));
        }
        s
    }

    /// One line per scenario: EV of each domestic consumer (when they fit), domestic and
    /// rest-of-world EV, % change of real GDP and real government revenue.
    fn summary(&self) -> String {
        let mut s = String::new();
        let dom = self.domestic_consumers();
        let name_w = self
            .columns
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(8)
            .clamp(8, 28);
        let cw = 7;
        let extras = 9
            + if self.ev_foreign.is_some() { 8 } else { 0 }
            + if self.gdp.is_some() { 9 } else { 0 }
            + if self.revenue.is_some() { 9 } else { 0 };
        let per_consumer = name_w + extras + 2 + dom.len() * cw <= WIDTH && dom.len() > 1;
        let mut intro = vec![format!(
            "Who gains and who loses: equivalent variation (EV) in {}",
            self.unit
        )];
        if self.gdp.is_some() || self.revenue.is_some() {
            intro.push("real GDP and government revenue in % change".into());
        }
        s.push_str(&flow(&intro, "; ", "", WIDTH));
        let mut head = format!("{:<name_w$}", "scenario");
        if per_consumer {
            for &h in &dom {
                let _ = write!(head, "{:>cw$}", cut(&self.consumers[h].name, cw - 1));
            }
        }
        let _ = write!(head, "{:>9}", "domestic");
        if self.ev_foreign.is_some() {
            let _ = write!(head, "{:>8}", "abroad");
        }
        if self.gdp.is_some() {
            let _ = write!(head, "{:>9}", "GDP");
        }
        if self.revenue.is_some() {
            let _ = write!(head, "{:>9}", "revenue");
        }
        let _ = writeln!(s, "{}", head.trim_end());
        for (k, col) in self.columns.iter().enumerate() {
            let mut line = format!("{:<name_w$}", cut(&col.name, name_w));
            if !self.solved(k) {
                let _ = writeln!(s, "{line}  not solved: {}", col.status);
                continue;
            }
            let opt = |v: Option<f64>, f: fn(f64) -> String| v.map(f).unwrap_or_else(|| "-".into());
            if per_consumer {
                for &h in &dom {
                    let _ = write!(line, "{:>cw$}", opt(self.ev_row(h).change(k), signed));
                }
            }
            let _ = write!(
                line,
                "{:>9}",
                opt(self.rows[self.ev_domestic].change(k), signed)
            );
            if let Some(r) = self.ev_foreign {
                let _ = write!(line, "{:>8}", opt(self.rows[r].change(k), signed));
            }
            if let Some(r) = self.gdp {
                let _ = write!(line, "{:>9}", opt(self.rows[r].pct(k), pct));
            }
            if let Some(r) = self.revenue {
                let _ = write!(line, "{:>9}", opt(self.rows[r].pct(k), pct));
            }
            let _ = writeln!(s, "{}", line.trim_end());
        }
        // The legend: what each column's code stands for.
        let mut legend: Vec<String> = Vec::new();
        if per_consumer {
            for &h in &dom {
                let c = &self.consumers[h];
                if !c.description.is_empty() {
                    legend.push(format!(
                        "{} = {}",
                        c.name,
                        short_description(&c.description)
                    ));
                }
            }
        }
        legend.push("domestic = households + government".into());
        if self.ev_foreign.is_some() {
            let names: Vec<&str> = self
                .consumers
                .iter()
                .filter(|c| c.role == ConsumerRole::Foreign)
                .map(|c| c.name.as_str())
                .collect();
            legend.push(format!("abroad = rest of the world ({})", names.join(", ")));
        }
        let accounting: Vec<&str> = self
            .consumers
            .iter()
            .filter(|c| c.role == ConsumerRole::Accounting)
            .map(|c| c.name.as_str())
            .collect();
        if !accounting.is_empty() {
            legend.push(format!(
                "not counted: {} (accounting)",
                accounting.join(", ")
            ));
        }
        s.push_str(&flow(&legend, "; ", "  ", WIDTH));
        s
    }

    /// One scenario: description, EV by consumer with % of income, totals, GDP and revenue,
    /// headline prices and activities.
    fn block(&self, k: usize) -> String {
        let mut s = String::new();
        let col = &self.columns[k];
        let head = if col.description.is_empty() {
            col.name.clone()
        } else {
            format!("{} · {}", col.name, col.description)
        };
        let _ = writeln!(s, "{}", cut(&head, WIDTH));
        if !self.solved(k) {
            let _ = writeln!(s, "  not solved: {}", col.status);
            if let Some(r) = &col.reason {
                s.push_str(&flow(std::slice::from_ref(r), "", "  ", WIDTH));
            }
            return s;
        }
        let mut evs = Vec::new();
        for h in self.domestic_consumers() {
            let r = self.ev_row(h);
            if let Some(v) = r.change(k) {
                let share = r
                    .pct(k)
                    .map(|p| format!(" ({})", pct(p)))
                    .unwrap_or_default();
                evs.push(format!("{} {}{share}", self.consumers[h].name, signed(v)));
            }
        }
        let _ = writeln!(
            s,
            "  EV of households and government, {} (% of benchmark income):",
            self.unit
        );
        s.push_str(&flow(&evs, " · ", "    ", WIDTH));
        let mut totals = Vec::new();
        if let Some(v) = self.rows[self.ev_domestic].change(k) {
            totals.push(format!("domestic {}", signed(v)));
        }
        if let Some(v) = self.ev_foreign.and_then(|r| self.rows[r].change(k)) {
            totals.push(format!("rest of world {}", signed(v)));
        }
        if let Some(v) = self.gdp.and_then(|r| self.rows[r].pct(k)) {
            totals.push(format!("real GDP {}", pct(v)));
        }
        if let Some(v) = self.revenue.and_then(|r| self.rows[r].pct(k)) {
            totals.push(format!("real government revenue {}", pct(v)));
        }
        s.push_str(&flow(&totals, " · ", "  ", WIDTH));
        if !self.headline.is_empty() {
            let items: Vec<String> =
                self.headline
                    .iter()
                    .map(|&r| {
                        let row = &self.rows[r];
                        let v = row.pct(k).map(pct).unwrap_or_else(|| {
                            row.values[k].map(num).unwrap_or_else(|| "-".into())
                        });
                        if row.description.is_empty() {
                            format!("{} {v}", row.name)
                        } else {
                            format!("{} ({}) {v}", row.name, short_description(&row.description))
                        }
                    })
                    .collect();
            let _ = writeln!(s, "  headline (% change):");
            s.push_str(&flow(&items, " · ", "    ", WIDTH));
        }
        s
    }

    /// The headline view followed by every quantity of every scenario: level at the
    /// benchmark, then per scenario the level and the % change (indicators too); EVs in the
    /// model's unit. Quantities that do not move in any scenario are listed once at the end.
    pub fn full(&self) -> String {
        let mut s = self.headline();
        // Two scenarios side by side (level and % change each) beside a label wide enough for
        // a name and its description: 38 + 11 + 2 × 22 columns.
        const PAGE: usize = 2;
        let name_w = 38;
        let cw = 10;
        let idx: Vec<usize> = (0..self.columns.len()).collect();
        for page in idx.chunks(PAGE) {
            s.push('\n');
            let mut head = format!("{:<name_w$} {:>cw$}", "", "benchmark");
            for &k in page {
                let _ = write!(
                    head,
                    " {:>w$}",
                    cut(&self.columns[k].name, 2 * cw + 1),
                    w = 2 * cw + 1
                );
            }
            let _ = writeln!(s, "{}", head.trim_end());
            let mut head2 = format!("{:<name_w$} {:>cw$}", "", "");
            for _ in page {
                let _ = write!(head2, " {:>cw$} {:>cw$}", "level", "% change");
            }
            let _ = writeln!(s, "{}", head2.trim_end());
            let mut kind = None;
            for r in &self.rows {
                if Some(r.kind) != kind {
                    kind = Some(r.kind);
                    let title = match r.kind {
                        Kind::Activity => "activity levels".to_string(),
                        Kind::Price => "prices (relative to the numeraire)".to_string(),
                        Kind::Income => format!("incomes ({})", self.unit),
                        Kind::Auxiliary => "auxiliary variables".to_string(),
                        Kind::Ev => format!("EV ({}; % of benchmark income)", self.unit),
                        Kind::Welfare => "welfare index".to_string(),
                        Kind::Indicator => "indicators".to_string(),
                    };
                    let _ = writeln!(s, "{title}");
                }
                let label = if r.description.is_empty() {
                    r.name.clone()
                } else {
                    format!("{} {}", r.name, short_description(&r.description))
                };
                let bench = match r.kind {
                    Kind::Ev => r.income.map(num).map(|x| format!("({x})")),
                    _ => r.benchmark.map(num),
                };
                let mut line = format!(
                    "  {:<w$} {:>cw$}",
                    cut(&label, name_w - 2),
                    bench.unwrap_or_else(|| "-".into()),
                    w = name_w - 2
                );
                for &k in page {
                    let level = match r.kind {
                        Kind::Ev => r.change(k).map(signed),
                        _ if r.change(k) == Some(0.0) => r.benchmark.map(num),
                        _ => r.values[k].map(num),
                    };
                    let _ = write!(
                        line,
                        " {:>cw$} {:>cw$}",
                        level.unwrap_or_else(|| "-".into()),
                        r.pct(k).map(pct).unwrap_or_else(|| "-".into())
                    );
                }
                let _ = writeln!(s, "{}", line.trim_end());
            }
        }
        s
    }

    /// The long, typed records: one per quantity and scenario.
    pub fn records(&self) -> Vec<Record<'_>> {
        let mut out = Vec::new();
        for (k, col) in self.columns.iter().enumerate() {
            for r in &self.rows {
                out.push(Record {
                    scenario: &col.name,
                    status: &col.status,
                    kind: r.kind.label(),
                    name: &r.name,
                    description: &r.description,
                    unit: &r.unit,
                    benchmark: r.benchmark,
                    value: r.values[k],
                    change: r.change(k),
                    pct_change: r.pct(k),
                });
            }
        }
        out
    }

    /// CSV: `scenario,status,kind,name,index1..indexK,description,unit,benchmark,value,change,
    /// pct_change`; empty cells where a number does not exist. An element's name is split into
    /// its base and one column per label (`Y[s3]` is `Y`, `s3`), as in `solve`'s CSV, K the
    /// most labels a name has (none for a plain model).
    pub fn csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let width = self
            .rows
            .iter()
            .map(|r| super::label_count(&r.name))
            .max()
            .unwrap_or(0);
        let mut head: Vec<String> = RECORD_COLUMNS[..4].iter().map(|c| c.to_string()).collect();
        head.extend((1..=width).map(|k| format!("index{k}")));
        head.extend(RECORD_COLUMNS[4..].iter().map(|c| c.to_string()));
        let _ = w.write_record(&head);
        let n = |v: Option<f64>| v.map(super::csv_num).unwrap_or_default();
        for r in self.records() {
            let mut rec = vec![
                r.scenario.to_string(),
                r.status.to_string(),
                r.kind.to_string(),
            ];
            let names = super::name_columns(r.name, width);
            rec.extend(names.into_iter().map(String::from));
            rec.extend([
                r.description.to_string(),
                r.unit.to_string(),
                n(r.benchmark),
                n(r.value),
                n(r.change),
                n(r.pct_change),
            ]);
            let _ = w.write_record(&rec);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// JSON: `{ model, description, unit, benchmark_status, scenarios: [{name, description,
    /// status, reason?, iterations, residual}], records: [...] }` (null where a number does
    /// not exist).
    pub fn json(&self) -> Value {
        json!({
            "model": self.model,
            "description": self.description,
            "unit": self.unit,
            "benchmark_status": self.benchmark_status,
            "scenarios": self.columns,
            "records": self.records(),
        })
    }
}

/// The columns of a record, in CSV order.
pub const RECORD_COLUMNS: [&str; 10] = [
    "scenario",
    "status",
    "kind",
    "name",
    "description",
    "unit",
    "benchmark",
    "value",
    "change",
    "pct_change",
];

/// One quantity of one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Record<'a> {
    pub scenario: &'a str,
    pub status: &'a str,
    pub kind: &'static str,
    pub name: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    pub benchmark: Option<f64>,
    pub value: Option<f64>,
    pub change: Option<f64>,
    pub pct_change: Option<f64>,
}

/// A description's first clause (up to a colon, semicolon or parenthesis), for labels.
pub fn short_description(d: &str) -> String {
    let end = d.find([':', ';', '(']).unwrap_or(d.len());
    cut(d[..end].trim(), 30)
}
