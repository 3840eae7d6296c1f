//! The validated `[sensitivity]` section (extension, `docs/format_extensions.md` §9): which
//! parameters a systematic sensitivity analysis varies, each with its distribution, which are
//! drawn together (correlation groups), how many draws from which seed, and what to report.
//! Drawing and solving are `crate::sweep`'s; this is only the modeller's statement, as numbers.

use crate::ids::Var;

/// A systematic sensitivity analysis of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensitivity {
    pub description: String,
    /// Number of draws (default 1000).
    pub draws: usize,
    /// Seed of the draws' random streams (default 1).
    pub seed: u64,
    /// The varied parameters, in file order: the order of their columns and random streams.
    pub varied: Vec<Varied>,
    /// Parameters drawn together, as positions in `varied`; a parameter is in at most one.
    pub groups: Vec<Group>,
    /// What each draw reports (all variables, EVs and indicators when the file names none).
    pub report: Vec<Quantity>,
}

/// One varied parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Varied {
    /// Index of the parameter.
    pub parameter: usize,
    pub distribution: Distribution,
    /// The line of its entry, for messages.
    pub line: usize,
}

/// A marginal distribution. Truncation bounds are `±∞` when not given.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    /// Uniform on `[min, max]`.
    Uniform { min: f64, max: f64 },
    /// Triangular on `[min, max]` with its peak at `mode`.
    Triangular { min: f64, mode: f64, max: f64 },
    /// Normal with `mean` and `sd`, truncated to `[min, max]`.
    Normal {
        mean: f64,
        sd: f64,
        min: f64,
        max: f64,
    },
    /// Lognormal: `ln x` is normal with mean `ln median` and standard deviation `log_sd`;
    /// truncated to `[min, max]`.
    LogNormal {
        median: f64,
        log_sd: f64,
        min: f64,
        max: f64,
    },
    /// A discrete grid: `values[k]` with probability `weights[k]` (weights sum to one).
    Grid { values: Vec<f64>, weights: Vec<f64> },
}

impl Distribution {
    /// The distribution's name as written in the file.
    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Uniform { .. } => "uniform",
            Distribution::Triangular { .. } => "triangular",
            Distribution::Normal { .. } => "normal",
            Distribution::LogNormal { .. } => "lognormal",
            Distribution::Grid { .. } => "grid",
        }
    }
}

/// Parameters drawn together through a Gaussian copula with one correlation between every
/// pair (1 makes them comonotone: one uniform drives them all).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Positions in `Sensitivity::varied`.
    pub members: Vec<usize>,
    pub correlation: f64,
}

/// A reported quantity. Its change against the draw's own benchmark is reported: in % for
/// activities, prices and incomes (as `compare` does), as a difference for auxiliaries and
/// indicators, and as the level for an EV (zero at the benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    Variable(Var),
    Indicator(usize),
    Ev(usize),
}

/// How a quantity's change is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 100 · (scenario / benchmark − 1).
    Percent,
    /// scenario − benchmark.
    Change,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::Percent => "%",
            Unit::Change => "change",
        }
    }
}

impl Quantity {
    /// Its name as written in `report`: a variable's or indicator's name, `ev(H)`.
    pub fn name(&self, model: &super::Model) -> String {
        match *self {
            Quantity::Variable(v) => crate::compile::Layout::entity_name(model, v).to_string(),
            Quantity::Indicator(i) => model.indicators[i].name.clone(),
            Quantity::Ev(h) => format!("ev({})", model.consumers[h].name),
        }
    }

    /// How its change is measured.
    pub fn unit(&self) -> Unit {
        match self {
            Quantity::Variable(Var::Auxiliary(_)) | Quantity::Indicator(_) | Quantity::Ev(_) => {
                Unit::Change
            }
            Quantity::Variable(_) => Unit::Percent,
        }
    }

    /// Every variable, then every consumer's EV, then every indicator: the default report.
    pub fn all(model: &super::Model) -> Vec<Quantity> {
        use crate::ids::{AuxId, CommodityId, ConsumerId, SectorId};
        let mut q: Vec<Quantity> = Vec::new();
        q.extend(
            (0..model.sectors.len()).map(|i| Quantity::Variable(Var::Sector(SectorId::new(i)))),
        );
        q.extend(
            (0..model.commodities.len())
                .map(|i| Quantity::Variable(Var::Commodity(CommodityId::new(i)))),
        );
        q.extend(
            (0..model.consumers.len())
                .map(|i| Quantity::Variable(Var::Consumer(ConsumerId::new(i)))),
        );
        q.extend(
            (0..model.auxiliaries.len()).map(|i| Quantity::Variable(Var::Auxiliary(AuxId::new(i)))),
        );
        q.extend((0..model.consumers.len()).map(Quantity::Ev));
        q.extend((0..model.indicators.len()).map(Quantity::Indicator));
        q
    }
}
