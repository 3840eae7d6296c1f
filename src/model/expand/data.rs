//! Reading `[sets]` and `[tables]`: label lists, CSV columns, subsets and aliases; tables in
//! long or matrix CSV form or inline, every label checked against its set with the file, row and
//! column of what is wrong (at most 20 messages per file, then a count).

use std::collections::HashSet;

use toml::Spanned;

use super::{valid_label, Index, SetData, Table};
use crate::model::file::TableFile;
use crate::model::load::{LineIndex, Source};
use crate::model::Diagnostic;

/// Reads the sets and tables of a source.
pub(super) fn read(src: &Source) -> (Index, Vec<Diagnostic>) {
    let mut r = Reader {
        src,
        lines: LineIndex::new(&src.text),
        diags: Vec::new(),
        index: Index::default(),
    };
    r.read_sets();
    r.read_tables();
    (r.index, r.diags)
}

struct Reader<'a> {
    src: &'a Source,
    lines: LineIndex,
    diags: Vec<Diagnostic>,
    index: Index,
}

impl<'a> Reader<'a> {
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
            if !crate::model::validate::valid_name(name) || name.contains('[') {
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
            let mut seen = HashSet::new();
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
                let missing: Vec<String> = match self.index.set(&parent) {
                    None => {
                        self.diag(
                            at,
                            &field,
                            format!(
                                "unknown set '{parent}' (a set is declared before its subsets)"
                            ),
                        );
                        Vec::new()
                    }
                    Some(p) => clean
                        .iter()
                        .filter(|l| !p.position.contains_key(*l))
                        .map(|l| format!("'{l}' is not an element of set {}", p.name))
                        .collect(),
                };
                for m in missing {
                    self.diag(at, &field, m);
                }
            }
            let id = self.index.sets.len();
            self.index.sets.push(SetData::new(id, name, clean));
            self.index.names.insert(name.clone(), id);
        }
        for (name, target, at, field) in aliases {
            match self.index.names.get(&target).copied() {
                Some(id) => {
                    self.index.names.insert(name, id);
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
        // The sets are only read from here on; taken out so that messages can be added while
        // a table holds its sets.
        let sets = std::mem::take(&mut self.index.sets);
        for (name, def) in &src.file.tables {
            let field = format!("tables.{name}");
            let t = def.get_ref();
            if !crate::model::validate::valid_name(name) || name.contains('[') {
                self.diag(
                    def.span().start,
                    &field,
                    format!("'{name}' is not a valid table name"),
                );
                continue;
            }
            if self.index.is_set(name) {
                self.diag(
                    def.span().start,
                    &field,
                    format!("'{name}' is already a set"),
                );
                continue;
            }
            let mut dims = Vec::new();
            for d in t.index.get_ref() {
                match self.index.names.get(d.get_ref()) {
                    Some(&k) => dims.push(&sets[k]),
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
            let mut table = Table::new(dims.clone(), t.parameters.unwrap_or(false));
            match (&t.file, &t.values) {
                (Some(file), None) => {
                    let into = Fill {
                        name,
                        dims: &dims,
                        table: &mut table,
                    };
                    self.table_csv(into, t, file, &field)
                }
                (None, Some(values)) => {
                    let into = Fill {
                        name,
                        dims: &dims,
                        table: &mut table,
                    };
                    self.table_inline(into, values, &field)
                }
                _ => self.diag(
                    def.span().start,
                    &field,
                    "a table has `file` or `values` (one of them)".into(),
                ),
            }
            self.index.tables.insert(name.clone(), table);
        }
        self.index.sets = sets;
    }

    fn table_csv(&mut self, into: Fill, t: &TableFile, file: &Spanned<String>, field: &str) {
        let Some(text) = self.data(file.get_ref(), file.span().start, field) else {
            return;
        };
        let fname = file.get_ref().as_str();
        let at = file.span().start;
        let mut bad = 0usize;
        let mut report = |x: &mut Self, msg: String| {
            bad += 1;
            if bad <= MAX_MESSAGES {
                x.diag(at, field, msg);
            }
        };
        match t.form.as_ref().map_or("long", |f| f.get_ref().as_str()) {
            "long" => {
                let value = t.value.as_ref().map_or("value", |v| v.get_ref().as_str());
                let index: Vec<&str> = t
                    .index
                    .get_ref()
                    .iter()
                    .map(|s| s.get_ref().as_str())
                    .collect();
                read_long(text, fname, &index, value, into, &mut |m| report(self, m));
            }
            "matrix" => read_matrix(text, fname, into, &mut |m| report(self, m)),
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

    fn table_inline(&mut self, into: Fill, values: &Spanned<toml::Value>, field: &str) {
        let at = values.span().start;
        let field = format!("{field}.values");
        let Fill { dims, table, .. } = into;
        let number = |v: &toml::Value| match v {
            toml::Value::Float(f) if f.is_finite() => Some(*f),
            toml::Value::Integer(i) => Some(*i as f64),
            _ => None,
        };
        let mut entries: Vec<(Vec<String>, Option<f64>)> = Vec::new();
        match values.get_ref() {
            toml::Value::Table(t) if dims.len() == 1 => {
                for (k, v) in t {
                    entries.push((vec![k.clone()], number(v)));
                }
            }
            toml::Value::Array(rows) => {
                for row in rows {
                    match row.as_array() {
                        Some(cells) if cells.len() == dims.len() + 1 => {
                            let labels = cells[..dims.len()]
                                .iter()
                                .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
                                .collect();
                            entries.push((labels, number(&cells[dims.len()])));
                        }
                        _ => {
                            let msg = format!(
                                "each row is [label, ..., number] with {} labels",
                                dims.len()
                            );
                            self.diag(at, &field, msg);
                            return;
                        }
                    }
                }
            }
            _ => {
                self.diag(at, &field, "inline values are `{ label = number }` (one index) or `[[label, ..., number], ...]`".into());
                return;
            }
        }
        for (labels, value) in entries {
            let mut pos = Vec::with_capacity(labels.len());
            for (k, l) in labels.iter().enumerate() {
                match dims[k].position.get(l) {
                    Some(&p) => pos.push(p),
                    None => {
                        let msg = format!("'{l}' is not an element of set {}", dims[k].name);
                        self.diag(at, &field, msg);
                    }
                }
            }
            let Some(v) = value else {
                let msg = format!(
                    "the entry for [{}] is not a finite number",
                    labels.join(",")
                );
                self.diag(at, &field, msg);
                continue;
            };
            if pos.len() == labels.len() && !table.set(&pos, v) {
                let msg = format!("a second entry for [{}]", labels.join(","));
                self.diag(at, &field, msg);
            }
        }
    }
}

/// At most this many messages per data file: one bad column should not bury the rest.
const MAX_MESSAGES: usize = 20;

/// A table being read: its name (for messages), its sets and its numbers.
struct Fill<'t, 's> {
    name: &'t str,
    dims: &'t [&'s SetData],
    table: &'t mut Table,
}

/// A CSV reader over text: fields trimmed, rows as bytes (the text is UTF-8 already; a cell is
/// checked only where it is read as a label or a number).
fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

/// A cell read as a finite number.
fn number(cell: &[u8]) -> Option<f64> {
    finite(std::str::from_utf8(cell).ok()?)
}

/// Text read as a finite number.
fn finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A cell as text, for messages.
fn shown(cell: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(cell)
}

/// A label's position in a set, remembering the last label of its column: rows of a long
/// table usually repeat their first labels, which then cost no lookup.
struct Labels<'s> {
    set: &'s SetData,
    last: Option<(Vec<u8>, u32)>,
}

impl Labels<'_> {
    fn position(&mut self, cell: &[u8]) -> Option<u32> {
        if let Some((l, p)) = &self.last {
            if l == cell {
                return Some(*p);
            }
        }
        let p = *self.set.position.get(std::str::from_utf8(cell).ok()?)?;
        self.last = Some((cell.to_vec(), p));
        Some(p)
    }
}

/// A long table: one column per index (named as the index) and a value column.
fn read_long(
    text: &str,
    fname: &str,
    index: &[&str],
    value: &str,
    into: Fill,
    report: &mut dyn FnMut(String),
) {
    let Fill { name, dims, table } = into;
    let mut rdr = csv_reader(text);
    let headers = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return report(format!("{fname}: {e}")),
    };
    let mut cols = Vec::new();
    for want in index.iter().copied().chain(std::iter::once(value)) {
        match headers.iter().position(|h| h == want.as_bytes()) {
            Some(k) => cols.push(k),
            None => report(format!("{fname}:1: no column '{want}' (a long table has one column per index, {}, and a value column '{value}')", index.join(", "))),
        }
    }
    if cols.len() != index.len() + 1 {
        return;
    }
    let mut labels: Vec<Labels> = dims.iter().map(|&set| Labels { set, last: None }).collect();
    let mut at = vec![0u32; index.len()];
    records(&mut rdr, fname, report, |rec, row, report| {
        let mut ok = true;
        for (k, &c) in cols[..index.len()].iter().enumerate() {
            let cell = rec.get(c).unwrap_or(b"");
            match labels[k].position(cell) {
                Some(p) => at[k] = p,
                None => {
                    ok = false;
                    report(format!(
                        "{fname}:{row}:{}: '{}' is not an element of set {} (table {name})",
                        c + 1,
                        shown(cell),
                        dims[k].name
                    ));
                }
            }
        }
        let c = cols[index.len()];
        let cell = rec.get(c).unwrap_or(b"");
        let Some(v) = number(cell) else {
            report(format!(
                "{fname}:{row}:{}: '{}' is not a finite number (table {name})",
                c + 1,
                shown(cell)
            ));
            return;
        };
        if ok && !table.set(&at, v) {
            let labels: Vec<&str> = at
                .iter()
                .enumerate()
                .map(|(k, &p)| dims[k].labels[p as usize].as_str())
                .collect();
            report(format!(
                "{fname}:{row}: a second entry for {name}[{}]",
                labels.join(",")
            ));
        }
    });
}

/// Runs `row` on every record after the header with its line number; a malformed record ends
/// the file with a message.
fn records(
    rdr: &mut csv::Reader<&[u8]>,
    fname: &str,
    report: &mut dyn FnMut(String),
    mut row: impl FnMut(&csv::ByteRecord, u64, &mut dyn FnMut(String)),
) {
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return report(format!("{fname}: {e}")),
        }
        let line = rec.position().map_or(0, |p| p.line());
        row(&rec, line, report);
    }
}

/// A matrix table: row labels in the first column, column labels in the header; empty cells
/// are zero.
fn read_matrix(text: &str, fname: &str, into: Fill, report: &mut dyn FnMut(String)) {
    let Fill { name, dims, table } = into;
    if dims.len() != 2 {
        return report(format!(
            "{fname}: a matrix table has two indices (rows, columns)"
        ));
    }
    let mut rdr = csv_reader(text);
    let headers = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return report(format!("{fname}: {e}")),
    };
    let mut columns = Vec::new();
    for (c, h) in headers.iter().enumerate().skip(1) {
        let p = std::str::from_utf8(h)
            .ok()
            .and_then(|h| dims[1].position.get(h));
        if p.is_none() {
            report(format!(
                "{fname}:1:{}: '{}' is not an element of set {} (table {name})",
                c + 1,
                shown(h),
                dims[1].name
            ));
        }
        columns.push(p.copied());
    }
    if !text.contains('"') {
        let after = rdr.position().clone();
        if let super::Values::Dense { values, set } = &mut table.values {
            let start = after.byte() as usize;
            let rows = MatrixRows {
                text: &text[start.min(text.len())..],
                first_line: after.line(),
                fields: headers.len(),
                columns: &columns,
            };
            return rows.read(fname, name, dims, values, set, report);
        }
    }
    let mut rows = Labels {
        set: dims[0],
        last: None,
    };
    records(&mut rdr, fname, report, |rec, row, report| {
        let label = rec.get(0).unwrap_or(b"");
        let Some(rp) = rows.position(label) else {
            report(format!(
                "{fname}:{row}:1: '{}' is not an element of set {} (table {name})",
                shown(label),
                dims[0].name
            ));
            return;
        };
        for (k, cell) in rec.iter().enumerate().skip(1) {
            let Some(Some(cp)) = columns.get(k - 1).copied() else {
                continue;
            };
            if cell.is_empty() {
                continue;
            }
            match number(cell) {
                Some(v) => {
                    if !table.set(&[rp, cp], v) {
                        report(format!(
                            "{fname}:{row}: a second row for '{}' (table {name})",
                            shown(label)
                        ));
                        break;
                    }
                }
                None => report(format!(
                    "{fname}:{row}:{}: '{}' is not a finite number (table {name})",
                    k + 1,
                    shown(cell)
                )),
            }
        }
    });
}

/// The rows of a matrix file without quotes, after its header: such a file splits at its line
/// ends, so its rows are parsed in parallel, each into its own row of the table (a 5000 × 5000
/// matrix is 25 million numbers), with the messages of the sequential reading in file order.
struct MatrixRows<'t> {
    text: &'t str,
    /// The line number of the first row.
    first_line: u64,
    /// Fields per row (the header's).
    fields: usize,
    /// Per column after the first: its position in the column set, when it is an element.
    columns: &'t [Option<u32>],
}

impl MatrixRows<'_> {
    fn read(
        &self,
        fname: &str,
        name: &str,
        dims: &[&SetData],
        values: &mut [f64],
        set: &mut [bool],
        report: &mut dyn FnMut(String),
    ) {
        use rayon::prelude::*;
        let width = dims[1].len();
        let mut seen = vec![false; dims[0].len()];
        // Row labels first, in order: unknown and repeated rows are reported and skipped.
        let mut work = Vec::with_capacity(dims[0].len());
        let mut problems: Vec<(u64, String)> = Vec::new();
        let mut report_at = |row: u64, m: String| problems.push((row, m));
        for (k, line) in self.text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let row = self.first_line + k as u64;
            let label = line.split(',').next().unwrap_or("").trim();
            match dims[0].position.get(label) {
                None => report_at(
                    row,
                    format!(
                        "{fname}:{row}:1: '{label}' is not an element of set {} (table {name})",
                        dims[0].name
                    ),
                ),
                Some(&p) if seen[p as usize] => report_at(
                    row,
                    format!("{fname}:{row}: a second row for '{label}' (table {name})"),
                ),
                Some(&p) => {
                    seen[p as usize] = true;
                    work.push((row, line, p as usize));
                }
            }
        }
        let mut value_rows: Vec<Option<&mut [f64]>> = values.chunks_mut(width).map(Some).collect();
        let mut set_rows: Vec<Option<&mut [bool]>> = set.chunks_mut(width).map(Some).collect();
        let work: Vec<_> = work
            .into_iter()
            .map(|(row, line, p)| {
                let v = value_rows[p].take().expect("each row once");
                let s = set_rows[p].take().expect("each row once");
                (row, line, v, s)
            })
            .collect();
        let in_rows: Vec<Vec<(u64, String)>> = work
            .into_par_iter()
            .map(|(row, line, v, s)| self.row(fname, name, row, line, v, s))
            .collect();
        for (row, m) in in_rows.into_iter().flatten() {
            problems.push((row, m));
        }
        // In file order, as a sequential reading gives them.
        problems.sort_by_key(|(row, _)| *row);
        for (_, m) in problems {
            report(m);
        }
    }

    /// One row's cells into its row of the table; the messages for it, with its line.
    fn row(
        &self,
        fname: &str,
        name: &str,
        row: u64,
        line: &str,
        values: &mut [f64],
        set: &mut [bool],
    ) -> Vec<(u64, String)> {
        let mut problems = Vec::new();
        let mut fields = 1;
        for (k, cell) in line.split(',').enumerate() {
            fields = k + 1;
            if k == 0 || k > self.columns.len() {
                continue;
            }
            let Some(c) = self.columns[k - 1] else {
                continue;
            };
            let cell = cell.trim();
            if cell.is_empty() {
                continue;
            }
            match finite(cell) {
                Some(v) => {
                    values[c as usize] = v;
                    set[c as usize] = true;
                }
                None => problems.push((
                    row,
                    format!(
                        "{fname}:{row}:{}: '{cell}' is not a finite number (table {name})",
                        k + 1
                    ),
                )),
            }
        }
        if fields != self.fields {
            // Not a row of the matrix: what it set is undone.
            for c in self.columns.iter().flatten() {
                values[*c as usize] = 0.0;
                set[*c as usize] = false;
            }
            problems.clear();
            problems.push((
                row,
                format!(
                    "{fname}:{row}: {fields} fields, but the header has {}",
                    self.fields
                ),
            ));
        }
        problems
    }
}
