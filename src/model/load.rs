//! The load stage: every read of the file system happens here. It reads the model file (bytes,
//! checked as UTF-8 with the place of the first bad byte), parses the TOML into the serde mirror
//! [`ModelFile`], and reads the data files the model names (the SAM of the `[sam]` extension).
//! Validation then works on the returned [`Source`] without touching the disk.

use std::path::{Path, PathBuf};

use super::file::ModelFile;
use super::{Diagnostic, LoadError, SamSource};
use crate::sam::Sam;

/// A model file as read: its text, parsed TOML and data files.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    pub file: ModelFile,
    pub sam: SamInput,
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

/// Parses model text; `path` names it in messages and anchors relative data paths.
pub fn parse(text: String, path: &Path) -> Result<Source, LoadError> {
    let file: ModelFile = toml::from_str(&text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| LineIndex::new(&text).position(s.start))
            .unwrap_or((0, 0));
        error(path, line, column, "", e.message().trim().to_string())
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
    Ok(Source {
        path: path.to_path_buf(),
        text,
        file,
        sam,
    })
}
