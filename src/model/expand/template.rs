//! Templates of an indexed model: names such as `P[i]` and expressions over sets, compiled once
//! per place in the file and instantiated element by element under the bindings of an [`Env`].
//!
//! Compiling resolves what does not depend on the element: which bracket entries are indices
//! (a set's name) and which are literal labels, which names are data tables (their literal
//! labels turned into positions), which calls are `sum`, `prod`, `ord` and `card`. An element
//! then costs arithmetic: a table entry is read at the positions its indices are bound to, a sum
//! is unrolled over its set as a balanced tree (depth log₂ n, within the parser's depth limit
//! when printed), and constant parts are folded, so a quantity taken from a table is a number.

use crate::expr::{BinOp, Syntax};

use super::{Index, SetData, Table};

/// One bound index: its name, its set and the position of the element it stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Binding<'a> {
    pub index: &'a str,
    pub set: &'a SetData,
    pub pos: u32,
}

/// The indices bound while expanding one element, innermost last. Loops update positions in
/// place (an odometer, the last index fastest): expanding an element copies nothing.
#[derive(Debug, Default)]
pub(crate) struct Env<'a> {
    pub bound: Vec<Binding<'a>>,
}

impl<'a> Env<'a> {
    pub fn get(&self, index: &str) -> Option<&Binding<'a>> {
        // Index names are the sets' own strings almost always: compared by address first.
        self.bound
            .iter()
            .rev()
            .find(|b| std::ptr::eq(b.index, index) || b.index == index)
    }
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }
    /// Binds `dims` at their first elements; false when one of the sets is empty (no element).
    /// Always undone by [`Env::pop`] of as many.
    pub fn push(&mut self, dims: &[(&'a str, &'a SetData)]) -> bool {
        for &(index, set) in dims {
            self.bound.push(Binding { index, set, pos: 0 });
        }
        dims.iter().all(|(_, s)| s.len() > 0)
    }
    /// The next element of the innermost `n` bindings; false after the last one.
    pub fn advance(&mut self, n: usize) -> bool {
        let len = self.bound.len();
        for b in self.bound[len - n..].iter_mut().rev() {
            b.pos += 1;
            if (b.pos as usize) < b.set.len() {
                return true;
            }
            b.pos = 0;
        }
        false
    }
    pub fn pop(&mut self, n: usize) {
        self.bound.truncate(self.bound.len() - n);
    }
    /// The label an index is bound to.
    pub fn label(&self, index: &str) -> Option<&'a str> {
        self.get(index)
            .map(|b| b.set.labels[b.pos as usize].as_str())
    }
    /// ` (expanding j = agr, i = srv)` for messages, empty when nothing is bound.
    pub fn describe(&self) -> String {
        if self.bound.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .bound
            .iter()
            .map(|b| format!("{} = {}", b.index, b.set.labels[b.pos as usize]))
            .collect();
        format!(" (expanding {})", parts.join(", "))
    }
}

/// `NAME[a,b]` → (`NAME`, [`a`, `b`]); `None` for a plain name.
pub(crate) fn split_index(name: &str) -> Option<(&str, Vec<&str>)> {
    let (base, rest) = name.split_once('[')?;
    let labels = rest.strip_suffix(']')?;
    Some((base.trim(), labels.split(',').map(str::trim).collect()))
}

/// A bracket entry of a name: an index (a set's name, replaced by the label bound to it) or a
/// label written literally.
#[derive(Debug, Clone)]
pub(crate) enum Slot<'a> {
    Index(&'a str, &'a SetData),
    Label(String),
}

/// A name that may carry indices: `P[i]`, `x0[agr, j]`, `PL`.
#[derive(Debug, Clone)]
pub(crate) struct NameTpl<'a> {
    pub text: String,
    pub base: String,
    /// `None` for a plain name.
    pub slots: Option<Vec<Slot<'a>>>,
}

impl<'a> NameTpl<'a> {
    pub fn new(text: &str, index: &'a Index) -> NameTpl<'a> {
        let slots = split_index(text).map(|(_, labels)| {
            labels
                .iter()
                .map(|l| match index.names.get_key_value(*l) {
                    Some((name, &k)) => Slot::Index(name.as_str(), &index.sets[k]),
                    None => Slot::Label(l.to_string()),
                })
                .collect()
        });
        let base = split_index(text).map_or(text, |(b, _)| b).to_string();
        NameTpl {
            text: text.to_string(),
            base,
            slots,
        }
    }
    /// The indices it is written over, in order.
    pub fn indices(&self) -> impl Iterator<Item = (&'a str, &'a SetData)> + '_ {
        self.slots.iter().flatten().filter_map(|s| match s {
            Slot::Index(i, set) => Some((*i, *set)),
            Slot::Label(_) => None,
        })
    }
    /// Does it need bindings (an index among its bracket entries)?
    pub fn has_indices(&self) -> bool {
        self.indices().next().is_some()
    }
    /// The name of the element bound in `env` (`P[i]` → `P[agr]`).
    pub fn instantiate(&self, env: &Env) -> Result<String, String> {
        let Some(slots) = &self.slots else {
            if env.get(&self.text).is_some() {
                return Err(format!(
                    "'{}' is an index: it stands for a label, not for a name",
                    self.text
                ));
            }
            return Ok(self.text.clone());
        };
        let mut out = String::with_capacity(self.text.len() + 8);
        out.push_str(&self.base);
        out.push('[');
        for (k, s) in slots.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            match s {
                Slot::Label(l) => out.push_str(l),
                Slot::Index(i, _) => match env.label(i) {
                    Some(l) => out.push_str(l),
                    None => return Err(unbound(i, &self.text)),
                },
            }
        }
        out.push(']');
        Ok(out)
    }
    /// The position of the bound element in the product of its indices' sets (`None` when an
    /// index is not bound, or past `usize`): a key for caches of what the name resolves to.
    pub fn key(&self, env: &Env) -> Option<usize> {
        let mut key = 0usize;
        for (i, set) in self.indices() {
            let b = env.get(i)?;
            let pos = if b.set.id == set.id {
                b.pos
            } else {
                // Bound over another set (a subset, say): the label's position in this one.
                *set.position.get(&b.set.labels[b.pos as usize])?
            };
            key = key.checked_mul(set.len())?.checked_add(pos as usize)?;
        }
        Some(key)
    }
    /// Number of distinct keys (saturating).
    pub fn keys(&self) -> usize {
        self.indices()
            .try_fold(1usize, |n, (_, s)| n.checked_mul(s.len()))
            .unwrap_or(usize::MAX)
    }
}

fn unbound(index: &str, template: &str) -> String {
    format!("index '{index}' of '{template}' is not bound here: declare the entry `over = \"{index}\"` or use it inside sum({index}, ...)")
}

/// A bracket entry of a table reference, resolved against the table's set.
#[derive(Debug, Clone)]
pub(crate) enum EntrySlot<'a> {
    /// An index: the position of the label it is bound to (in `dim`).
    Index { index: &'a str, dim: &'a SetData },
    /// A literal label of the set.
    Fixed(u32),
    /// A literal label the set does not have (an error when instantiated).
    Missing { label: String, dim: &'a SetData },
}

/// A compiled expression template.
#[derive(Debug, Clone)]
pub(crate) enum Tpl<'a> {
    Num(f64),
    /// An entry of a data table: its number.
    Entry {
        table: &'a Table,
        name: String,
        text: String,
        slots: Vec<EntrySlot<'a>>,
        span: (usize, usize),
    },
    /// A name (of a parameter, a variable, an element of a table of parameters...), with the
    /// indices it carries replaced by labels.
    Name {
        name: NameTpl<'a>,
        span: (usize, usize),
    },
    Neg(Box<Tpl<'a>>),
    Bin(BinOp, Box<Tpl<'a>>, Box<Tpl<'a>>),
    Call {
        name: String,
        args: Vec<Tpl<'a>>,
        span: (usize, usize),
    },
    /// `sum(i, body)` (`op` Add, unit 0) or `prod(i, body)` (Mul, 1).
    Fold {
        op: BinOp,
        unit: f64,
        what: &'static str,
        index: &'a str,
        set: &'a SetData,
        body: Box<Tpl<'a>>,
        span: (usize, usize),
    },
    /// `ord(i)`: the 1-based position of the element bound to `i` in its (ordered) set.
    Ord(&'a str, (usize, usize)),
}

/// A compiled template and the indices it uses without binding them itself.
#[derive(Debug)]
pub(crate) struct Compiled<'a> {
    pub tpl: Tpl<'a>,
    pub free: Vec<String>,
}

impl<'a> Compiled<'a> {
    /// Does it depend on any of these indices?
    pub fn uses(&self, indices: &[(&str, &SetData)]) -> bool {
        self.free
            .iter()
            .any(|f| indices.iter().any(|(i, _)| i == f))
    }
}

/// A template that is one entry of a dense data table at the positions of indices bound over
/// the table's own sets (`x0[i,j]` inside `Y[j]`, `over = "i"`): read without instantiating
/// anything, the common case of a large model.
#[derive(Debug)]
pub(crate) struct Direct<'a> {
    values: &'a [f64],
    /// Per index of the table: the binding (a position in `Env::bound`) it reads, or a fixed
    /// position; with the stride of the index in the table.
    at: Vec<(Option<usize>, u32, usize)>,
}

impl<'a> Compiled<'a> {
    /// The direct reading of this template under the bindings of `env`, when it is one.
    pub fn direct(&self, env: &Env<'a>) -> Option<Direct<'a>> {
        let Tpl::Entry { table, slots, .. } = &self.tpl else {
            return None;
        };
        let super::Values::Dense { values, .. } = &table.values else {
            return None;
        };
        let mut at = Vec::with_capacity(slots.len());
        let mut stride = table.len();
        for (k, slot) in slots.iter().enumerate() {
            stride /= table.sizes[k];
            at.push(match slot {
                EntrySlot::Fixed(p) => (None, *p, stride),
                EntrySlot::Index { index, dim } => {
                    let depth = env.bound.iter().rposition(|b| b.index == *index)?;
                    if env.bound[depth].set.id != dim.id {
                        return None;
                    }
                    (Some(depth), 0, stride)
                }
                EntrySlot::Missing { .. } => return None,
            });
        }
        Some(Direct { values, at })
    }
}

impl Direct<'_> {
    /// The entry at the positions bound in `env` (the bindings `direct` was made for).
    pub fn read(&self, env: &Env) -> f64 {
        let offset = self.at.iter().fold(0, |o, &(depth, fixed, stride)| {
            let p = depth.map_or(fixed, |d| env.bound[d].pos);
            o + p as usize * stride
        });
        self.values[offset]
    }
}

/// What is wrong with a template whatever the element (a table without its indices, `sum` over
/// no set, ...), and the byte offset in the expression's text where it is.
pub(crate) type CompileError = (String, usize);

/// Compiles a parsed expression against the sets and tables.
pub(crate) fn compile<'a>(s: &Syntax, index: &'a Index) -> Result<Compiled<'a>, CompileError> {
    let mut free = Vec::new();
    let tpl = compile_in(s, index, &mut Vec::new(), &mut free)?;
    Ok(Compiled { tpl, free })
}

fn note_free(index: &str, bound: &[String], free: &mut Vec<String>) {
    if !bound.iter().any(|b| b == index) && !free.iter().any(|f| f == index) {
        free.push(index.to_string());
    }
}

fn compile_in<'a>(
    s: &Syntax,
    index: &'a Index,
    bound: &mut Vec<String>,
    free: &mut Vec<String>,
) -> Result<Tpl<'a>, CompileError> {
    Ok(match s {
        Syntax::Num(v) => Tpl::Num(*v),
        Syntax::Name { name, span } => {
            let tpl = NameTpl::new(name, index);
            match tpl.slots.as_ref().and(index.tables.get_full(&tpl.base)) {
                Some((_, tname, table)) if !table.parameters => {
                    let slots = tpl.slots.as_ref().expect("a table reference has indices");
                    if slots.len() != table.dims.len() {
                        return Err((
                            format!(
                                "table '{tname}' has {} indices, '{name}' gives {}",
                                table.dims.len(),
                                slots.len()
                            ),
                            span.0,
                        ));
                    }
                    let mut out = Vec::with_capacity(slots.len());
                    for (k, slot) in slots.iter().enumerate() {
                        let dim = &index.sets[table.dims[k]];
                        out.push(match slot {
                            Slot::Index(i, _) => {
                                note_free(i, bound, free);
                                EntrySlot::Index { index: i, dim }
                            }
                            Slot::Label(l) => match dim.position.get(l) {
                                Some(&p) => EntrySlot::Fixed(p),
                                None => EntrySlot::Missing {
                                    label: l.clone(),
                                    dim,
                                },
                            },
                        });
                    }
                    Tpl::Entry {
                        table,
                        name: tname.clone(),
                        text: name.clone(),
                        slots: out,
                        span: *span,
                    }
                }
                _ => {
                    if tpl.slots.is_none() {
                        if let Some(t) = index.tables.get(name.as_str()) {
                            let sets: Vec<&str> = t
                                .dims
                                .iter()
                                .map(|&d| index.sets[d].name.as_str())
                                .collect();
                            return Err((
                                format!(
                                    "table '{name}' needs its indices, e.g. {name}[{}]",
                                    sets.join(",")
                                ),
                                span.0,
                            ));
                        }
                        if index.is_set(name) {
                            note_free(name, bound, free);
                        }
                    }
                    for (i, _) in tpl.indices() {
                        note_free(i, bound, free);
                    }
                    Tpl::Name {
                        name: tpl,
                        span: *span,
                    }
                }
            }
        }
        Syntax::Neg(a) => Tpl::Neg(Box::new(compile_in(a, index, bound, free)?)),
        Syntax::Bin(op, a, b) => Tpl::Bin(
            *op,
            Box::new(compile_in(a, index, bound, free)?),
            Box::new(compile_in(b, index, bound, free)?),
        ),
        Syntax::Call { name, args, span } => {
            let set_arg = |what: &str| -> Result<(&'a str, &'a SetData), CompileError> {
                match args.first() {
                    Some(Syntax::Name { name: i, .. }) => match index.names.get_key_value(i) {
                        Some((name, &k)) => Ok((name.as_str(), &index.sets[k])),
                        None => Err((format!("{what}({i}, ...): '{i}' is not a set"), span.0)),
                    },
                    _ => Err((
                        format!("{what}(INDEX, ...): the first argument is a set's name"),
                        span.0,
                    )),
                }
            };
            match (name.as_str(), args.len()) {
                (what @ ("sum" | "prod"), 2) => {
                    let (i, set) = set_arg(what)?;
                    bound.push(i.to_string());
                    let body = compile_in(&args[1], index, bound, free);
                    bound.pop();
                    let (op, unit) = if what == "sum" {
                        (BinOp::Add, 0.0)
                    } else {
                        (BinOp::Mul, 1.0)
                    };
                    Tpl::Fold {
                        op,
                        unit,
                        what: if what == "sum" { "sum" } else { "prod" },
                        index: i,
                        set,
                        body: Box::new(body?),
                        span: *span,
                    }
                }
                ("ord", 1) => {
                    let (i, _) = set_arg("ord")?;
                    note_free(i, bound, free);
                    Tpl::Ord(i, *span)
                }
                ("card", 1) => Tpl::Num(set_arg("card")?.1.len() as f64),
                _ => {
                    let mut out = Vec::with_capacity(args.len());
                    for a in args {
                        out.push(compile_in(a, index, bound, free)?);
                    }
                    Tpl::Call {
                        name: name.clone(),
                        args: out,
                        span: *span,
                    }
                }
            }
        }
    })
}

/// The label at index `k` of a reference to table `table` is not an element of its set.
fn not_in(label: &str, dim: &SetData, k: usize, table: &str) -> String {
    format!(
        "'{label}' is not an element of set {} (index {} of table {table})",
        dim.name,
        k + 1
    )
}

/// A problem met while instantiating: the message, the bindings it was met under and the byte
/// offset in the expression's text of what it is about.
pub(crate) type Problem = (String, String, usize);

/// Instantiates a template under `env` (which sums extend while they are unrolled): a table
/// entry becomes its number, a name its element's, constant parts are folded. `None` after a
/// problem, pushed to `problems`.
pub(crate) fn instantiate<'a>(
    t: &Tpl<'a>,
    env: &mut Env<'a>,
    problems: &mut Vec<Problem>,
) -> Option<Syntax> {
    Some(match t {
        Tpl::Num(v) => Syntax::Num(*v),
        Tpl::Entry {
            table,
            name,
            text,
            slots,
            span,
        } => {
            let mut at = [0u32; 8];
            let mut heap = Vec::new();
            let pos: &mut [u32] = if slots.len() <= at.len() {
                &mut at[..slots.len()]
            } else {
                heap.resize(slots.len(), 0);
                &mut heap
            };
            for (k, slot) in slots.iter().enumerate() {
                pos[k] = match slot {
                    EntrySlot::Fixed(p) => *p,
                    EntrySlot::Index { index, dim } => match env.get(index) {
                        Some(b) if b.set.id == dim.id => b.pos,
                        Some(b) => {
                            let label = &b.set.labels[b.pos as usize];
                            match dim.position.get(label) {
                                Some(&p) => p,
                                None => {
                                    problems.push((
                                        not_in(label, dim, k, name),
                                        env.describe(),
                                        span.0,
                                    ));
                                    return None;
                                }
                            }
                        }
                        None => {
                            problems.push((unbound(index, text), env.describe(), span.0));
                            return None;
                        }
                    },
                    EntrySlot::Missing { label, dim } => {
                        problems.push((not_in(label, dim, k, name), env.describe(), span.0));
                        return None;
                    }
                };
            }
            Syntax::Num(table.get(pos))
        }
        Tpl::Name { name, span } => match name.instantiate(env) {
            Ok(n) => Syntax::Name {
                name: n,
                span: *span,
            },
            Err(m) => {
                let m = if name.slots.is_none() {
                    format!(
                        "'{}' is an index: it stands for a label, not a value",
                        name.text
                    )
                } else {
                    m
                };
                problems.push((m, env.describe(), span.0));
                return None;
            }
        },
        Tpl::Neg(a) => match instantiate(a, env, problems)? {
            Syntax::Num(v) => Syntax::Num(-v),
            a => Syntax::Neg(Box::new(a)),
        },
        Tpl::Bin(op, a, b) => {
            let a = instantiate(a, env, problems)?;
            let b = instantiate(b, env, problems)?;
            fold(*op, a, b)
        }
        Tpl::Call { name, args, span } => {
            let mut out = Vec::with_capacity(args.len());
            for a in args {
                out.push(instantiate(a, env, problems)?);
            }
            Syntax::Call {
                name: name.clone(),
                args: out,
                span: *span,
            }
        }
        Tpl::Fold {
            op,
            unit,
            what,
            index,
            set,
            body,
            span,
        } => {
            if env.get(index).is_some() {
                problems.push((
                    format!("{what}({index}, ...): index '{index}' is already bound here"),
                    env.describe(),
                    span.0,
                ));
                return None;
            }
            let mut terms = Vec::with_capacity(set.len());
            let mut ok = true;
            if env.push(&[(*index, *set)]) {
                loop {
                    match instantiate(body, env, problems) {
                        Some(t) => terms.push(t),
                        None => {
                            ok = false;
                            break;
                        }
                    }
                    if !env.advance(1) {
                        break;
                    }
                }
            }
            env.pop(1);
            if !ok {
                return None;
            }
            balanced(*op, terms, *unit)
        }
        Tpl::Ord(index, span) => match env.get(index) {
            Some(b) => Syntax::Num(f64::from(b.pos + 1)),
            None => {
                problems.push((
                    format!("ord({index}): index '{index}' is not bound here"),
                    env.describe(),
                    span.0,
                ));
                return None;
            }
        },
    })
}

/// `a op b`, folded when both are numbers (and the result finite).
fn fold(op: BinOp, a: Syntax, b: Syntax) -> Syntax {
    if let (Syntax::Num(x), Syntax::Num(y)) = (&a, &b) {
        let v = match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => x / y,
            BinOp::Pow => x.powf(*y),
        };
        if v.is_finite() {
            return Syntax::Num(v);
        }
    }
    Syntax::Bin(op, Box::new(a), Box::new(b))
}

/// The terms combined by `op` as a balanced tree (depth log₂ n, within the parser's depth limit
/// when printed), constants folded.
fn balanced(op: BinOp, mut terms: Vec<Syntax>, unit: f64) -> Syntax {
    if terms.is_empty() {
        return Syntax::Num(unit);
    }
    while terms.len() > 1 {
        let mut next = Vec::with_capacity(terms.len().div_ceil(2));
        let mut it = terms.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(fold(op, a, b)),
                None => next.push(a),
            }
        }
        terms = next;
    }
    terms.pop().expect("one term left")
}
