//! Nest aggregators of production: the CES family. A nest's unit cost (or revenue) index is
//! c = (Σ θ v^(1−σ))^(1/(1−σ)), with Leontief (σ = 0: Σ θ v) and Cobb–Douglas (σ = 1: Π v^θ) as
//! its limits; output nests use σ = −η (`docs/equations.md` §2).

/// Which member of the CES family a nest is, decided from its elasticity at calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NestForm {
    /// σ = 0: fixed proportions.
    Leontief,
    /// σ = 1: geometric mean.
    CobbDouglas,
    /// Any other σ (negative for transformation nests).
    Ces(f64),
}

impl NestForm {
    pub fn from_sigma(sigma: f64) -> NestForm {
        if sigma == 0.0 {
            NestForm::Leontief
        } else if (sigma - 1.0).abs() < 1e-12 {
            NestForm::CobbDouglas
        } else {
            NestForm::Ces(sigma)
        }
    }
}

/// `a^σ`, exactly 1 when σ = 0 (so that a Leontief nest never evaluates 0^0 or ∞^0).
#[inline]
pub fn pw(a: f64, sigma: f64) -> f64 {
    if sigma == 0.0 {
        1.0
    } else {
        a.powf(sigma)
    }
}

/// CES aggregate of (share, value) pairs with elasticity σ (σ = 0 linear, σ = 1 geometric).
/// Zero shares are skipped, so a zero-flow child never contributes 0·∞.
pub fn ces(sigma: f64, items: impl Iterator<Item = (f64, f64)>) -> f64 {
    match NestForm::from_sigma(sigma) {
        NestForm::Leontief => items.map(|(t, v)| t * v).sum(),
        NestForm::CobbDouglas => items
            .filter(|(t, _)| *t > 0.0)
            .map(|(t, v)| t * v.ln())
            .sum::<f64>()
            .exp(),
        NestForm::Ces(sigma) => {
            let rho = 1.0 - sigma;
            items
                .filter(|(t, _)| *t > 0.0)
                .map(|(t, v)| t * v.powf(rho))
                .sum::<f64>()
                .powf(1.0 / rho)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_has_its_limits() {
        let items = [(0.25, 2.0), (0.75, 0.5)];
        let leontief = ces(0.0, items.iter().copied());
        assert!((leontief - (0.5 + 0.375)).abs() < 1e-15);
        let cd = ces(1.0, items.iter().copied());
        assert!((cd - 2f64.powf(0.25) * 0.5f64.powf(0.75)).abs() < 1e-15);
        // CES approaches both limits continuously.
        assert!((ces(1e-7, items.iter().copied()) - leontief).abs() < 1e-6);
        assert!((ces(1.0 + 1e-7, items.iter().copied()) - cd).abs() < 1e-6);
        assert_eq!(pw(0.0, 0.0), 1.0);
    }
}
