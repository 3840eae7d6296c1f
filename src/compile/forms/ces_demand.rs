//! CES final demand (`docs/equations.md` §5): with θ_d = Q_d p̄_d / Q_H and π_d = P_d / p̄_d,
//! e = (Σ θ_d π_d^(1−σ))^(1/(1−σ)), D_d = Q_d·(M/(e·Q_H))·(e/π_d)^σ, welfare = M/(e·Q_H).

use super::demand::{DemandState, NonFinite};
use super::nest::{ces, pw, NestForm};

/// Calibrated coefficients of a CES demand system.
#[derive(Debug, Clone, Default)]
pub struct CesDemand {
    /// Benchmark quantity Q_d and reference price p̄_d of each demand.
    pub quantity: Vec<f64>,
    pub price: Vec<f64>,
    /// θ_d.
    pub share: Vec<f64>,
    /// Q_H = Σ Q_d p̄_d.
    pub total: f64,
    pub sigma: f64,
}

impl CesDemand {
    pub fn new(quantity: Vec<f64>, price: Vec<f64>, sigma: f64) -> CesDemand {
        let total: f64 = quantity.iter().zip(&price).map(|(q, p)| q * p).sum();
        let share = quantity
            .iter()
            .zip(&price)
            .map(|(q, p)| if total > 0.0 { q * p / total } else { 0.0 })
            .collect();
        CesDemand {
            quantity,
            price,
            share,
            total,
            sigma,
        }
    }

    /// Price index, demands and welfare when `spent` is spent at prices `p` (`p[k]` of demand k).
    /// One powf per demand: with a_d = π_d^(−σ), π^(1−σ) = π·a, ∂ln e/∂π_d = θ_d·a_d·e^(σ−1)
    /// and (e/π_d)^σ = e^σ·a_d (a zero price takes the plain formulas).
    pub fn evaluate(&self, p: &[f64], spent: f64, st: &mut DemandState) -> Result<(), NonFinite> {
        let n = self.quantity.len();
        let sigma = self.sigma;
        st.pi.clear();
        st.pi
            .extend(p.iter().zip(&self.price).map(|(p, pb)| p / pb));
        // π^(−σ) in `dlog_e` for now (NaN for a zero price).
        st.dlog_e.clear();
        st.dlog_e.extend(st.pi.iter().map(|&v| {
            if sigma == 0.0 {
                1.0
            } else if v > 0.0 {
                v.powf(-sigma)
            } else {
                f64::NAN
            }
        }));
        st.price_index = match NestForm::from_sigma(sigma) {
            NestForm::Ces(_) if st.dlog_e.iter().all(|a| !a.is_nan()) => {
                let rho = 1.0 - sigma;
                let sum: f64 = (0..n)
                    .filter(|&d| self.share[d] > 0.0)
                    .map(|d| self.share[d] * st.pi[d] * st.dlog_e[d])
                    .sum();
                sum.powf(1.0 / rho)
            }
            _ => ces(sigma, self.share.iter().copied().zip(st.pi.iter().copied())),
        };
        if !st.price_index.is_finite() {
            return Err(NonFinite::PriceIndex(st.price_index));
        }
        let e = st.price_index;
        let (e_sigma, e_sigma_1) = (pw(e, sigma), pw(e, sigma - 1.0));
        st.core.clear();
        for k in 0..n {
            let a = st.dlog_e[k];
            // A zero-quantity demand stays zero at any price (even P = 0, where (e/π)^σ = ∞).
            let d = if self.quantity[k] == 0.0 {
                0.0
            } else if a.is_nan() {
                self.quantity[k] * (spent / (e * self.total)) * pw(e / st.pi[k], sigma)
            } else {
                self.quantity[k] * (spent / (e * self.total)) * e_sigma * a
            };
            if !d.is_finite() {
                return Err(NonFinite::Demand(k, d));
            }
            st.core.push(d);
        }
        for k in 0..n {
            let a = st.dlog_e[k];
            st.dlog_e[k] = if a.is_nan() {
                self.share[k] * pw(st.pi[k], -sigma) * e_sigma_1
            } else {
                self.share[k] * a * e_sigma_1
            };
        }
        st.demand.clear();
        st.demand.extend_from_slice(&st.core);
        st.spent = spent;
        st.welfare = spent / (e * self.total);
        Ok(())
    }

    /// `scale ·` ∂D_k/∂(spent).
    pub fn demand_per_spent(&self, st: &DemandState, k: usize, scale: f64) -> f64 {
        if self.quantity[k] == 0.0 {
            return 0.0;
        }
        let e = st.price_index;
        scale * self.quantity[k] / (e * self.total) * pw(e / st.pi[k], self.sigma)
    }

    /// `scale ·` the own-price part of ∂D_k/∂P_k that is not in the rank-one term:
    /// −σ·D_k/(π_k·p̄_k).
    pub fn own_price_partial(&self, st: &DemandState, k: usize, scale: f64) -> f64 {
        let dk = st.core[k];
        if dk == 0.0 || self.sigma == 0.0 {
            0.0
        } else {
            -scale * dk * self.sigma / (st.pi[k] * self.price[k])
        }
    }

    /// `scale ·` u_k of the cross-price rank-one term ∂D_k/∂P_j ∋ u_k·v_j: D_k·(σ − 1).
    pub fn cross_price_u(&self, st: &DemandState, k: usize, scale: f64) -> f64 {
        scale * st.core[k] * (self.sigma - 1.0)
    }

    /// v_j of the cross-price rank-one term: ∂ln e/∂π_j / p̄_j.
    pub fn cross_price_v(&self, st: &DemandState, j: usize) -> f64 {
        st.dlog_e[j] / self.price[j]
    }

    /// ∂D_k/∂P_j for every j at a fixed amount spent, through `push(j, value)`.
    pub fn demand_price_partials(
        &self,
        st: &DemandState,
        k: usize,
        scale: f64,
        mut push: impl FnMut(usize, f64),
    ) {
        let sigma = self.sigma;
        let pik = st.pi[k];
        let dk = st.core[k];
        for j in 0..self.quantity.len() {
            let mut dd = (sigma - 1.0) * st.dlog_e[j];
            if j == k && sigma != 0.0 {
                dd -= sigma / pik;
            }
            let v = if dk == 0.0 {
                0.0
            } else {
                scale * dk * dd / self.price[j]
            };
            push(j, v);
        }
    }

    /// ∂welfare/∂(spent) and, through `push(j, value)`, ∂welfare/∂P_j at a fixed amount spent.
    pub fn welfare_partials(
        &self,
        st: &DemandState,
        scale: f64,
        mut push: impl FnMut(usize, f64),
    ) -> f64 {
        for j in 0..self.quantity.len() {
            push(j, -scale * st.welfare * st.dlog_e[j] / self.price[j]);
        }
        scale / (st.price_index * self.total)
    }
}
