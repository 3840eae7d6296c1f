//! The serde mirror of a model file (`ModelFile`). Every field is spanned so that validation can
//! name the line of whatever it rejects; unknown fields are rejected by serde itself.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// A number or an expression string, as written.
pub type RawValue = Spanned<toml::Value>;
/// A name → value table (`[parameters]`, `start`, `fix`, scenario `parameters`), `description`
/// reserved.
pub type RawTable = Spanned<IndexMap<String, RawValue>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub commodities: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub start: Option<RawTable>,
    pub model: Spanned<ModelSection>,
    #[serde(default)]
    pub parameters: Option<RawTable>,
    #[serde(default)]
    pub sam: Option<Spanned<SamSection>>,
    #[serde(default)]
    pub sectors: IndexMap<String, Spanned<SectorFile>>,
    #[serde(default)]
    pub consumers: IndexMap<String, Spanned<ConsumerFile>>,
    #[serde(default)]
    pub auxiliary: IndexMap<String, Spanned<AuxFile>>,
    #[serde(default)]
    pub scenarios: IndexMap<String, Spanned<ScenarioFile>>,
    #[serde(default)]
    pub targets: Vec<Spanned<TargetFile>>,
    #[serde(default)]
    pub indicators: Option<RawTable>,
    /// Extension (indexed models): sets of labels.
    #[serde(default)]
    pub sets: IndexMap<String, Spanned<SetFile>>,
    /// Extension (indexed models): data tables over sets.
    #[serde(default)]
    pub tables: IndexMap<String, Spanned<TableFile>>,
    /// Extension: systematic sensitivity analysis (`tokencge sweep`).
    #[serde(default)]
    pub sensitivity: Option<Spanned<SensitivityFile>>,
    /// Extension (reports): a description for any declared name — commodities, parameters and
    /// indicators have no table of their own to carry one.
    #[serde(default)]
    pub descriptions: Option<Spanned<IndexMap<String, Spanned<String>>>>,
    /// Extension (recursive dynamics): the horizon and how parameters move between periods.
    #[serde(default)]
    pub dynamics: Option<Spanned<DynamicsFile>>,
}

/// Extension: a recursive-dynamic path, a sequence of equilibria linked by parameter updates
/// (`docs/format_extensions.md`, recursive dynamics).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicsFile {
    /// Number of periods, t = 0 … periods − 1.
    pub periods: Spanned<toml::Value>,
    /// The year of period 0 (default 0); `year = start_year + step · t`.
    #[serde(default)]
    pub start_year: Option<RawValue>,
    /// Years per period (default 1).
    #[serde(default)]
    pub step: Option<RawValue>,
    /// Annual rate at which present values discount (default 0).
    #[serde(default)]
    pub discount_rate: Option<RawValue>,
    /// PARAM → expression evaluated at period t's solution: PARAM's value in period t + 1.
    #[serde(default)]
    pub update: Option<RawTable>,
    /// PARAM → a list of one value per period, or an expression of `t` and `year`.
    #[serde(default)]
    pub paths: Option<RawTable>,
    /// Parameters that change the technology on purpose (productivity): they may reach
    /// production or demand blocks and endowments together.
    #[serde(default)]
    pub technology: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Extension: `[sensitivity]`, the parameters a sweep varies and what it reports.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensitivityFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub draws: Option<Spanned<i64>>,
    #[serde(default)]
    pub seed: Option<Spanned<i64>>,
    /// Variables, indicators and `ev(H)` to report (default: all).
    #[serde(default)]
    pub report: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub parameters: IndexMap<String, Spanned<VariedFile>>,
    #[serde(default)]
    pub groups: Vec<Spanned<GroupFile>>,
}

/// One varied parameter: a distribution and its numbers (parameter expressions allowed).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariedFile {
    pub distribution: Spanned<String>,
    #[serde(default)]
    pub min: Option<RawValue>,
    #[serde(default)]
    pub max: Option<RawValue>,
    #[serde(default)]
    pub mode: Option<RawValue>,
    #[serde(default)]
    pub mean: Option<RawValue>,
    #[serde(default)]
    pub sd: Option<RawValue>,
    #[serde(default)]
    pub median: Option<RawValue>,
    #[serde(default)]
    pub log_sd: Option<RawValue>,
    #[serde(default)]
    pub values: Option<Spanned<Vec<RawValue>>>,
    #[serde(default)]
    pub weights: Option<Spanned<Vec<RawValue>>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Parameters drawn together (Gaussian copula, one correlation for every pair).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    pub parameters: Spanned<Vec<Spanned<String>>>,
    pub correlation: RawValue,
    #[serde(default)]
    pub description: Option<String>,
}

/// A set, as written: a list of labels, or a table `{ elements | file + column, subset,
/// alias, description }` (read by the expansion stage: serde's untagged enums lose spans).
pub type SetFile = toml::Value;

/// A table of numbers over sets: from a CSV file (long: one column per index and a value
/// column; matrix: row labels × column labels) or inline. Missing entries are zero. With
/// `parameters = true` every entry is a parameter `NAME[label,...]` a scenario may set;
/// otherwise its numbers are data, written into the expanded model.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    pub index: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// `long` (the default) or `matrix` (two indices only).
    #[serde(default)]
    pub form: Option<Spanned<String>>,
    /// The value column of a long file (default `value`).
    #[serde(default)]
    pub value: Option<Spanned<String>>,
    /// Inline entries: `{ label = number }` over one set, or `[[label, ..., number], ...]`.
    #[serde(default)]
    pub values: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub parameters: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

/// The sets a netput, tax, demand or endowment is declared over: `"i"` or `["i", "k"]`.
pub type Over = toml::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub numeraire: Option<Spanned<String>>,
    /// Extension (reports): the unit of money of the benchmark data, e.g. `bn USD 2025`.
    #[serde(default)]
    pub unit: Option<Spanned<String>>,
    /// Extension (reports): the prices, activities, auxiliaries and indicators a comparison
    /// shows first.
    #[serde(default)]
    pub headline: Option<Spanned<Vec<Spanned<String>>>>,
    /// Extension (reports): the indicator that measures real GDP.
    #[serde(default)]
    pub gdp: Option<Spanned<String>>,
    /// Extension (reports): the indicator that measures real government revenue.
    #[serde(default)]
    pub revenue: Option<Spanned<String>>,
}

/// Extension: a social accounting matrix whose cells `sam(ROW, COL)` may stand in expressions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamSection {
    pub file: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Relative tolerance of the balance check (default 1e-9).
    #[serde(default)]
    pub tolerance: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub elasticity: Option<RawValue>,
    #[serde(default)]
    pub transformation: Option<RawValue>,
    #[serde(default)]
    pub nests: Vec<Spanned<NestFile>>,
    #[serde(default)]
    pub inputs: Vec<Spanned<NetputFile>>,
    #[serde(default)]
    pub outputs: Vec<Spanned<NetputFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestFile {
    pub name: Spanned<String>,
    pub parent: Spanned<String>,
    #[serde(default)]
    pub elasticity: Option<RawValue>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one nest per element of these sets (`name = "arm[i]"`).
    #[serde(default)]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetputFile {
    pub commodity: Spanned<String>,
    pub quantity: RawValue,
    #[serde(default)]
    pub price: Option<RawValue>,
    #[serde(default)]
    pub nest: Option<Spanned<String>>,
    #[serde(default)]
    pub taxes: Vec<Spanned<TaxFile>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxFile {
    pub agent: Spanned<String>,
    pub rate: RawValue,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerFile {
    #[serde(default)]
    pub description: Option<String>,
    /// Extension (reports): `household` (default), `government`, `foreign` or `accounting`.
    #[serde(default)]
    pub role: Option<Spanned<String>>,
    #[serde(default)]
    pub elasticity: Option<RawValue>,
    #[serde(default)]
    pub demands: Vec<Spanned<DemandFile>>,
    #[serde(default)]
    pub endowments: Vec<Spanned<EndowmentFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandFile {
    pub commodity: Spanned<String>,
    pub quantity: RawValue,
    #[serde(default)]
    pub price: Option<RawValue>,
    /// Extension: subsistence quantity of Stone–Geary demand.
    #[serde(default)]
    pub subsistence: Option<RawValue>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndowmentFile {
    pub commodity: Spanned<String>,
    pub quantity: RawValue,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuxFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub start: Option<RawValue>,
    #[serde(default)]
    pub lower: Option<RawValue>,
    #[serde(default)]
    pub upper: Option<RawValue>,
    pub constraint: RawValue,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<RawTable>,
    #[serde(default)]
    pub numeraire: Option<Spanned<String>>,
    #[serde(default)]
    pub fix: Option<RawTable>,
    /// Extension (dynamics): the period from which the scenario applies (default 0).
    #[serde(default)]
    pub from: Option<Spanned<toml::Value>>,
    /// Extension (dynamics): the scenario's own time paths of parameters.
    #[serde(default)]
    pub paths: Option<RawTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub scenario: Option<Spanned<String>>,
    pub expr: RawValue,
    #[serde(default)]
    pub value: Option<RawValue>,
    #[serde(default)]
    pub tolerance: Option<RawValue>,
    #[serde(default)]
    pub min: Option<RawValue>,
    #[serde(default)]
    pub max: Option<RawValue>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one target per element of these sets.
    #[serde(default)]
    pub over: Option<Spanned<Over>>,
    /// Extension (dynamics): the period of the scenario's path the target checks.
    #[serde(default)]
    pub period: Option<Spanned<toml::Value>>,
}
