//! Charts as SVG (plotters' SVG backend: text is written as SVG `<text>`, so no font files are
//! needed or shipped). Each chart family has its own module; this one holds what they share:
//! the palette, number labels, and the error type.

pub mod compare;

use plotters::style::RGBColor;

/// A failure to draw (plotters reports a backend error as text).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the chart: {0}")]
pub struct ChartError(pub String);

impl ChartError {
    pub(crate) fn from<E: std::fmt::Display>(e: E) -> ChartError {
        ChartError(e.to_string())
    }
}

/// Colours for series, distinguishable and printable (Okabe–Ito, colour-blind safe).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// The colour of series `k`.
pub fn series_colour(k: usize) -> RGBColor {
    PALETTE[k % PALETTE.len()]
}

/// A diverging colour for `v` in [-1, 1]: blue for negative, white at 0, red for positive.
pub fn diverging(v: f64) -> RGBColor {
    let t = v.clamp(-1.0, 1.0);
    let mix = |a: u8, b: u8, w: f64| (a as f64 + (b as f64 - a as f64) * w).round() as u8;
    let (end, w) = if t < 0.0 {
        (RGBColor(33, 102, 172), -t)
    } else {
        (RGBColor(178, 24, 43), t)
    };
    RGBColor(
        mix(255, end.0, w),
        mix(255, end.1, w),
        mix(255, end.2, w),
    )
}
