//! Charts, written as SVG text by plotters' SVG backend (text is written as SVG `<text>`, so no
//! font files are needed). One module per kind of chart — `compare` (EV bars and a headline heat
//! map), `paths` (dynamic paths), `sweep` (a sensitivity sweep's fans and tornado) — sharing
//! what is here: the series, the colours, the fonts and the error type.

pub mod compare;
pub mod paths;
pub mod sweep;

use plotters::style::{FontDesc, RGBColor, TextStyle};

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChartError {
    #[error("nothing to draw: {0}")]
    Empty(String),
    #[error("drawing the chart: {0}")]
    Draw(String),
}

/// A named line: points (x, y) in order; a gap in the data ends the line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Colour of the k-th series of a chart: black first (the baseline or reference), then colours
/// that stay apart from each other (Okabe–Ito, readable with colour-vision deficiencies).
pub fn colour(k: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0, 0, 0),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 158, 115),
        RGBColor(213, 94, 0),
        RGBColor(0, 114, 178),
        RGBColor(204, 121, 167),
        RGBColor(240, 228, 66),
    ];
    PALETTE[k % PALETTE.len()]
}

/// The range of the values, widened so that a flat line sits inside the plot.
pub(crate) fn padded_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return None;
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.05 * lo.abs().max(1e-9)
    };
    Some((lo - pad, hi + pad))
}

impl ChartError {
    /// A backend failure, as text.
    pub(crate) fn from<E: std::fmt::Display>(e: E) -> ChartError {
        ChartError::Draw(e.to_string())
    }
}

/// Colour of the k-th of several series of equal standing (bars by consumer): the same
/// Okabe–Ito colours without the black that [`colour`] reserves for a reference.
pub fn series_colour(k: usize) -> RGBColor {
    colour(1 + k % 7)
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
    RGBColor(mix(255, end.0, w), mix(255, end.1, w), mix(255, end.2, w))
}

/// The font family of every label.
pub const FONT: &str = "sans-serif";
/// Chart width in pixels.
pub const WIDTH: u32 = 1100;

/// Series colours, in order: a colour-blind-safe palette (Okabe–Ito).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
];
/// Axes, labels and reference lines.
pub const INK: RGBColor = RGBColor(40, 40, 40);
/// Light fill of bands.
pub const BAND: RGBColor = RGBColor(166, 206, 227);

/// A label font of `size` pixels.
pub fn font(size: u32) -> FontDesc<'static> {
    FontDesc::new(
        plotters::style::FontFamily::Name(FONT),
        size as f64,
        plotters::style::FontStyle::Normal,
    )
}

/// A title.
pub fn title_style() -> TextStyle<'static> {
    TextStyle::from(font(18)).color(&INK)
}

/// An ordinary label.
pub fn label_style() -> TextStyle<'static> {
    TextStyle::from(font(13)).color(&INK)
}
