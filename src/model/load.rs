//! The load stage: every read of the file system happens here. It reads the model file (bytes,
//! checked as UTF-8 with the place of the first bad byte), parses the TOML into the serde mirror
//! [`ModelFile`], and reads the data files the model names (the SAM of the `[sam]` extension).
//! Validation then works on the returned [`Source`] without touching the disk.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::file::ModelFile;
use super::sources::{provider_for, SourceProvider};
use super::{Diagnostic, LoadError, SamSource};
use crate::sam::Sam;

/// A model file as read: its text, parsed TOML and data files.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub file: ModelFile,
    pub sam: SamInput,
    /// The CSV files named by `[sets]` and `[tables]` (indexed models), by the path as
    /// written: their text, or why they could not be read.
    pub data: IndexMap<String, Result<String, String>>,
    /// Unknown fields found while reading the file: reported with whatever validation finds
    /// in the rest of it (the file was read with them blanked out).
    pub unknown_fields: Vec<Diagnostic>,
}

/// The SAM named by a `[sam]` table.
#[derive(Debug, Clone)]
pub enum SamInput {
    /// The model has no `[sam]` table.
    Absent,
    Read {
        source: SamSource,
        sam: Sam,
    },
    /// The file could not be read or parsed; `error` says why (file, line, account).
    Failed {
        source: SamSource,
        error: String,
    },
}

/// Byte offsets of line starts, for 1-based line and column numbers.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        Self::of_bytes(text.as_bytes())
    }
    fn of_bytes(bytes: &[u8]) -> Self {
        let mut starts = vec![0];
        starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }
    /// A diagnostic at a byte offset.
    pub(crate) fn diagnostic(&self, offset: usize, field: &str, message: String) -> Diagnostic {
        let (line, column) = self.position(offset);
        Diagnostic {
            line,
            column,
            field: field.to_string(),
            message,
        }
    }
    /// 1-based line and column of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset);
        (line, offset - self.starts[line - 1] + 1)
    }
}

fn error(path: &Path, line: usize, column: usize, field: &str, message: String) -> LoadError {
    LoadError {
        file: path.display().to_string(),
        diagnostics: vec![Diagnostic {
            line,
            column,
            field: field.into(),
            message,
        }],
    }
}

/// Reads a model file and the data files it names, from the provider its path belongs to
/// (the file system, or the files built into the binary).
pub fn read(path: &Path) -> Result<Source, LoadError> {
    read_with(path, provider_for(path))
}

/// Reads a model file and the data files it names through `files`.
pub fn read_with(path: &Path, files: &dyn SourceProvider) -> Result<Source, LoadError> {
    let bytes = files
        .read(path)
        .map_err(|e| error(path, 0, 0, "file", format!("cannot read: {e}")))?;
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let (line, column) = LineIndex::of_bytes(e.as_bytes()).position(offset);
            return Err(error(
                path,
                line,
                column,
                "",
                format!(
                    "the file is not UTF-8: invalid byte 0x{:02x} at byte {offset}",
                    e.as_bytes()[offset]
                ),
            ));
        }
    };
    parse_with(text, path, files)
}

/// The top-level keys of a model file: written after a `[table]` header, TOML reads them as
/// part of that table.
const TOP_LEVEL_KEYS: &[&str] = &[
    "commodities",
    "start",
    "parameters",
    "sam",
    "sectors",
    "consumers",
    "auxiliary",
    "scenarios",
    "targets",
    "indicators",
    "sets",
    "tables",
    "sensitivity",
];

/// The dotted key written at `offset`: the nearest table header above it and the key before
/// the `=` on its line (serde's messages name the type, not the key).
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let key = line
        .find('=')
        .filter(|&eq| line_start + eq < offset)
        .map(|eq| line[..eq].trim().trim_matches('"').to_string())
        .unwrap_or_default();
    let header = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| {
            let l = l.split('#').next().unwrap_or(l).trim();
            l.trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string()
        });
    match (header, key.is_empty()) {
        (Some(h), false) => format!("{h}.{key}"),
        (Some(h), true) => h,
        (None, _) => key,
    }
}

/// serde's wording made a modeller's: types named as they are written, and a hint for a
/// top-level key caught under a table header.
fn explain(message: &str) -> String {
    let mut m = message.to_string();
    for (from, to) in [("a sequence", "a list"), ("a map", "a table")] {
        m = m.replace(from, to);
    }
    // "expected struct SectorFile" → "expected a table"
    while let Some(i) = m.find("struct ") {
        let end = m[i + 7..]
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .map_or(m.len(), |j| i + 7 + j);
        m.replace_range(i..end, "a table");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or("");
        if TOP_LEVEL_KEYS.contains(&name) {
            m.push_str(&format!(
                "; hint: `{name}` is a top-level key, but TOML reads every key written after a [table] header as part of that table: move it above the first header"
            ));
        }
    }
    m
}

/// The most unknown fields one file reports (each costs a parse of the file).
const MAX_UNKNOWN_FIELDS: usize = 50;

/// Deserializes the file's TOML. serde stops at the first unknown field; so that a file's
/// unknown fields are all reported at once, each one is blanked out of a working copy of the
/// text (spaces over the key and its value, so every byte keeps its position and every later
/// message its line and column) and the copy is read again, until it reads or another kind of
/// error (reported too) stops it. When the blanked copy reads, its unknown fields come back
/// beside the file, for validation to report with the rest.
fn deserialize(text: &str, path: &Path) -> Result<(ModelFile, Vec<Diagnostic>), LoadError> {
    let lines = LineIndex::new(text);
    let mut work = text.to_string();
    let mut diagnostics = Vec::new();
    let mut blanked: Vec<String> = Vec::new();
    loop {
        let e = match toml::from_str::<ModelFile>(&work) {
            Ok(file) => return Ok((file, diagnostics)),
            Err(e) => e,
        };
        // A field written in the wrong table is reported once, as unknown where it stands (with
        // a hint), not again as missing where it belongs.
        let missing = e.message().trim_start().strip_prefix("missing field ");
        if missing.is_some_and(|m| blanked.iter().any(|b| m.trim_matches('`') == b)) {
            break;
        }
        let offset = e.span().map(|s| s.start);
        let (line, column) = offset.map(|o| lines.position(o)).unwrap_or((0, 0));
        let field = offset.map(|o| key_at(text, o)).unwrap_or_default();
        if let Some(name) = e
            .message()
            .trim_start()
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            blanked.push(name.to_string());
        }
        diagnostics.push(Diagnostic {
            line,
            column,
            field,
            message: explain(e.message().trim()),
        });
        let unknown = e.message().trim_start().starts_with("unknown field");
        if !unknown
            || diagnostics.len() >= MAX_UNKNOWN_FIELDS
            || !offset.is_some_and(|o| blank_entry(&mut work, o))
        {
            break;
        }
    }
    Err(LoadError {
        file: path.display().to_string(),
        diagnostics,
    })
}

/// Blanks the `key = value` entry whose key starts at `offset` (and the comma that separates
/// it from its neighbours in an inline table) with spaces, keeping newlines. False when no such
/// entry is found or the blanked text would no longer be valid TOML (then nothing changes).
fn blank_entry(work: &mut String, offset: usize) -> bool {
    use toml::de::{DeTable, DeValue};
    type Entry = (std::ops::Range<usize>, std::ops::Range<usize>);
    fn find(t: &DeTable<'_>, offset: usize) -> Option<Entry> {
        for (k, v) in t.iter() {
            if k.span().contains(&offset) {
                return Some((k.span(), v.span()));
            }
            if let Some(found) = within(v.get_ref(), offset) {
                return Some(found);
            }
        }
        None
    }
    fn within(v: &DeValue<'_>, offset: usize) -> Option<Entry> {
        match v {
            DeValue::Table(t) => find(t, offset),
            DeValue::Array(a) => a.iter().find_map(|x| within(x.get_ref(), offset)),
            _ => None,
        }
    }
    let Ok(doc) = DeTable::parse(work) else {
        return false;
    };
    let Some((key, value)) = find(doc.get_ref(), offset) else {
        return false;
    };
    let bytes = work.as_bytes();
    let (mut start, mut end) = (key.start, value.end);
    // An inline table's entries are separated by commas: take the one after, or else before.
    let mut after = end;
    while after < bytes.len() && (bytes[after] == b' ' || bytes[after] == b'\t') {
        after += 1;
    }
    if bytes.get(after) == Some(&b',') {
        end = after + 1;
    } else {
        let mut before = start;
        while before > 0 && (bytes[before - 1] == b' ' || bytes[before - 1] == b'\t') {
            before -= 1;
        }
        if before > 0 && bytes[before - 1] == b',' {
            start = before - 1;
        }
    }
    let blanked: String = work[start..end]
        .chars()
        .map(|c| if c == '\n' || c == '\r' { c } else { ' ' })
        .collect();
    // Multi-byte characters become one space each: pad so later offsets do not move.
    let pad = (end - start) - blanked.len();
    let mut next = String::with_capacity(work.len());
    next.push_str(&work[..start]);
    next.push_str(&blanked);
    next.extend(std::iter::repeat_n(' ', pad));
    next.push_str(&work[end..]);
    if DeTable::parse(&next).is_err() {
        return false;
    }
    *work = next;
    true
}

/// Parses model text; `path` names it in messages and anchors relative data paths, which are
/// read from the provider `path` belongs to.
pub fn parse(text: String, path: &Path) -> Result<Source, LoadError> {
    parse_with(text, path, provider_for(path))
}

/// Parses model text; `path` names it in messages and anchors relative data paths, which are
/// read through `files`.
pub fn parse_with(
    text: String,
    path: &Path,
    files: &dyn SourceProvider,
) -> Result<Source, LoadError> {
    let (file, unknown_fields) = deserialize(&text, path)?;
    let sam = match &file.sam {
        None => SamInput::Absent,
        Some(section) => {
            let written = section.get_ref().file.get_ref().clone();
            let resolved = path.parent().unwrap_or(Path::new(".")).join(&written);
            let source = SamSource { written, resolved };
            let origin = source.resolved.display().to_string();
            let read = files
                .read(&source.resolved)
                .map_err(|e| crate::sam::SamError::Io {
                    file: origin.clone(),
                    source: e,
                })
                .and_then(|bytes| Sam::from_bytes(&bytes, &origin));
            match read {
                Ok(sam) => SamInput::Read { source, sam },
                Err(e) => SamInput::Failed {
                    source,
                    error: e.to_string(),
                },
            }
        }
    };
    let mut data = IndexMap::new();
    let named = file
        .sets
        .values()
        .filter_map(|s| s.get_ref().get("file").and_then(|f| f.as_str()))
        .chain(
            file.tables
                .values()
                .filter_map(|t| t.get_ref().file.as_ref().map(|f| f.get_ref().as_str())),
        );
    for written in named {
        let written = &written.to_string();
        if !data.contains_key(written) {
            let resolved = path.parent().unwrap_or(Path::new(".")).join(written);
            let read = files
                .read(&resolved)
                .map_err(|e| e.to_string())
                .and_then(|b| String::from_utf8(b).map_err(|e| format!("not UTF-8: {e}")))
                .map_err(|e| format!("cannot read {}: {e}", resolved.display()));
            data.insert(written.clone(), read);
        }
    }
    Ok(Source {
        path: path.to_path_buf(),
        text,
        file,
        sam,
        data,
        unknown_fields,
    })
}
