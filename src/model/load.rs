//! The load stage: every read of the file system happens here. It reads the model file (bytes,
//! checked as UTF-8 with the place of the first bad byte), parses the TOML into the serde mirror
//! [`ModelFile`], and reads the data files the model names (the SAM of the `[sam]` extension).
//! Validation then works on the returned [`Source`] without touching the disk.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::file::ModelFile;
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

/// Reads a model file and the data files it names.
pub fn read(path: &Path) -> Result<Source, LoadError> {
    let bytes =
        std::fs::read(path).map_err(|e| error(path, 0, 0, "file", format!("cannot read: {e}")))?;
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
    parse(text, path)
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

/// Parses model text; `path` names it in messages and anchors relative data paths.
pub fn parse(text: String, path: &Path) -> Result<Source, LoadError> {
    let file: ModelFile = toml::from_str(&text).map_err(|e| {
        let offset = e.span().map(|s| s.start);
        let (line, column) = offset
            .map(|o| LineIndex::new(&text).position(o))
            .unwrap_or((0, 0));
        let field = offset.map(|o| key_at(&text, o)).unwrap_or_default();
        error(path, line, column, &field, explain(e.message().trim()))
    })?;
    let sam = match &file.sam {
        None => SamInput::Absent,
        Some(section) => {
            let written = section.get_ref().file.get_ref().clone();
            let resolved = path.parent().unwrap_or(Path::new(".")).join(&written);
            let source = SamSource { written, resolved };
            match Sam::read(&source.resolved) {
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
            let read = std::fs::read_to_string(&resolved)
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
    })
}
