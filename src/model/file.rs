//! The serde mirror of a model file (`ModelFile`). Every field is spanned so that validation can
//! name the line of whatever it rejects; unknown fields are rejected by serde itself.
//!
//! Every type also derives `JsonSchema`, from which `tokencge schema` prints the format's JSON
//! Schema (`super::schema`). `toml::Spanned` has no schema of its own: a new spanned field says
//! what it holds with `#[schemars(with = "T")]` (T its value's type), a raw TOML value with
//! `#[schemars(schema_with = "crate::model::schema::…")]`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

/// A number or an expression string, as written.
pub type RawValue = Spanned<toml::Value>;
/// A name → value table (`[parameters]`, `start`, `fix`, scenario `parameters`), `description`
/// reserved.
pub type RawTable = Spanned<IndexMap<String, RawValue>>;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    #[schemars(with = "Vec<String>")]
    pub commodities: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::value_table")]
    pub start: Option<RawTable>,
    #[schemars(with = "ModelSection")]
    pub model: Spanned<ModelSection>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::value_table")]
    pub parameters: Option<RawTable>,
    #[serde(default)]
    #[schemars(with = "Option<SamSection>")]
    pub sam: Option<Spanned<SamSection>>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, SectorFile>")]
    pub sectors: IndexMap<String, Spanned<SectorFile>>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, ConsumerFile>")]
    pub consumers: IndexMap<String, Spanned<ConsumerFile>>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, AuxFile>")]
    pub auxiliary: IndexMap<String, Spanned<AuxFile>>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, ScenarioFile>")]
    pub scenarios: IndexMap<String, Spanned<ScenarioFile>>,
    #[serde(default)]
    #[schemars(with = "Vec<TargetFile>")]
    pub targets: Vec<Spanned<TargetFile>>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::value_table")]
    pub indicators: Option<RawTable>,
    /// Extension (indexed models): sets of labels.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::sets")]
    pub sets: IndexMap<String, Spanned<SetFile>>,
    /// Extension (indexed models): data tables over sets.
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, TableFile>")]
    pub tables: IndexMap<String, Spanned<TableFile>>,
    /// Extension: systematic sensitivity analysis (`tokencge sweep`).
    #[serde(default)]
    #[schemars(with = "Option<SensitivityFile>")]
    pub sensitivity: Option<Spanned<SensitivityFile>>,
    /// Extension (reports): a description for any declared name — commodities, parameters and
    /// indicators have no table of their own to carry one.
    #[serde(default)]
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub descriptions: Option<Spanned<IndexMap<String, Spanned<String>>>>,
    /// Extension (recursive dynamics): the horizon and how parameters move between periods.
    #[serde(default)]
    #[schemars(with = "Option<DynamicsFile>")]
    pub dynamics: Option<Spanned<DynamicsFile>>,
}

/// Extension: a recursive-dynamic path, a sequence of equilibria linked by parameter updates
/// (`docs/format_extensions.md`, recursive dynamics).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamicsFile {
    /// Number of periods, t = 0 … periods − 1.
    #[schemars(schema_with = "crate::model::schema::periods")]
    pub periods: Spanned<toml::Value>,
    /// The year of period 0 (default 0); `year = start_year + step · t`.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub start_year: Option<RawValue>,
    /// Years per period (default 1).
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub step: Option<RawValue>,
    /// Annual rate at which present values discount (default 0).
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub discount_rate: Option<RawValue>,
    /// PARAM → expression evaluated at period t's solution: PARAM's value in period t + 1.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::value_table")]
    pub update: Option<RawTable>,
    /// PARAM → a list of one value per period, or an expression of `t` and `year`.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::paths_table")]
    pub paths: Option<RawTable>,
    /// Parameters that change the technology on purpose (productivity): they may reach
    /// production or demand blocks and endowments together.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub technology: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Extension: `[sensitivity]`, the parameters a sweep varies and what it reports.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SensitivityFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub draws: Option<Spanned<i64>>,
    #[serde(default)]
    #[schemars(with = "Option<i64>")]
    pub seed: Option<Spanned<i64>>,
    /// Variables, indicators and `ev(H)` to report (default: all).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub report: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    #[schemars(with = "std::collections::BTreeMap<String, VariedFile>")]
    pub parameters: IndexMap<String, Spanned<VariedFile>>,
    #[serde(default)]
    #[schemars(with = "Vec<GroupFile>")]
    pub groups: Vec<Spanned<GroupFile>>,
}

/// One varied parameter: a distribution and its numbers (parameter expressions allowed).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariedFile {
    #[schemars(with = "String")]
    pub distribution: Spanned<String>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub min: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub max: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub mode: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub mean: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub sd: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub median: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub log_sd: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expressions")]
    pub values: Option<Spanned<Vec<RawValue>>>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expressions")]
    pub weights: Option<Spanned<Vec<RawValue>>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Parameters drawn together (Gaussian copula, one correlation for every pair).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    #[schemars(with = "Vec<String>")]
    pub parameters: Spanned<Vec<Spanned<String>>>,
    #[schemars(schema_with = "crate::model::schema::expression")]
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
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    #[schemars(with = "Vec<String>")]
    pub index: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// `long` (the default) or `matrix` (two indices only).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub form: Option<Spanned<String>>,
    /// The value column of a long file (default `value`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub value: Option<Spanned<String>>,
    /// Inline entries: `{ label = number }` over one set, or `[[label, ..., number], ...]`.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::table_values")]
    pub values: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub parameters: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

/// The sets a netput, tax, demand or endowment is declared over: `"i"` or `["i", "k"]`.
pub type Over = toml::Value;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub numeraire: Option<Spanned<String>>,
    /// Extension (reports): the unit of money of the benchmark data, e.g. `bn USD 2025`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub unit: Option<Spanned<String>>,
    /// Extension (reports): the prices, activities, auxiliaries and indicators a comparison
    /// shows first.
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub headline: Option<Spanned<Vec<Spanned<String>>>>,
    /// Extension (reports): the indicator that measures real GDP.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub gdp: Option<Spanned<String>>,
    /// Extension (reports): the indicator that measures real government revenue.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub revenue: Option<Spanned<String>>,
}

/// Extension: a social accounting matrix whose cells `sam(ROW, COL)` may stand in expressions.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SamSection {
    #[schemars(with = "String")]
    pub file: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Relative tolerance of the balance check (default 1e-9).
    #[serde(default)]
    pub tolerance: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SectorFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub elasticity: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub transformation: Option<RawValue>,
    #[serde(default)]
    #[schemars(with = "Vec<NestFile>")]
    pub nests: Vec<Spanned<NestFile>>,
    #[serde(default)]
    #[schemars(with = "Vec<NetputFile>")]
    pub inputs: Vec<Spanned<NetputFile>>,
    #[serde(default)]
    #[schemars(with = "Vec<NetputFile>")]
    pub outputs: Vec<Spanned<NetputFile>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NestFile {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[schemars(with = "String")]
    pub parent: Spanned<String>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub elasticity: Option<RawValue>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one nest per element of these sets (`name = "arm[i]"`).
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::over")]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetputFile {
    #[schemars(with = "String")]
    pub commodity: Spanned<String>,
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub quantity: RawValue,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub price: Option<RawValue>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub nest: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(with = "Vec<TaxFile>")]
    pub taxes: Vec<Spanned<TaxFile>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::over")]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxFile {
    #[schemars(with = "String")]
    pub agent: Spanned<String>,
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub rate: RawValue,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::over")]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerFile {
    #[serde(default)]
    pub description: Option<String>,
    /// Extension (reports): `household` (default), `government`, `foreign` or `accounting`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub role: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub elasticity: Option<RawValue>,
    #[serde(default)]
    #[schemars(with = "Vec<DemandFile>")]
    pub demands: Vec<Spanned<DemandFile>>,
    #[serde(default)]
    #[schemars(with = "Vec<EndowmentFile>")]
    pub endowments: Vec<Spanned<EndowmentFile>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandFile {
    #[schemars(with = "String")]
    pub commodity: Spanned<String>,
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub quantity: RawValue,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub price: Option<RawValue>,
    /// Extension: subsistence quantity of Stone–Geary demand.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub subsistence: Option<RawValue>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::over")]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndowmentFile {
    #[schemars(with = "String")]
    pub commodity: Spanned<String>,
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub quantity: RawValue,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one entry per element of these sets.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::over")]
    pub over: Option<Spanned<Over>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuxFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub start: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub lower: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub upper: Option<RawValue>,
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub constraint: RawValue,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::value_table")]
    pub parameters: Option<RawTable>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub numeraire: Option<Spanned<String>>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::value_table")]
    pub fix: Option<RawTable>,
    /// Extension (dynamics): the period from which the scenario applies (default 0).
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::period")]
    pub from: Option<Spanned<toml::Value>>,
    /// Extension (dynamics): the scenario's own time paths of parameters.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::paths_table")]
    pub paths: Option<RawTable>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub scenario: Option<Spanned<String>>,
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub expr: RawValue,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub value: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub tolerance: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub min: Option<RawValue>,
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::expression")]
    pub max: Option<RawValue>,
    #[serde(default)]
    pub description: Option<String>,
    /// Extension: one target per element of these sets.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::over")]
    pub over: Option<Spanned<Over>>,
    /// Extension (dynamics): the period of the scenario's path the target checks.
    #[serde(default)]
    #[schemars(schema_with = "crate::model::schema::period")]
    pub period: Option<Spanned<toml::Value>>,
}
