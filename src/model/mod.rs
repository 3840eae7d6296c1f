//! Model files: parsing (`file`), validation into a [`Model`] with names resolved to ids, and the
//! diagnostics that bad input gets.
//!
//! Validation collects every problem it finds, each with the file, line, column and field, so a
//! modeller fixes a file in one pass rather than one error per run.

pub mod expand;
pub mod file;
pub mod load;
pub mod overrides;
pub mod schema;
pub mod sensitivity;
pub mod sources;
mod validate;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::expr::Expr;
use crate::ids::CommodityId;

pub use validate::{load, load_str, validate};

/// One problem in a model file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    /// Dotted path of the field, e.g. `sectors.X.inputs[1].quantity`.
    pub field: String,
    pub message: String,
}

/// A model file that could not be loaded: every diagnostic found, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadError {
    /// One diagnostic's line: `file:line:column: field: message` (tools read this form).
    fn header(&self, d: &Diagnostic) -> String {
        if d.line == 0 {
            format!("{}: {}: {}", self.file, d.field, d.message)
        } else if d.field.is_empty() {
            format!("{}:{}:{}: {}", self.file, d.line, d.column, d.message)
        } else {
            format!(
                "{}:{}:{}: {}: {}",
                self.file, d.line, d.column, d.field, d.message
            )
        }
    }

    /// The diagnostics for people: each one's `file:line:column: field: message` line first
    /// (as tools expect), then the offending line of `source` (the file's text) with a caret
    /// under the column.
    pub fn render(&self, source: &str) -> String {
        let lines: Vec<&str> = source.lines().collect();
        let mut out = String::new();
        for d in &self.diagnostics {
            out.push_str(&self.header(d));
            out.push('\n');
            let Some(text) = d.line.checked_sub(1).and_then(|i| lines.get(i)) else {
                continue;
            };
            let number = d.line.to_string();
            let pad = " ".repeat(number.len());
            // Tabs keep their width under the caret; everything else is one column.
            let lead: String = text
                .chars()
                .take(d.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{pad} |\n{number} | {text}\n{pad} | {lead}^\n"));
        }
        out
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&self.header(d))?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// A validated model: every name resolved, every expression checked for what may stand where.
#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub description: String,
    /// The file it was read from (for messages and relative data paths).
    pub path: PathBuf,
    pub parameters: Vec<Parameter>,
    pub commodities: Vec<Commodity>,
    pub sectors: Vec<Sector>,
    pub consumers: Vec<Consumer>,
    pub auxiliaries: Vec<Auxiliary>,
    pub numeraire: Option<Normaliser>,
    pub scenarios: Vec<Scenario>,
    pub targets: Vec<Target>,
    pub indicators: Vec<Indicator>,
    /// The SAM the file referred to, if any (already resolved into numbers).
    pub sam: Option<SamSource>,
    /// Extension: the systematic sensitivity analysis `tokencge sweep` runs.
    pub sensitivity: Option<sensitivity::Sensitivity>,
    /// What reports show first and in which unit (an extension; defaults without it).
    pub presentation: Presentation,
    /// Extension: the recursive-dynamic path, when the file has `[dynamics]`.
    pub dynamics: Option<Dynamics>,
}

/// How reports present a model: the unit of money, the headline quantities, and the indicators
/// that measure real GDP and real government revenue.
#[derive(Debug, Clone, Default)]
pub struct Presentation {
    /// The unit of money of the benchmark data (`benchmark money` when the model gives none).
    pub unit: String,
    pub headline: Vec<Headline>,
    pub gdp: Option<usize>,
    pub revenue: Option<usize>,
}

/// The unit when a model declares none: benchmark quantities at benchmark prices.
pub const DEFAULT_UNIT: &str = "benchmark money";

/// A quantity a comparison shows first: a variable's level (activity, price, income,
/// auxiliary) or an indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headline {
    Var(crate::ids::Var),
    Indicator(usize),
}

/// What a consumer stands for, so that reports sum welfare over the right agents: domestic EV
/// is the households' and the government's; the rest of the world is reported apart; an
/// accounting consumer (one whose spending is a firm's cost, such as Markusen's entrepreneur
/// who turns markup revenue into fixed costs) is in neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumerRole {
    #[default]
    Household,
    Government,
    Foreign,
    Accounting,
}

impl ConsumerRole {
    pub const NAMES: [&'static str; 4] = ["household", "government", "foreign", "accounting"];
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
    pub fn parse(s: &str) -> Option<ConsumerRole> {
        [
            ConsumerRole::Household,
            ConsumerRole::Government,
            ConsumerRole::Foreign,
            ConsumerRole::Accounting,
        ]
        .into_iter()
        .find(|r| r.name() == s)
    }
    /// Counted in domestic welfare.
    pub fn domestic(self) -> bool {
        matches!(self, ConsumerRole::Household | ConsumerRole::Government)
    }
}

/// Extension: a recursive-dynamic path — a sequence of static equilibria, period t = 0 …
/// `periods − 1`, linked by parameter updates evaluated at each period's solution and by
/// exogenous time paths (`docs/format_extensions.md`, recursive dynamics).
#[derive(Debug, Clone)]
pub struct Dynamics {
    pub periods: usize,
    /// Year of period 0; period t is `start_year + step · t`.
    pub start_year: f64,
    /// Years per period.
    pub step: f64,
    /// Annual rate of the present values of welfare.
    pub discount_rate: f64,
    /// Evaluated at period t's parameters and solution, all at once: the parameters' values in
    /// period t + 1.
    pub updates: Vec<Update>,
    /// Exogenous paths, set at the start of each period before its solve.
    pub paths: Vec<ParamPath>,
    /// Parameters declared to change the technology on purpose (`technology = [...]`): they may
    /// reach production or demand blocks and endowments together.
    pub technology: Vec<usize>,
    /// Per scenario (by index): from when it applies and its own paths. A scenario beyond the
    /// list (one added to a model in code) applies from period 0 without paths of its own.
    pub scenarios: Vec<ScenarioDynamics>,
}

impl Dynamics {
    /// The year of period `t`.
    pub fn year(&self, t: usize) -> f64 {
        self.start_year + self.step * t as f64
    }
    /// The discount factor of period `t`: (1 + r)^−(year − start_year).
    pub fn discount(&self, t: usize) -> f64 {
        (1.0 + self.discount_rate).powf(-(self.step * t as f64))
    }
    /// How a scenario moves over time.
    pub fn scenario(&self, index: usize) -> ScenarioDynamics {
        self.scenarios.get(index).cloned().unwrap_or_default()
    }
    /// Whether a parameter follows an update.
    pub fn is_updated(&self, parameter: usize) -> bool {
        self.updates.iter().any(|u| u.parameter == parameter)
    }
}

/// A scenario over time.
#[derive(Debug, Clone, Default)]
pub struct ScenarioDynamics {
    /// The first period in which the scenario applies; earlier periods are the baseline's.
    pub from: usize,
    /// The scenario's own paths (replacing the model's for the same parameters).
    pub paths: Vec<ParamPath>,
}

/// `[dynamics.update]`: a parameter's value in the next period.
#[derive(Debug, Clone)]
pub struct Update {
    pub parameter: usize,
    /// May use variables, the contract's functions, indicators, `t` and `year`.
    pub expr: Expr,
    pub site: Site,
}

/// A parameter's exogenous path.
#[derive(Debug, Clone)]
pub struct ParamPath {
    pub parameter: usize,
    pub values: PathValues,
    pub site: Site,
}

/// The values of a path: one per period, or an expression of `t`, `year` and parameters that do
/// not move.
#[derive(Debug, Clone)]
pub enum PathValues {
    List(Vec<Expr>),
    Expr(Expr),
}

impl PathValues {
    /// The value in period `t` (of year `year`), with `params` for the parameters it uses.
    pub fn value_at(
        &self,
        params: &[f64],
        t: usize,
        year: f64,
    ) -> Result<f64, crate::expr::EvalError> {
        let ctx = TimeParams { params, t, year };
        match self {
            PathValues::List(values) => values[t].eval(&ctx),
            PathValues::Expr(e) => e.eval(&ctx),
        }
    }
}

/// Parameters and the time of a period: the context of path expressions.
struct TimeParams<'a> {
    params: &'a [f64],
    t: usize,
    year: f64,
}

impl crate::expr::EvalContext for TimeParams<'_> {
    fn param(&self, i: usize) -> f64 {
        self.params[i]
    }
    fn var(&self, _v: crate::ids::Var) -> f64 {
        f64::NAN
    }
    fn var_index(&self, _v: crate::ids::Var) -> usize {
        0
    }
    fn func(
        &self,
        _f: &crate::expr::Func,
        _s: f64,
        _g: Option<&mut crate::expr::Grad>,
    ) -> Result<f64, crate::expr::EvalError> {
        Err(crate::expr::EvalError::NoFunctions)
    }
    fn time(&self, which: crate::expr::Time) -> Result<f64, crate::expr::EvalError> {
        Ok(match which {
            crate::expr::Time::Period => self.t as f64,
            crate::expr::Time::Year => self.year,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SamSource {
    /// The path as written in the model file.
    pub written: String,
    pub resolved: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    /// From `[descriptions]`; empty when none.
    pub description: String,
    /// The value with the model's own parameters.
    pub value: f64,
    /// The expression of earlier parameters that defines it, when it depends on any: it is
    /// evaluated again whenever a parameter vector is formed with overrides (scenarios, `--set`,
    /// sweep draws, dynamic updates), so a derived parameter never keeps a stale value.
    pub definition: Option<Expr>,
}

/// A parameter vector could not be formed: a derived parameter failed to evaluate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parameters.{name}: {error}")]
pub struct ParameterError {
    pub name: String,
    pub error: crate::expr::EvalError,
}

#[derive(Debug, Clone)]
pub struct Commodity {
    pub name: String,
    /// From `[descriptions]` (an extension); empty when none.
    pub description: String,
    /// Benchmark price level (parameter expression; default 1).
    pub start: Expr,
}

/// A production block. `nests[0]` is the input root `s`, `nests[1]` the output root `t`.
#[derive(Debug, Clone)]
pub struct Sector {
    pub name: String,
    pub description: String,
    /// Benchmark activity level (default 1).
    pub start: Expr,
    pub nests: Vec<Nest>,
    /// Inputs and outputs in file order (an entry over sets: one per element, in order).
    pub netputs: Vec<Netput>,
    /// The taxes of every netput, netput after netput: `Netput::taxes` is a range of this list.
    pub taxes: Vec<Tax>,
    /// Quantities and reference prices that are not plain numbers (`Value::expr`).
    pub exprs: Vec<Expr>,
}

/// A netput's quantity or reference price in eight bytes: a finite number (what a table entry
/// or a written number gives, the common case), or the position of an expression in its
/// sector's `exprs`. A model over sets has one netput per non-zero of its input-output data
/// (25 million at N = 5000), so a netput is kept small: an expression would take 40 bytes.
///
/// The position is held as the payload of a NaN, which no finite number can be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value(u64);

impl Value {
    const EXPR: u64 = 0xfff8_0000_0000_0000;
    /// A finite number.
    pub fn num(x: f64) -> Value {
        debug_assert!(x.is_finite(), "a Value holds finite numbers only");
        Value(x.to_bits())
    }
    /// The expression at position `k` of the sector's `exprs`.
    pub fn expr(k: usize) -> Value {
        Value(Self::EXPR | k as u64)
    }
    /// The number, when it is one.
    pub fn number(self) -> Option<f64> {
        let x = f64::from_bits(self.0);
        (!x.is_nan()).then_some(x)
    }
    /// The position of its expression in the sector's `exprs`, when it is one.
    pub fn expr_index(self) -> Option<usize> {
        f64::from_bits(self.0)
            .is_nan()
            .then_some((self.0 & 0xffff_ffff) as usize)
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.number(), self.expr_index()) {
            (Some(x), _) => write!(f, "{x:?}"),
            (_, Some(k)) => write!(f, "exprs[{k}]"),
            _ => unreachable!("a value is a number or an expression"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Nest {
    pub name: String,
    pub parent: Option<usize>,
    /// σ for input nests, η for output nests (parameter expression).
    pub elasticity: Expr,
    pub output: bool,
}

/// One input or output of a sector (see [`Sector`] for its taxes and expressions).
#[derive(Debug, Clone)]
pub struct Netput {
    /// Where it is written (`sectors.X.inputs[1]`), for messages raised when a scenario
    /// evaluates it; shared by every element of an entry declared over sets.
    pub site: Arc<Site>,
    pub commodity: CommodityId,
    pub quantity: Value,
    /// Reference price (tax-inclusive for inputs, net of tax for outputs).
    pub price: Value,
    /// Position in the sector's `nests`.
    pub nest: u32,
    /// Position of its first tax in the sector's `taxes`: its taxes run up to the next
    /// netput's first ([`Sector::taxes_of`]).
    pub first_tax: u32,
    pub output: bool,
}

impl Netput {
    /// Position of its nest in the sector's `nests`.
    pub fn nest(&self) -> usize {
        self.nest as usize
    }
}

impl Sector {
    /// The expression a netput's quantity or price stands for (a number is lent as
    /// `Expr::Num`, without allocating).
    pub fn expr(&self, v: Value) -> Cow<'_, Expr> {
        match (v.number(), v.expr_index()) {
            (Some(x), _) => Cow::Owned(Expr::Num(x)),
            (_, Some(k)) => Cow::Borrowed(&self.exprs[k]),
            _ => unreachable!("a value is a number or an expression"),
        }
    }
    /// A value for an expression: a number when it is one, else stored in `exprs`.
    pub fn value_of(&mut self, e: Expr) -> Value {
        match e {
            Expr::Num(x) if x.is_finite() => Value::num(x),
            e => {
                self.exprs.push(e);
                Value::expr(self.exprs.len() - 1)
            }
        }
    }
    /// The positions in `taxes` of netput `k`'s taxes.
    pub fn tax_range(&self, k: usize) -> std::ops::Range<usize> {
        let end = self
            .netputs
            .get(k + 1)
            .map_or(self.taxes.len(), |n| n.first_tax as usize);
        self.netputs[k].first_tax as usize..end
    }
    /// The taxes on netput `k`.
    pub fn taxes_of(&self, k: usize) -> &[Tax] {
        &self.taxes[self.tax_range(k)]
    }
    /// Adds a tax to netput `k` (after its other taxes).
    pub fn add_tax(&mut self, k: usize, tax: Tax) {
        let at = self.tax_range(k).end;
        self.taxes.insert(at, tax);
        for np in &mut self.netputs[k + 1..] {
            np.first_tax += 1;
        }
    }
}

/// Where a value is written in the model file: its field path and line, so that a failure to
/// evaluate it in some scenario names the place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    pub field: String,
    pub line: usize,
}

impl Site {
    /// A part of the value written here, with the line: `sectors.X.inputs[0].price (line 12)`.
    pub fn part(&self, part: &str) -> String {
        format!("{}.{part} (line {})", self.field, self.line)
    }
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {})", self.field, self.line)
    }
}

#[derive(Debug, Clone)]
pub struct Tax {
    /// Where the rate is written.
    pub site: Site,
    pub agent: usize,
    /// May depend on variables (endogenous taxes).
    pub rate: Expr,
}

#[derive(Debug, Clone)]
pub struct Consumer {
    pub name: String,
    pub description: String,
    pub role: ConsumerRole,
    pub elasticity: Expr,
    pub demands: Vec<FinalDemand>,
    pub endowments: Vec<Endowment>,
}

#[derive(Debug, Clone)]
pub struct FinalDemand {
    pub site: Site,
    pub commodity: usize,
    pub quantity: Expr,
    pub price: Expr,
    /// Extension: subsistence quantity γ (Stone–Geary demand, `docs/format_extensions.md`).
    pub subsistence: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct Endowment {
    pub site: Site,
    pub commodity: usize,
    /// May be negative and may depend on variables.
    pub quantity: Expr,
}

#[derive(Debug, Clone)]
pub struct Auxiliary {
    /// Where the constraint is written.
    pub site: Site,
    pub name: String,
    pub description: String,
    pub start: Expr,
    pub lower: Expr,
    pub upper: Expr,
    pub constraint: Expr,
}

/// What normalises prices: a commodity fixed at its start price or a consumer at its benchmark
/// income.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normaliser {
    Commodity(usize),
    Consumer(usize),
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Parameter overrides (index, value), in file order.
    pub parameters: Vec<(usize, f64)>,
    pub numeraire: Option<Normaliser>,
    /// Fixed variables (layout index, parameter expression).
    pub fix: Vec<(crate::ids::Var, Expr)>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// `None` is the benchmark (the model as written).
    pub scenario: Option<usize>,
    pub expr: Expr,
    pub text: String,
    pub check: TargetCheck,
    pub line: usize,
    /// Extension: the period of the scenario's dynamic path it checks (None: the static solve).
    pub period: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum TargetCheck {
    Value {
        value: Expr,
        tolerance: Expr,
    },
    Range {
        min: Option<Expr>,
        max: Option<Expr>,
    },
}

/// Extension: a named expression reported beside the solution.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub name: String,
    /// From `[descriptions]`; empty when none.
    pub description: String,
    pub expr: Expr,
    pub text: String,
}

pub use crate::compile::VarKind;

impl Model {
    // The layout is `compile::Layout`'s; these delegate to it for code that holds only a Model.
    fn layout(&self) -> crate::compile::Layout {
        crate::compile::Layout::of(self)
    }
    /// Number of solver variables: sectors, commodities, consumers, auxiliaries, in that order.
    pub fn n_vars(&self) -> usize {
        self.layout().dim()
    }
    pub fn sector_var(&self, s: usize) -> usize {
        self.layout().sector(crate::ids::SectorId::new(s)).index()
    }
    pub fn commodity_var(&self, c: usize) -> usize {
        self.layout()
            .commodity(crate::ids::CommodityId::new(c))
            .index()
    }
    pub fn consumer_var(&self, h: usize) -> usize {
        self.layout()
            .consumer(crate::ids::ConsumerId::new(h))
            .index()
    }
    pub fn aux_var(&self, a: usize) -> usize {
        self.layout().auxiliary(crate::ids::AuxId::new(a)).index()
    }
    /// Kind and index within its kind of a layout index.
    pub fn var_kind(&self, v: usize) -> (VarKind, usize) {
        use crate::compile::Var;
        match self.layout().var(crate::ids::VarId::new(v)) {
            Var::Sector(i) => (VarKind::Sector, i.index()),
            Var::Commodity(i) => (VarKind::Commodity, i.index()),
            Var::Consumer(i) => (VarKind::Consumer, i.index()),
            Var::Auxiliary(i) => (VarKind::Auxiliary, i.index()),
        }
    }
    pub fn var_name(&self, v: usize) -> &str {
        self.layout().var_name(self, crate::ids::VarId::new(v))
    }
    /// Name of the equation paired with variable `v`, for messages.
    pub fn equation_name(&self, v: usize) -> String {
        self.layout().equation_name(self, crate::ids::VarId::new(v))
    }
    pub fn scenario_index(&self, name: &str) -> Option<usize> {
        self.scenarios.iter().position(|s| s.name == name)
    }
    /// Whether a scenario is defined over time: it has `paths` of its own (`[dynamics]`). A
    /// static solve ignores its paths, so what it solves is not the scenario.
    pub fn is_dynamic_scenario(&self, index: usize) -> bool {
        self.dynamics
            .as_ref()
            .is_some_and(|d| !d.scenario(index).paths.is_empty())
    }
    /// The scenarios a static command runs when none is named (`compare`, `solve --all`): all
    /// but the dynamic ones.
    pub fn static_scenarios(&self) -> Vec<usize> {
        (0..self.scenarios.len())
            .filter(|&i| !self.is_dynamic_scenario(i))
            .collect()
    }
    /// The model's own parameter vector.
    pub fn param_values(&self) -> Vec<f64> {
        self.parameters.iter().map(|p| p.value).collect()
    }
    /// The parameter vector with `overrides` (index, value) applied, later overrides winning,
    /// and every derived parameter that is not itself overridden evaluated again, in
    /// declaration order (a definition refers only to earlier parameters, so one pass suffices).
    pub fn parameters_with(&self, overrides: &[(usize, f64)]) -> Result<Vec<f64>, ParameterError> {
        let mut values = self.param_values();
        self.rederive(&mut values, overrides)?;
        Ok(values)
    }
    /// Applies `overrides` to `values` (any parameter vector of this model, e.g. one carried
    /// from a previous period) and evaluates again every derived parameter not overridden.
    pub fn rederive(
        &self,
        values: &mut [f64],
        overrides: &[(usize, f64)],
    ) -> Result<(), ParameterError> {
        let definitions = self.parameters.iter().map(|p| p.definition.as_ref());
        rederive(definitions, values, overrides).map_err(|(i, error)| ParameterError {
            name: self.parameters[i].name.clone(),
            error,
        })
    }
    /// The name of every solver variable, parameter and indicator, by kind, for printing
    /// expressions back to text.
    pub fn names(&self) -> Names<'_> {
        Names { model: self }
    }
    pub fn source_dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Sets `overrides` (index, value; later ones win) in `values`, then evaluates in order every
/// definition whose parameter is not overridden. A definition refers only to earlier
/// parameters, so one pass in declaration order suffices. The error names the parameter.
fn rederive<'a>(
    definitions: impl Iterator<Item = Option<&'a Expr>>,
    values: &mut [f64],
    overrides: &[(usize, f64)],
) -> Result<(), (usize, crate::expr::EvalError)> {
    let mut set = vec![false; values.len()];
    for &(p, v) in overrides {
        values[p] = v;
        set[p] = true;
    }
    for (i, d) in definitions.enumerate() {
        if let (Some(e), false) = (d, set[i]) {
            values[i] = crate::calibrate::eval_param(e, values).map_err(|err| (i, err))?;
        }
    }
    Ok(())
}

/// Prints resolved expressions with the model's names.
pub struct Names<'a> {
    model: &'a Model,
}

impl Names<'_> {
    /// Writes an expression as text of the contract's format.
    pub fn print(&self, e: &Expr) -> String {
        use crate::expr::{fmt_num, functions, BinOp, Func};
        let m = self.model;
        fn prec(e: &Expr) -> u8 {
            match e {
                Expr::Bin(BinOp::Add | BinOp::Sub, ..) => 1,
                Expr::Bin(BinOp::Mul | BinOp::Div, ..) => 2,
                Expr::Neg(_) => 3,
                Expr::Bin(BinOp::Pow, ..) => 4,
                Expr::Num(v) if *v < 0.0 => 3,
                _ => 5,
            }
        }
        let wrap = |e: &Expr, need: u8, strict: bool| {
            let p = prec(e);
            let t = self.print(e);
            if p < need || (strict && p == need) {
                format!("({t})")
            } else {
                t
            }
        };
        let nest = |s: usize, n: &Option<usize>| match n {
            None => String::new(),
            Some(n) => format!(", {}", m.sectors[s].nests[*n].name),
        };
        match e {
            Expr::Num(v) => fmt_num(*v),
            Expr::Param(i) => m.parameters[*i].name.clone(),
            Expr::Var(v) => crate::compile::Layout::entity_name(m, *v).to_string(),
            Expr::Indicator(i) => m.indicators[*i].name.clone(),
            Expr::Time(which) => which.name().to_string(),
            Expr::Func(f) => {
                let name = functions::function(f.builtin()).name;
                let args = match f {
                    Func::Demand {
                        sector,
                        commodity,
                        nest: n,
                    }
                    | Func::Supply {
                        sector,
                        commodity,
                        nest: n,
                    } => format!(
                        "{}, {}{}",
                        m.sectors[*sector].name,
                        m.commodities[*commodity].name,
                        nest(*sector, n)
                    ),
                    Func::Final {
                        consumer,
                        commodity,
                    }
                    | Func::Endowment {
                        consumer,
                        commodity,
                    } => format!(
                        "{}, {}",
                        m.consumers[*consumer].name, m.commodities[*commodity].name
                    ),
                    Func::Revenue { consumer }
                    | Func::Welfare { consumer }
                    | Func::Ev { consumer } => m.consumers[*consumer].name.clone(),
                };
                format!("{name}({args})")
            }
            Expr::Math(f, args) => {
                let args: Vec<String> = args.iter().map(|a| self.print(a)).collect();
                format!("{}({})", f.name(), args.join(", "))
            }
            Expr::Neg(a) => format!("-{}", wrap(a, 4, false)),
            Expr::Bin(op, a, b) => match op {
                BinOp::Add => format!("{} + {}", wrap(a, 1, false), wrap(b, 1, true)),
                BinOp::Sub => format!("{} - {}", wrap(a, 1, false), wrap(b, 1, true)),
                BinOp::Mul => format!("{} * {}", wrap(a, 2, false), wrap(b, 2, true)),
                BinOp::Div => format!("{} / {}", wrap(a, 2, false), wrap(b, 2, true)),
                BinOp::Pow => format!("{}^{}", wrap(a, 5, false), wrap(b, 4, false)),
            },
        }
    }
}
