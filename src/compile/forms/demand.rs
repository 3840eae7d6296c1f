//! Final-demand systems behind one enum: each variant's module gives the price index, the
//! demands, welfare and their partial derivatives; compile/eval.rs maps the partials onto the
//! solver's variables.

use super::ces_demand::CesDemand;
use super::stone_geary::StoneGeary;

/// A consumer's calibrated demand system.
#[derive(Debug, Clone)]
pub enum DemandForm {
    Ces(CesDemand),
    StoneGeary(StoneGeary),
}

/// Values of a demand system at a point; buffers are reused from point to point.
#[derive(Debug, Clone, Default)]
pub struct DemandState {
    /// π_d = P_d / p̄_d.
    pub pi: Vec<f64>,
    /// ∂ln e/∂π_d = θ_d π_d^(−σ) e^(σ−1), computed once per point: every cross-price
    /// derivative uses them.
    pub dlog_e: Vec<f64>,
    /// The demands D_d.
    pub demand: Vec<f64>,
    /// The part of each demand that responds to prices and income (D_d − γ_d).
    pub core: Vec<f64>,
    /// Expenditure (price) index e.
    pub price_index: f64,
    pub welfare: f64,
    /// Income spent by the price-responsive part (M, or M − Σ P γ).
    pub spent: f64,
}

/// Which value of a demand system was not finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NonFinite {
    PriceIndex(f64),
    /// (demand position, value).
    Demand(usize, f64),
}

/// A partial derivative of a demand-system value: with respect to income or to the price of
/// the j-th demanded commodity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrt {
    Income,
    Price(usize),
}

impl DemandForm {
    fn ces(&self) -> &CesDemand {
        match self {
            DemandForm::Ces(c) => c,
            DemandForm::StoneGeary(s) => &s.core,
        }
    }
    /// Number of final demands.
    pub fn len(&self) -> usize {
        self.ces().quantity.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Benchmark quantity of demand k.
    pub fn benchmark_quantity(&self, k: usize) -> f64 {
        match self {
            DemandForm::Ces(c) => c.quantity[k],
            DemandForm::StoneGeary(s) => s.core.quantity[k] + s.subsistence[k],
        }
    }

    /// Evaluates at prices `p` (`p[k]` the price of demand k's commodity) and income `m`.
    pub fn evaluate(&self, p: &[f64], m: f64, st: &mut DemandState) -> Result<(), NonFinite> {
        match self {
            DemandForm::Ces(c) => c.evaluate(p, m, st),
            DemandForm::StoneGeary(s) => s.evaluate(p, m, st),
        }
    }

    /// Pushes `scale ·` the partials of demand k (income first, then each price).
    pub fn demand_partials(
        &self,
        st: &DemandState,
        k: usize,
        scale: f64,
        mut push: impl FnMut(Wrt, f64),
    ) {
        match self {
            DemandForm::Ces(c) => {
                push(Wrt::Income, c.demand_per_spent(st, k, scale));
                c.demand_price_partials(st, k, scale, |j, v| push(Wrt::Price(j), v));
            }
            DemandForm::StoneGeary(s) => {
                push(Wrt::Income, s.core.demand_per_spent(st, k, scale));
                s.demand_price_partials(st, k, scale, |j, v| push(Wrt::Price(j), v));
            }
        }
    }

    /// Pushes `scale ·` the partials of demand k that are not in its rank-one terms: income,
    /// then its own price (the diagonal). With [`DemandForm::rank_one_u`] and
    /// [`DemandForm::rank_one_v`] they make up [`DemandForm::demand_partials`]:
    /// ∂D_k/∂P_j = diagonal + Σ_t u_t[k]·v_t[j].
    pub fn demand_partials_sparse(
        &self,
        st: &DemandState,
        k: usize,
        scale: f64,
        mut push: impl FnMut(Wrt, f64),
    ) {
        let ces = self.ces();
        push(Wrt::Income, ces.demand_per_spent(st, k, scale));
        push(Wrt::Price(k), ces.own_price_partial(st, k, scale));
    }

    /// Number of rank-one terms of the cross-price derivatives: 1 for CES, 2 for Stone–Geary
    /// (the subsistence cost's effect on supernumerary income).
    pub fn rank_one_terms(&self) -> usize {
        match self {
            DemandForm::Ces(_) => 1,
            DemandForm::StoneGeary(_) => 2,
        }
    }

    /// `scale ·` u_t[k] of rank-one term t.
    pub fn rank_one_u(&self, st: &DemandState, t: usize, k: usize, scale: f64) -> f64 {
        match (self, t) {
            (DemandForm::StoneGeary(s), 1) => -s.core.demand_per_spent(st, k, scale),
            _ => self.ces().cross_price_u(st, k, scale),
        }
    }

    /// v_t[j] of rank-one term t.
    pub fn rank_one_v(&self, st: &DemandState, t: usize, j: usize) -> f64 {
        match (self, t) {
            (DemandForm::StoneGeary(s), 1) => s.subsistence[j],
            _ => self.ces().cross_price_v(st, j),
        }
    }

    /// Pushes `scale ·` the partials of welfare (each price, then income).
    pub fn welfare_partials(&self, st: &DemandState, scale: f64, mut push: impl FnMut(Wrt, f64)) {
        let income = match self {
            DemandForm::Ces(c) => c.welfare_partials(st, scale, |j, v| push(Wrt::Price(j), v)),
            DemandForm::StoneGeary(s) => {
                s.welfare_partials(st, scale, |j, v| push(Wrt::Price(j), v))
            }
        };
        push(Wrt::Income, income);
    }

    /// ∂E/∂welfare at the reference point whose price index is `e_ref`: e_ref·Q_H (Q* for
    /// Stone–Geary).
    pub fn welfare_price(&self, e_ref: f64) -> f64 {
        e_ref * self.ces().total
    }

    /// The expenditure E(p_ref, u) that buys welfare `u` at the reference point: its price
    /// index `e_ref` and subsistence cost `fixed_ref` (0 for CES). EV = E(p_ref, u) − M̄.
    pub fn expenditure(&self, u: f64, e_ref: f64, fixed_ref: f64) -> f64 {
        match self {
            DemandForm::Ces(_) => u * self.welfare_price(e_ref),
            DemandForm::StoneGeary(_) => fixed_ref + u * self.welfare_price(e_ref),
        }
    }

    /// Subsistence cost at prices `p` (0 for CES).
    pub fn subsistence_cost(&self, p: &[f64]) -> f64 {
        match self {
            DemandForm::Ces(_) => 0.0,
            DemandForm::StoneGeary(s) => s.subsistence_cost(p),
        }
    }
}
