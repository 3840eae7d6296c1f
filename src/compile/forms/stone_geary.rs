//! Stone–Geary final demand (an extension, `docs/format_extensions.md`): subsistence
//! quantities γ_d are bought first; the supernumerary income M − Σ P_d γ_d is spent on the
//! quantities above subsistence by a CES system (the linear expenditure system, LES, at σ = 1):
//!
//! ```text
//! D_d = γ_d + (Q_d − γ_d)·(M*/(e·Q*))·(e/π_d)^σ,   M* = M − Σ_j P_j γ_j,
//! welfare = M*/(e·Q*),   E(p, U) = Σ_j p_j γ_j + e(p)·Q*·U,
//! ```
//!
//! with e, θ and Q* the CES formulas of §5 applied to the supernumerary quantities Q_d − γ_d.

use super::ces_demand::CesDemand;
use super::demand::{DemandState, NonFinite};

/// Calibrated coefficients of a Stone–Geary demand system.
#[derive(Debug, Clone, Default)]
pub struct StoneGeary {
    /// γ_d.
    pub subsistence: Vec<f64>,
    /// The CES system over Q_d − γ_d.
    pub core: CesDemand,
}

impl StoneGeary {
    /// Calibrates from benchmark quantities, reference prices and subsistence quantities; every
    /// γ_d must lie in [0, Q_d) (checked by the caller, which knows the names).
    pub fn new(quantity: &[f64], price: Vec<f64>, subsistence: Vec<f64>, sigma: f64) -> Self {
        let above = quantity
            .iter()
            .zip(&subsistence)
            .map(|(q, g)| q - g)
            .collect();
        StoneGeary {
            core: CesDemand::new(above, price, sigma),
            subsistence,
        }
    }

    /// Subsistence cost Σ P_d γ_d at prices `p`.
    pub fn subsistence_cost(&self, p: &[f64]) -> f64 {
        p.iter().zip(&self.subsistence).map(|(p, g)| p * g).sum()
    }

    pub fn evaluate(&self, p: &[f64], income: f64, st: &mut DemandState) -> Result<(), NonFinite> {
        let spent = income - self.subsistence_cost(p);
        self.core.evaluate(p, spent, st)?;
        for (d, g) in st.demand.iter_mut().zip(&self.subsistence) {
            *d += g;
        }
        Ok(())
    }

    /// ∂D_k/∂P_j: the CES part at fixed M*, plus ∂D_k/∂M*·∂M*/∂P_j = −γ_j·∂D_k/∂M*.
    pub fn demand_price_partials(
        &self,
        st: &DemandState,
        k: usize,
        scale: f64,
        mut push: impl FnMut(usize, f64),
    ) {
        let per_spent = self.core.demand_per_spent(st, k, scale);
        self.core.demand_price_partials(st, k, scale, |j, v| {
            push(j, v - per_spent * self.subsistence[j])
        });
    }

    pub fn welfare_partials(
        &self,
        st: &DemandState,
        scale: f64,
        mut push: impl FnMut(usize, f64),
    ) -> f64 {
        let per_spent = scale / (st.price_index * self.core.total);
        self.core.welfare_partials(st, scale, |j, v| {
            push(j, v - per_spent * self.subsistence[j])
        })
    }
}
