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
}
