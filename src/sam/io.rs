//! CSV reading and atomic writing of SAMs.
//!
//! Reading is strict because a silently misread SAM (a shifted row, a cell
//! read as zero) calibrates a wrong model without any visible failure.

use std::path::Path;

use crate::sam::{Sam, SamError};

/// Label expected in the header's first cell (compared case-insensitively).
const HEADER_LABEL: &str = "account";

/// Parses CSV bytes into a SAM; `origin` names the input in errors.
pub(crate) fn parse(bytes: &[u8], origin: &str) -> Result<Sam, SamError> {
    // Spreadsheets often prepend a UTF-8 BOM, which csv does not strip and
    // which would otherwise make the header label "\u{feff}account".
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let err = |line: u64, message: String| SamError::Parse {
        file: origin.to_string(),
        line,
        message,
    };

    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Ragged rows are reported by us, with the account name, instead of
        // csv's generic "found record with N fields" error.
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(bytes);

    let mut lines = LineCounter::new(bytes);
    let mut accounts: Vec<String> = Vec::new();
    let mut have_header = false;
    let mut values: Vec<f64> = Vec::new();
    // Line of each data row, to point duplicate rows at their first occurrence.
    let mut row_lines: Vec<u64> = Vec::new();
    let mut record = csv::ByteRecord::new();

    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = lines.line_before(reader.position().byte());
                return Err(err(line, format!("malformed CSV: {e}")));
            }
        }
        // csv's own record line numbers go wrong after comment and blank
        // lines, so derive the line from the byte offset instead. The reader
        // stops just past the first byte of the record terminator (or at
        // EOF), so that offset minus one is on the record's last line;
        // newlines inside quoted fields take us back to its first line.
        let end_line = lines.line_before(reader.position().byte());
        let inner_newlines = record.iter().map(count_line_breaks).sum::<u64>();
        let line = end_line.saturating_sub(inner_newlines).max(1);

        // Decode and trim ourselves (rather than csv's Trim) so that the
        // newline count above sees the untrimmed fields.
        let mut fields: Vec<&str> = Vec::with_capacity(record.len());
        for (k, raw) in record.iter().enumerate() {
            match std::str::from_utf8(raw) {
                Ok(text) => fields.push(text.trim()),
                Err(e) => {
                    return Err(err(
                        line,
                        format!(
                            "field {} is invalid UTF-8 (save the file as UTF-8): {e}",
                            k + 1
                        ),
                    ));
                }
            }
        }
        // Whitespace-only lines and rows of empty cells (",,,", as exported
        // by spreadsheets) count as blank.
        if fields.iter().all(|f| f.is_empty()) {
            continue;
        }

        if !have_header {
            accounts = parse_header(&fields).map_err(|m| err(line, m))?;
            have_header = true;
            continue;
        }

        let n = accounts.len();
        let r = row_lines.len();
        let name = fields[0];
        if r >= n {
            return Err(err(
                line,
                format!(
                    "extra row '{name}': the header declares {n} accounts and all {n} rows \
                     were already given"
                ),
            ));
        }
        let expected = &accounts[r];
        if name != expected.as_str() {
            let message = if name.is_empty() {
                format!(
                    "row {} has an empty account name (expected '{expected}')",
                    r + 1
                )
            } else if let Some(k) = accounts[..r].iter().position(|a| a == name) {
                format!(
                    "duplicate row for account '{name}' (first given on line {}); \
                     expected row '{expected}' here",
                    row_lines[k]
                )
            } else if accounts[r + 1..].iter().any(|a| a == name) {
                format!(
                    "row '{name}' is out of order: expected row '{expected}' here \
                     (rows must follow the header order)"
                )
            } else {
                format!("row account '{name}' is not in the header (expected '{expected}')")
            };
            return Err(err(line, message));
        }
        if fields.len() != n + 1 {
            return Err(err(
                line,
                format!(
                    "row '{name}' has {} value(s), expected {n} (one per header account)",
                    fields.len() - 1
                ),
            ));
        }
        for (j, &field) in fields.iter().skip(1).enumerate() {
            let cell = || format!("cell (row {name}, column {})", accounts[j]);
            if field.is_empty() {
                return Err(err(
                    line,
                    format!("{} is empty (write 0 for no flow)", cell()),
                ));
            }
            let v: f64 = field
                .parse()
                .map_err(|_| err(line, format!("{} = '{field}' is not a number", cell())))?;
            if !v.is_finite() {
                return Err(err(
                    line,
                    format!("{} = '{field}' is not a finite number", cell()),
                ));
            }
            values.push(v);
        }
        row_lines.push(line);
    }

    if !have_header {
        return Err(err(
            1,
            format!("no header line: expected '{HEADER_LABEL},A,B,...' (the file has no data)"),
        ));
    }
    let n = accounts.len();
    if row_lines.len() < n {
        let last_line = lines.line_before(bytes.len() as u64);
        return Err(err(
            last_line,
            format!(
                "file ends after {} row(s) but the header declares {n} accounts; \
                 first missing row: '{}'",
                row_lines.len(),
                accounts[row_lines.len()]
            ),
        ));
    }
    Ok(Sam::from_parts(origin.to_string(), accounts, values))
}

/// Maps byte offsets to 1-based line numbers, scanning each byte once
/// (offsets are queried in increasing order).
struct LineCounter<'a> {
    bytes: &'a [u8],
    scanned: usize,
    newlines: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            scanned: 0,
            newlines: 0,
        }
    }

    /// Line of the byte just before `offset` (line 1 for offset 0).
    fn line_before(&mut self, offset: u64) -> u64 {
        let target = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .saturating_sub(1)
            .min(self.bytes.len());
        if target > self.scanned {
            let bytes = self.bytes;
            self.newlines += (self.scanned..target)
                .filter(|&k| is_line_break(bytes, k))
                .count() as u64;
            self.scanned = target;
        }
        self.newlines + 1
    }
}

/// Whether `bytes[k]` ends a line: "\n", or a "\r" not followed by "\n"
/// (csv accepts "\n", "\r\n" and lone "\r"; a "\r\n" counts once, at its "\n").
fn is_line_break(bytes: &[u8], k: usize) -> bool {
    match bytes[k] {
        b'\n' => true,
        b'\r' => bytes.get(k + 1) != Some(&b'\n'),
        _ => false,
    }
}

/// Number of line breaks in `bytes`.
fn count_line_breaks(bytes: &[u8]) -> u64 {
    (0..bytes.len())
        .filter(|&k| is_line_break(bytes, k))
        .count() as u64
}

/// Validates the header record and returns the account names.
fn parse_header(fields: &[&str]) -> Result<Vec<String>, String> {
    let label = fields[0];
    if !label.eq_ignore_ascii_case(HEADER_LABEL) {
        return Err(format!(
            "header must start with '{HEADER_LABEL}' (found '{label}'); \
             expected '{HEADER_LABEL},A,B,...'"
        ));
    }
    let mut accounts: Vec<String> = Vec::with_capacity(fields.len().saturating_sub(1));
    for (k, &name) in fields.iter().enumerate().skip(1) {
        // k is the 0-based CSV field index; report 1-based CSV columns.
        if name.is_empty() {
            return Err(format!("header column {} has an empty account name", k + 1));
        }
        if let Some(first) = accounts.iter().position(|a| a == name) {
            return Err(format!(
                "duplicate account '{name}' in header (columns {} and {})",
                first + 2,
                k + 1
            ));
        }
        accounts.push(name.to_string());
    }
    if accounts.is_empty() {
        return Err("header declares no accounts".to_string());
    }
    Ok(accounts)
}

/// Formats a value so that parsing it back gives the same f64 (`{}` is the
/// shortest round-trip form); -0 is written as 0.
fn format_value(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v}")
    }
}

/// Writes `sam` as CSV to a temporary file next to `path`, then renames it
/// over `path` (rename within one directory is atomic on POSIX and Windows).
pub(crate) fn write_atomic(sam: &Sam, path: &Path) -> Result<(), SamError> {
    let file = path.display().to_string();
    let io_err = |source: std::io::Error| SamError::Io {
        file: file.clone(),
        source,
    };
    crate::files::write_atomic_with(path, |f| {
        // A row starting with an unquoted '#' would be read back as a comment,
        // so quote names when any of them starts with '#'.
        let quote = if sam.accounts().iter().any(|a| a.starts_with('#')) {
            csv::QuoteStyle::NonNumeric
        } else {
            csv::QuoteStyle::Necessary
        };
        let mut writer = csv::WriterBuilder::new().quote_style(quote).from_writer(f);
        let header = std::iter::once(HEADER_LABEL).chain(sam.accounts().iter().map(String::as_str));
        writer.write_record(header)?;
        let n = sam.n_accounts();
        for (i, name) in sam.accounts().iter().enumerate() {
            let mut row = Vec::with_capacity(n + 1);
            row.push(name.clone());
            row.extend((0..n).map(|j| format_value(sam.value(i, j))));
            writer.write_record(&row)?;
        }
        writer.flush()
    })
    .map_err(io_err)?;
    Ok(())
}
