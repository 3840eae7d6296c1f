//! The expansion stage of indexed models: `[sets]`, `[tables]` and blocks declared over sets
//! (`[sectors."Y[j]"]`, netputs `over = "i"`, `sum(i, …)`) become the plain model of the
//! contract, which validation then checks as if it had been written out by hand.
//!
//! Expansion works on parsed expressions, never on text: a template is parsed once per
//! element binding, its table references are replaced by numbers, its indexed names by
//! element names (`P[i]` → `P[agr]`), its sums unrolled as balanced trees (depth log n), and
//! constant parts folded, so that a quantity taken from a table is written as a number.
//! Netputs, demands, endowments and taxes declared `over` a set whose quantity is a constant
//! zero are not written at all (they can never become positive), so the expanded model is
//! proportional to the data's non-zeros. Every message names the template's line, the
//! element it was expanding, and the CSV file:row:column when the data is at fault.

use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use indexmap::IndexMap;
use toml::Spanned;

use super::file::{
    AuxFile, ConsumerFile, DemandFile, EndowmentFile, ModelFile, NestFile, NetputFile, Over,
    RawTable, RawValue, SectorFile, TableFile, TaxFile,
};
use super::load::{LineIndex, Source};
use super::{Diagnostic, LoadError};
use crate::expr::{self, BinOp, Syntax};

/// A label of a set: letters, digits and `_`.
pub(crate) fn valid_label(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `NAME[a,b]` → (`NAME`, [`a`, `b`]); `None` for a plain name.
fn split_index(name: &str) -> Option<(&str, Vec<&str>)> {
    let (base, rest) = name.split_once('[')?;
    let labels = rest.strip_suffix(']')?;
    Some((base.trim(), labels.split(',').map(str::trim).collect()))
}

/// The labels of a set, in order, with their positions.
#[derive(Debug)]
struct SetData {
    name: String,
    labels: Vec<String>,
    position: HashMap<String, u32>,
}

impl SetData {
    fn new(name: &str, labels: Vec<String>) -> SetData {
        let position = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i as u32))
            .collect();
        SetData {
            name: name.to_string(),
            labels,
            position,
        }
    }
}

/// A table's numbers: dense in the product of its sets' sizes (missing entries 0), or keyed by
/// label positions when that product is too large to hold.
#[derive(Debug)]
enum Values {
    /// Every entry, with which of them a file or inline table has set.
    Dense {
        values: Vec<f64>,
        set: Vec<bool>,
    },
    Sparse(HashMap<Vec<u32>, f64>),
}

const MAX_DENSE: usize = 100_000_000;

#[derive(Debug)]
struct Table {
    dims: Vec<Rc<SetData>>,
    values: Values,
    parameters: bool,
}

impl Table {
    fn new(dims: Vec<Rc<SetData>>, parameters: bool) -> Table {
        let size = dims
            .iter()
            .try_fold(1usize, |a, d| a.checked_mul(d.labels.len()));
        let values = match size {
            Some(n) if n <= MAX_DENSE => Values::Dense {
                values: vec![0.0; n],
                set: vec![false; n],
            },
            _ => Values::Sparse(HashMap::new()),
        };
        Table {
            dims,
            values,
            parameters,
        }
    }
    fn offset(&self, at: &[u32]) -> usize {
        at.iter()
            .zip(&self.dims)
            .fold(0, |o, (&p, d)| o * d.labels.len() + p as usize)
    }
    fn get(&self, at: &[u32]) -> f64 {
        match &self.values {
            Values::Dense { values, .. } => values[self.offset(at)],
            Values::Sparse(m) => m.get(at).copied().unwrap_or(0.0),
        }
    }
    /// Sets an entry; false when it was set before (a duplicate row).
    fn set(&mut self, at: &[u32], value: f64) -> bool {
        let o = self.offset(at);
        match &mut self.values {
            Values::Dense { values, set } => {
                values[o] = value;
                !std::mem::replace(&mut set[o], true)
            }
            Values::Sparse(m) => m.insert(at.to_vec(), value).is_none(),
        }
    }
}

/// The indices bound while expanding one element: index name → (its set, the label's position).
#[derive(Clone, Default)]
struct Env {
    bound: Vec<(Rc<str>, Rc<SetData>, u32)>,
}

impl Env {
    fn get(&self, name: &str) -> Option<&(Rc<str>, Rc<SetData>, u32)> {
        self.bound.iter().rev().find(|(n, _, _)| &**n == name)
    }
    fn with(&self, name: &Rc<str>, set: &Rc<SetData>, at: u32) -> Env {
        let mut e = Env {
            bound: Vec::with_capacity(self.bound.len() + 1),
        };
        e.bound.extend(self.bound.iter().cloned());
        e.bound.push((name.clone(), set.clone(), at));
        e
    }
    /// `(j = agr, i = srv)` for messages, empty when nothing is bound.
    fn describe(&self) -> String {
        if self.bound.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .bound
            .iter()
            .map(|(n, s, p)| format!("{n} = {}", s.labels[*p as usize]))
            .collect();
        format!(" (expanding {})", parts.join(", "))
    }
}

struct Expander<'a> {
    src: &'a Source,
    lines: LineIndex,
    diags: Vec<Diagnostic>,
    sets: IndexMap<String, Rc<SetData>>,
    tables: IndexMap<String, Table>,
    /// Templates parsed so far, by their offset in the file.
    parsed: HashMap<usize, Option<Rc<Syntax>>>,
}

/// True when a file uses the indexed extension and must be expanded.
pub fn is_indexed(file: &ModelFile) -> bool {
    !file.sets.is_empty() || !file.tables.is_empty()
}

/// Expands an indexed model into the plain one; a plain model is returned as it is.
pub fn expand(mut src: Source) -> Result<Source, LoadError> {
    if !is_indexed(&src.file) {
        return Ok(src);
    }
    let mut x = Expander {
        src: &src,
        lines: LineIndex::new(&src.text),
        diags: Vec::new(),
        sets: IndexMap::new(),
        tables: IndexMap::new(),
        parsed: HashMap::new(),
    };
    x.read_sets();
    x.read_tables();
    let file = if x.diags.is_empty() {
        Some(x.model())
    } else {
        None
    };
    let mut diagnostics = x.diags;
    match file {
        Some(mut file) if diagnostics.is_empty() => {
            file.sam = src.file.sam.take();
            file.sensitivity = src.file.sensitivity.take();
            src.file = file;
            Ok(src)
        }
        _ => {
            diagnostics.extend(src.unknown_fields.iter().cloned());
            diagnostics.sort_by_key(|d| (d.line, d.column));
            diagnostics.dedup();
            Err(LoadError {
                file: src.path.display().to_string(),
                diagnostics,
            })
        }
    }
}

fn spanned<T>(span: Range<usize>, v: T) -> Spanned<T> {
    Spanned::new(span, v)
}

impl<'a> Expander<'a> {
    fn diag(&mut self, offset: usize, field: &str, message: String) {
        let d = self.lines.diagnostic(offset, field, message);
        self.diags.push(d);
    }

    /// A data file's text, or a located message why there is none.
    fn data(&mut self, file: &str, at: usize, field: &str) -> Option<&'a str> {
        let src = self.src;
        match src.data.get(file) {
            Some(Ok(text)) => Some(text.as_str()),
            Some(Err(e)) => {
                self.diag(at, field, e.clone());
                None
            }
            None => {
                self.diag(at, field, format!("{file} was not read"));
                None
            }
        }
    }

    // ---- sets

    fn read_sets(&mut self) {
        let src = self.src;
        let mut aliases = Vec::new();
        for (name, def) in &src.file.sets {
            let field = format!("sets.{name}");
            let at = def.span().start;
            if !super::validate::valid_name(name) || name.contains('[') {
                self.diag(at, &field, format!("'{name}' is not a valid set name"));
                continue;
            }
            let strings = |v: &toml::Value| -> Option<Vec<String>> {
                v.as_array()?
                    .iter()
                    .map(|l| l.as_str().map(str::to_string))
                    .collect()
            };
            let (labels, subset): (Vec<(String, Option<String>)>, Option<String>) = match def
                .get_ref()
            {
                toml::Value::Array(_) => match strings(def.get_ref()) {
                    Some(l) => (l.into_iter().map(|l| (l, None)).collect(), None),
                    None => {
                        self.diag(at, &field, "a set's labels are strings".into());
                        continue;
                    }
                },
                toml::Value::Table(t) => {
                    let known = [
                        "elements",
                        "file",
                        "column",
                        "subset",
                        "alias",
                        "description",
                    ];
                    if let Some(k) = t.keys().find(|k| !known.contains(&k.as_str())) {
                        self.diag(
                            at,
                            &field,
                            format!("unknown key '{k}' (a set has {})", known.join(", ")),
                        );
                        continue;
                    }
                    let text = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
                    if let Some(a) = text("alias") {
                        if t.len() > 1 + usize::from(t.contains_key("description")) {
                            self.diag(
                                at,
                                &field,
                                "an alias has no elements, file or subset of its own".into(),
                            );
                        }
                        aliases.push((name.clone(), a, at, field));
                        continue;
                    }
                    let labels = match (t.get("elements"), text("file"), text("column")) {
                        (Some(list), None, None) => match strings(list) {
                            Some(l) => l.into_iter().map(|l| (l, None)).collect(),
                            None => {
                                self.diag(at, &field, "`elements` is a list of strings".into());
                                continue;
                            }
                        },
                        (None, Some(file), Some(column)) => {
                            self.column_labels(&file, &column, at, &field)
                        }
                        _ => {
                            self.diag(at, &field, "a set is a list of labels, or a table with `elements`, `file` and `column`, or `alias`".into());
                            continue;
                        }
                    };
                    (labels, text("subset"))
                }
                _ => {
                    self.diag(at, &field, "a set is a list of labels or a table".into());
                    continue;
                }
            };
            let mut seen = std::collections::HashSet::new();
            let mut clean = Vec::with_capacity(labels.len());
            for (label, place) in labels {
                let prefix = place.map(|p| format!("{p}: ")).unwrap_or_default();
                if !valid_label(&label) {
                    self.diag(
                        at,
                        &field,
                        format!("{prefix}'{label}' is not a valid label (letters, digits and '_')"),
                    );
                } else if !seen.insert(label.clone()) {
                    self.diag(
                        at,
                        &field,
                        format!("{prefix}duplicate element '{label}' in set {name}"),
                    );
                } else {
                    clean.push(label);
                }
            }
            if let Some(parent) = subset {
                match self.sets.get(&parent).cloned() {
                    None => self.diag(
                        at,
                        &field,
                        format!("unknown set '{parent}' (a set is declared before its subsets)"),
                    ),
                    Some(p) => {
                        for l in &clean {
                            if !p.position.contains_key(l) {
                                self.diag(
                                    at,
                                    &field,
                                    format!("'{l}' is not an element of set {}", p.name),
                                );
                            }
                        }
                    }
                }
            }
            self.sets
                .insert(name.clone(), Rc::new(SetData::new(name, clean)));
        }
        for (name, target, at, field) in aliases {
            match self.sets.get(&target).cloned() {
                Some(s) => {
                    self.sets.insert(name, s);
                }
                None => self.diag(at, &field, format!("alias of an unknown set '{target}'")),
            }
        }
    }

    /// The labels of a CSV column, each with the place it was read from.
    fn column_labels(
        &mut self,
        file: &str,
        column: &str,
        at: usize,
        field: &str,
    ) -> Vec<(String, Option<String>)> {
        let Some(text) = self.data(file, at, field) else {
            return Vec::new();
        };
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = match rdr.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                self.diag(at, field, format!("{file}: {e}"));
                return Vec::new();
            }
        };
        let Some(k) = headers.iter().position(|h| h == column) else {
            let columns = headers.iter().collect::<Vec<_>>().join(", ");
            self.diag(
                at,
                field,
                format!("{file}:1: no column '{column}' (columns: {columns})"),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for rec in rdr.records() {
            match rec {
                Ok(r) => {
                    let row = r.position().map_or(0, |p| p.line());
                    out.push((
                        r.get(k).unwrap_or("").to_string(),
                        Some(format!("{file}:{row}:{}", k + 1)),
                    ));
                }
                Err(e) => {
                    self.diag(at, field, format!("{file}: {e}"));
                    break;
                }
            }
        }
        out
    }

    // ---- tables

    fn read_tables(&mut self) {
        let src = self.src;
        for (name, def) in &src.file.tables {
            let field = format!("tables.{name}");
            let t = def.get_ref();
            if !super::validate::valid_name(name) || name.contains('[') {
                self.diag(
                    def.span().start,
                    &field,
                    format!("'{name}' is not a valid table name"),
                );
                continue;
            }
            if self.sets.contains_key(name) {
                self.diag(
                    def.span().start,
                    &field,
                    format!("'{name}' is already a set"),
                );
                continue;
            }
            let mut dims = Vec::new();
            for d in t.index.get_ref() {
                match self.sets.get(d.get_ref()) {
                    Some(s) => dims.push(s.clone()),
                    None => self.diag(
                        d.span().start,
                        &format!("{field}.index"),
                        format!("unknown set '{}'", d.get_ref()),
                    ),
                }
            }
            if dims.len() != t.index.get_ref().len() {
                continue;
            }
            if dims.is_empty() {
                self.diag(
                    t.index.span().start,
                    &format!("{field}.index"),
                    "a table is indexed by at least one set".into(),
                );
                continue;
            }
            let mut table = Table::new(dims, t.parameters.unwrap_or(false));
            match (&t.file, &t.values) {
                (Some(file), None) => self.table_csv(name, t, file, &mut table, &field),
                (None, Some(values)) => self.table_inline(values, &mut table, &field),
                _ => self.diag(
                    def.span().start,
                    &field,
                    "a table has `file` or `values` (one of them)".into(),
                ),
            }
            self.tables.insert(name.clone(), table);
        }
    }

    fn table_csv(
        &mut self,
        name: &str,
        t: &TableFile,
        file: &Spanned<String>,
        table: &mut Table,
        field: &str,
    ) {
        let Some(text) = self.data(file.get_ref(), file.span().start, field) else {
            return;
        };
        let fname = file.get_ref().clone();
        let at = file.span().start;
        let form = t.form.as_ref().map_or("long", |f| f.get_ref().as_str());
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = match rdr.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                self.diag(at, field, format!("{fname}: {e}"));
                return;
            }
        };
        let mut bad = 0usize;
        // At most this many messages per file: one bad column should not bury the rest.
        const MAX_MESSAGES: usize = 20;
        let mut report = |x: &mut Self, msg: String| {
            bad += 1;
            if bad <= MAX_MESSAGES {
                x.diag(at, field, msg);
            }
        };
        match form {
            "long" => {
                let index: Vec<&str> = t
                    .index
                    .get_ref()
                    .iter()
                    .map(|s| s.get_ref().as_str())
                    .collect();
                let value_col = t.value.as_ref().map_or("value", |v| v.get_ref().as_str());
                let mut cols = Vec::new();
                for want in index.iter().copied().chain(std::iter::once(value_col)) {
                    match headers.iter().position(|h| h == want) {
                        Some(k) => cols.push(k),
                        None => {
                            report(self, format!("{fname}:1: no column '{want}' (a long table has one column per index, {}, and a value column '{value_col}')", index.join(", ")));
                        }
                    }
                }
                if cols.len() != index.len() + 1 {
                    return;
                }
                let mut at_pos = vec![0u32; index.len()];
                for rec in rdr.records() {
                    let r = match rec {
                        Ok(r) => r,
                        Err(e) => {
                            report(self, format!("{fname}: {e}"));
                            break;
                        }
                    };
                    let row = r.position().map_or(0, |p| p.line());
                    let mut ok = true;
                    for (k, &c) in cols[..index.len()].iter().enumerate() {
                        let label = r.get(c).unwrap_or("");
                        match table.dims[k].position.get(label) {
                            Some(&p) => at_pos[k] = p,
                            None => {
                                ok = false;
                                let set = table.dims[k].name.clone();
                                report(self, format!("{fname}:{row}:{}: '{label}' is not an element of set {set} (table {name})", c + 1));
                            }
                        }
                    }
                    let c = cols[index.len()];
                    let cell = r.get(c).unwrap_or("");
                    let value = match cell.parse::<f64>() {
                        Ok(v) if v.is_finite() => v,
                        _ => {
                            report(self, format!("{fname}:{row}:{}: '{cell}' is not a finite number (table {name})", c + 1));
                            continue;
                        }
                    };
                    if ok && !table.set(&at_pos, value) {
                        report(
                            self,
                            format!(
                                "{fname}:{row}: a second entry for {name}[{}]",
                                at_pos
                                    .iter()
                                    .enumerate()
                                    .map(|(k, &p)| table.dims[k].labels[p as usize].clone())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            ),
                        );
                    }
                }
            }
            "matrix" => {
                if table.dims.len() != 2 {
                    report(
                        self,
                        format!("{fname}: a matrix table has two indices (rows, columns)"),
                    );
                    return;
                }
                let mut columns = Vec::new();
                for (c, h) in headers.iter().enumerate().skip(1) {
                    match table.dims[1].position.get(h) {
                        Some(&p) => columns.push(Some(p)),
                        None => {
                            columns.push(None);
                            let set = table.dims[1].name.clone();
                            report(self, format!("{fname}:1:{}: '{h}' is not an element of set {set} (table {name})", c + 1));
                        }
                    }
                }
                for rec in rdr.records() {
                    let r = match rec {
                        Ok(r) => r,
                        Err(e) => {
                            report(self, format!("{fname}: {e}"));
                            break;
                        }
                    };
                    let row = r.position().map_or(0, |p| p.line());
                    let label = r.get(0).unwrap_or("");
                    let Some(&rp) = table.dims[0].position.get(label) else {
                        let set = table.dims[0].name.clone();
                        report(self, format!("{fname}:{row}:1: '{label}' is not an element of set {set} (table {name})"));
                        continue;
                    };
                    for (k, cell) in r.iter().enumerate().skip(1) {
                        let Some(Some(cp)) = columns.get(k - 1).copied() else {
                            continue;
                        };
                        if cell.is_empty() {
                            continue;
                        }
                        match cell.parse::<f64>() {
                            Ok(v) if v.is_finite() => {
                                if !table.set(&[rp, cp], v) {
                                    report(self, format!("{fname}:{row}: a second row for '{label}' (table {name})"));
                                    break;
                                }
                            }
                            _ => report(self, format!("{fname}:{row}:{}: '{cell}' is not a finite number (table {name})", k + 1)),
                        }
                    }
                }
            }
            other => {
                let at = t.form.as_ref().map_or(at, |f| f.span().start);
                self.diag(
                    at,
                    &format!("{field}.form"),
                    format!("unknown form '{other}' (long or matrix)"),
                );
            }
        }
        if bad > MAX_MESSAGES {
            self.diag(
                at,
                field,
                format!("{fname}: {} more problems not shown", bad - MAX_MESSAGES),
            );
        }
    }

    fn table_inline(&mut self, values: &Spanned<toml::Value>, table: &mut Table, field: &str) {
        let at = values.span().start;
        let number = |v: &toml::Value| match v {
            toml::Value::Float(f) if f.is_finite() => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        let mut entries: Vec<(Vec<String>, Option<f64>)> = Vec::new();
        match values.get_ref() {
            toml::Value::Table(t) if table.dims.len() == 1 => {
                for (k, v) in t {
                    entries.push((vec![k.clone()], number(v)));
                }
            }
            toml::Value::Array(rows) => {
                for row in rows {
                    match row.as_array() {
                        Some(cells) if cells.len() == table.dims.len() + 1 => {
                            let labels = cells[..table.dims.len()]
                                .iter()
                                .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
                                .collect();
                            entries.push((labels, number(&cells[table.dims.len()])));
                        }
                        _ => {
                            self.diag(
                                at,
                                &format!("{field}.values"),
                                format!(
                                    "each row is [label, ..., number] with {} labels",
                                    table.dims.len()
                                ),
                            );
                            return;
                        }
                    }
                }
            }
            _ => {
                self.diag(at, &format!("{field}.values"), "inline values are `{ label = number }` (one index) or `[[label, ..., number], ...]`".into());
                return;
            }
        }
        for (labels, value) in entries {
            let mut pos = Vec::with_capacity(labels.len());
            for (k, l) in labels.iter().enumerate() {
                match table.dims[k].position.get(l) {
                    Some(&p) => pos.push(p),
                    None => {
                        let set = table.dims[k].name.clone();
                        self.diag(
                            at,
                            &format!("{field}.values"),
                            format!("'{l}' is not an element of set {set}"),
                        );
                    }
                }
            }
            let Some(v) = value else {
                self.diag(
                    at,
                    &format!("{field}.values"),
                    format!(
                        "the entry for [{}] is not a finite number",
                        labels.join(",")
                    ),
                );
                continue;
            };
            if pos.len() == labels.len() && !table.set(&pos, v) {
                self.diag(
                    at,
                    &format!("{field}.values"),
                    format!("a second entry for [{}]", labels.join(",")),
                );
            }
        }
    }

    // ---- names and expressions

    /// The bindings of a template key `NAME[i,j]` (every index a set): one environment per
    /// element of the product, in order; a plain key gives one empty environment.
    fn bindings(&mut self, base: &Env, indices: &[&str], offset: usize, field: &str) -> Vec<Env> {
        let mut out = vec![base.clone()];
        for &i in indices {
            if base.get(i).is_some() || out.first().is_some_and(|e| e.get(i).is_some()) {
                self.diag(
                    offset,
                    field,
                    format!("index '{i}' is already bound here{}", base.describe()),
                );
                return Vec::new();
            }
            let Some(set) = self.sets.get(i).cloned() else {
                self.diag(
                    offset,
                    field,
                    format!("'{i}' is not a set (an index is a set's name or an alias of one)"),
                );
                return Vec::new();
            };
            let iname: Rc<str> = Rc::from(i);
            out = out
                .iter()
                .flat_map(|e| {
                    (0..set.labels.len() as u32)
                        .map(|p| e.with(&iname, &set, p))
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        out
    }

    /// The label an index of `template` stands for: the one bound to it, or itself when it is
    /// written literally; an unbound set index is an error.
    fn label<'e>(
        &mut self,
        l: &'e str,
        template: &str,
        env: &'e Env,
        offset: usize,
        field: &str,
    ) -> Option<&'e str> {
        match env.get(l) {
            Some((_, set, p)) => Some(set.labels[*p as usize].as_str()),
            None if self.sets.contains_key(l) => {
                self.diag(offset, field, format!("index '{l}' of '{template}' is not bound here: declare the entry `over = \"{l}\"` or use it inside sum({l}, ...){}", env.describe()));
                None
            }
            None => Some(l),
        }
    }

    /// A name with its indices replaced by the labels bound to them (`P[i]` → `P[agr]`).
    fn name(&mut self, template: &str, env: &Env, offset: usize, field: &str) -> Option<String> {
        let Some((base, labels)) = split_index(template) else {
            if env.get(template).is_some() {
                self.diag(
                    offset,
                    field,
                    format!(
                        "'{template}' is an index: it stands for a label, not for a name{}",
                        env.describe()
                    ),
                );
                return None;
            }
            return Some(template.to_string());
        };
        let mut out = String::with_capacity(template.len() + 8);
        out.push_str(base);
        out.push('[');
        for (k, l) in labels.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str(self.label(l, template, env, offset, field)?);
        }
        out.push(']');
        Some(out)
    }

    /// The number `base[labels]` stands for when `base` is a data table; `Some(None)` when it
    /// is not one (a table of parameters, or an entity), `None` after an error.
    fn table_entry(
        &mut self,
        base: &str,
        labels: &[&str],
        name: &str,
        env: &Env,
        offset: usize,
        field: &str,
    ) -> Option<Option<f64>> {
        let Some(t) = self.tables.get_index_of(base) else {
            return Some(None);
        };
        let n = self.tables[t].dims.len();
        if labels.len() != n {
            self.diag(
                offset,
                field,
                format!(
                    "table '{base}' has {n} indices, '{name}' gives {}",
                    labels.len()
                ),
            );
            return None;
        }
        let mut pos = Vec::with_capacity(n);
        for (k, l) in labels.iter().enumerate() {
            let label = self.label(l, name, env, offset, field)?;
            let dim = &self.tables[t].dims[k];
            match dim.position.get(label) {
                Some(&p) => pos.push(p),
                None => {
                    let msg = format!(
                        "'{label}' is not an element of set {} (index {} of table {base}){}",
                        dim.name,
                        k + 1,
                        env.describe()
                    );
                    self.diag(offset, field, msg);
                    return None;
                }
            }
        }
        let table = &self.tables[t];
        Some((!table.parameters).then(|| table.get(&pos)))
    }

    /// Instantiates an expression template under `env`.
    fn syntax(&mut self, s: &Syntax, env: &Env, offset: usize, field: &str) -> Option<Syntax> {
        Some(match s {
            Syntax::Num(v) => Syntax::Num(*v),
            Syntax::Name { name, span } => {
                if let Some((base, labels)) = split_index(name) {
                    if let Some(v) = self.table_entry(base, &labels, name, env, offset, field)? {
                        return Some(Syntax::Num(v));
                    }
                    let n = self.name(name, env, offset, field)?;
                    Syntax::Name {
                        name: n,
                        span: *span,
                    }
                } else {
                    if env.get(name).is_some() {
                        self.diag(
                            offset,
                            field,
                            format!(
                                "'{name}' is an index: it stands for a label, not a value{}",
                                env.describe()
                            ),
                        );
                        return None;
                    }
                    if self.tables.contains_key(name.as_str()) {
                        self.diag(
                            offset,
                            field,
                            format!(
                                "table '{name}' needs its indices, e.g. {name}[{}]",
                                self.tables[name.as_str()]
                                    .dims
                                    .iter()
                                    .map(|d| d.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(",")
                            ),
                        );
                        return None;
                    }
                    Syntax::Name {
                        name: name.clone(),
                        span: *span,
                    }
                }
            }
            Syntax::Neg(a) => match self.syntax(a, env, offset, field)? {
                Syntax::Num(v) => Syntax::Num(-v),
                a => Syntax::Neg(Box::new(a)),
            },
            Syntax::Bin(op, a, b) => {
                let a = self.syntax(a, env, offset, field)?;
                let b = self.syntax(b, env, offset, field)?;
                fold(*op, a, b)
            }
            Syntax::Call { name, args, span }
                if (name == "sum" || name == "prod") && args.len() == 2 =>
            {
                let Syntax::Name { name: index, .. } = &args[0] else {
                    self.diag(
                        offset,
                        field,
                        format!("{name}(INDEX, EXPR): the first argument is a set's name"),
                    );
                    return None;
                };
                let Some(set) = self.sets.get(index.as_str()).cloned() else {
                    self.diag(
                        offset,
                        field,
                        format!("{name}({index}, ...): '{index}' is not a set"),
                    );
                    return None;
                };
                if env.get(index).is_some() {
                    self.diag(
                        offset,
                        field,
                        format!(
                            "{name}({index}, ...): index '{index}' is already bound here{}",
                            env.describe()
                        ),
                    );
                    return None;
                }
                let _ = span;
                let mut terms = Vec::with_capacity(set.labels.len());
                let iname: Rc<str> = Rc::from(index.as_str());
                for p in 0..set.labels.len() as u32 {
                    let e = env.with(&iname, &set, p);
                    terms.push(self.syntax(&args[1], &e, offset, field)?);
                }
                let (op, unit) = if name == "sum" {
                    (BinOp::Add, 0.0)
                } else {
                    (BinOp::Mul, 1.0)
                };
                balanced(op, terms, unit)
            }
            Syntax::Call { name, args, span } => {
                let mut out = Vec::with_capacity(args.len());
                for a in args {
                    out.push(self.syntax(a, env, offset, field)?);
                }
                Syntax::Call {
                    name: name.clone(),
                    args: out,
                    span: *span,
                }
            }
        })
    }

    /// A value (number or expression string) instantiated under `env`: a number when the
    /// template reduces to one.
    fn value(&mut self, v: &RawValue, env: &Env, field: &str) -> Option<RawValue> {
        let toml::Value::String(text) = v.get_ref() else {
            return Some(v.clone());
        };
        // Parsed once per template, not once per element; unparseable text is left to
        // validation, which locates the error in the text.
        let offset = v.span().start;
        let parsed = self
            .parsed
            .entry(offset)
            .or_insert_with(|| expr::parse(text).ok().map(Rc::new))
            .clone();
        let Some(s) = parsed else {
            return Some(v.clone());
        };
        let out = instantiated(self.syntax(&s, env, offset, field)?);
        Some(spanned(v.span(), out))
    }

    /// A value that may also be a list of values (a time path): each element instantiated
    /// under `env` (elements have no spans of their own, so they are parsed uncached).
    fn list_value(&mut self, v: &RawValue, env: &Env, field: &str) -> Option<RawValue> {
        let toml::Value::Array(items) = v.get_ref() else {
            return self.value(v, env, field);
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(match item {
                toml::Value::String(text) => match expr::parse(text) {
                    Ok(s) => instantiated(self.syntax(&s, env, v.span().start, field)?),
                    // Left to validation, which locates the error in the text.
                    Err(_) => item.clone(),
                },
                other => other.clone(),
            });
        }
        Some(spanned(v.span(), toml::Value::Array(out)))
    }

    fn opt_value(
        &mut self,
        v: &Option<RawValue>,
        env: &Env,
        field: &str,
    ) -> Option<Option<RawValue>> {
        match v {
            None => Some(None),
            Some(v) => self.value(v, env, field).map(Some),
        }
    }

    fn string(&mut self, s: &Spanned<String>, env: &Env, field: &str) -> Option<Spanned<String>> {
        let n = self.name(s.get_ref(), env, s.span().start, field)?;
        Some(spanned(s.span(), n))
    }

    fn table_values(&mut self, t: &Option<RawTable>, field: &str) -> Option<RawTable> {
        let t = t.as_ref()?;
        let mut out = IndexMap::with_capacity(t.get_ref().len());
        for (k, v) in t.get_ref() {
            let key_field = format!("{field}.{k}");
            let envs = match split_index(k) {
                Some((_, idx)) if idx.iter().any(|i| self.sets.contains_key(*i)) => {
                    self.bindings(&Env::default(), &idx, v.span().start, &key_field)
                }
                _ => vec![Env::default()],
            };
            for env in envs {
                let Some(key) = self.name(k, &env, v.span().start, &key_field) else {
                    continue;
                };
                if let Some(v) = self.list_value(v, &env, &key_field) {
                    out.insert(key, v);
                }
            }
        }
        Some(spanned(t.span(), out))
    }

    /// The environments of a keyed block (`Y[j]` → one per element of j).
    fn block_envs(&mut self, key: &str, offset: usize, field: &str) -> Vec<Env> {
        match split_index(key) {
            Some((_, idx)) => self.bindings(&Env::default(), &idx, offset, field),
            None => vec![Env::default()],
        }
    }

    /// The environments of an entry declared `over` sets inside `env`.
    fn over_envs(&mut self, over: &Option<Spanned<Over>>, env: &Env, field: &str) -> Vec<Env> {
        let Some(o) = over else {
            return vec![env.clone()];
        };
        let sets: Option<Vec<String>> = match o.get_ref() {
            toml::Value::String(s) => Some(vec![s.clone()]),
            toml::Value::Array(a) => a.iter().map(|v| v.as_str().map(str::to_string)).collect(),
            _ => None,
        };
        let field = format!("{field}.over");
        match sets {
            Some(sets) => {
                let idx: Vec<&str> = sets.iter().map(String::as_str).collect();
                self.bindings(env, &idx, o.span().start, &field)
            }
            None => {
                self.diag(
                    o.span().start,
                    &field,
                    "`over` is a set's name or a list of them".into(),
                );
                Vec::new()
            }
        }
    }

    /// True when an expanded quantity is a constant zero: an entry over a set that is zero
    /// for this element is not written (it can never become positive).
    fn is_zero(v: &RawValue) -> bool {
        matches!(v.get_ref(), toml::Value::Float(x) if *x == 0.0)
            || matches!(v.get_ref(), toml::Value::Integer(0))
    }

    /// One block per element of its key's indices (`Y[j]`), each built by `build` under its
    /// bindings with the block's expanded field prefix (`sectors.Y[s3]`).
    fn blocks<T, U>(
        &mut self,
        kind: &str,
        blocks: &'a IndexMap<String, Spanned<T>>,
        mut build: impl FnMut(&mut Self, &'a T, &Env, &str) -> Option<U>,
    ) -> IndexMap<String, Spanned<U>> {
        let mut out = IndexMap::new();
        for (key, block) in blocks {
            let field = format!("{kind}.{key}");
            let at = block.span().start;
            for env in self.block_envs(key, at, &field) {
                let Some(name) = self.name(key, &env, at, &field) else {
                    continue;
                };
                let Some(u) = build(self, block.get_ref(), &env, &format!("{kind}.{name}")) else {
                    continue;
                };
                if out.contains_key(&name) {
                    self.diag(
                        at,
                        &field,
                        format!("'{name}' is declared twice in [{kind}]"),
                    );
                }
                out.insert(name, spanned(block.span(), u));
            }
        }
        out
    }

    /// One entry per element of its `over` sets (one entry without), each built by `build`;
    /// an entry over sets whose quantity is a constant zero is left out.
    fn entries<T, U>(
        &mut self,
        list: &'a [Spanned<T>],
        env: &Env,
        field: &str,
        over: impl Fn(&T) -> &Option<Spanned<Over>>,
        quantity: impl Fn(&T) -> &RawValue,
        mut build: impl FnMut(&mut Self, &'a T, RawValue, &Env, &str) -> Option<U>,
    ) -> Vec<Spanned<U>> {
        let mut out = Vec::with_capacity(list.len());
        for (k, item) in list.iter().enumerate() {
            let f = format!("{field}[{k}]");
            let t = item.get_ref();
            for e in self.over_envs(over(t), env, &f) {
                let Some(q) = self.value(quantity(t), &e, &f) else {
                    continue;
                };
                if over(t).is_some() && Self::is_zero(&q) {
                    continue;
                }
                if let Some(u) = build(self, t, q, &e, &f) {
                    out.push(spanned(item.span(), u));
                }
            }
        }
        out
    }

    fn taxes(
        &mut self,
        taxes: &'a [Spanned<TaxFile>],
        env: &Env,
        field: &str,
    ) -> Vec<Spanned<TaxFile>> {
        self.entries(
            taxes,
            env,
            &format!("{field}.taxes"),
            |t| &t.over,
            |t| &t.rate,
            |x, t, rate, e, f| {
                Some(TaxFile {
                    agent: x.string(&t.agent, e, f)?,
                    rate,
                    description: t.description.clone(),
                    over: None,
                })
            },
        )
    }

    fn netputs(
        &mut self,
        list: &'a [Spanned<NetputFile>],
        env: &Env,
        field: &str,
    ) -> Vec<Spanned<NetputFile>> {
        self.entries(
            list,
            env,
            field,
            |n| &n.over,
            |n| &n.quantity,
            |x, n, quantity, e, f| {
                let commodity = x.string(&n.commodity, e, f)?;
                let price = x.opt_value(&n.price, e, f)?;
                let nest = match &n.nest {
                    Some(s) => Some(x.string(s, e, f)?),
                    None => None,
                };
                let taxes = x.taxes(&n.taxes, e, f);
                Some(NetputFile {
                    commodity,
                    quantity,
                    price,
                    nest,
                    taxes,
                    description: n.description.clone(),
                    over: None,
                })
            },
        )
    }

    fn sectors(&mut self) -> IndexMap<String, Spanned<SectorFile>> {
        self.blocks("sectors", &self.src.file.sectors, |x, sf, env, f| {
            let elasticity = x.opt_value(&sf.elasticity, env, f)?;
            let transformation = x.opt_value(&sf.transformation, env, f)?;
            let mut nests = Vec::with_capacity(sf.nests.len());
            for (k, n) in sf.nests.iter().enumerate() {
                let nf = n.get_ref();
                let g = format!("{f}.nests[{k}]");
                if let (Some(name), Some(parent), Some(elasticity)) = (
                    x.string(&nf.name, env, &g),
                    x.string(&nf.parent, env, &g),
                    x.opt_value(&nf.elasticity, env, &g),
                ) {
                    nests.push(spanned(
                        n.span(),
                        NestFile {
                            name,
                            parent,
                            elasticity,
                            description: nf.description.clone(),
                        },
                    ));
                }
            }
            let inputs = x.netputs(&sf.inputs, env, &format!("{f}.inputs"));
            let outputs = x.netputs(&sf.outputs, env, &format!("{f}.outputs"));
            Some(SectorFile {
                description: sf.description.clone(),
                elasticity,
                transformation,
                nests,
                inputs,
                outputs,
            })
        })
    }

    fn consumers(&mut self) -> IndexMap<String, Spanned<ConsumerFile>> {
        self.blocks("consumers", &self.src.file.consumers, |x, cf, env, f| {
            let elasticity = x.opt_value(&cf.elasticity, env, f)?;
            let demands = x.entries(
                &cf.demands,
                env,
                &format!("{f}.demands"),
                |d| &d.over,
                |d| &d.quantity,
                |x, d, quantity, e, g| {
                    Some(DemandFile {
                        commodity: x.string(&d.commodity, e, g)?,
                        quantity,
                        price: x.opt_value(&d.price, e, g)?,
                        subsistence: x.opt_value(&d.subsistence, e, g)?,
                        description: d.description.clone(),
                        over: None,
                    })
                },
            );
            let endowments = x.entries(
                &cf.endowments,
                env,
                &format!("{f}.endowments"),
                |d| &d.over,
                |d| &d.quantity,
                |x, d, quantity, e, g| {
                    Some(EndowmentFile {
                        commodity: x.string(&d.commodity, e, g)?,
                        quantity,
                        description: d.description.clone(),
                        over: None,
                    })
                },
            );
            Some(ConsumerFile {
                description: cf.description.clone(),
                role: cf.role.clone(),
                elasticity,
                demands,
                endowments,
            })
        })
    }

    fn auxiliaries(&mut self) -> IndexMap<String, Spanned<AuxFile>> {
        self.blocks("auxiliary", &self.src.file.auxiliary, |x, af, env, f| {
            Some(AuxFile {
                description: af.description.clone(),
                start: x.opt_value(&af.start, env, f)?,
                lower: x.opt_value(&af.lower, env, f)?,
                upper: x.opt_value(&af.upper, env, f)?,
                constraint: x.value(&af.constraint, env, f)?,
            })
        })
    }

    /// The expanded plain model.
    fn model(&mut self) -> ModelFile {
        let src = self.src;
        let file = &src.file;
        let mut commodities = Vec::new();
        for c in file.commodities.get_ref() {
            let envs = self.block_envs(c.get_ref(), c.span().start, "commodities");
            for env in envs {
                if let Some(s) = self.string(c, &env, "commodities") {
                    commodities.push(s);
                }
            }
        }
        let mut parameters = self.table_values(&file.parameters, "parameters");
        // Tables of parameters: one parameter per element of the product of their sets.
        for (name, t) in &self.tables {
            if !t.parameters {
                continue;
            }
            let span = file.tables[name].span();
            let p = parameters.get_or_insert_with(|| spanned(span.clone(), IndexMap::new()));
            let mut pos = vec![0u32; t.dims.len()];
            let total: usize = t.dims.iter().map(|d| d.labels.len()).product();
            for _ in 0..total {
                let labels: Vec<&str> = pos
                    .iter()
                    .zip(&t.dims)
                    .map(|(&q, d)| d.labels[q as usize].as_str())
                    .collect();
                let v = toml::Value::Float(t.get(&pos));
                p.get_mut().insert(
                    format!("{name}[{}]", labels.join(",")),
                    spanned(span.clone(), v),
                );
                for k in (0..pos.len()).rev() {
                    pos[k] += 1;
                    if (pos[k] as usize) < t.dims[k].labels.len() {
                        break;
                    }
                    pos[k] = 0;
                }
            }
        }
        let sectors = self.sectors();
        let consumers = self.consumers();
        let auxiliary = self.auxiliaries();
        let start = self.table_values(&file.start, "start");
        let indicators = self.table_values(&file.indicators, "indicators");
        let mut scenarios = IndexMap::new();
        for (name, s) in &file.scenarios {
            let sf = s.get_ref();
            let f = format!("scenarios.{name}");
            let parameters = self.table_values(&sf.parameters, &format!("{f}.parameters"));
            let fix = self.table_values(&sf.fix, &format!("{f}.fix"));
            let paths = self.table_values(&sf.paths, &format!("{f}.paths"));
            scenarios.insert(
                name.clone(),
                spanned(
                    s.span(),
                    super::file::ScenarioFile {
                        description: sf.description.clone(),
                        parameters,
                        numeraire: sf.numeraire.clone(),
                        fix,
                        from: sf.from.clone(),
                        paths,
                    },
                ),
            );
        }
        let mut targets = Vec::new();
        for (k, t) in file.targets.iter().enumerate() {
            let tf = t.get_ref();
            let f = format!("targets[{k}]");
            let env = Env::default();
            if let (Some(e), Some(value), Some(tolerance), Some(min), Some(max)) = (
                self.value(&tf.expr, &env, &f),
                self.opt_value(&tf.value, &env, &f),
                self.opt_value(&tf.tolerance, &env, &f),
                self.opt_value(&tf.min, &env, &f),
                self.opt_value(&tf.max, &env, &f),
            ) {
                targets.push(spanned(
                    t.span(),
                    super::file::TargetFile {
                        name: tf.name.clone(),
                        scenario: tf.scenario.clone(),
                        expr: e,
                        value,
                        tolerance,
                        min,
                        max,
                        description: tf.description.clone(),
                        period: tf.period.clone(),
                    },
                ));
            }
        }
        let dynamics = file.dynamics.as_ref().map(|d| {
            let df = d.get_ref();
            spanned(
                d.span(),
                super::file::DynamicsFile {
                    periods: df.periods.clone(),
                    start_year: df.start_year.clone(),
                    step: df.step.clone(),
                    discount_rate: df.discount_rate.clone(),
                    update: self.table_values(&df.update, "dynamics.update"),
                    paths: self.table_values(&df.paths, "dynamics.paths"),
                    technology: df.technology.as_ref().map(|names| {
                        let mut out = Vec::new();
                        for n in names.get_ref() {
                            let field = "dynamics.technology";
                            for env in self.block_envs(n.get_ref(), n.span().start, field) {
                                out.extend(self.string(n, &env, field));
                            }
                        }
                        spanned(names.span(), out)
                    }),
                    description: df.description.clone(),
                },
            )
        });
        ModelFile {
            commodities: spanned(file.commodities.span(), commodities),
            start,
            model: spanned(
                file.model.span(),
                super::file::ModelSection {
                    name: file.model.get_ref().name.clone(),
                    description: file.model.get_ref().description.clone(),
                    numeraire: file.model.get_ref().numeraire.clone(),
                    unit: file.model.get_ref().unit.clone(),
                    headline: file.model.get_ref().headline.clone(),
                    gdp: file.model.get_ref().gdp.clone(),
                    revenue: file.model.get_ref().revenue.clone(),
                },
            ),
            parameters,
            sam: None,
            sectors,
            consumers,
            auxiliary,
            scenarios,
            targets,
            indicators,
            sets: IndexMap::new(),
            tables: IndexMap::new(),
            sensitivity: None,
            descriptions: file.descriptions.clone(),
            dynamics,
        }
    }
}

/// An instantiated template as a TOML value: a number when it reduced to one.
fn instantiated(s: Syntax) -> toml::Value {
    match s {
        Syntax::Num(x) if x.is_finite() => toml::Value::Float(x),
        other => toml::Value::String(expr::print(&other)),
    }
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
