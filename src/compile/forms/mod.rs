//! Functional forms, one module each: the CES family of nest aggregators (Leontief,
//! Cobb–Douglas and CES as special cases of one formula) and the final-demand systems.
//!
//! A new demand system is one module here plus one variant of [`demand::DemandForm`]; a new
//! nest aggregator one module plus one variant of [`nest::NestForm`]. Formulas:
//! `docs/equations.md`.

pub mod ces_demand;
pub mod demand;
pub mod nest;
pub mod stone_geary;
