//! Robustness harness: random shocks to every reference model and the flagship, each solved
//! and each converged answer verified independently.
//!
//! ```text
//! cargo run --release --example robustness -- [SHOCKS] [MODEL...]
//! ```
//!
//! A shock applies one to three of: an ad-valorem tax of 0–100 % on a random netput (replacing
//! its rate, or added with a random consumer as agent), a random elasticity (nest or final
//! demand) scaled by a log-uniform factor in [0.1, 10], a random endowment scaled by a
//! log-uniform factor in [0.5, 2]. Each shocked value is a new parameter, at its benchmark value
//! in the model and at the shocked value in a scenario, as a modeller writes a shock; the
//! scenario is solved as `tokencge solve --scenario` would (direct solve, then continuation in
//! the shocked parameters). Outcomes: `solved` (verified converged), `failed` with the
//! solver's status, `rejected` when the shocked model does not calibrate (a status with a
//! reason), and `wrong` when a reported convergence fails the independent check: the point
//! with every price and income doubled must also be verified (homogeneity of degree zero), and
//! every level must be finite. The target is zero `wrong`.
//!
//! `ROBUSTNESS_VERBOSE=1` prints every failed shock; `ROBUSTNESS_LAMBDA` (the penalised
//! Fischer–Burmeister weight) and `ROBUSTNESS_MEMORY` (the non-monotone line search's memory)
//! override the solver's defaults, to measure their effect; `ROBUSTNESS_UNSCALED=1` turns the
//! merit function's row scaling off; `ROBUSTNESS_DUMP=DIR` writes each failed shock's model
//! (flattened) into DIR, to re-run it with `tokencge solve --scenario shock`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tokencge::expr::{BinOp, Expr};
use tokencge::ids::VarKind;
use tokencge::model::{Model, Parameter, Scenario, Site, Tax};
use tokencge::solve::NewtonSettings;

/// SplitMix64: a seeded, portable generator (the same draws on every machine).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.uniform() * (hi.ln() - lo.ln())).exp()
    }
}

/// A new parameter with benchmark value `base` that the shock scenario sets to `value`.
fn shock_parameter(
    model: &mut Model,
    overrides: &mut Vec<(usize, f64)>,
    base: f64,
    value: f64,
) -> Expr {
    let k = model.parameters.len();
    model.parameters.push(Parameter {
        name: format!("shock_{k}"),
        value: base,
        definition: None,
        description: String::new(),
    });
    overrides.push((k, value));
    Expr::Param(k)
}

fn times(e: &Expr, p: Expr) -> Expr {
    Expr::Bin(BinOp::Mul, Box::new(e.clone()), Box::new(p))
}

/// Applies one to three random shocks as a scenario `shock` (the shocked values are parameters
/// of the model, benchmark values unchanged, as a modeller writes a shock); returns its index
/// and a description.
fn shock(model: &mut Model, rng: &mut Rng) -> (usize, String) {
    let mut what = Vec::new();
    let mut overrides = Vec::new();
    for _ in 0..1 + rng.below(3) {
        match rng.below(3) {
            0 if !model.sectors.is_empty() => {
                let s = rng.below(model.sectors.len());
                if model.sectors[s].netputs.is_empty() {
                    continue;
                }
                let k = rng.below(model.sectors[s].netputs.len());
                let rate = rng.uniform();
                let taxes = model.sectors[s].tax_range(k);
                let (first, n_taxes) = (taxes.start, taxes.len());
                if n_taxes == 0 {
                    let agent = rng.below(model.consumers.len());
                    let p = shock_parameter(model, &mut overrides, 0.0, rate);
                    model.sectors[s].add_tax(
                        k,
                        Tax {
                            site: Site::default(),
                            agent,
                            rate: p,
                        },
                    );
                } else {
                    // The benchmark rate where it is a number or parameter; the shock replaces it.
                    let j = first + rng.below(n_taxes);
                    let params = model.param_values();
                    let base =
                        tokencge::calibrate::eval_param(&model.sectors[s].taxes[j].rate, &params)
                            .unwrap_or(0.0);
                    let p = shock_parameter(model, &mut overrides, base, rate);
                    let old = std::mem::replace(&mut model.sectors[s].taxes[j].rate, p.clone());
                    if !old.is_parameter_only() {
                        // An endogenous rate: shock it additively instead.
                        model.sectors[s].taxes[j].rate =
                            Expr::Bin(BinOp::Add, Box::new(old), Box::new(p));
                        overrides.last_mut().unwrap().1 = rate;
                        model.parameters.last_mut().unwrap().value = 0.0;
                    }
                }
                what.push(format!(
                    "tax {:.0}% on {}[{k}]",
                    100.0 * rate,
                    model.sectors[s].name
                ));
            }
            1 => {
                let f = rng.log_uniform(0.1, 10.0);
                if rng.below(2) == 0 && !model.sectors.is_empty() {
                    let s = rng.below(model.sectors.len());
                    let n = rng.below(model.sectors[s].nests.len());
                    let p = shock_parameter(model, &mut overrides, 1.0, f);
                    let nest = &mut model.sectors[s].nests[n];
                    nest.elasticity = times(&nest.elasticity, p);
                    what.push(format!(
                        "σ of {}.{} ×{f:.2}",
                        model.sectors[s].name, model.sectors[s].nests[n].name
                    ));
                } else {
                    let h = rng.below(model.consumers.len());
                    let p = shock_parameter(model, &mut overrides, 1.0, f);
                    let c = &mut model.consumers[h];
                    c.elasticity = times(&c.elasticity, p);
                    what.push(format!("σ of {} ×{f:.2}", c.name));
                }
            }
            _ => {
                let h = rng.below(model.consumers.len());
                if model.consumers[h].endowments.is_empty() {
                    continue;
                }
                let k = rng.below(model.consumers[h].endowments.len());
                let f = rng.log_uniform(0.5, 2.0);
                let p = shock_parameter(model, &mut overrides, 1.0, f);
                let c = &mut model.consumers[h];
                c.endowments[k].quantity = times(&c.endowments[k].quantity, p);
                what.push(format!("endowment {}[{k}] ×{f:.2}", c.name));
            }
        }
    }
    model.scenarios.push(Scenario {
        name: "shock".into(),
        description: what.join(", "),
        parameters: overrides,
        numeraire: None,
        fix: Vec::new(),
    });
    (model.scenarios.len() - 1, what.join(", "))
}

#[derive(Default)]
struct Tally {
    solved: usize,
    failed: BTreeMap<String, usize>,
    rejected: usize,
    wrong: Vec<String>,
    iterations: u64,
}

enum Outcome {
    Solved(u64),
    Failed(String),
    Rejected,
    Wrong(String),
}

fn run_one(base: &Model, seed: u64, settings: &NewtonSettings) -> Outcome {
    let mut rng = Rng(seed);
    let mut model = base.clone();
    let (index, what) = shock(&mut model, &mut rng);
    let dump = model.clone();
    let Ok((structure, _)) = tokencge::build_model(model) else {
        return Outcome::Rejected;
    };
    let mut ws = tokencge::scenario::Workspace::new(&structure);
    let solved = match tokencge::batch::solve_one(&structure, Some(index), settings, &mut ws) {
        Ok(s) => s,
        Err(_) => return Outcome::Rejected,
    };
    let sol = &solved.solution;
    if !sol.converged() {
        if std::env::var_os("ROBUSTNESS_VERBOSE").is_some() {
            eprintln!(
                "FAILED {}: {what}: {} (residual {:.2e}, {} iterations, {} continuation steps){}",
                base.name,
                sol.status.label(),
                sol.residual,
                sol.info.iterations,
                sol.continuation_steps,
                match &sol.path {
                    Some(p) => format!(
                        "; path to {:.1} % of the shock: {}",
                        100.0 * p.reached,
                        tokencge::scenario::describe_ratios(&structure, &p.moved)
                    ),
                    None => "; no path".into(),
                }
            );
            if let Some(dir) = std::env::var_os("ROBUSTNESS_DUMP") {
                // The shocked model as a file, to re-run a failure with `tokencge solve`.
                if let Ok(text) = tokencge::flatten::flatten(&dump) {
                    let path = Path::new(&dir).join(format!("{}_{seed:x}.toml", base.name));
                    let _ = std::fs::write(path, text);
                }
            }
        }
        return Outcome::Failed(sol.status.label().to_string());
    }
    // Independent check: finite levels, and the point with prices and incomes doubled is an
    // equilibrium too.
    if sol.x.iter().any(|v| !v.is_finite()) {
        return Outcome::Wrong(format!("{what}: non-finite level"));
    }
    let layout = structure.layout();
    let mut doubled = sol.x.clone();
    for v in layout.vars() {
        if matches!(layout.kind(v), VarKind::Commodity | VarKind::Consumer) {
            doubled[v.index()] *= 2.0;
        }
    }
    match tokencge::scenario::assess(&structure, &solved.coefficients, &sol.scenario, &doubled) {
        Ok(a) if a.verified(settings.tolerance * 10.0) => Outcome::Solved(sol.info.iterations),
        Ok(a) => Outcome::Wrong(format!(
            "{what}: doubled prices give residual {:.2e}, Walras {:?}",
            a.residual, a.walras_residual
        )),
        Err(e) => Outcome::Wrong(format!("{what}: doubled prices do not evaluate: {e}")),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let shocks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mut paths: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if paths.is_empty() {
        let mut refs: Vec<PathBuf> = std::fs::read_dir("models/reference")
            .expect("run from the project root")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        refs.sort();
        paths.extend(refs);
        paths.push(Path::new("models/token_economy.toml").to_path_buf());
    }
    let mut settings = NewtonSettings::default();
    if let Some(l) = std::env::var("ROBUSTNESS_LAMBDA")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings = settings.with_penalty_lambda(l).unwrap();
    }
    if let Some(m) = std::env::var("ROBUSTNESS_MEMORY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        settings.memory = m;
    }
    if std::env::var_os("ROBUSTNESS_UNSCALED").is_some() {
        settings.scaling = false;
    }
    println!("| model | shocks | solved | failed (status) | rejected at setup | wrong answers | mean iterations |");
    println!("|---|---:|---:|---|---:|---:|---:|");
    let mut total_wrong = 0;
    for path in &paths {
        let base = tokencge::model::load(path).unwrap_or_else(|e| panic!("{e}"));
        let outcomes: Vec<Outcome> = (0..shocks as u64)
            .into_par_iter()
            .map(|k| run_one(&base, 0x5EED_0000 + k, &settings))
            .collect();
        let mut t = Tally::default();
        for o in outcomes {
            match o {
                Outcome::Solved(it) => {
                    t.solved += 1;
                    t.iterations += it;
                }
                Outcome::Failed(s) => *t.failed.entry(s).or_default() += 1,
                Outcome::Rejected => t.rejected += 1,
                Outcome::Wrong(w) => t.wrong.push(w),
            }
        }
        let failed: Vec<String> = t.failed.iter().map(|(s, n)| format!("{n} {s}")).collect();
        println!(
            "| {} | {shocks} | {} ({:.1} %) | {} | {} | {} | {:.1} |",
            path.file_stem().unwrap().to_string_lossy(),
            t.solved,
            100.0 * t.solved as f64 / shocks as f64,
            if failed.is_empty() {
                "0".into()
            } else {
                failed.join(", ")
            },
            t.rejected,
            t.wrong.len(),
            t.iterations as f64 / t.solved.max(1) as f64
        );
        for w in &t.wrong {
            eprintln!("WRONG {}: {w}", path.display());
        }
        total_wrong += t.wrong.len();
    }
    if total_wrong > 0 {
        std::process::exit(1);
    }
}
