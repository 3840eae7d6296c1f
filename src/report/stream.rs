//! Writing the reports of a batch (`solve --all`) as they come instead of all at the end: each
//! report is rendered to bytes on the worker that solved it ([`Renderer`]), and a
//! [`ReportStream`] writes the rendered reports in order with what joins them (the JSON array's
//! brackets and commas, the CSV header). Memory stays bounded by the reports in flight and the
//! formatting runs in parallel with the solves, while the bytes are the same as rendering every
//! report at the end: one JSON object (an array of them for several reports) as
//! `serde_json::to_string_pretty` prints it, CSV rows under one header, or the tables.

use std::io::{self, Write};

use super::{csv_header, SolutionReport};
use crate::compile::Structure;

/// The formats `solve` writes its reports in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SolveFormat {
    Table,
    Json,
    Csv,
}

/// One report rendered for a [`ReportStream`]: its bytes, and (CSV) whether it carries names
/// at all (a scenario that could not be set up has only its status row).
#[derive(Debug, Clone)]
pub struct Rendered {
    bytes: Vec<u8>,
    names: bool,
}

/// Renders reports for one [`ReportStream`]; `Copy` and `Sync`, so that every worker renders
/// the reports it solved.
#[derive(Debug, Clone, Copy)]
pub struct Renderer {
    format: SolveFormat,
    /// Index columns of the CSV: the most labels any name of the model carries.
    csv_width: usize,
    /// JSON: several reports, each an element of one array (indented one level).
    in_array: bool,
}

impl Renderer {
    /// The report's bytes in this renderer's format, as they appear in the stream.
    pub fn render(&self, report: &SolutionReport) -> Rendered {
        let names = has_names(report);
        let bytes = match self.format {
            SolveFormat::Table => {
                let mut text = report.table();
                text.push('\n');
                text.into_bytes()
            }
            SolveFormat::Json => {
                let object = serde_json::to_vec_pretty(report).unwrap_or_default();
                if self.in_array {
                    indent(&object)
                } else {
                    object
                }
            }
            SolveFormat::Csv => csv_bytes(report, if names { self.csv_width } else { 0 }),
        };
        Rendered { bytes, names }
    }
}

/// A report's CSV rows with `width` index columns.
fn csv_bytes(report: &SolutionReport, width: usize) -> Vec<u8> {
    // A report is about 8 kB of CSV: room for it up front, and a small staging buffer.
    let mut w = csv::WriterBuilder::new()
        .buffer_capacity(1024)
        .from_writer(Vec::with_capacity(16 * 1024));
    let _ = report.csv_rows(&mut w, width);
    w.into_inner().unwrap_or_default()
}

/// True when a report names levels, welfare or indicators (every solved scenario's does).
fn has_names(report: &SolutionReport) -> bool {
    !report.variables.is_empty() || !report.welfare.is_empty() || report.indicators.is_some()
}

/// A pretty-printed JSON value one level deeper, as an element of a pretty-printed array: two
/// spaces before every line (JSON strings hold no raw line breaks, so every one is layout).
fn indent(object: &[u8]) -> Vec<u8> {
    let lines = object.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut out = Vec::with_capacity(object.len() + 2 * lines);
    out.extend_from_slice(b"  ");
    for &b in object {
        out.push(b);
        if b == b'\n' {
            out.extend_from_slice(b"  ");
        }
    }
    out
}

/// The reports of a batch written in order as they come: [`ReportStream::push`] each one (in
/// the order of the batch) with its rendering by [`ReportStream::renderer`], then
/// [`ReportStream::finish`]. The first write error is kept and returned by `finish`; nothing
/// more is written after it.
pub struct ReportStream<W: Write> {
    out: W,
    renderer: Renderer,
    /// Reports pushed so far.
    pushed: usize,
    /// CSV: the header is written (with the model's index columns) once a report with names
    /// has come; until then the reports without names wait here, since with no named report
    /// at all the CSV has no index columns.
    csv_started: bool,
    held: Vec<(SolutionReport, Vec<u8>)>,
    error: Option<io::Error>,
}

impl<W: Write> ReportStream<W> {
    /// A stream of `total` reports of `structure`'s model in `format` to `out`.
    pub fn new(
        format: SolveFormat,
        out: W,
        total: usize,
        structure: &Structure,
    ) -> ReportStream<W> {
        ReportStream {
            out,
            renderer: Renderer {
                format,
                csv_width: model_index_width(structure),
                in_array: total != 1,
            },
            pushed: 0,
            csv_started: false,
            held: Vec::new(),
            error: None,
        }
    }

    /// What renders reports for this stream (on any thread).
    pub fn renderer(&self) -> Renderer {
        self.renderer
    }

    /// Writes the next report of the batch, rendered by this stream's renderer.
    pub fn push(&mut self, report: &SolutionReport, rendered: Rendered) {
        let first = self.pushed == 0;
        self.pushed += 1;
        match self.renderer.format {
            SolveFormat::Table => self.write(&rendered.bytes),
            SolveFormat::Json if !self.renderer.in_array => {
                self.write(&rendered.bytes);
                self.write(b"\n");
            }
            SolveFormat::Json => {
                self.write(if first { b"[\n" } else { b",\n" });
                self.write(&rendered.bytes);
            }
            SolveFormat::Csv if self.csv_started => self.write(&rendered.bytes),
            SolveFormat::Csv if !rendered.names => {
                self.held.push((report.clone(), rendered.bytes));
            }
            SolveFormat::Csv => {
                self.start_csv(self.renderer.csv_width);
                for (_, bytes) in std::mem::take(&mut self.held) {
                    self.write(&bytes);
                }
                self.write(&rendered.bytes);
            }
        }
    }

    /// Closes the output (the JSON array, the header of a CSV whose reports have no names)
    /// and returns the writer, flushed, or the first error.
    pub fn finish(mut self) -> io::Result<W> {
        match self.renderer.format {
            SolveFormat::Json if self.renderer.in_array && self.pushed == 0 => self.write(b"[]\n"),
            SolveFormat::Json if self.renderer.in_array => self.write(b"\n]\n"),
            SolveFormat::Csv if !self.csv_started => {
                self.start_csv(0);
                for (report, _) in std::mem::take(&mut self.held) {
                    self.write(&csv_bytes(&report, 0));
                }
            }
            _ => {}
        }
        if self.error.is_none() {
            if let Err(e) = self.out.flush() {
                self.error = Some(e);
            }
        }
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }

    fn start_csv(&mut self, width: usize) {
        self.csv_started = true;
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(csv_header(width));
        let header = w.into_inner().unwrap_or_default();
        self.write(&header);
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(bytes) {
                self.error = Some(e);
            }
        }
    }
}

/// The most labels any name a report of this model can carry has (levels, welfare,
/// indicators): the index columns of the CSV of any batch with a solved scenario.
pub fn model_index_width(structure: &Structure) -> usize {
    let labels = super::label_count;
    let m = structure.model();
    let vars = structure
        .layout()
        .vars()
        .map(|v| labels(structure.var_name(v)));
    let consumers = m.consumers.iter().map(|c| labels(&c.name));
    let indicators = m.indicators.iter().map(|d| labels(&d.name));
    vars.chain(consumers).chain(indicators).max().unwrap_or(0)
}

/// All of a batch's reports rendered at once, the bytes a [`ReportStream`] writes for them.
pub fn render_all(
    reports: &[SolutionReport],
    format: SolveFormat,
    structure: &Structure,
) -> Vec<u8> {
    let mut stream = ReportStream::new(format, Vec::new(), reports.len(), structure);
    let renderer = stream.renderer();
    for r in reports {
        stream.push(r, renderer.render(r));
    }
    stream.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_shifts_every_line_by_two_spaces() {
        assert_eq!(
            indent(b"{\n  \"a\": 1\n}"),
            b"  {\n    \"a\": 1\n  }".to_vec()
        );
    }

    /// The stream's JSON is serde_json's own pretty array of the reports' JSON objects.
    #[test]
    fn json_array_matches_serde_json_pretty() {
        let value = serde_json::json!([{ "a": [1.5, null], "b": {} }, { "c": "x\ny", "d": [] }]);
        let elements: Vec<Vec<u8>> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| indent(&serde_json::to_vec_pretty(v).unwrap()))
            .collect();
        let mut joined = b"[\n".to_vec();
        joined.extend(elements.join(&b",\n"[..]));
        joined.extend(b"\n]");
        assert_eq!(
            String::from_utf8(joined).unwrap(),
            serde_json::to_string_pretty(&value).unwrap()
        );
    }
}
