//! `flatten`: writes a model in the plain contract format, every extension resolved — `sam()`
//! cells and parameter expressions as numbers, indicators inlined into the targets that use them
//! — so that any implementation of the contract can solve it.

use std::fmt::Write as _;

use crate::expr::{Expr, MAX_DEPTH};
use crate::model::{Model, Normaliser, TargetCheck};

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A name as a TOML key: bare when it can be, quoted for an element name like `Y[agr]`.
fn key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        quote(name)
    }
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:?}")
    }
}

/// Replaces indicator references by their expressions.
fn inline(model: &Model, e: &Expr) -> Expr {
    match e {
        Expr::Indicator(i) => inline(model, &model.indicators[*i].expr),
        Expr::Neg(a) => Expr::Neg(Box::new(inline(model, a))),
        Expr::Bin(op, a, b) => {
            Expr::Bin(*op, Box::new(inline(model, a)), Box::new(inline(model, b)))
        }
        Expr::Math(f, args) => Expr::Math(*f, args.iter().map(|a| inline(model, a)).collect()),
        other => other.clone(),
    }
}

fn value(model: &Model, e: &Expr) -> String {
    match e {
        Expr::Num(v) => number(*v),
        other => quote(&model.names().print(&inline(model, other))),
    }
}

fn normaliser(model: &Model, n: Normaliser) -> String {
    match n {
        Normaliser::Commodity(c) => model.commodities[c].name.clone(),
        Normaliser::Consumer(h) => model.consumers[h].name.clone(),
    }
}

/// Why a model cannot be written in the plain format.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlattenError {
    /// Inlining the indicators a target uses would write an expression too large to read back
    /// (the plain format has no indicators).
    #[error("targets[{target}] ({name}): inlining its indicators would write an expression of {nodes:.0} nodes nested {depth} deep; the plain format has no indicators and holds at most {MAX_DEPTH} levels, so this model cannot be flattened")]
    TooLarge {
        target: usize,
        name: String,
        nodes: f64,
        depth: usize,
    },
    /// The written text does not load back: a defect of `flatten`, reported rather than
    /// written.
    #[error("the flattened model does not load back: {0}")]
    DoesNotLoad(crate::model::LoadError),
}

/// The largest inlined target expression `flatten` writes, in nodes.
const MAX_INLINED_NODES: f64 = 1e5;

/// The model as plain contract-format TOML; the text is checked to load back.
pub fn flatten(model: &Model) -> Result<String, FlattenError> {
    let mut measures: Vec<(usize, f64)> = Vec::with_capacity(model.indicators.len());
    for ind in &model.indicators {
        let m = ind.expr.measure(&|i| measures[i]);
        measures.push(m);
    }
    for (k, t) in model.targets.iter().enumerate() {
        let (depth, nodes) = t.expr.measure(&|i| measures[i]);
        // Printing parenthesises, and the parser counts each level: keep a margin.
        if nodes > MAX_INLINED_NODES || 2 * depth > MAX_DEPTH {
            return Err(FlattenError::TooLarge {
                target: k,
                name: t.name.clone(),
                nodes,
                depth,
            });
        }
    }
    let text = write(model);
    crate::model::load_str(&text, &model.path).map_err(FlattenError::DoesNotLoad)?;
    Ok(text)
}

/// Per parameter: whether it moves along a dynamic path or is derived from one that does.
fn following_dynamics(model: &Model) -> Vec<bool> {
    let mut follows = vec![false; model.parameters.len()];
    for p in crate::dynamic::moving_parameters(model) {
        follows[p] = true;
    }
    if let Some(d) = &model.dynamics {
        // A scenario's stock set at `from` is not a path, but an update carries it too.
        for u in &d.updates {
            follows[u.parameter] = true;
        }
    }
    for i in 0..follows.len() {
        if let Some(def) = &model.parameters[i].definition {
            let mut used = Vec::new();
            def.params(&mut used);
            follows[i] |= used.iter().any(|&j| follows[j]);
        }
    }
    follows
}

/// Paths as an inline table's entries: `NAME = [v0, v1, …]` or `NAME = "expression"`.
fn paths(model: &Model, paths: &[crate::model::ParamPath]) -> String {
    let entries: Vec<String> = paths
        .iter()
        .map(|p| {
            let v = match &p.values {
                crate::model::PathValues::List(list) => {
                    let items: Vec<String> = list.iter().map(|e| value(model, e)).collect();
                    format!("[{}]", items.join(", "))
                }
                crate::model::PathValues::Expr(e) => value(model, e),
            };
            format!("{} = {v}", key(&model.parameters[p.parameter].name))
        })
        .collect();
    entries.join(", ")
}

/// The `[dynamics]` section (an extension with no plain form, kept as written: its updates
/// with indicators inlined).
fn dynamics(model: &Model, s: &mut String) {
    let Some(d) = &model.dynamics else { return };
    let _ = writeln!(
        s,
        "\n[dynamics]\nperiods = {}\nstart_year = {}\nstep = {}\ndiscount_rate = {}",
        d.periods,
        number(d.start_year),
        number(d.step),
        number(d.discount_rate)
    );
    if !d.technology.is_empty() {
        let names: Vec<String> = d
            .technology
            .iter()
            .map(|&p| quote(&model.parameters[p].name))
            .collect();
        let _ = writeln!(s, "technology = [{}]", names.join(", "));
    }
    if !d.updates.is_empty() {
        let _ = writeln!(s, "\n[dynamics.update]");
        for u in &d.updates {
            let name = key(&model.parameters[u.parameter].name);
            let _ = writeln!(s, "{name} = {}", value(model, &u.expr));
        }
    }
    if !d.paths.is_empty() {
        let _ = writeln!(s, "\n[dynamics.paths]");
        for p in &d.paths {
            let _ = writeln!(s, "{}", paths(model, std::slice::from_ref(p)));
        }
    }
}

fn write(model: &Model) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Flattened by tokencge from {}: every extension resolved.",
        model.path.display()
    );
    let names: Vec<String> = model.commodities.iter().map(|c| quote(&c.name)).collect();
    let _ = writeln!(s, "commodities = [{}]", names.join(", "));
    let mut starts = Vec::new();
    for sec in &model.sectors {
        if sec.start != Expr::Num(1.0) {
            starts.push(format!("{} = {}", key(&sec.name), value(model, &sec.start)));
        }
    }
    for c in &model.commodities {
        if c.start != Expr::Num(1.0) {
            starts.push(format!("{} = {}", key(&c.name), value(model, &c.start)));
        }
    }
    if !starts.is_empty() {
        let _ = writeln!(s, "start = {{ {} }}", starts.join(", "));
    }
    let _ = writeln!(s, "\n[model]\nname = {}", quote(&model.name));
    if !model.description.is_empty() {
        let _ = writeln!(s, "description = {}", quote(&model.description));
    }
    if let Some(n) = model.numeraire {
        let _ = writeln!(s, "numeraire = {}", quote(&normaliser(model, n)));
    }
    if !model.parameters.is_empty() {
        let _ = writeln!(s, "\n[parameters]");
        // A parameter derived from one that moves along a dynamic path keeps its definition
        // (an extension), so that it follows in every period; the others are numbers.
        let follows = following_dynamics(model);
        for (p, follow) in model.parameters.iter().zip(follows) {
            let v = match (&p.definition, follow) {
                (Some(d), true) => value(model, d),
                _ => number(p.value),
            };
            let _ = writeln!(s, "{} = {v}", key(&p.name));
        }
    }
    dynamics(model, &mut s);
    for sec in &model.sectors {
        let _ = writeln!(s, "\n[sectors.{}]", key(&sec.name));
        if !sec.description.is_empty() {
            let _ = writeln!(s, "description = {}", quote(&sec.description));
        }
        let _ = writeln!(s, "elasticity = {}", value(model, &sec.nests[0].elasticity));
        let _ = writeln!(
            s,
            "transformation = {}",
            value(model, &sec.nests[1].elasticity)
        );
        if sec.nests.len() > 2 {
            let _ = writeln!(s, "nests = [");
            for n in &sec.nests[2..] {
                let parent = &sec.nests[n.parent.unwrap_or(0)].name;
                let _ = writeln!(
                    s,
                    "  {{ name = {}, parent = {}, elasticity = {} }},",
                    quote(&n.name),
                    quote(parent),
                    value(model, &n.elasticity)
                );
            }
            let _ = writeln!(s, "]");
        }
        for (label, output) in [("inputs", false), ("outputs", true)] {
            let list: Vec<String> = sec
                .netputs
                .iter()
                .enumerate()
                .filter(|(_, np)| np.output == output)
                .map(|(k, np)| {
                    let mut t = format!(
                        "{{ commodity = {}, quantity = {}, price = {}, nest = {}",
                        quote(&model.commodities[np.commodity].name),
                        value(model, &sec.expr(np.quantity)),
                        value(model, &sec.expr(np.price)),
                        quote(&sec.nests[np.nest()].name)
                    );
                    let taxes = sec.taxes_of(k);
                    if !taxes.is_empty() {
                        let taxes: Vec<String> = taxes
                            .iter()
                            .map(|tx| {
                                format!(
                                    "{{ agent = {}, rate = {} }}",
                                    quote(&model.consumers[tx.agent].name),
                                    value(model, &tx.rate)
                                )
                            })
                            .collect();
                        let _ = write!(t, ", taxes = [{}]", taxes.join(", "));
                    }
                    t.push_str(" }");
                    t
                })
                .collect();
            if !list.is_empty() {
                let _ = writeln!(s, "{label} = [\n  {},\n]", list.join(",\n  "));
            }
        }
    }
    for c in &model.consumers {
        let _ = writeln!(s, "\n[consumers.{}]", key(&c.name));
        if !c.description.is_empty() {
            let _ = writeln!(s, "description = {}", quote(&c.description));
        }
        let _ = writeln!(s, "elasticity = {}", value(model, &c.elasticity));
        let d: Vec<String> = c
            .demands
            .iter()
            .map(|d| {
                format!(
                    "{{ commodity = {}, quantity = {}, price = {}{} }}",
                    quote(&model.commodities[d.commodity].name),
                    value(model, &d.quantity),
                    value(model, &d.price),
                    // Stone–Geary has no plain-contract form: the extension is kept.
                    d.subsistence
                        .as_ref()
                        .map(|g| format!(", subsistence = {}", value(model, g)))
                        .unwrap_or_default()
                )
            })
            .collect();
        let _ = writeln!(s, "demands = [\n  {},\n]", d.join(",\n  "));
        if !c.endowments.is_empty() {
            let e: Vec<String> = c
                .endowments
                .iter()
                .map(|e| {
                    format!(
                        "{{ commodity = {}, quantity = {} }}",
                        quote(&model.commodities[e.commodity].name),
                        value(model, &e.quantity)
                    )
                })
                .collect();
            let _ = writeln!(s, "endowments = [\n  {},\n]", e.join(",\n  "));
        }
    }
    for a in &model.auxiliaries {
        let _ = writeln!(s, "\n[auxiliary.{}]", key(&a.name));
        if !a.description.is_empty() {
            let _ = writeln!(s, "description = {}", quote(&a.description));
        }
        let _ = writeln!(
            s,
            "start = {}\nlower = {}\nupper = {}\nconstraint = {}",
            value(model, &a.start),
            value(model, &a.lower),
            value(model, &a.upper),
            value(model, &a.constraint)
        );
    }
    for sc in &model.scenarios {
        let _ = writeln!(s, "\n[scenarios.{}]", sc.name);
        if !sc.description.is_empty() {
            let _ = writeln!(s, "description = {}", quote(&sc.description));
        }
        // The plain format has no derived parameters: a scenario sets every parameter its
        // overrides change, derived ones included (a vector that does not evaluate is written as
        // given and fails in the flattened model as in the original).
        let overrides: Vec<(usize, f64)> = match model.parameters_with(&sc.parameters) {
            Ok(values) => (0..values.len())
                .filter(|&i| {
                    values[i].to_bits() != model.parameters[i].value.to_bits()
                        || sc.parameters.iter().any(|&(p, _)| p == i)
                })
                .map(|i| (i, values[i]))
                .collect(),
            Err(_) => sc.parameters.clone(),
        };
        if !overrides.is_empty() {
            let p: Vec<String> = overrides
                .iter()
                .map(|&(i, v)| format!("{} = {}", key(&model.parameters[i].name), number(v)))
                .collect();
            let _ = writeln!(s, "parameters = {{ {} }}", p.join(", "));
        }
        if let Some(n) = sc.numeraire {
            let _ = writeln!(s, "numeraire = {}", quote(&normaliser(model, n)));
        }
        if let Some(d) = &model.dynamics {
            let i = model.scenario_index(&sc.name).unwrap_or(usize::MAX);
            let sd = d.scenario(i);
            if sd.from > 0 {
                let _ = writeln!(s, "from = {}", sd.from);
            }
            if !sd.paths.is_empty() {
                let _ = writeln!(s, "paths = {{ {} }}", paths(model, &sd.paths));
            }
        }
        if !sc.fix.is_empty() {
            let f: Vec<String> = sc
                .fix
                .iter()
                .map(|(v, e)| {
                    let name = crate::compile::Layout::entity_name(model, *v);
                    format!("{} = {}", key(name), value(model, e))
                })
                .collect();
            let _ = writeln!(s, "fix = {{ {} }}", f.join(", "));
        }
    }
    for t in &model.targets {
        let _ = writeln!(s, "\n[[targets]]\nname = {}", quote(&t.name));
        let scen = t
            .scenario
            .map(|i| model.scenarios[i].name.clone())
            .unwrap_or_else(|| "benchmark".into());
        let _ = writeln!(s, "scenario = {}", quote(&scen));
        if let Some(k) = t.period {
            let _ = writeln!(s, "period = {k}");
        }
        let _ = writeln!(
            s,
            "expr = {}",
            quote(&model.names().print(&inline(model, &t.expr)))
        );
        match &t.check {
            TargetCheck::Value {
                value: v,
                tolerance,
            } => {
                let _ = writeln!(
                    s,
                    "value = {}\ntolerance = {}",
                    value(model, v),
                    value(model, tolerance)
                );
            }
            TargetCheck::Range { min, max } => {
                if let Some(m) = min {
                    let _ = writeln!(s, "min = {}", value(model, m));
                }
                if let Some(m) = max {
                    let _ = writeln!(s, "max = {}", value(model, m));
                }
            }
        }
    }
    s
}
