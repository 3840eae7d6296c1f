//! `tokencge describe`: a model's structure for people.

use std::fmt::Write as _;

use crate::calibrate::Coefficients;
use crate::compile::Structure;

/// A description of a model for people: sizes, the commodities' incidence, every sector's nest
/// trees with quantities, prices and taxes, consumers, auxiliaries, scenarios and what is
/// pruned with the model's own parameters.
pub fn describe(structure: &Structure, coef: &Coefficients) -> String {
    let mut out = String::new();
    let s_ = &mut out;
    let m = structure.model();
    let names = m.names();
    let _ = writeln!(s_, "model {}: {}", m.name, m.description);
    let _ = writeln!(s_,
        "{} sectors, {} commodities, {} consumers, {} auxiliary, {} parameters, {} scenarios, {} targets; {} variables",
        m.sectors.len(),
        m.commodities.len(),
        m.consumers.len(),
        m.auxiliaries.len(),
        m.parameters.len(),
        m.scenarios.len(),
        m.targets.len(),
        structure.dim()
    );
    let _ = writeln!(
        s_,
        "numeraire: {}",
        super::normaliser_name(m, &m.numeraire)
            .unwrap_or_else(|| "(default: largest-income consumer)".into())
    );
    let _ = writeln!(
        s_,
        "\ncommodities (made by / used by / demanded by / endowed to):"
    );
    let inc = structure.incidence();
    let leaves = structure.leaves_by_commodity();
    for (c, com) in m.commodities.iter().enumerate() {
        // Names in incidence order, repeats dropped, "-" for none.
        let listed = |mut v: Vec<&str>| -> String {
            v.dedup();
            if v.is_empty() {
                "-".into()
            } else {
                v.join(" ")
            }
        };
        // Each leaf knows its side: linear in the leaves of the commodity.
        let side = |output: bool| {
            listed(
                leaves[c]
                    .iter()
                    .filter(|&&(s, l)| structure.sectors[s].leaves[l as usize].output == output)
                    .map(|&(s, _)| m.sectors[s].name.as_str())
                    .collect(),
            )
        };
        let who = |list: &[(crate::ids::ConsumerId, usize)]| {
            listed(
                list.iter()
                    .map(|&(h, _)| m.consumers[h].name.as_str())
                    .collect(),
            )
        };
        let _ = writeln!(
            s_,
            "  {:<10} {} / {} / {} / {}",
            com.name,
            side(true),
            side(false),
            who(&inc.demands[c]),
            who(&inc.endowments[c])
        );
    }
    for s in &m.sectors {
        let _ = writeln!(
            s_,
            "\nsector {}{}",
            s.name,
            if s.description.is_empty() {
                String::new()
            } else {
                format!(": {}", s.description)
            }
        );
        // Netputs and child nests of each nest, gathered once (a sector may have a nest per
        // element of a set).
        let mut netputs = vec![Vec::new(); s.nests.len()];
        for (k, np) in s.netputs.iter().enumerate() {
            netputs[np.nest()].push((k, np));
        }
        let mut children = vec![Vec::new(); s.nests.len()];
        for (j, n) in s.nests.iter().enumerate().skip(2) {
            if let Some(p) = n.parent {
                children[p].push(j);
            }
        }
        let tree = Tree {
            m,
            s,
            netputs,
            children,
        };
        tree.write(s_, 0, 0);
        tree.write(s_, 1, 0);
    }
    for c in &m.consumers {
        let _ = writeln!(
            s_,
            "\nconsumer {} (σ = {})",
            c.name,
            names.print(&c.elasticity)
        );
        for d in &c.demands {
            let _ = writeln!(
                s_,
                "    demand {} q = {}",
                m.commodities[d.commodity].name,
                names.print(&d.quantity)
            );
        }
        for e in &c.endowments {
            let _ = writeln!(
                s_,
                "    endowment {} q = {}",
                m.commodities[e.commodity].name,
                names.print(&e.quantity)
            );
        }
    }
    for a in &m.auxiliaries {
        let _ = writeln!(
            s_,
            "\nauxiliary {} in [{}, {}], start {}: {} = 0",
            a.name,
            names.print(&a.lower),
            names.print(&a.upper),
            names.print(&a.start),
            names.print(&a.constraint)
        );
    }
    if !m.scenarios.is_empty() {
        let _ = writeln!(s_, "\nscenarios:");
        for s in &m.scenarios {
            let _ = writeln!(s_, "  {:<28} {}", s.name, s.description);
        }
    }
    if let Some(d) = &m.dynamics {
        describe_dynamics(m, d, s_);
    }
    if !coef.pruned().is_empty() {
        let _ = writeln!(s_, "\npruned:");
        for p in coef.pruned() {
            let _ = writeln!(s_, "  {}", p.what);
        }
    }
    out
}

/// A sector's nests with their netputs and children, written as an indented tree.
struct Tree<'a> {
    m: &'a crate::model::Model,
    s: &'a crate::model::Sector,
    netputs: Vec<Vec<(usize, &'a crate::model::Netput)>>,
    children: Vec<Vec<usize>>,
}

impl Tree<'_> {
    fn write(&self, out: &mut String, nest: usize, depth: usize) {
        let (m, s) = (self.m, self.s);
        let n = &s.nests[nest];
        let label = if n.output { "η" } else { "σ" };
        let _ = writeln!(
            out,
            "{}{} ({label} = {})",
            "  ".repeat(depth + 1),
            n.name,
            m.names().print(&n.elasticity)
        );
        for &(k, np) in &self.netputs[nest] {
            let taxes: Vec<String> = s
                .taxes_of(k)
                .iter()
                .map(|t| {
                    format!(
                        "tax {} to {}",
                        m.names().print(&t.rate),
                        m.consumers[t.agent].name
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "{}{} {} q = {}{}{}",
                "  ".repeat(depth + 2),
                if np.output { "out" } else { "in " },
                m.commodities[np.commodity].name,
                m.names().print(&s.expr(np.quantity)),
                if np.price.number() == Some(1.0) {
                    String::new()
                } else {
                    format!(" p = {}", m.names().print(&s.expr(np.price)))
                },
                if taxes.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", taxes.join("; "))
                }
            );
        }
        for &j in &self.children[nest] {
            self.write(out, j, depth + 1);
        }
    }
}

/// The dynamic path: horizon, updates, paths and when each scenario starts.
fn describe_dynamics(m: &crate::model::Model, d: &crate::model::Dynamics, s: &mut String) {
    let names = m.names();
    let _ = writeln!(
        s,
        "\ndynamics: {} periods from {} every {} year(s), discounted at {} % a year",
        d.periods,
        crate::expr::fmt_num(d.start_year),
        crate::expr::fmt_num(d.step),
        crate::expr::fmt_num(100.0 * d.discount_rate)
    );
    for u in &d.updates {
        let name = &m.parameters[u.parameter].name;
        let _ = writeln!(s, "  update {name} = {}", names.print(&u.expr));
    }
    let path = |p: &crate::model::ParamPath| match &p.values {
        crate::model::PathValues::Expr(e) => names.print(e),
        crate::model::PathValues::List(v) => format!("{} values", v.len()),
    };
    for p in &d.paths {
        let _ = writeln!(s, "  path {} = {}", m.parameters[p.parameter].name, path(p));
    }
    if !d.technology.is_empty() {
        let names: Vec<&str> = d
            .technology
            .iter()
            .map(|&p| m.parameters[p].name.as_str())
            .collect();
        let _ = writeln!(
            s,
            "  technology (may move production and endowments): {}",
            names.join(", ")
        );
    }
    for (i, sc) in m.scenarios.iter().enumerate() {
        let sd = d.scenario(i);
        if sd.from > 0 || !sd.paths.is_empty() {
            let own: Vec<String> = sd
                .paths
                .iter()
                .map(|p| format!("{} = {}", m.parameters[p.parameter].name, path(p)))
                .collect();
            let _ = writeln!(
                s,
                "  scenario {} from period {}{}",
                sc.name,
                sd.from,
                if own.is_empty() {
                    String::new()
                } else {
                    format!(", paths {}", own.join(", "))
                }
            );
        }
    }
}

/// The model's structure for programs (`tokencge describe --format json`): what [`describe`]
/// prints, as one JSON object. Expressions are written as the model file would write them;
/// numbers are the values with the model's own parameters.
pub fn describe_json(structure: &Structure, coef: &Coefficients) -> serde_json::Value {
    use serde_json::{json, Value};
    let m = structure.model();
    let names = m.names();
    let print = |e: &crate::expr::Expr| names.print(e);
    let num = |x: f64| {
        serde_json::Number::from_f64(x)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    };
    let commodity = |c: usize| m.commodities[c].name.clone();
    let consumer = |h: usize| m.consumers[h].name.clone();
    let inc = structure.incidence();
    let leaves = structure.leaves_by_commodity();
    let commodities: Vec<Value> = m
        .commodities
        .iter()
        .enumerate()
        .map(|(c, com)| {
            let sectors = |output: bool| -> Vec<&str> {
                let mut v: Vec<&str> = leaves[c]
                    .iter()
                    .filter(|&&(s, _)| {
                        m.sectors[s]
                            .netputs
                            .iter()
                            .any(|np| np.commodity.index() == c && np.output == output)
                    })
                    .map(|&(s, _)| m.sectors[s].name.as_str())
                    .collect();
                v.dedup();
                v
            };
            let agents = |list: &[(crate::ids::ConsumerId, usize)]| -> Vec<&str> {
                let mut v: Vec<&str> = list
                    .iter()
                    .map(|&(h, _)| m.consumers[h].name.as_str())
                    .collect();
                v.dedup();
                v
            };
            json!({
                "name": com.name,
                "description": com.description,
                "made_by": sectors(true),
                "used_by": sectors(false),
                "demanded_by": agents(&inc.demands[c]),
                "endowed_to": agents(&inc.endowments[c]),
            })
        })
        .collect();
    let sectors: Vec<Value> = m
        .sectors
        .iter()
        .map(|s| {
            let nests: Vec<Value> = s
                .nests
                .iter()
                .map(|n| {
                    json!({
                        "name": n.name,
                        "parent": n.parent.map(|p| s.nests[p].name.clone()),
                        "side": if n.output { "output" } else { "input" },
                        "elasticity": print(&n.elasticity),
                    })
                })
                .collect();
            let netputs: Vec<Value> = s
                .netputs
                .iter()
                .enumerate()
                .map(|(k, np)| {
                    let taxes: Vec<Value> = s
                        .taxes_of(k)
                        .iter()
                        .map(|t| json!({ "agent": consumer(t.agent), "rate": print(&t.rate) }))
                        .collect();
                    json!({
                        "side": if np.output { "output" } else { "input" },
                        "commodity": commodity(np.commodity.index()),
                        "nest": s.nests[np.nest()].name,
                        "quantity": print(&s.expr(np.quantity)),
                        "price": print(&s.expr(np.price)),
                        "taxes": taxes,
                    })
                })
                .collect();
            json!({ "name": s.name, "description": s.description, "nests": nests, "netputs": netputs })
        })
        .collect();
    let consumers: Vec<Value> = m
        .consumers
        .iter()
        .map(|c| {
            let demands: Vec<Value> = c
                .demands
                .iter()
                .map(|d| {
                    json!({
                        "commodity": commodity(d.commodity),
                        "quantity": print(&d.quantity),
                        "price": print(&d.price),
                        "subsistence": d.subsistence.as_ref().map(print),
                    })
                })
                .collect();
            let endowments: Vec<Value> = c
                .endowments
                .iter()
                .map(|e| json!({ "commodity": commodity(e.commodity), "quantity": print(&e.quantity) }))
                .collect();
            json!({
                "name": c.name,
                "description": c.description,
                "role": c.role.name(),
                "elasticity": print(&c.elasticity),
                "demands": demands,
                "endowments": endowments,
            })
        })
        .collect();
    let auxiliaries: Vec<Value> = m
        .auxiliaries
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "description": a.description,
                "lower": print(&a.lower),
                "upper": print(&a.upper),
                "start": print(&a.start),
                "constraint": print(&a.constraint),
            })
        })
        .collect();
    let values = coef.params();
    let parameters: Vec<Value> = m
        .parameters
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "name": p.name,
                "description": p.description,
                "value": num(values.get(i).copied().unwrap_or(p.value)),
                "definition": p.definition.as_ref().map(print),
            })
        })
        .collect();
    let scenarios: Vec<Value> = m
        .scenarios
        .iter()
        .map(|s| {
            let set: serde_json::Map<String, Value> = s
                .parameters
                .iter()
                .map(|&(i, v)| (m.parameters[i].name.clone(), num(v)))
                .collect();
            json!({ "name": s.name, "description": s.description, "parameters": set })
        })
        .collect();
    let indicators: Vec<Value> = m
        .indicators
        .iter()
        .map(|d| json!({ "name": d.name, "description": d.description, "expr": print(&d.expr) }))
        .collect();
    let pruned: Vec<&str> = coef.pruned().iter().map(|p| p.what.as_str()).collect();
    json!({
        "model": m.name,
        "description": m.description,
        "unit": m.presentation.unit,
        "numeraire": super::normaliser_name(m, &m.numeraire),
        "variables": structure.dim(),
        "parameters": parameters,
        "commodities": commodities,
        "sectors": sectors,
        "consumers": consumers,
        "auxiliaries": auxiliaries,
        "scenarios": scenarios,
        "indicators": indicators,
        "targets": m.targets.len(),
        "dynamic": m.dynamics.as_ref().map(|d| json!({
            "periods": d.periods,
            "start_year": num(d.start_year),
            "step": num(d.step),
            "discount_rate": num(d.discount_rate),
        })),
        "pruned": pruned,
    })
}
