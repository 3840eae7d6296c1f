//! The scalable benchmark economy of the peer baselines (`../shared/peers/gen_cge.py`), ported
//! to Rust: the same SplitMix64 draws in the same order and the same left-to-right calibration
//! sums, so an instance `(N, H, seed)` is the peers' instance to rounding (in practice bit for
//! bit). [`Instance::to_toml`] renders it as a model file in the contract format
//! (`MODEL_FORMAT.md`), with scenarios `tax1` and `notax` as parameter overrides.
//!
//! `tokencge generate` writes it over sets with CSV tables ([`write_indexed`]); the benches and
//! tests render it plain ([`Instance::to_toml`]).
//!
//! The economy (README of the peers, section 2): sector j is Leontief over intermediates
//! `x0[i][j]` of every good and a value-added nest CES(L, K) with `sigma_va[j]`; it produces
//! `y0[j]` of good j under an ad-valorem output tax `tax_j` (the producer receives
//! `(1 - tax_j) P_j`), whose revenue household h receives in the share `tshare[h]`; household h
//! has CES demand (`sigma_c[h]`) over every good and endowments `lend[h]` of labour, `kend[h]` of
//! capital. Numeraire PL.
//!
//! Rendering, variable names and calibration:
//! - sectors `Y0..`, goods `P0..`, factors `PL`, `PK`, households (incomes) `RA0..`;
//! - parameters `tax_j` (benchmark rates `tax0`) and `tshare_h`;
//! - every reference price is 1, so value weights are benchmark quantities;
//! - the output of sector j carries one tax per household, `{ agent = RAh, rate = "tshare_h *
//!   tax_j" }`: the rates add up to `tax_j` (to rounding), so the producer price index is
//!   `P_j (1 - tax_j)`, and household h receives `tshare_h · tax_j · P_j · y0_j · Y_j`;
//! - the input root has σ = 0 (Leontief) and holds the intermediates and the nest `va`
//!   (σ = `sigma_va[j]`, holding L and K); the value-added weight is `l0 + k0` and the L share
//!   `l0 / (l0 + k0)`, exactly what the peers' GAMS and NumPy models use;
//! - households' benchmark income is `lend + kend + tshare · Σ tax0 y0` (= `m0` to rounding).

use std::fmt::Write as _;

/// SplitMix64 (Steele, Lea & Flood 2014), as `gen_cge.py` has it.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `a + (b - a) · u` with `u` the top 53 bits over 2^53.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * ((self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0))
    }
}

/// One generated instance (the fields of the peers' `cge-bench-v1` JSON).
#[derive(Debug, Clone)]
pub struct Instance {
    pub n: usize,
    pub h: usize,
    pub seed: u64,
    pub y0: Vec<f64>,
    /// `x0[i][j]`: input of good i into sector j.
    pub x0: Vec<Vec<f64>>,
    pub l0: Vec<f64>,
    pub k0: Vec<f64>,
    pub sigma_va: Vec<f64>,
    pub tax0: Vec<f64>,
    pub tax1: Vec<f64>,
    /// `c0[h][i]`: benchmark consumption of good i by household h.
    pub c0: Vec<Vec<f64>>,
    pub sigma_c: Vec<f64>,
    pub lend: Vec<f64>,
    pub kend: Vec<f64>,
    pub tshare: Vec<f64>,
    pub m0: Vec<f64>,
}

/// Generates instance `(n, h, seed)` exactly as `gen_cge.py generate(N, H, seed)`.
// The loops mirror gen_cge.py line by line (same summation order), indices and all.
#[allow(clippy::needless_range_loop)]
pub fn generate(n: usize, h: usize, seed: u64) -> Instance {
    assert!(n >= 1 && h >= 1, "need N >= 1 and H >= 1");
    let mut rng = SplitMix64::new(seed);
    // ---- draws, in this exact order
    let y0: Vec<f64> = (0..n).map(|_| rng.uniform(1.0, 1.5)).collect();
    let cs: Vec<f64> = (0..n).map(|_| rng.uniform(0.10, 0.30)).collect();
    let mut w = vec![vec![0.0; n]; n]; // w[i][j], j outer
    for j in 0..n {
        for row in w.iter_mut() {
            row[j] = rng.uniform(0.75, 1.25);
        }
    }
    let tax0: Vec<f64> = (0..n).map(|_| rng.uniform(0.05, 0.20)).collect();
    let thl: Vec<f64> = (0..n).map(|_| rng.uniform(0.40, 0.70)).collect();
    let mut sigma_va: Vec<f64> = (0..n).map(|_| rng.uniform(0.5, 2.0)).collect();
    for (j, s) in sigma_va.iter_mut().enumerate() {
        if j % 4 == 3 {
            *s = 1.0;
        }
    }
    let g: Vec<f64> = (0..h).map(|_| rng.uniform(0.5, 1.5)).collect();
    let u: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..h).map(|_| rng.uniform(0.5, 1.5)).collect())
        .collect(); // u[i][h], i outer
    let sigma_c: Vec<f64> = (0..h).map(|_| rng.uniform(0.7, 0.9)).collect();
    let v: Vec<f64> = (0..h).map(|_| rng.uniform(-1.0, 1.0)).collect();

    // ---- calibration (plain left-to-right sums)
    let mut x0 = vec![vec![0.0; n]; n];
    for j in 0..n {
        let mut wsum = 0.0;
        for row in &w {
            wsum += row[j];
        }
        for i in 0..n {
            x0[i][j] = cs[j] * y0[j] * w[i][j] / wsum;
        }
    }
    let mut va0 = vec![0.0; n];
    let mut l0 = vec![0.0; n];
    let mut k0 = vec![0.0; n];
    for j in 0..n {
        let mut colsum = 0.0;
        for row in &x0 {
            colsum += row[j];
        }
        va0[j] = y0[j] * (1.0 - tax0[j]) - colsum;
        l0[j] = thl[j] * va0[j];
        k0[j] = va0[j] - l0[j];
    }
    let mut fd = vec![0.0; n];
    for i in 0..n {
        let mut rowsum = 0.0;
        for j in 0..n {
            rowsum += x0[i][j];
        }
        fd[i] = y0[i] - rowsum;
        assert!(fd[i] > 0.0);
    }
    let mut c0 = vec![vec![0.0; n]; h];
    for i in 0..n {
        let mut s = 0.0;
        for k in 0..h {
            s += g[k] * u[i][k];
        }
        for k in 0..h {
            c0[k][i] = fd[i] * g[k] * u[i][k] / s;
        }
    }
    let mut m0 = vec![0.0; h];
    for k in 0..h {
        let mut s = 0.0;
        for i in 0..n {
            s += c0[k][i];
        }
        m0[k] = s;
    }
    let mut msum = 0.0;
    for &m in &m0 {
        msum += m;
    }
    let mut trev = 0.0;
    for j in 0..n {
        trev += tax0[j] * y0[j];
    }
    let tshare: Vec<f64> = m0.iter().map(|m| m / msum).collect();
    let fi: Vec<f64> = (0..h).map(|k| m0[k] - tshare[k] * trev).collect();
    let mut ltot = 0.0;
    let mut ktot = 0.0;
    for j in 0..n {
        ltot += l0[j];
        ktot += k0[j];
    }
    let lam = ltot / (ltot + ktot);
    let mut fisum = 0.0;
    let mut fiv = 0.0;
    for k in 0..h {
        fisum += fi[k];
        fiv += fi[k] * v[k];
    }
    let vbar = fiv / fisum;
    let kappa = 0.25 * lam.min(1.0 - lam);
    let lend: Vec<f64> = (0..h)
        .map(|k| fi[k] * (lam + kappa * (v[k] - vbar)))
        .collect();
    let kend: Vec<f64> = (0..h).map(|k| fi[k] - lend[k]).collect();
    assert!(lend
        .iter()
        .chain(&kend)
        .chain(&va0)
        .chain(&l0)
        .chain(&k0)
        .all(|&x| x > 0.0));
    let mut tax1 = tax0.clone();
    tax1[0] = 2.0 * tax0[0];
    Instance {
        n,
        h,
        seed,
        y0,
        x0,
        l0,
        k0,
        sigma_va,
        tax0,
        tax1,
        c0,
        sigma_c,
        lend,
        kend,
        tshare,
        m0,
    }
}

/// A number as TOML: shortest round-trip form, always with a decimal point or exponent.
pub fn num(v: f64) -> String {
    assert!(v.is_finite());
    format!("{v:?}")
}

impl Instance {
    /// The file name stem the peers use: `cge_N{N}_H{H}_s{seed}`.
    pub fn stem(&self) -> String {
        format!("cge_N{}_H{}_s{}", self.n, self.h, self.seed)
    }

    pub fn sector_name(j: usize) -> String {
        format!("Y{j}")
    }
    pub fn good_name(i: usize) -> String {
        format!("P{i}")
    }
    pub fn household_name(h: usize) -> String {
        format!("RA{h}")
    }

    /// Tax rates of a scenario: `tax1` or `notax`.
    pub fn scenario_tax(&self, scenario: &str) -> Vec<f64> {
        match scenario {
            "tax1" => self.tax1.clone(),
            "notax" => vec![0.0; self.n],
            other => panic!("unknown scenario {other}"),
        }
    }

    /// The model file (contract format). Scenarios `tax1` and `notax` override `tax_j`.
    pub fn to_toml(&self) -> String {
        let (n, h) = (self.n, self.h);
        let mut s = String::with_capacity(64 * n * (n + h + 8));
        let _ = writeln!(
            s,
            "# Peer benchmark economy {} (port of ../shared/peers/gen_cge.py, seed {}).",
            self.stem(),
            self.seed
        );
        let _ = writeln!(
            s,
            "# Leontief(intermediates, CES(L, K)) sectors with output taxes returned by share;"
        );
        let _ = writeln!(
            s,
            "# CES households. Generated by benches/common/peer_model.rs."
        );
        let goods: Vec<String> = (0..n)
            .map(|i| format!("\"{}\"", Self::good_name(i)))
            .collect();
        let _ = writeln!(s, "commodities = [{}, \"PL\", \"PK\"]\n", goods.join(", "));
        let _ = writeln!(s, "[model]");
        let _ = writeln!(s, "name = \"{}\"", self.stem());
        let _ = writeln!(
            s,
            "description = \"Peer benchmark CGE: N = {n} sectors, H = {h} households, seed {}\"",
            self.seed
        );
        let _ = writeln!(s, "numeraire = \"PL\"\n");
        let _ = writeln!(s, "[parameters]");
        for j in 0..n {
            let _ = writeln!(s, "tax_{j} = {}", num(self.tax0[j]));
        }
        for k in 0..h {
            let _ = writeln!(s, "tshare_{k} = {}", num(self.tshare[k]));
        }
        for j in 0..n {
            let _ = writeln!(s, "\n[sectors.{}]", Self::sector_name(j));
            let _ = writeln!(s, "elasticity = 0");
            let _ = writeln!(
                s,
                "nests = [{{ name = \"va\", parent = \"s\", elasticity = {} }}]",
                num(self.sigma_va[j])
            );
            let taxes: Vec<String> = (0..h)
                .map(|k| {
                    format!(
                        "{{ agent = \"{}\", rate = \"tshare_{k} * tax_{j}\" }}",
                        Self::household_name(k)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "outputs = [{{ commodity = \"{}\", quantity = {}, taxes = [{}] }}]",
                Self::good_name(j),
                num(self.y0[j]),
                taxes.join(", ")
            );
            let _ = writeln!(s, "inputs = [");
            for i in 0..n {
                let _ = writeln!(
                    s,
                    "  {{ commodity = \"{}\", quantity = {} }},",
                    Self::good_name(i),
                    num(self.x0[i][j])
                );
            }
            let _ = writeln!(
                s,
                "  {{ commodity = \"PL\", quantity = {}, nest = \"va\" }},",
                num(self.l0[j])
            );
            let _ = writeln!(
                s,
                "  {{ commodity = \"PK\", quantity = {}, nest = \"va\" }},",
                num(self.k0[j])
            );
            let _ = writeln!(s, "]");
        }
        for k in 0..h {
            let _ = writeln!(s, "\n[consumers.{}]", Self::household_name(k));
            let _ = writeln!(s, "elasticity = {}", num(self.sigma_c[k]));
            let _ = writeln!(s, "demands = [");
            for i in 0..n {
                let _ = writeln!(
                    s,
                    "  {{ commodity = \"{}\", quantity = {} }},",
                    Self::good_name(i),
                    num(self.c0[k][i])
                );
            }
            let _ = writeln!(s, "]");
            let _ = writeln!(
                s,
                "endowments = [{{ commodity = \"PL\", quantity = {} }}, {{ commodity = \"PK\", quantity = {} }}]",
                num(self.lend[k]),
                num(self.kend[k])
            );
        }
        let _ = writeln!(s, "\n[scenarios.tax1]");
        let _ = writeln!(s, "description = \"sector 0's output tax doubled\"");
        let changed: Vec<String> = (0..n)
            .filter(|&j| self.tax1[j] != self.tax0[j])
            .map(|j| format!("tax_{j} = {}", num(self.tax1[j])))
            .collect();
        let _ = writeln!(s, "parameters = {{ {} }}", changed.join(", "));
        let _ = writeln!(s, "\n[scenarios.notax]");
        let _ = writeln!(s, "description = \"all output taxes removed\"");
        let zeros: Vec<String> = (0..n).map(|j| format!("tax_{j} = 0.0")).collect();
        let _ = writeln!(s, "parameters = {{ {} }}", zeros.join(", "));
        s
    }
}

/// A matrix as CSV: `corner,col0,col1,...` then one row per label.
fn matrix_csv(
    corner: &str,
    rows: &[String],
    cols: &[String],
    at: impl Fn(usize, usize) -> f64,
) -> String {
    let mut out = String::with_capacity(20 * rows.len() * (cols.len() + 1));
    let _ = writeln!(out, "{corner},{}", cols.join(","));
    for (r, label) in rows.iter().enumerate() {
        out.push_str(label);
        for c in 0..cols.len() {
            out.push(',');
            out.push_str(&num(at(r, c)));
        }
        out.push('\n');
    }
    out
}

impl Instance {
    /// The instance as an indexed model over sets with CSV tables: `(path, contents)` pairs
    /// relative to the output directory, `model.toml` last. The model file's size does not
    /// depend on N or H (about 3 KB); the data grow as N² (`data/io.csv`) and H·N.
    pub fn indexed_files(&self) -> Vec<(String, String)> {
        let (n, h) = (self.n, self.h);
        let good = |i: usize| format!("s{i}");
        let hh = |k: usize| format!("h{k}");
        let mut sectors = String::from("j,y0,l0,k0,sigma_va,tax0,tax1\n");
        for j in 0..n {
            let _ = writeln!(
                sectors,
                "{},{},{},{},{},{},{}",
                good(j),
                num(self.y0[j]),
                num(self.l0[j]),
                num(self.k0[j]),
                num(self.sigma_va[j]),
                num(self.tax0[j]),
                num(self.tax1[j])
            );
        }
        let labels: Vec<String> = (0..n).map(good).collect();
        let io = matrix_csv("i", &labels, &labels, |i, j| self.x0[i][j]);
        let mut households = String::from("h,sigma_c,lend,kend,tshare\n");
        for k in 0..h {
            let _ = writeln!(
                households,
                "{},{},{},{},{}",
                hh(k),
                num(self.sigma_c[k]),
                num(self.lend[k]),
                num(self.kend[k]),
                num(self.tshare[k])
            );
        }
        let household_labels: Vec<String> = (0..h).map(hh).collect();
        let consumption = matrix_csv("h", &household_labels, &labels, |k, i| self.c0[k][i]);
        let changed: Vec<String> = (0..n)
            .filter(|&j| self.tax1[j] != self.tax0[j])
            .map(|j| format!("\"tax[{}]\" = {}", good(j), num(self.tax1[j])))
            .collect();
        let model = format!(
            r#"# Peer benchmark economy {stem} (port of the peers' gen_cge.py, seed {seed}), written by
# `tokencge generate` over sets with its data in CSV tables under data/.
# Sector j: Leontief over the intermediates x0[i,j] and a value-added nest CES(L, K) with
# sigma_va[j]; output y0[j] of good j under an output tax tax[j] whose revenue household h
# receives in the share tshare[h]. Household h: CES demand (sigma_c[h]) over every good,
# endowments lend[h] of labour and kend[h] of capital. Numeraire PL.

commodities = ["P[i]", "PL", "PK"]

[model]
name = "{stem}"
description = "Peer benchmark CGE: N = {n} sectors, H = {h} households, seed {seed}"
numeraire = "PL"

[sets]
i = {{ file = "data/sectors.csv", column = "j", description = "goods (one per sector)" }}
j = {{ alias = "i", description = "sectors" }}
h = {{ file = "data/households.csv", column = "h", description = "households" }}

[tables]
y0 = {{ index = ["j"], file = "data/sectors.csv", value = "y0" }}
l0 = {{ index = ["j"], file = "data/sectors.csv", value = "l0" }}
k0 = {{ index = ["j"], file = "data/sectors.csv", value = "k0" }}
sigma_va = {{ index = ["j"], file = "data/sectors.csv", value = "sigma_va" }}
tax = {{ index = ["j"], file = "data/sectors.csv", value = "tax0", parameters = true, description = "output tax rates (parameters tax[s0], ...)" }}
x0 = {{ index = ["i", "j"], file = "data/io.csv", form = "matrix", description = "intermediate input of good i into sector j" }}
sigma_c = {{ index = ["h"], file = "data/households.csv", value = "sigma_c" }}
lend = {{ index = ["h"], file = "data/households.csv", value = "lend" }}
kend = {{ index = ["h"], file = "data/households.csv", value = "kend" }}
tshare = {{ index = ["h"], file = "data/households.csv", value = "tshare" }}
c0 = {{ index = ["h", "i"], file = "data/consumption.csv", form = "matrix", description = "benchmark consumption of good i by household h" }}

[sectors."Y[j]"]
elasticity = 0
nests = [{{ name = "va", parent = "s", elasticity = "sigma_va[j]" }}]
outputs = [
  {{ commodity = "P[j]", quantity = "y0[j]", taxes = [{{ agent = "RA[h]", over = "h", rate = "tshare[h] * tax[j]" }}] }},
]
inputs = [
  {{ commodity = "P[i]", over = "i", quantity = "x0[i,j]" }},
  {{ commodity = "PL", quantity = "l0[j]", nest = "va" }},
  {{ commodity = "PK", quantity = "k0[j]", nest = "va" }},
]

[consumers."RA[h]"]
elasticity = "sigma_c[h]"
demands = [{{ commodity = "P[i]", over = "i", quantity = "c0[h,i]" }}]
endowments = [{{ commodity = "PL", quantity = "lend[h]" }}, {{ commodity = "PK", quantity = "kend[h]" }}]

[scenarios.tax1]
description = "sector 0's output tax doubled"
parameters = {{ {changed} }}

[scenarios.notax]
description = "all output taxes removed"
parameters = {{ "tax[j]" = 0.0 }}
"#,
            stem = self.stem(),
            seed = self.seed,
            changed = changed.join(", "),
        );
        vec![
            ("data/sectors.csv".into(), sectors),
            ("data/io.csv".into(), io),
            ("data/households.csv".into(), households),
            ("data/consumption.csv".into(), consumption),
            ("model.toml".into(), model),
        ]
    }
}
