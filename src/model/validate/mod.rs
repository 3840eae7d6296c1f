//! `Source` → `Model`: resolves names to ids, checks what may stand where, and collects every
//! diagnostic with its line. One module per section of the file; this one holds the shared
//! state (declared names, diagnostics, the bindings of an indexed model's element), parameters
//! and the declarations of the layout.
//!
//! An indexed model (`docs/format_extensions.md` §6) is expanded here, as it is validated:
//! every block and entry is walked once per element of its sets with the element's bindings in
//! [`Builder::env`], and its names and values are instantiated from templates compiled once
//! (`model::expand::template`). A plain model is the case without sets: one element per block,
//! nothing bound.

mod auxiliaries;
mod consumers;
mod dynamics;
mod expressions;
mod presentation;
mod scenarios;
mod sectors;
mod sensitivity;
mod targets;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::rc::Rc;

use indexmap::IndexMap;

use super::expand::template::{self, Compiled, Env, NameTpl};
use super::expand::{self, Index, SetData};
use super::file::{ModelFile, Over, RawTable, RawValue};
use super::load::{self, LineIndex, SamInput, Source};
use super::*;
use crate::expr::functions;
use crate::model::sensitivity::Quantity;

/// Reads and validates a model file.
pub fn load(path: &Path) -> Result<Model, LoadError> {
    validate(&load::read(path)?)
}

/// Validates model text; `path` names it in messages and anchors relative data paths.
pub fn load_str(text: &str, path: &Path) -> Result<Model, LoadError> {
    validate(&load::parse(text.to_string(), path)?)
}

/// Validates (and expands, when it is indexed) what the load stage read into a [`Model`], or
/// every problem found.
pub fn validate(src: &Source) -> Result<Model, LoadError> {
    let (index, problems) = Index::read(src);
    let error = |mut diagnostics: Vec<Diagnostic>| {
        diagnostics.sort_by_key(|d| (d.line, d.column));
        diagnostics.dedup();
        LoadError {
            file: src.path.display().to_string(),
            diagnostics,
        }
    };
    if !problems.is_empty() {
        let mut all = src.unknown_fields.clone();
        all.extend(problems);
        return Err(error(all));
    }
    let mut b = Builder {
        lines: LineIndex::new(&src.text),
        diags: src.unknown_fields.clone(),
        index: &index,
        indexed: expand::is_indexed(&src.file),
        env: Env::default(),
        templates: HashMap::new(),
        name_caches: Vec::new(),
        name_cache_of: HashMap::new(),
        seen: HashSet::new(),
        per_place: HashMap::new(),
        symbols: IndexMap::new(),
        sam: SamInput::Absent,
        params: Vec::new(),
        param_definitions: Vec::new(),
        nest_names: Vec::new(),
        indicator_measures: Vec::new(),
        time: false,
        dynamics: Default::default(),
    };
    let model = b.build(src);
    b.report_suppressed();
    if b.diags.is_empty() {
        Ok(model)
    } else {
        Err(error(b.diags))
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

/// The dotted path of a field, formed only when a message needs it: an entry over sets is
/// checked once per element, millions of times in a large model.
type Field<'f> = &'f dyn fmt::Display;

/// `PREFIX.PART` as a [`Field`], formed when displayed.
struct Part<'p>(&'p dyn fmt::Display, &'p str);

impl fmt::Display for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// A template's text and its compiled form (`None`: reported as wrong), among those written at
/// one offset.
type TemplateAt<'a> = (String, Option<Rc<Compiled<'a>>>);

/// At most this many messages for one place of a template (one per element it failed for);
/// the rest are counted.
const MAX_PER_PLACE: usize = 20;

/// One element of a block declared over sets (`[sectors."Y[j]"]`): the block, its bindings
/// and its name. A plain block is one element with nothing bound.
struct Element<'a> {
    /// The block's position in its section.
    block: usize,
    /// Where its key is written.
    offset: usize,
    dims: Vec<(&'a str, &'a SetData)>,
    at: Vec<u32>,
    name: String,
}

/// A name template over sets and the symbol each of its elements resolves to, filled as
/// elements are met.
struct NameCache<'a> {
    tpl: NameTpl<'a>,
    /// Per key ([`NameTpl::key`]): the symbol, once found.
    syms: Vec<Option<Sym>>,
}

struct Builder<'a> {
    lines: LineIndex,
    diags: Vec<Diagnostic>,
    index: &'a Index,
    /// The file declares sets or tables: its values are templates.
    indexed: bool,
    /// The indices bound while expanding the current element.
    env: Env<'a>,
    /// Compiled templates by the offset of their text, and the text (the items of a list share
    /// its offset); `None`: reported as wrong.
    templates: HashMap<usize, Vec<TemplateAt<'a>>>,
    /// Caches of name templates over sets, and which one belongs to a name's offset.
    name_caches: Vec<NameCache<'a>>,
    name_cache_of: HashMap<usize, usize>,
    /// Messages given while expanding, by place and text: each is given once (not once per
    /// element), at most [`MAX_PER_PLACE`] per place.
    seen: HashSet<(usize, String)>,
    per_place: HashMap<usize, (String, usize)>,
    symbols: IndexMap<String, Sym>,
    sam: SamInput,
    params: Vec<f64>,
    /// Per parameter: its definition when it is derived from earlier parameters.
    param_definitions: Vec<Option<Expr>>,
    /// Per sector: nest name → index.
    nest_names: Vec<HashMap<String, usize>>,
    /// Per indicator so far: depth and node count with the indicators it uses counted in.
    indicator_measures: Vec<(usize, f64)>,
    /// Whether `t` and `year` may stand in the expression being resolved (dynamic updates and
    /// paths only).
    time: bool,
    /// `[dynamics]` as read so far.
    dynamics: dynamics::State,
}

/// How deep an expression may nest counting the indicators it uses (each evaluated through
/// its own expression): bounds the recursion of evaluating it.
pub const MAX_INDICATOR_DEPTH: usize = 4 * crate::expr::MAX_DEPTH;

fn is_description(key: &str) -> bool {
    key == "description"
}

impl<'a> Builder<'a> {
    /// A message at a byte offset; while an element is expanded it names the element, and a
    /// message repeated for every element is given once.
    fn diag_at(&mut self, offset: usize, field: Field, message: String) {
        if self.env.is_empty() {
            let d = self.lines.diagnostic(offset, &field.to_string(), message);
            self.diags.push(d);
        } else {
            let note = self.env.describe();
            self.diag_expanding(offset, field, message, note);
        }
    }

    /// A message met while expanding: `note` names the element.
    fn diag_expanding(&mut self, offset: usize, field: Field, message: String, note: String) {
        if !self.seen.insert((offset, message.clone())) {
            return;
        }
        let field = field.to_string();
        let count = self
            .per_place
            .entry(offset)
            .or_insert_with(|| (field.clone(), 0));
        count.1 += 1;
        if count.1 <= MAX_PER_PLACE {
            let d = self
                .lines
                .diagnostic(offset, &field, format!("{message}{note}"));
            self.diags.push(d);
        }
    }

    /// The count of messages left out at each place.
    fn report_suppressed(&mut self) {
        let mut over: Vec<(usize, String, usize)> = self
            .per_place
            .iter()
            .filter(|(_, (_, n))| *n > MAX_PER_PLACE)
            .map(|(&o, (f, n))| (o, f.clone(), n - MAX_PER_PLACE))
            .collect();
        over.sort();
        for (offset, field, n) in over {
            let d = self.lines.diagnostic(
                offset,
                &field,
                format!("{n} more problems here (other elements) not shown"),
            );
            self.diags.push(d);
        }
    }

    /// Records an indicator's (or checks a target's) measure: an error past
    /// [`MAX_INDICATOR_DEPTH`] levels through the indicators it uses.
    fn check_indicator_depth(
        &mut self,
        e: &Expr,
        offset: usize,
        field: Field,
        indicator: bool,
    ) -> (usize, f64) {
        let m = {
            let known = &self.indicator_measures;
            e.measure(&|i| known.get(i).copied().unwrap_or((1, 1.0)))
        };
        if m.0 > MAX_INDICATOR_DEPTH {
            self.diag_at(
                offset,
                field,
                format!(
                    "nests {} levels deep through the indicators it uses (at most {MAX_INDICATOR_DEPTH})",
                    m.0
                ),
            );
        }
        if indicator {
            // Past the limit the indicator is reported once; those built on it are not
            // reported again for the same depth.
            let recorded = if m.0 > MAX_INDICATOR_DEPTH {
                (1, 1.0)
            } else {
                m
            };
            self.indicator_measures.push(recorded);
        }
        m
    }

    /// The site of a field written at `offset`.
    fn site(&self, field: String, offset: usize) -> Site {
        Site {
            field,
            line: self.lines.position(offset).0,
        }
    }

    fn declare(&mut self, name: &str, sym: Sym, offset: usize, field: Field) {
        if !valid_name(name) {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is not a valid name ([A-Za-z_][A-Za-z0-9_]*, or NAME[label,...] for an element)"),
            );
        }
        if functions::lookup(name).is_some() {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is the name of a function; function names are reserved"),
            );
        }
        if crate::expr::Time::lookup(name).is_some() {
            self.diag_at(
                offset,
                field,
                format!("'{name}' is reserved: in dynamic expressions `t` is the period and `year` its year"),
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

    // ---- expansion: elements, names, templates

    /// The sets an index list names (a block key's indices, an entry's `over`), each a set
    /// not bound already and not repeated.
    fn dims(
        &mut self,
        indices: &[&str],
        template: &str,
        offset: usize,
        field: Field,
    ) -> Option<Vec<(&'a str, &'a SetData)>> {
        let index = self.index;
        let mut dims: Vec<(&'a str, &'a SetData)> = Vec::with_capacity(indices.len());
        for &i in indices {
            let Some((name, &k)) = index.names.get_key_value(i) else {
                self.diag_at(
                    offset,
                    field,
                    format!("'{i}' is not a set (an index is a set's name or an alias of one)"),
                );
                return None;
            };
            let problem = if self.env.get(i).is_some() {
                Some(format!("index '{i}' is already bound here"))
            } else if dims.iter().any(|(d, _)| *d == i) {
                Some(format!("index '{i}' appears twice in '{template}'"))
            } else {
                None
            };
            if let Some(m) = problem {
                self.diag_at(offset, field, m);
                return None;
            }
            dims.push((name.as_str(), &index.sets[k]));
        }
        Some(dims)
    }

    /// The sets of an entry's `over` (none without).
    fn over(
        &mut self,
        over: &Option<toml::Spanned<Over>>,
        field: Field,
    ) -> Option<Vec<(&'a str, &'a SetData)>> {
        let Some(o) = over else {
            return Some(Vec::new());
        };
        let sets: Option<Vec<&str>> = match o.get_ref() {
            toml::Value::String(s) => Some(vec![s.as_str()]),
            toml::Value::Array(a) => a.iter().map(|v| v.as_str()).collect(),
            _ => None,
        };
        let field = Part(field, "over");
        match sets {
            Some(sets) if !sets.is_empty() => {
                let text = sets.join(", ");
                self.dims(&sets, &text, o.span().start, &field)
            }
            _ => {
                self.diag_at(
                    o.span().start,
                    &field,
                    "`over` is a set's name or a list of them".into(),
                );
                None
            }
        }
    }

    /// How many elements an entry's `over` has (1 without; 0 when it names no set).
    fn elements_of(&self, over: &Option<toml::Spanned<Over>>) -> usize {
        let size = |name: &str| self.index.set(name).map_or(0, SetData::len);
        match over.as_ref().map(|o| o.get_ref()) {
            None => 1,
            Some(toml::Value::String(s)) => size(s),
            Some(toml::Value::Array(a)) => a.iter().map(|v| v.as_str().map_or(0, size)).product(),
            Some(_) => 0,
        }
    }

    /// Runs `body` once per element of `dims` (bound in [`Builder::env`], the last fastest);
    /// once with nothing bound when `dims` is empty.
    fn each(&mut self, dims: &[(&'a str, &'a SetData)], mut body: impl FnMut(&mut Self)) {
        if self.env.push(dims) {
            loop {
                body(self);
                if dims.is_empty() || !self.env.advance(dims.len()) {
                    break;
                }
            }
        }
        self.env.pop(dims.len());
    }

    /// The elements of every block of a section (`[sectors."Y[j]"]` is one per element of j;
    /// a key whose bracket entries are labels, `Y[agr]`, is the one element it names).
    fn elements(
        &mut self,
        kind: &str,
        keys: impl Iterator<Item = (&'a String, usize)>,
    ) -> Vec<Element<'a>> {
        let mut out = Vec::new();
        for (block, (key, offset)) in keys.enumerate() {
            let field = format!("{kind}.{key}");
            let tpl = NameTpl::new(key, self.index);
            let indices: Vec<&str> = tpl.indices().map(|(i, _)| i).collect();
            let Some(dims) = self.dims(&indices, key, offset, &field) else {
                continue;
            };
            self.each(&dims, |x| {
                match tpl.instantiate(&x.env) {
                    Ok(name) => out.push(Element {
                        block,
                        offset,
                        dims: dims.clone(),
                        at: x.env.bound[x.env.bound.len() - dims.len()..]
                            .iter()
                            .map(|b| b.pos)
                            .collect(),
                        name,
                    }),
                    Err(m) => x.diag_at(offset, &field, m),
                };
            });
        }
        out
    }

    /// Binds an element's indices for `body`.
    fn within<T>(&mut self, el: &Element<'a>, body: impl FnOnce(&mut Self) -> T) -> T {
        self.env.push(&el.dims);
        let n = el.dims.len();
        let len = self.env.bound.len();
        for (b, &p) in self.env.bound[len - n..].iter_mut().zip(&el.at) {
            b.pos = p;
        }
        let out = body(self);
        self.env.pop(n);
        out
    }

    /// A name written in the file with its indices replaced by the labels bound to them
    /// (`P[i]` → `P[agr]`); the name itself when it has none.
    fn name(&mut self, text: &str, offset: usize, field: Field) -> Option<String> {
        if !self.indexed {
            return Some(text.to_string());
        }
        match NameTpl::new(text, self.index).instantiate(&self.env) {
            Ok(n) => Some(n),
            Err(m) => {
                self.diag_at(offset, field, m);
                None
            }
        }
    }

    /// The cache of a name over sets (`None` for a name without indices): found once per
    /// entry, then used for each of its elements.
    fn name_slot(&mut self, name: &toml::Spanned<String>) -> Option<usize> {
        let text = name.get_ref();
        if !self.indexed || !text.contains('[') {
            return None;
        }
        let offset = name.span().start;
        Some(match self.name_cache_of.get(&offset) {
            Some(&k) => k,
            None => {
                let tpl = NameTpl::new(text, self.index);
                let keys = tpl.keys();
                let syms = if tpl.has_indices() && keys <= 100_000_000 {
                    vec![None; keys]
                } else {
                    Vec::new()
                };
                self.name_caches.push(NameCache { tpl, syms });
                self.name_cache_of
                    .insert(offset, self.name_caches.len() - 1);
                self.name_caches.len() - 1
            }
        })
    }

    /// What a name written in the file resolves to in the current element: the symbol, or
    /// `None` when nothing of that name is declared (`Err` after a message about the name
    /// itself). A name over sets (`P[i]`) is formed and looked up once per element of its own
    /// indices, however many blocks use it: entries over sets meet it millions of times.
    fn lookup_in(
        &mut self,
        slot: Option<usize>,
        name: &toml::Spanned<String>,
        field: Field,
    ) -> Result<Option<Sym>, ()> {
        let Some(slot) = slot else {
            return Ok(self.symbols.get(name.get_ref()).copied());
        };
        let offset = name.span().start;
        let cache = &self.name_caches[slot];
        let key = cache.tpl.key(&self.env);
        if let Some(Some(sym)) = key.and_then(|k| cache.syms.get(k)) {
            return Ok(Some(*sym));
        }
        let n = match cache.tpl.instantiate(&self.env) {
            Ok(n) => n,
            Err(m) => {
                self.diag_at(offset, field, m);
                return Err(());
            }
        };
        let sym = self.symbols.get(&n).copied();
        if let (Some(key), Some(sym)) = (key, sym) {
            if let Some(c) = self.name_caches[slot].syms.get_mut(key) {
                *c = Some(sym);
            }
        }
        Ok(sym)
    }

    /// A name's expanded text, for a message about it.
    fn shown(&mut self, name: &toml::Spanned<String>) -> String {
        if !self.indexed {
            return name.get_ref().clone();
        }
        NameTpl::new(name.get_ref(), self.index)
            .instantiate(&self.env)
            .unwrap_or_else(|_| name.get_ref().clone())
    }

    /// The compiled template of an expression string written at `offset` (parsed and compiled
    /// once); `None` after a message.
    fn template(&mut self, text: &str, offset: usize, field: Field) -> Option<Rc<Compiled<'a>>> {
        if let Some(known) = self.templates.get(&offset) {
            if let Some((_, t)) = known.iter().find(|(written, _)| written == text) {
                return t.clone();
            }
        }
        let compiled = match crate::expr::parse(text) {
            Ok(syn) => match template::compile(&syn, self.index) {
                Ok(c) => Some(Rc::new(c)),
                Err((m, at)) => {
                    self.diag_at(offset + 1 + at, field, m);
                    None
                }
            },
            Err(e) => {
                self.diag_at(
                    offset + 1 + e.offset,
                    field,
                    format!("bad expression \"{text}\": {}", e.kind),
                );
                None
            }
        };
        self.templates
            .entry(offset)
            .or_default()
            .push((text.to_string(), compiled.clone()));
        compiled
    }

    /// A template instantiated for the current element.
    fn instantiate(
        &mut self,
        c: &Compiled<'a>,
        offset: usize,
        field: Field,
    ) -> Option<crate::expr::Syntax> {
        let mut problems = Vec::new();
        let out = template::instantiate(&c.tpl, &mut self.env, &mut problems);
        for (m, note, at) in problems {
            // At the name or call in the string (after its opening quote).
            let at = offset + 1 + at;
            if note.is_empty() {
                self.diag_at(at, field, m);
            } else {
                self.diag_expanding(at, field, m, note);
            }
        }
        out
    }

    // ---- sections

    /// Entries of a name → value table, `description` left out; a key over sets
    /// (`"tax[j]" = 0`) is one entry per element, its value instantiated with the element
    /// bound. `body` gets each entry's expanded key and value.
    fn keyed(
        &mut self,
        t: &'a RawTable,
        prefix: &str,
        mut body: impl FnMut(&mut Self, &str, &'a RawValue, Field),
    ) {
        for (key, v) in t.get_ref() {
            if is_description(key) {
                continue;
            }
            self.each_name(key, v.span().start, prefix, |x, name, field| {
                body(x, name, v, field)
            });
        }
    }

    /// Why a name is not a parameter: an entry of a data table (whose entries are numbers
    /// written into the model at expansion) says how to make it one.
    fn not_a_parameter(&self, name: &str) -> String {
        let base = name.split('[').next().unwrap_or(name);
        match self.index.tables.get(base) {
            Some(t) if name.contains('[') && !t.parameters => format!(
                "'{name}' is an entry of the data table '{base}', whose entries are numbers fixed when the model is expanded: declare the table with `parameters = true` to change them"
            ),
            _ => format!("'{name}' is not a declared parameter"),
        }
    }

    /// Runs `body` with each name a name written at `offset` stands for: the name itself, or
    /// for a name over sets (`tax[j]`, `tfp[tr]`) one per element, bound in the environment;
    /// with the field `PREFIX.NAME`.
    fn each_name(
        &mut self,
        text: &str,
        offset: usize,
        prefix: &str,
        mut body: impl FnMut(&mut Self, &str, Field),
    ) {
        let field = format!("{prefix}.{text}");
        if !self.indexed {
            return body(self, text, &field);
        }
        let tpl = NameTpl::new(text, self.index);
        let indices: Vec<&str> = tpl.indices().map(|(i, _)| i).collect();
        let Some(dims) = self.dims(&indices, text, offset, &field) else {
            return;
        };
        self.each(&dims, |x| match tpl.instantiate(&x.env) {
            Ok(name) => {
                let field = format!("{prefix}.{name}");
                body(x, &name, &field)
            }
            Err(m) => x.diag_at(offset, &field, m),
        });
    }

    /// A value as written, for reports: with the element it was expanded for, if any
    /// (`x[i] * 2 [i = s3]`).
    fn text_of(&self, v: &RawValue) -> String {
        let text = match v.get_ref() {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!("{text}{}", self.text_of_bindings())
    }

    /// ` [j = agr, i = srv]`: the element being expanded, empty when nothing is bound.
    fn text_of_bindings(&self) -> String {
        if self.env.is_empty() {
            return String::new();
        }
        let bound: Vec<String> = self
            .env
            .bound
            .iter()
            .map(|b| format!("{} = {}", b.index, b.set.labels[b.pos as usize]))
            .collect();
        format!(" [{}]", bound.join(", "))
    }

    /// The SAM the load stage read: checked for balance, its cells then available to `sam()`.
    fn sam(&mut self, src: &Source) -> Option<SamSource> {
        let section = src.file.sam.as_ref()?;
        let off = section.get_ref().file.span().start;
        match &src.sam {
            SamInput::Read { source, sam } => {
                let tol = section.get_ref().tolerance.unwrap_or(1e-9);
                if let Err(e) = sam.check_balanced(tol) {
                    self.diag_at(off, &"sam.file", format!("{e}"));
                }
                self.sam = SamInput::Read {
                    source: source.clone(),
                    sam: sam.clone(),
                };
                Some(source.clone())
            }
            SamInput::Failed { source, error } => {
                self.diag_at(off, &"sam.file", error.clone());
                // Cells of a SAM that could not be read are not reported again one by one.
                self.sam = SamInput::Failed {
                    source: source.clone(),
                    error: error.clone(),
                };
                Some(source.clone())
            }
            SamInput::Absent => None,
        }
    }

    /// Parameters: first every entry of the tables of parameters (`tax[s0]`, ...), then
    /// `[parameters]`, each a number or an expression of earlier parameters.
    fn parameters(&mut self, raw: &'a ModelFile) -> Vec<Parameter> {
        let mut parameters = Vec::new();
        // A parameter whose definition could not be built (its fault, e.g. an unreadable SAM
        // cell, is already reported) has no value; neither has any later parameter that reads
        // it, and evaluating those would only repeat the one defect as many messages
        // ("division by zero" by a placeholder 0).
        let mut unavailable: Vec<bool> = Vec::new();
        for (name, t) in &self.index.tables {
            if !t.parameters {
                continue;
            }
            let offset = raw.tables[name].span().start;
            let field = format!("tables.{name}");
            let sets: Vec<&SetData> = t.dims.iter().map(|&d| &self.index.sets[d]).collect();
            let mut pos = vec![0u32; sets.len()];
            for _ in 0..t.len() {
                let labels: Vec<&str> = pos
                    .iter()
                    .zip(&sets)
                    .map(|(&q, d)| d.labels[q as usize].as_str())
                    .collect();
                let pname = format!("{name}[{}]", labels.join(","));
                let value = t.get(&pos);
                self.declare(&pname, Sym::Param(parameters.len()), offset, &field);
                parameters.push(Parameter {
                    name: pname,
                    description: String::new(),
                    value,
                    definition: None,
                });
                self.params.push(value);
                self.param_definitions.push(None);
                unavailable.push(false);
                for k in (0..pos.len()).rev() {
                    pos[k] += 1;
                    if (pos[k] as usize) < sets[k].len() {
                        break;
                    }
                    pos[k] = 0;
                }
            }
        }
        if let Some(t) = &raw.parameters {
            self.keyed(t, "parameters", |x, name, v, field| {
                let off = v.span().start;
                let e = x.value(v, Allow::Parameters, field);
                let blocked = e
                    .as_ref()
                    .is_none_or(|e| e.reads_param(&|i| unavailable[i]));
                unavailable.push(blocked);
                let val = e
                    .as_ref()
                    .filter(|_| !blocked)
                    .and_then(|e| x.number_now(e, off, field))
                    .unwrap_or(0.0);
                x.declare(name, Sym::Param(parameters.len()), off, field);
                let definition = e.filter(|e| e.constant().is_none());
                x.param_definitions.push(definition.clone());
                parameters.push(Parameter {
                    name: name.to_string(),
                    description: String::new(),
                    value: val,
                    definition,
                });
                x.params.push(val);
            });
        }
        parameters
    }

    /// Applies parameter overrides to `values` and evaluates again every derived parameter not
    /// overridden (as `Model::rederive` does once the model is built).
    fn rederive(
        &self,
        values: &mut [f64],
        overrides: &[(usize, f64)],
    ) -> Result<(), crate::expr::EvalError> {
        let definitions = self.param_definitions.iter().map(Option::as_ref);
        super::rederive(definitions, values, overrides).map_err(|(_, e)| e)
    }

    /// Declares every commodity, sector, consumer and auxiliary (the layout order), so any
    /// field may name any of them; returns the commodities and the elements of the blocks.
    fn declarations(&mut self, raw: &'a ModelFile) -> (Vec<Commodity>, Blocks<'a>) {
        if raw.commodities.get_ref().is_empty() {
            self.diag_at(
                raw.commodities.span().start,
                &"commodities",
                "a model needs at least one commodity".into(),
            );
        }
        if raw.consumers.is_empty() {
            self.diag_at(
                raw.model.span().start,
                &"consumers",
                "a model needs at least one consumer (a [consumers.NAME] table with demands and endowments)".into(),
            );
        }
        let mut commodities = Vec::new();
        let listed = raw.commodities.get_ref();
        let elements = self.elements(
            "commodities",
            listed.iter().map(|c| (c.get_ref(), c.span().start)),
        );
        for el in elements {
            self.declare(
                &el.name,
                Sym::Commodity(commodities.len()),
                el.offset,
                &"commodities",
            );
            commodities.push(Commodity {
                name: el.name,
                description: String::new(),
                start: Expr::Num(1.0),
            });
        }
        let blocks = Blocks {
            sectors: self.elements(
                "sectors",
                raw.sectors.iter().map(|(k, s)| (k, s.span().start)),
            ),
            consumers: self.elements(
                "consumers",
                raw.consumers.iter().map(|(k, c)| (k, c.span().start)),
            ),
            auxiliaries: self.elements(
                "auxiliary",
                raw.auxiliary.iter().map(|(k, a)| (k, a.span().start)),
            ),
        };
        for (kind, list, sym) in [
            ("sectors", &blocks.sectors, Sym::Sector as fn(usize) -> Sym),
            ("consumers", &blocks.consumers, Sym::Consumer),
            ("auxiliary", &blocks.auxiliaries, Sym::Aux),
        ] {
            for (i, el) in list.iter().enumerate() {
                let field = format!("{kind}.{}", el.name);
                self.declare(&el.name, sym(i), el.offset, &field);
            }
        }
        (commodities, blocks)
    }

    fn build(&mut self, src: &'a Source) -> Model {
        let raw = &src.file;
        let sam = self.sam(src);
        let parameters = self.parameters(raw);
        let (mut commodities, blocks) = self.declarations(raw);
        let nests = self.nest_names(raw, &blocks.sectors);
        let mut sectors = self.sectors(raw, &blocks.sectors, &nests);
        self.start_levels(raw, &mut sectors, &mut commodities);
        let consumers = self.consumers(raw, &blocks.consumers);
        let auxiliaries = self.auxiliaries(raw, &blocks.auxiliaries);
        let indicators = self.indicators(raw);
        let mut dynamics = self.dynamics(raw);
        let numeraire = raw
            .model
            .get_ref()
            .numeraire
            .as_ref()
            .and_then(|n| self.normaliser(n, &"model.numeraire"));
        let scenarios = self.scenarios(raw);
        let targets = self.targets(raw, &scenarios);
        let mut parameters = parameters;
        let mut indicators = indicators;
        self.descriptions(raw, &mut commodities, &mut parameters, &mut indicators);
        let presentation = self.presentation(raw);
        self.finish_dynamics(&mut dynamics);
        let sensitivity = self.sensitivity(raw);
        let mut model = Model {
            name: raw.model.get_ref().name.get_ref().clone(),
            description: raw.model.get_ref().description.clone().unwrap_or_default(),
            path: src.path.clone(),
            parameters,
            commodities,
            sectors,
            consumers,
            auxiliaries,
            numeraire,
            scenarios,
            targets,
            indicators,
            sam,
            sensitivity: None,
            presentation,
            dynamics,
        };
        self.check_dynamics(&model);
        // A section that names no quantity reports every one.
        model.sensitivity = sensitivity.map(|mut s| {
            if s.report.is_empty() {
                s.report = Quantity::all(&model);
            }
            s
        });
        model
    }

    /// The symbol a name stands for when it is of the kind `want` accepts; otherwise a message
    /// (`wrong` given the name and what it is, `unknown` the name).
    fn resolve_name<T>(
        &mut self,
        name: &toml::Spanned<String>,
        slot: Option<usize>,
        field: Field,
        want: impl Fn(Sym) -> Option<T>,
        wrong: impl Fn(&str, &str) -> String,
        unknown: impl Fn(&str) -> String,
    ) -> Option<T> {
        let sym = self.lookup_in(slot, name, field).ok()?;
        if let Some(t) = sym.and_then(&want) {
            return Some(t);
        }
        let n = self.shown(name);
        let msg = match sym {
            Some(other) => wrong(&n, other.kind()),
            None => unknown(&n),
        };
        self.diag_at(name.span().start, field, msg);
        None
    }

    /// The commodity a name (a template in an indexed model) stands for.
    fn commodity(&mut self, name: &toml::Spanned<String>, field: Field) -> Option<usize> {
        let slot = self.name_slot(name);
        self.commodity_in(slot, name, field)
    }

    /// [`Builder::commodity`] through the name's cache ([`Builder::name_slot`]).
    fn commodity_in(
        &mut self,
        slot: Option<usize>,
        name: &toml::Spanned<String>,
        field: Field,
    ) -> Option<usize> {
        self.resolve_name(
            name,
            slot,
            field,
            |s| match s {
                Sym::Commodity(i) => Some(i),
                _ => None,
            },
            |n, kind| format!("'{n}' is a {kind}, expected a commodity"),
            |n| format!("unknown commodity '{n}' (declare it in `commodities`)"),
        )
    }

    /// The consumer a tax's agent names.
    fn consumer(&mut self, name: &toml::Spanned<String>, field: Field) -> Option<usize> {
        let slot = self.name_slot(name);
        self.resolve_name(
            name,
            slot,
            field,
            |s| match s {
                Sym::Consumer(h) => Some(h),
                _ => None,
            },
            |n, kind| format!("tax agent '{n}' is a {kind}, expected a consumer"),
            |n| format!("unknown consumer '{n}'"),
        )
    }

    fn normaliser(&mut self, n: &toml::Spanned<String>, field: Field) -> Option<Normaliser> {
        let slot = self.name_slot(n);
        self.resolve_name(
            n,
            slot,
            field,
            |s| match s {
                Sym::Commodity(i) => Some(Normaliser::Commodity(i)),
                Sym::Consumer(i) => Some(Normaliser::Consumer(i)),
                _ => None,
            },
            |n, kind| format!("numeraire '{n}' is a {kind}: it must be a commodity or a consumer"),
            |n| format!("unknown numeraire '{n}'"),
        )
    }
}

/// The elements of the blocks of each section, in declaration (layout) order.
struct Blocks<'a> {
    sectors: Vec<Element<'a>>,
    consumers: Vec<Element<'a>>,
    auxiliaries: Vec<Element<'a>>,
}

#[derive(Clone, Copy)]
enum Sign {
    NonNegative,
    Positive,
}

/// A plain name (`[A-Za-z_][A-Za-z0-9_]*`) or an element of an indexed one (`Y[agr]`,
/// `x0[agr,srv]`), as expansion writes them.
pub(crate) fn valid_name(s: &str) -> bool {
    let (base, index) = match s.split_once('[') {
        Some((b, rest)) => match rest.strip_suffix(']') {
            Some(labels) => (b, Some(labels)),
            None => return false,
        },
        None => (s, None),
    };
    let mut ch = base.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && index.is_none_or(|labels| labels.split(',').all(crate::model::expand::valid_label))
}
