//! tokencge: computable general equilibrium models in the MPSGE tradition.
//!
//! The pipeline runs one way, each stage a pure function returning `Result`:
//! model file → [`model::Model`] → [`calibrate::CalibratedModel`] → [`compile::EquationSystem`]
//! → [`scenario::solve`] → [`report`]. The solver ([`solve`]) sees only a complementarity
//! problem; the economics live in `compile`. Formulas: `docs/equations.md`.
//!
//! ```
//! use std::path::Path;
//! use tokencge::{model, scenario, solve::NewtonSettings};
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
//! let mut system = tokencge::build_model(&model).unwrap();
//! let setup = scenario::prepare(&mut system, model.scenario_index("more_labour")).unwrap();
//! let solution = scenario::solve(&mut system, &setup, &NewtonSettings::default()).unwrap();
//! assert!(solution.converged());
//! // 10% more labour raises the rental rate relative to the wage by exactly 10%.
//! let (pk, pl) = (model.commodity_var(4), model.commodity_var(3));
//! assert!((solution.x[pk] / solution.x[pl] - 1.1).abs() < 1e-9);
//! ```

pub mod calibrate;
pub mod compile;
pub mod expr;
pub mod flatten;
pub mod model;
pub mod report;
pub mod sam;
pub mod scenario;
pub mod solve;

use std::path::Path;

/// Why a model could not be turned into an equation system.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Load(#[from] model::LoadError),
    #[error("{file}: calibration: {source}")]
    Calibration {
        file: String,
        source: calibrate::CalibrationError,
    },
    #[error("{file}: {message}")]
    Compile { file: String, message: String },
}

/// Loads, validates, calibrates and compiles a model file.
pub fn build(path: &Path) -> Result<compile::EquationSystem, BuildError> {
    let model = model::load(path)?;
    build_model(&model)
}

/// Calibrates and compiles a loaded model.
pub fn build_model(model: &model::Model) -> Result<compile::EquationSystem, BuildError> {
    let file = model.path.display().to_string();
    let cal = calibrate::calibrate(model).map_err(|source| BuildError::Calibration {
        file: file.clone(),
        source,
    })?;
    compile::EquationSystem::new(&cal).map_err(|e| BuildError::Compile { file, message: e.0 })
}
