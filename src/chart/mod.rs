//! Charts as SVG (plotters' SVG backend: text is written as SVG `<text>`, so no font files are
//! needed). One module per kind of chart — `sweep` draws a sensitivity sweep's fans and
//! tornado — sharing the styling below, so every chart of tokencge looks alike.

pub mod sweep;

use plotters::style::{FontDesc, RGBColor, TextStyle};

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
