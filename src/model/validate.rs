//! `ModelFile` → `Model`: resolves names to ids, checks what may stand where, and collects every
//! diagnostic with its line.

use std::collections::HashMap;
use std::path::Path;

use indexmap::IndexMap;

use super::file::{ModelFile, RawTable, RawValue};
use super::*;
use crate::calibrate::ParamOnly;
use crate::expr::functions::{self, ArgKind, Builtin, Scope};
use crate::expr::{self, Expr, Func, Syntax};
use crate::sam::Sam;

/// Reads and validates a model file.
pub fn load(path: &Path) -> Result<Model, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.display().to_string(),
        diagnostics: vec![Diagnostic {
            line: 0,
            column: 0,
            field: "file".into(),
            message: format!("cannot read: {e}"),
        }],
    })?;
    load_str(&text, path)
}

/// Validates model text; `path` names it in messages and anchors relative data paths.
pub fn load_str(text: &str, path: &Path) -> Result<Model, LoadError> {
    let file_name = path.display().to_string();
    let lines = LineIndex::new(text);
    let raw: ModelFile = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let (line, column) = e.span().map(|s| lines.position(s.start)).unwrap_or((0, 0));
            let message = e.message().trim().to_string();
            return Err(LoadError {
                file: file_name,
                diagnostics: vec![Diagnostic {
                    line,
                    column,
                    field: String::new(),
                    message,
                }],
            });
        }
    };
    let mut b = Builder {
        lines,
        diags: Vec::new(),
        symbols: IndexMap::new(),
        sam: None,
        params: Vec::new(),
        nest_names: Vec::new(),
        counts: (0, 0, 0),
    };
    let model = b.build(raw, path);
    if b.diags.is_empty() {
        Ok(model)
    } else {
        b.diags.sort_by_key(|d| (d.line, d.column));
        Err(LoadError {
            file: file_name,
            diagnostics: b.diags,
        })
    }
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }
    /// 1-based line and column of a byte offset.
    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset);
        (line, offset - self.starts[line - 1] + 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sym {
    Param(usize),
    Commodity(usize),
    Sector(usize),
    Consumer(usize),
    Aux(usize),
    Indicator(usize),
}

impl Sym {
    fn kind(&self) -> &'static str {
        match self {
            Sym::Param(_) => "parameter",
            Sym::Commodity(_) => "commodity",
            Sym::Sector(_) => "sector",
            Sym::Consumer(_) => "consumer",
            Sym::Aux(_) => "auxiliary variable",
            Sym::Indicator(_) => "indicator",
        }
    }
}

/// What may stand in an expression field, from the narrowest to the widest.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Allow {
    /// Quantities, reference prices, elasticities, start levels, bounds, fix and target values.
    Parameters,
    /// Tax rates and endowment quantities.
    Variables,
    /// Auxiliary constraints.
    Functions,
    /// Targets and indicators: also earlier indicators.
    Indicators,
}

struct Builder {
    lines: LineIndex,
    diags: Vec<Diagnostic>,
    symbols: IndexMap<String, Sym>,
    sam: Option<Sam>,
    params: Vec<f64>,
    /// Per sector: nest name → index.
    nest_names: Vec<HashMap<String, usize>>,
    /// Numbers of sectors, commodities and consumers (the layout offsets).
    counts: (usize, usize, usize),
}

fn is_description(key: &str) -> bool {
    key == "description"
}

impl Builder {
    fn diag_at(&mut self, offset: usize, field: &str, message: String) {
        let (line, column) = self.lines.position(offset);
        self.diags.push(Diagnostic {
            line,
            column,
            field: field.to_string(),
            message,
        });
    }

    fn declare(&mut self, name: &str, sym: Sym, offset: usize, field: &str) {
        if !valid_name(name) {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is not a valid name ([A-Za-z_][A-Za-z0-9_]*)"),
            );
        }
        if functions::lookup(name).is_some() {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is the name of a function; function names are reserved"),
            );
        }
        if let Some(prev) = self.symbols.get(name) {
            let msg = format!(
                "duplicate name '{name}': already declared as a {}; names are unique across parameters, commodities, sectors, consumers and auxiliaries",
                prev.kind()
            );
            self.diag_at(offset, field, msg);
        } else {
            self.symbols.insert(name.to_string(), sym);
        }
    }

    /// Resolves a number or expression string.
    fn value(&mut self, raw: &RawValue, allow: Allow, field: &str) -> Option<Expr> {
        let offset = raw.span().start;
        match raw.get_ref() {
            toml::Value::Integer(i) => Some(Expr::Num(*i as f64)),
            toml::Value::Float(f) => Some(Expr::Num(*f)),
            toml::Value::String(s) => {
                let base = offset + 1;
                match expr::parse(s) {
                    Ok(syn) => self.resolve(&syn, allow, field, base),
                    Err(e) => {
                        self.diag_at(
                            base + e.offset,
                            field,
                            format!("bad expression \"{s}\": {}", e.kind),
                        );
                        None
                    }
                }
            }
            other => {
                self.diag_at(
                    offset,
                    field,
                    format!(
                        "expected a number or an expression string, found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn resolve(&mut self, syn: &Syntax, allow: Allow, field: &str, base: usize) -> Option<Expr> {
        match syn {
            Syntax::Num(v) => Some(Expr::Num(*v)),
            Syntax::Neg(a) => Some(Expr::Neg(Box::new(self.resolve(a, allow, field, base)?))),
            Syntax::Bin(op, a, b) => {
                let a = self.resolve(a, allow, field, base);
                let b = self.resolve(b, allow, field, base);
                Some(Expr::Bin(*op, Box::new(a?), Box::new(b?)))
            }
            Syntax::Name { name, span } => {
                let Some(sym) = self.symbols.get(name).copied() else {
                    self.diag_at(base + span.0, field, format!("unknown name '{name}'"));
                    return None;
                };
                match sym {
                    Sym::Param(i) => Some(Expr::Param(i)),
                    Sym::Indicator(i) => {
                        if allow >= Allow::Indicators {
                            Some(Expr::Indicator(i))
                        } else {
                            self.diag_at(base + span.0, field, format!("indicator '{name}' may stand only in targets and later indicators"));
                            None
                        }
                    }
                    _ if allow == Allow::Parameters => {
                        self.diag_at(
                            base + span.0,
                            field,
                            format!(
                                "'{name}' is a {}: only parameters may stand here",
                                sym.kind()
                            ),
                        );
                        None
                    }
                    Sym::Sector(i) => Some(Expr::Var(i)),
                    Sym::Commodity(i) => Some(Expr::Var(self.n_sectors() + i)),
                    Sym::Consumer(i) => {
                        Some(Expr::Var(self.n_sectors() + self.n_commodities() + i))
                    }
                    Sym::Aux(i) => Some(Expr::Var(
                        self.n_sectors() + self.n_commodities() + self.n_consumers() + i,
                    )),
                }
            }
            Syntax::Call { name, args, span } => self.call(name, args, *span, allow, field, base),
        }
    }

    fn n_sectors(&self) -> usize {
        self.counts.0
    }
    fn n_commodities(&self) -> usize {
        self.counts.1
    }
    fn n_consumers(&self) -> usize {
        self.counts.2
    }

    /// Resolves a call through the table of functions (`expr::functions`).
    fn call(
        &mut self,
        name: &str,
        args: &[Syntax],
        span: (usize, usize),
        allow: Allow,
        field: &str,
        base: usize,
    ) -> Option<Expr> {
        let at = base + span.0;
        let Some(fun) = functions::lookup(name) else {
            let known: Vec<&str> = functions::names().collect();
            self.diag_at(
                at,
                field,
                format!("unknown function '{name}' (known: {})", known.join(", ")),
            );
            return None;
        };
        if !fun.takes(args.len()) {
            self.diag_at(at, field, format!("{name}() is called as {}", fun.usage));
            return None;
        }
        if fun.scope == Scope::Point && allow < Allow::Functions {
            self.diag_at(
                at,
                field,
                format!("{name}() may stand only in auxiliary constraints, targets and indicators"),
            );
            return None;
        }
        if let Builtin::Math(m) = fun.builtin {
            let mut resolved = Vec::with_capacity(args.len());
            for a in args {
                resolved.push(self.resolve(a, allow, field, base));
            }
            return Some(Expr::Math(m, resolved.into_iter().collect::<Option<_>>()?));
        }
        // The other functions take names of entities.
        let mut arg_names = Vec::new();
        for a in args {
            match a {
                Syntax::Name { name, .. } => arg_names.push(name.as_str()),
                _ => {
                    self.diag_at(
                        at,
                        field,
                        format!("the arguments of {name}() must be names: {}", fun.usage),
                    );
                    return None;
                }
            }
        }
        if fun.builtin == Builtin::Sam {
            return self.sam_cell(arg_names[0], arg_names[1], at, field);
        }
        let lookup = |this: &mut Builder, n: &str, want: ArgKind| -> Option<usize> {
            let want_kind = match want {
                ArgKind::Sector => "sector",
                ArgKind::Commodity => "commodity",
                _ => "consumer",
            };
            match this.symbols.get(n).copied() {
                Some(Sym::Sector(i)) if want == ArgKind::Sector => Some(i),
                Some(Sym::Commodity(i)) if want == ArgKind::Commodity => Some(i),
                Some(Sym::Consumer(i)) if want == ArgKind::Consumer => Some(i),
                Some(s) => {
                    this.diag_at(
                        at,
                        field,
                        format!("{name}(): '{n}' is a {}, expected a {want_kind}", s.kind()),
                    );
                    None
                }
                None => {
                    this.diag_at(at, field, format!("{name}(): unknown {want_kind} '{n}'"));
                    None
                }
            }
        };
        let mut ids = [0usize; 2];
        let mut ok = true;
        for k in 0..2.min(arg_names.len()) {
            match lookup(self, arg_names[k], fun.arg_kind(k)) {
                Some(i) => ids[k] = i,
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let nest = match arg_names.get(2) {
            None => None,
            Some(n) => match self.nest_names.get(ids[0]).and_then(|m| m.get(*n)) {
                Some(i) => Some(*i),
                None => {
                    self.diag_at(at, field, format!("{name}(): sector has no nest '{n}'"));
                    return None;
                }
            },
        };
        let [a, b] = ids;
        Some(Expr::Func(match fun.builtin {
            Builtin::Demand => Func::Demand {
                sector: a,
                commodity: b,
                nest,
            },
            Builtin::Supply => Func::Supply {
                sector: a,
                commodity: b,
                nest,
            },
            Builtin::Final => Func::Final {
                consumer: a,
                commodity: b,
            },
            Builtin::Endowment => Func::Endowment {
                consumer: a,
                commodity: b,
            },
            Builtin::Revenue => Func::Revenue { consumer: a },
            Builtin::Welfare => Func::Welfare { consumer: a },
            Builtin::Ev => Func::Ev { consumer: a },
            Builtin::Math(_) | Builtin::Sam => unreachable!("handled above"),
        }))
    }

    /// A SAM cell `sam(ROW, COL)`: its number.
    fn sam_cell(&mut self, row: &str, col: &str, at: usize, field: &str) -> Option<Expr> {
        let Some(sam) = &self.sam else {
            self.diag_at(
                at,
                field,
                "sam() needs a [sam] table naming the SAM file".into(),
            );
            return None;
        };
        match sam.get(row, col) {
            Some(v) => Some(Expr::Num(v)),
            None => {
                let msg = format!(
                    "sam({row}, {col}): no such account in the SAM (accounts: {})",
                    sam.accounts().join(", ")
                );
                self.diag_at(at, field, msg);
                None
            }
        }
    }

    /// A parameter-only value that must evaluate now (with the model's parameters).
    fn number_now(&mut self, e: &Expr, offset: usize, field: &str) -> Option<f64> {
        match e.eval(&ParamOnly(&self.params)) {
            Ok(v) if v.is_finite() => Some(v),
            Ok(v) => {
                self.diag_at(offset, field, format!("evaluates to {v}"));
                None
            }
            Err(err) => {
                self.diag_at(offset, field, format!("cannot evaluate: {err}"));
                None
            }
        }
    }

    fn check_sign(&mut self, e: &Option<Expr>, raw: &RawValue, field: &str, rule: Sign) {
        let Some(e) = e else { return };
        let offset = raw.span().start;
        let Some(v) = self.number_now(e, offset, field) else {
            return;
        };
        let bad = match rule {
            Sign::NonNegative => v < 0.0,
            Sign::Positive => v <= 0.0,
        };
        if bad {
            let what = match rule {
                Sign::NonNegative => "must not be negative",
                Sign::Positive => "must be positive",
            };
            self.diag_at(offset, field, format!("{what} (is {v})"));
        }
    }

    /// Entries of a name → value table, without the reserved `description`.
    fn entries<'a>(&mut self, t: &'a RawTable) -> Vec<(&'a String, &'a RawValue)> {
        t.get_ref()
            .iter()
            .filter(|(k, _)| !is_description(k))
            .collect()
    }

    fn build(&mut self, raw: ModelFile, path: &Path) -> Model {
        // --- SAM (extension): load first, since sam() may stand anywhere.
        let mut sam_source = None;
        if let Some(sam) = &raw.sam {
            let written = sam.get_ref().file.get_ref().clone();
            let dir = path.parent().unwrap_or(Path::new("."));
            let resolved = dir.join(&written);
            let off = sam.get_ref().file.span().start;
            match Sam::read(&resolved) {
                Ok(s) => {
                    let tol = sam.get_ref().tolerance.unwrap_or(1e-9);
                    if let Err(e) = s.check_balanced(tol) {
                        self.diag_at(off, "sam.file", format!("{e}"));
                    }
                    self.sam = Some(s);
                }
                Err(e) => self.diag_at(off, "sam.file", format!("{e}")),
            }
            sam_source = Some(SamSource { written, resolved });
        }

        // --- parameters
        let mut parameters = Vec::new();
        if let Some(t) = &raw.parameters {
            for (name, v) in self.entries(t) {
                let field = format!("parameters.{name}");
                let off = v.span().start;
                let e = self.value(v, Allow::Parameters, &field);
                let val = e
                    .and_then(|e| self.number_now(&e, off, &field))
                    .unwrap_or(0.0);
                self.declare(name, Sym::Param(parameters.len()), off, &field);
                parameters.push(Parameter {
                    name: name.clone(),
                    value: val,
                });
                self.params.push(val);
            }
        }

        // --- declarations, in layout order
        let mut commodities = Vec::new();
        for c in raw.commodities.get_ref() {
            self.declare(
                c.get_ref(),
                Sym::Commodity(commodities.len()),
                c.span().start,
                "commodities",
            );
            commodities.push(Commodity {
                name: c.get_ref().clone(),
                start: Expr::Num(1.0),
            });
        }
        for (i, (name, s)) in raw.sectors.iter().enumerate() {
            self.declare(
                name,
                Sym::Sector(i),
                s.span().start,
                &format!("sectors.{name}"),
            );
        }
        for (i, (name, c)) in raw.consumers.iter().enumerate() {
            self.declare(
                name,
                Sym::Consumer(i),
                c.span().start,
                &format!("consumers.{name}"),
            );
        }
        for (i, (name, a)) in raw.auxiliary.iter().enumerate() {
            self.declare(
                name,
                Sym::Aux(i),
                a.span().start,
                &format!("auxiliary.{name}"),
            );
        }
        // Layout offsets now that every variable is declared.
        let ns = raw.sectors.len();
        let nc = commodities.len();
        let nh = raw.consumers.len();
        self.counts = (ns, nc, nh);

        // --- nests (names first so demand(S, C, NEST) resolves anywhere)
        for (name, s) in &raw.sectors {
            let mut map = HashMap::new();
            map.insert("s".to_string(), 0usize);
            map.insert("t".to_string(), 1usize);
            for (k, n) in s.get_ref().nests.iter().enumerate() {
                let nn = n.get_ref().name.get_ref();
                let field = format!("sectors.{name}.nests[{k}].name");
                if nn == "s" || nn == "t" {
                    self.diag_at(
                        n.get_ref().name.span().start,
                        &field,
                        "'s' and 't' are reserved nest names".into(),
                    );
                } else if map.insert(nn.clone(), k + 2).is_some() {
                    self.diag_at(
                        n.get_ref().name.span().start,
                        &field,
                        format!("duplicate nest name '{nn}' in sector {name}"),
                    );
                }
            }
            self.nest_names.push(map);
        }

        // --- sectors
        let mut sectors = Vec::new();
        for (si, (name, s)) in raw.sectors.iter().enumerate() {
            let s = s.get_ref();
            let f = |x: &str| format!("sectors.{name}.{x}");
            let mut nests = vec![
                Nest {
                    name: "s".into(),
                    parent: None,
                    elasticity: self.elasticity(&s.elasticity, &f("elasticity")),
                    output: false,
                },
                Nest {
                    name: "t".into(),
                    parent: None,
                    elasticity: self.elasticity(&s.transformation, &f("transformation")),
                    output: true,
                },
            ];
            for (k, n) in s.nests.iter().enumerate() {
                let n = n.get_ref();
                let pf = f(&format!("nests[{k}].parent"));
                let parent = match self.nest_names[si].get(n.parent.get_ref()) {
                    Some(&p) => Some(p),
                    None => {
                        self.diag_at(
                            n.parent.span().start,
                            &pf,
                            format!(
                                "parent nest '{}' does not exist in sector {name}",
                                n.parent.get_ref()
                            ),
                        );
                        None
                    }
                };
                nests.push(Nest {
                    name: n.name.get_ref().clone(),
                    parent: parent.or(Some(0)),
                    elasticity: self
                        .elasticity(&n.elasticity, &f(&format!("nests[{k}].elasticity"))),
                    output: false,
                });
            }
            // Cycle check and input/output side of each nest.
            for k in 2..nests.len() {
                let mut cur = k;
                let mut steps = 0;
                while let Some(p) = nests[cur].parent {
                    cur = p;
                    steps += 1;
                    if steps > nests.len() {
                        break;
                    }
                }
                if steps > nests.len() {
                    let n = &s.nests[k - 2];
                    self.diag_at(
                        n.get_ref().parent.span().start,
                        &f(&format!("nests[{}].parent", k - 2)),
                        format!("nest '{}' is part of a cycle of parents", nests[k].name),
                    );
                    nests[k].parent = Some(0);
                } else {
                    nests[k].output = cur == 1;
                }
            }
            let mut netputs = Vec::new();
            for (output, list, label) in
                [(false, &s.inputs, "inputs"), (true, &s.outputs, "outputs")]
            {
                for (k, np) in list.iter().enumerate() {
                    let np = np.get_ref();
                    let pf = |x: &str| f(&format!("{label}[{k}].{x}"));
                    let commodity = self.commodity(&np.commodity, &pf("commodity"));
                    let qf = pf("quantity");
                    let quantity = self.value(&np.quantity, Allow::Parameters, &qf);
                    self.check_sign(&quantity, &np.quantity, &qf, Sign::NonNegative);
                    let price = match &np.price {
                        Some(p) => {
                            let e = self.value(p, Allow::Parameters, &pf("price"));
                            self.check_sign(&e, p, &pf("price"), Sign::Positive);
                            e
                        }
                        None => Some(Expr::Num(1.0)),
                    };
                    let nest = match &np.nest {
                        None => Some(if output { 1 } else { 0 }),
                        Some(n) => match self.nest_names[si].get(n.get_ref()).copied() {
                            Some(ix) if nests[ix].output == output => Some(ix),
                            Some(_) => {
                                let side = if output { "an output" } else { "an input" };
                                self.diag_at(n.span().start, &pf("nest"), format!("nest '{}' is not {side} nest (inputs go under s, outputs under t)", n.get_ref()));
                                None
                            }
                            None => {
                                self.diag_at(
                                    n.span().start,
                                    &pf("nest"),
                                    format!(
                                        "nest '{}' does not exist in sector {name}",
                                        n.get_ref()
                                    ),
                                );
                                None
                            }
                        },
                    };
                    let mut taxes = Vec::new();
                    for (j, t) in np.taxes.iter().enumerate() {
                        let t = t.get_ref();
                        let af = pf(&format!("taxes[{j}].agent"));
                        let agent = match self.symbols.get(t.agent.get_ref()) {
                            Some(Sym::Consumer(h)) => Some(*h),
                            Some(other) => {
                                let msg = format!(
                                    "tax agent '{}' is a {}, expected a consumer",
                                    t.agent.get_ref(),
                                    other.kind()
                                );
                                self.diag_at(t.agent.span().start, &af, msg);
                                None
                            }
                            None => {
                                self.diag_at(
                                    t.agent.span().start,
                                    &af,
                                    format!("unknown consumer '{}'", t.agent.get_ref()),
                                );
                                None
                            }
                        };
                        let rate =
                            self.value(&t.rate, Allow::Variables, &pf(&format!("taxes[{j}].rate")));
                        if let (Some(agent), Some(rate)) = (agent, rate) {
                            taxes.push(Tax { agent, rate });
                        }
                    }
                    if let (Some(commodity), Some(quantity), Some(price), Some(nest)) =
                        (commodity, quantity, price, nest)
                    {
                        netputs.push(Netput {
                            commodity,
                            quantity,
                            price,
                            nest,
                            taxes,
                            output,
                        });
                    }
                }
            }
            sectors.push(Sector {
                name: name.clone(),
                description: s.description.clone().unwrap_or_default(),
                start: Expr::Num(1.0),
                nests,
                netputs,
            });
        }

        // --- start levels
        if let Some(t) = &raw.start {
            for (name, v) in self.entries(t) {
                let field = format!("start.{name}");
                let e = self.value(v, Allow::Parameters, &field);
                self.check_sign(&e, v, &field, Sign::NonNegative);
                match (self.symbols.get(name).copied(), e) {
                    (Some(Sym::Sector(i)), Some(e)) => sectors[i].start = e,
                    (Some(Sym::Commodity(i)), Some(e)) => commodities[i].start = e,
                    (Some(other), _) => {
                        let msg = format!(
                            "'{name}' is a {}: start levels are for sectors and commodities",
                            other.kind()
                        );
                        self.diag_at(v.span().start, &field, msg)
                    }
                    (None, _) => self.diag_at(
                        v.span().start,
                        &field,
                        format!("unknown sector or commodity '{name}'"),
                    ),
                }
            }
        }

        // --- consumers
        let mut consumers = Vec::new();
        for (name, c) in &raw.consumers {
            let off = c.span().start;
            let c = c.get_ref();
            let f = |x: &str| format!("consumers.{name}.{x}");
            let elasticity = match &c.elasticity {
                Some(v) => {
                    let e = self.value(v, Allow::Parameters, &f("elasticity"));
                    self.check_sign(&e, v, &f("elasticity"), Sign::NonNegative);
                    e.unwrap_or(Expr::Num(1.0))
                }
                None => Expr::Num(1.0),
            };
            if c.demands.is_empty() {
                self.diag_at(
                    off,
                    &f("demands"),
                    format!("consumer {name} needs at least one final demand"),
                );
            }
            let mut demands = Vec::new();
            for (k, d) in c.demands.iter().enumerate() {
                let d = d.get_ref();
                let pf = |x: &str| f(&format!("demands[{k}].{x}"));
                let commodity = self.commodity(&d.commodity, &pf("commodity"));
                let quantity = self.value(&d.quantity, Allow::Parameters, &pf("quantity"));
                self.check_sign(&quantity, &d.quantity, &pf("quantity"), Sign::NonNegative);
                let price = match &d.price {
                    Some(p) => {
                        let e = self.value(p, Allow::Parameters, &pf("price"));
                        self.check_sign(&e, p, &pf("price"), Sign::Positive);
                        e
                    }
                    None => Some(Expr::Num(1.0)),
                };
                // Extension: a subsistence quantity makes the consumer's demand Stone–Geary.
                let subsistence = d.subsistence.as_ref().map(|g| {
                    let e = self.value(g, Allow::Parameters, &pf("subsistence"));
                    self.check_sign(&e, g, &pf("subsistence"), Sign::NonNegative);
                    e
                });
                if let (Some(commodity), Some(quantity), Some(price)) = (commodity, quantity, price)
                {
                    demands.push(FinalDemand {
                        commodity,
                        quantity,
                        price,
                        subsistence: subsistence.flatten(),
                    });
                }
            }
            let mut endowments = Vec::new();
            for (k, d) in c.endowments.iter().enumerate() {
                let d = d.get_ref();
                let pf = |x: &str| f(&format!("endowments[{k}].{x}"));
                let commodity = self.commodity(&d.commodity, &pf("commodity"));
                let quantity = self.value(&d.quantity, Allow::Variables, &pf("quantity"));
                if let (Some(commodity), Some(quantity)) = (commodity, quantity) {
                    endowments.push(Endowment {
                        commodity,
                        quantity,
                    });
                }
            }
            consumers.push(Consumer {
                name: name.clone(),
                description: c.description.clone().unwrap_or_default(),
                elasticity,
                demands,
                endowments,
            });
        }

        // --- auxiliaries
        let mut auxiliaries = Vec::new();
        for (name, a) in &raw.auxiliary {
            let a = a.get_ref();
            let f = |x: &str| format!("auxiliary.{name}.{x}");
            let bound = |this: &mut Builder, v: &Option<RawValue>, x: &str, default: f64| match v {
                Some(v) => this
                    .value(v, Allow::Parameters, &f(x))
                    .unwrap_or(Expr::Num(default)),
                None => Expr::Num(default),
            };
            let start = bound(self, &a.start, "start", 0.0);
            let lower = bound(self, &a.lower, "lower", f64::NEG_INFINITY);
            let upper = bound(self, &a.upper, "upper", f64::INFINITY);
            let ctx = ParamOnly(&self.params);
            if let (Ok(s), Ok(l), Ok(u)) = (start.eval(&ctx), lower.eval(&ctx), upper.eval(&ctx)) {
                let off = a
                    .start
                    .as_ref()
                    .map(|s| s.span().start)
                    .unwrap_or(a.constraint.span().start);
                if l > u {
                    self.diag_at(
                        off,
                        &f("lower"),
                        format!("lower bound {l} exceeds upper bound {u}"),
                    );
                } else if s < l || s > u {
                    self.diag_at(
                        off,
                        &f("start"),
                        format!("start {s} lies outside the bounds [{l}, {u}]"),
                    );
                }
            }
            let constraint = self
                .value(&a.constraint, Allow::Functions, &f("constraint"))
                .unwrap_or(Expr::Num(0.0));
            auxiliaries.push(Auxiliary {
                name: name.clone(),
                description: a.description.clone().unwrap_or_default(),
                start,
                lower,
                upper,
                constraint,
            });
        }

        // --- indicators (extension)
        let mut indicators = Vec::new();
        if let Some(t) = &raw.indicators {
            for (name, v) in self.entries(t) {
                let field = format!("indicators.{name}");
                let e = self.value(v, Allow::Indicators, &field);
                self.declare(
                    name,
                    Sym::Indicator(indicators.len()),
                    v.span().start,
                    &field,
                );
                let text = match v.get_ref() {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                indicators.push(Indicator {
                    name: name.clone(),
                    expr: e.unwrap_or(Expr::Num(f64::NAN)),
                    text,
                });
            }
        }

        // --- numeraire
        let numeraire = raw
            .model
            .get_ref()
            .numeraire
            .as_ref()
            .and_then(|n| self.normaliser(n, "model.numeraire"));

        // --- scenarios
        let mut scenarios = Vec::new();
        for (name, sc) in &raw.scenarios {
            let off = sc.span().start;
            if name == "benchmark" {
                self.diag_at(
                    off,
                    &format!("scenarios.{name}"),
                    "'benchmark' is reserved for the model as written".into(),
                );
                continue;
            }
            let sc = sc.get_ref();
            let mut parameters = Vec::new();
            if let Some(t) = &sc.parameters {
                for (p, v) in self.entries(t) {
                    let field = format!("scenarios.{name}.parameters.{p}");
                    let Some(Sym::Param(i)) = self.symbols.get(p).copied() else {
                        self.diag_at(
                            v.span().start,
                            &field,
                            format!("'{p}' is not a declared parameter"),
                        );
                        continue;
                    };
                    match v.get_ref() {
                        toml::Value::Integer(x) => parameters.push((i, *x as f64)),
                        toml::Value::Float(x) => parameters.push((i, *x)),
                        _ => {
                            let e = self.value(v, Allow::Parameters, &field);
                            if let Some(x) =
                                e.and_then(|e| self.number_now(&e, v.span().start, &field))
                            {
                                parameters.push((i, x));
                            }
                        }
                    }
                }
            }
            let numeraire = sc
                .numeraire
                .as_ref()
                .and_then(|n| self.normaliser(n, &format!("scenarios.{name}.numeraire")));
            let mut fix = Vec::new();
            if let Some(t) = &sc.fix {
                for (var, v) in self.entries(t) {
                    let field = format!("scenarios.{name}.fix.{var}");
                    let e = self.value(v, Allow::Parameters, &field);
                    let idx = match self.symbols.get(var).copied() {
                        Some(Sym::Sector(i)) => Some(i),
                        Some(Sym::Commodity(i)) => Some(ns + i),
                        Some(Sym::Consumer(i)) => Some(ns + nc + i),
                        Some(Sym::Aux(i)) => Some(ns + nc + nh + i),
                        Some(other) => {
                            self.diag_at(
                                v.span().start,
                                &field,
                                format!("'{var}' is a {}, not a variable", other.kind()),
                            );
                            None
                        }
                        None => {
                            self.diag_at(
                                v.span().start,
                                &field,
                                format!("unknown variable '{var}'"),
                            );
                            None
                        }
                    };
                    if let (Some(idx), Some(e)) = (idx, e) {
                        fix.push((idx, e));
                    }
                }
            }
            scenarios.push(Scenario {
                name: name.clone(),
                description: sc.description.clone().unwrap_or_default(),
                parameters,
                numeraire,
                fix,
            });
        }

        // --- targets
        let mut targets = Vec::new();
        for (k, t) in raw.targets.iter().enumerate() {
            let off = t.span().start;
            let t = t.get_ref();
            let f = |x: &str| format!("targets[{k}].{x}");
            let scenario = match &t.scenario {
                None => Some(None),
                Some(s) if s.get_ref() == "benchmark" => Some(None),
                Some(s) => match scenarios.iter().position(|x| &x.name == s.get_ref()) {
                    Some(i) => Some(Some(i)),
                    None => {
                        self.diag_at(
                            s.span().start,
                            &f("scenario"),
                            format!("unknown scenario '{}'", s.get_ref()),
                        );
                        None
                    }
                },
            };
            let expr = self.value(&t.expr, Allow::Indicators, &f("expr"));
            let text = match t.expr.get_ref() {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let pv = |this: &mut Builder, v: &Option<RawValue>, x: &str| {
                v.as_ref()
                    .and_then(|v| this.value(v, Allow::Parameters, &f(x)))
            };
            let check = match (&t.value, &t.min, &t.max) {
                (Some(_), None, None) => {
                    let value = pv(self, &t.value, "value");
                    let tolerance = match &t.tolerance {
                        Some(_) => pv(self, &t.tolerance, "tolerance"),
                        None => Some(Expr::Num(1e-6)),
                    };
                    match (value, tolerance) {
                        (Some(value), Some(tolerance)) => {
                            Some(TargetCheck::Value { value, tolerance })
                        }
                        _ => None,
                    }
                }
                (None, None, None) => {
                    self.diag_at(
                        off,
                        &f("value"),
                        "a target needs `value`, or `min` and/or `max`".into(),
                    );
                    None
                }
                (None, _, _) => {
                    if t.tolerance.is_some() {
                        self.diag_at(
                            off,
                            &f("tolerance"),
                            "tolerance goes with `value`, not with min/max".into(),
                        );
                    }
                    Some(TargetCheck::Range {
                        min: pv(self, &t.min, "min"),
                        max: pv(self, &t.max, "max"),
                    })
                }
                (Some(_), _, _) => {
                    self.diag_at(
                        off,
                        &f("value"),
                        "a target has either `value` or `min`/`max`, not both".into(),
                    );
                    None
                }
            };
            let line = self.lines.position(off).0;
            if let (Some(scenario), Some(expr), Some(check)) = (scenario, expr, check) {
                let sname = scenario
                    .map(|i: usize| scenarios[i].name.clone())
                    .unwrap_or_else(|| "benchmark".into());
                let name = t.name.clone().unwrap_or_else(|| format!("{sname}: {text}"));
                targets.push(Target {
                    name,
                    scenario,
                    expr,
                    text,
                    check,
                    line,
                });
            }
        }

        Model {
            name: raw.model.get_ref().name.get_ref().clone(),
            description: raw.model.get_ref().description.clone().unwrap_or_default(),
            path: path.to_path_buf(),
            parameters,
            commodities,
            sectors,
            consumers,
            auxiliaries,
            numeraire,
            scenarios,
            targets,
            indicators,
            sam: sam_source,
        }
    }

    fn elasticity(&mut self, v: &Option<RawValue>, field: &str) -> Expr {
        match v {
            None => Expr::Num(0.0),
            Some(v) => {
                let e = self.value(v, Allow::Parameters, field);
                self.check_sign(&e, v, field, Sign::NonNegative);
                e.unwrap_or(Expr::Num(0.0))
            }
        }
    }

    fn commodity(&mut self, name: &toml::Spanned<String>, field: &str) -> Option<usize> {
        match self.symbols.get(name.get_ref()).copied() {
            Some(Sym::Commodity(i)) => Some(i),
            Some(other) => {
                let msg = format!(
                    "'{}' is a {}, expected a commodity",
                    name.get_ref(),
                    other.kind()
                );
                self.diag_at(name.span().start, field, msg);
                None
            }
            None => {
                self.diag_at(
                    name.span().start,
                    field,
                    format!(
                        "unknown commodity '{}' (declare it in `commodities`)",
                        name.get_ref()
                    ),
                );
                None
            }
        }
    }

    fn normaliser(&mut self, n: &toml::Spanned<String>, field: &str) -> Option<Normaliser> {
        match self.symbols.get(n.get_ref()).copied() {
            Some(Sym::Commodity(i)) => Some(Normaliser::Commodity(i)),
            Some(Sym::Consumer(i)) => Some(Normaliser::Consumer(i)),
            Some(other) => {
                let msg = format!(
                    "numeraire '{}' is a {}: it must be a commodity or a consumer",
                    n.get_ref(),
                    other.kind()
                );
                self.diag_at(n.span().start, field, msg);
                None
            }
            None => {
                self.diag_at(
                    n.span().start,
                    field,
                    format!("unknown numeraire '{}'", n.get_ref()),
                );
                None
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Sign {
    NonNegative,
    Positive,
}

fn valid_name(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
