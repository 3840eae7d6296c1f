//! tokencge: computable general equilibrium models in the MPSGE tradition.
//!
//! The pipeline runs one way, each stage a function returning `Result`: model file →
//! [`model::Model`] → [`compile::compile`] → [`compile::Structure`] (immutable, shared across
//! threads) and [`calibrate::calibrate`] → [`calibrate::Coefficients`] (one per parameter
//! vector) → [`scenario::solve`] with a per-thread [`scenario::Workspace`] →
//! [`scenario::Solution`] → [`report::SolutionReport`]. The solver ([`solve`]) sees only a
//! complementarity problem; the economics live in `compile`. Formulas: `docs/equations.md`.
//! A recursive-dynamic path ([`dynamic`]) is a sequence of such solves, one per period, linked by
//! parameter updates evaluated at each period's solution.
//!
//! ```
//! use std::path::Path;
//! use tokencge::{ids::CommodityId, model, scenario, solve::NewtonSettings};
//!
//! let text = r#"
//! commodities = ["PX", "PY", "PU", "PL", "PK"]
//! [model]
//! name = "two_by_two"
//! numeraire = "PL"
//! [parameters]
//! endow = 1.0
//! [sectors.X]
//! elasticity = 1.0
//! outputs = [{ commodity = "PX", quantity = 100 }]
//! inputs  = [{ commodity = "PL", quantity = 50 }, { commodity = "PK", quantity = 50 }]
//! [sectors.Y]
//! elasticity = 1.0
//! outputs = [{ commodity = "PY", quantity = 50 }]
//! inputs  = [{ commodity = "PL", quantity = 20 }, { commodity = "PK", quantity = 30 }]
//! [sectors.U]
//! elasticity = 1.0
//! outputs = [{ commodity = "PU", quantity = 150 }]
//! inputs  = [{ commodity = "PX", quantity = 100 }, { commodity = "PY", quantity = 50 }]
//! [consumers.RA]
//! demands    = [{ commodity = "PU", quantity = 150 }]
//! endowments = [{ commodity = "PL", quantity = "70 * endow" }, { commodity = "PK", quantity = 80 }]
//! [scenarios.more_labour]
//! parameters = { endow = 1.1 }
//! "#;
//! let model = model::load_str(text, Path::new("two_by_two.toml")).unwrap();
//! let more_labour = model.scenario_index("more_labour");
//! let (structure, _) = tokencge::build_model(model).unwrap();
//! let (scenario, coefficients) = scenario::prepare(&structure, more_labour).unwrap();
//! let mut workspace = scenario::Workspace::new(&structure);
//! let settings = NewtonSettings::default();
//! let solution = scenario::solve(&structure, &coefficients, &scenario, &settings, &mut workspace);
//! assert!(solution.converged());
//! // 10% more labour raises the rental rate relative to the wage by exactly 10%.
//! let layout = structure.layout();
//! let (pk, pl) = (layout.commodity(CommodityId::new(4)), layout.commodity(CommodityId::new(3)));
//! assert!((solution.x[pk.index()] / solution.x[pl.index()] - 1.1).abs() < 1e-9);
//! ```

pub mod batch;
pub mod bundle;
pub mod calibrate;
pub mod chart;
pub mod compile;
pub mod dynamic;
pub mod expr;
pub mod files;
pub mod flatten;
pub mod generate;
pub mod ids;
pub mod model;
pub mod report;
pub mod sam;
pub mod scenario;
pub mod solve;
pub mod sweep;

use std::path::Path;

/// Why a model could not be turned into a compiled system.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Load(#[from] model::LoadError),
    #[error("{file}: {source}")]
    Compile {
        file: String,
        source: compile::CompileError,
    },
}

/// Loads, validates and compiles a model file; also returns the coefficients calibrated to the
/// model's own parameters.
pub fn build(path: &Path) -> Result<(compile::Structure, calibrate::Coefficients), BuildError> {
    build_model(model::load(path)?)
}

/// Compiles a loaded model.
pub fn build_model(
    model: model::Model,
) -> Result<(compile::Structure, calibrate::Coefficients), BuildError> {
    let file = model.path.display().to_string();
    compile::compile(model).map_err(|source| BuildError::Compile { file, source })
}
