//! Sensitivity draws: deterministic random streams, marginal quantile functions and the
//! Gaussian copula of correlation groups.
//!
//! Draw `d` of a sweep depends only on the seed, `d` and the parameters' positions in
//! `[sensitivity.parameters]` — never on which thread or shard solves it, nor on how many
//! draws come before it. Each (seed, draw, position) triple is hashed by SplitMix64's finaliser
//! into one uniform number in (0, 1) (a counter-based generator: no state is carried from one
//! draw to the next), which the parameter's quantile function maps to a value (inverse-CDF
//! sampling). Parameters of a correlation group first turn their uniforms into standard
//! normals E_i, mix them into equicorrelated normals Z_i = α E_i + β Ē (Ē the group's mean,
//! α = √(1 − ρ), β = √(1 + (n − 1) ρ) − α, so that Var Z_i = 1 and Corr(Z_i, Z_j) = ρ), and
//! use Φ(Z_i) as their uniform: a Gaussian copula whose rank correlation is fixed by ρ whatever
//! the marginals; at ρ = 1 every member follows one uniform (comonotone).

use statrs::function::erf::{erfc, erfc_inv};

use crate::model::sensitivity::{Distribution, Sensitivity};

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The uniform number in (0, 1) of parameter position `stream` in draw `draw`.
pub fn uniform(seed: u64, draw: u64, stream: u64) -> f64 {
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let h = mix(mix(mix(seed.wrapping_add(GOLDEN)) ^ draw.wrapping_mul(GOLDEN)) ^ stream);
    // 53 random bits, centred in their interval: never exactly 0 or 1.
    ((h >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal CDF Φ.
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile Φ⁻¹ (p in (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

/// The probability a normal or lognormal distribution gives its truncation range (1 for the
/// others): a range with none cannot be sampled.
pub fn truncated_mass(d: &Distribution) -> f64 {
    match normal_range(d) {
        Some((lo, hi, _, _)) => hi - lo,
        None => 1.0,
    }
}

/// For a normal or lognormal distribution: Φ at the standardised truncation bounds, and the
/// location and scale of the normal (of `ln x` for the lognormal).
fn normal_range(d: &Distribution) -> Option<(f64, f64, f64, f64)> {
    let (mu, s, lo, hi) = match *d {
        Distribution::Normal { mean, sd, min, max } => (mean, sd, min, max),
        Distribution::LogNormal {
            median,
            log_sd,
            min,
            max,
        } => {
            let ln = |x: f64| if x <= 0.0 { f64::NEG_INFINITY } else { x.ln() };
            (median.ln(), log_sd, ln(min), ln(max))
        }
        _ => return None,
    };
    Some((normal_cdf((lo - mu) / s), normal_cdf((hi - mu) / s), mu, s))
}

/// The value of a distribution at cumulative probability `u` in (0, 1) (inverse CDF).
pub fn quantile(d: &Distribution, u: f64) -> f64 {
    match d {
        Distribution::Uniform { min, max } => min + u * (max - min),
        Distribution::Triangular { min, mode, max } => {
            let width = max - min;
            if u * width < mode - min {
                min + (u * width * (mode - min)).sqrt()
            } else {
                max - ((1.0 - u) * width * (max - mode)).sqrt()
            }
        }
        Distribution::Normal { min, max, .. } | Distribution::LogNormal { min, max, .. } => {
            let Some((lo, hi, mu, s)) = normal_range(d) else {
                return f64::NAN;
            };
            let p = (lo + u * (hi - lo)).clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0);
            let z = mu + s * normal_quantile(p);
            let x = if matches!(d, Distribution::LogNormal { .. }) {
                z.exp()
            } else {
                z
            };
            x.clamp(*min, *max)
        }
        Distribution::Grid { values, weights } => {
            let mut cumulative = 0.0;
            for (v, w) in values.iter().zip(weights) {
                cumulative += w;
                if u < cumulative {
                    return *v;
                }
            }
            *values.last().unwrap_or(&f64::NAN)
        }
    }
}

/// The value of every varied parameter (in `varied` order) in draw `draw`.
pub fn draw(spec: &Sensitivity, seed: u64, draw: u64) -> Vec<f64> {
    let mut u: Vec<f64> = (0..spec.varied.len())
        .map(|k| uniform(seed, draw, k as u64))
        .collect();
    for g in &spec.groups {
        let n = g.members.len() as f64;
        let e: Vec<f64> = g.members.iter().map(|&k| normal_quantile(u[k])).collect();
        let mean = e.iter().sum::<f64>() / n;
        let alpha = (1.0 - g.correlation).max(0.0).sqrt();
        let beta = (1.0 + (n - 1.0) * g.correlation).max(0.0).sqrt() - alpha;
        for (&k, e) in g.members.iter().zip(&e) {
            u[k] = normal_cdf(alpha * e + beta * mean)
                .clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON / 2.0);
        }
    }
    spec.varied
        .iter()
        .zip(&u)
        .map(|(v, &u)| quantile(&v.distribution, u))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sensitivity::{Group, Varied};

    fn spec(varied: Vec<Distribution>, groups: Vec<Group>) -> Sensitivity {
        Sensitivity {
            description: String::new(),
            draws: 0,
            seed: 0,
            varied: varied
                .into_iter()
                .enumerate()
                .map(|(parameter, distribution)| Varied {
                    parameter,
                    distribution,
                    line: 0,
                })
                .collect(),
            groups,
            report: Vec::new(),
        }
    }

    #[test]
    fn normal_cdf_and_quantile_invert_each_other_at_known_points() {
        // statrs' erfc is good to about 1e-11: ample for sampling, where only determinism
        // and the distribution's shape matter.
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-11);
        assert!((normal_quantile(0.95) - 1.644_853_626_951_472_2).abs() < 1e-12);
        for p in [1e-10, 0.01, 0.3, 0.5, 0.77, 0.999] {
            assert!(
                (normal_cdf(normal_quantile(p)) - p).abs() < 1e-10 * p.max(1e-3),
                "{p}"
            );
        }
    }

    #[test]
    fn quantiles_of_each_distribution_are_the_closed_forms() {
        let u = Distribution::Uniform { min: 2.0, max: 4.0 };
        assert_eq!(quantile(&u, 0.25), 2.5);
        // Triangular on [0, 2] with mode 1: F(x) = x²/2 below the mode.
        let t = Distribution::Triangular {
            min: 0.0,
            mode: 1.0,
            max: 2.0,
        };
        assert!((quantile(&t, 0.125) - 0.5).abs() < 1e-15);
        assert!((quantile(&t, 0.5) - 1.0).abs() < 1e-15);
        assert!((quantile(&t, 0.875) - 1.5).abs() < 1e-15);
        // Normal truncated to [mean, inf): the median is mean + sd Φ⁻¹(0.75).
        let n = Distribution::Normal {
            mean: 1.0,
            sd: 2.0,
            min: 1.0,
            max: f64::INFINITY,
        };
        assert!((quantile(&n, 0.5) - (1.0 + 2.0 * 0.674_489_750_196_081_7)).abs() < 1e-12);
        assert!((truncated_mass(&n) - 0.5).abs() < 1e-15);
        // Lognormal: median at u = 0.5, and ln x normal.
        let l = Distribution::LogNormal {
            median: 1.5,
            log_sd: 0.4,
            min: 0.0,
            max: f64::INFINITY,
        };
        assert!((quantile(&l, 0.5) - 1.5).abs() < 1e-14);
        assert!(
            (quantile(&l, 0.95) - 1.5 * (0.4f64 * 1.644_853_626_951_472_2).exp()).abs() < 1e-11
        );
        let g = Distribution::Grid {
            values: vec![1.0, 2.0, 3.0],
            weights: vec![0.2, 0.5, 0.3],
        };
        assert_eq!(quantile(&g, 0.1), 1.0);
        assert_eq!(quantile(&g, 0.2), 2.0);
        assert_eq!(quantile(&g, 0.69), 2.0);
        assert_eq!(quantile(&g, 0.71), 3.0);
    }

    #[test]
    fn uniform_streams_are_uniform_and_independent_of_order() {
        let n = 200_000;
        let mean = (0..n).map(|d| uniform(7, d, 0)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 3.0 * (1.0f64 / 12.0 / n as f64).sqrt() * 2.0);
        // A draw is the same computed alone or in any order.
        assert_eq!(uniform(7, 12_345, 3), uniform(7, 12_345, 3));
        assert_ne!(uniform(7, 12_345, 3), uniform(8, 12_345, 3));
        assert_ne!(uniform(7, 12_345, 3), uniform(7, 12_345, 4));
    }

    #[test]
    fn a_group_has_the_correlation_it_asks_for_and_one_is_comonotone() {
        let marg = || Distribution::Uniform { min: 0.0, max: 1.0 };
        let corr = |rho: f64| {
            let s = spec(
                vec![marg(), marg(), marg()],
                vec![Group {
                    members: vec![0, 1, 2],
                    correlation: rho,
                }],
            );
            let n = 40_000;
            let xs: Vec<Vec<f64>> = (0..n).map(|d| draw(&s, 3, d)).collect();
            // Pearson correlation of Φ(Z) pairs: (6/π) asin(ρ/2) for a Gaussian copula.
            let m = |k: usize| xs.iter().map(|x| x[k]).sum::<f64>() / n as f64;
            let (m0, m1) = (m(0), m(1));
            let cov = xs.iter().map(|x| (x[0] - m0) * (x[1] - m1)).sum::<f64>() / n as f64;
            let var =
                |k: usize, mk: f64| xs.iter().map(|x| (x[k] - mk).powi(2)).sum::<f64>() / n as f64;
            (cov / (var(0, m0) * var(1, m1)).sqrt(), xs)
        };
        for rho in [-0.4, 0.0, 0.6] {
            let (r, _) = corr(rho);
            let expected = 6.0 / std::f64::consts::PI * (rho / 2.0).asin();
            assert!((r - expected).abs() < 0.02, "rho {rho}: {r} vs {expected}");
        }
        let (_, xs) = corr(1.0);
        for x in xs.iter().take(100) {
            assert!((x[0] - x[1]).abs() < 1e-12 && (x[1] - x[2]).abs() < 1e-12);
        }
    }
}
