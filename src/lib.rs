//! tokencge: computable general equilibrium models in the MPSGE tradition.
//!
//! The pipeline runs one way, each stage a pure function returning `Result`:
//! model file → [`model::Model`] → [`calibrate::CalibratedModel`] → [`compile::EquationSystem`]
//! → [`scenario::solve`] → [`report`]. The solver ([`solve`]) sees only a complementarity
//! problem; the economics live in `compile`. Formulas: `docs/equations.md`.

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
