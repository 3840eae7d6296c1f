//! The pictures of a sensitivity sweep: fans (for each reported quantity, the band from the 5 %
//! to the 95 % quantile of its change over the draws, the median and the central case; one
//! panel for changes in %, one for changes in levels) and a tornado (for one quantity, the
//! change with each varied parameter at the 5 % and at the 95 % quantile of its distribution,
//! every other at its central value, parameters sorted by how far they move it).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{label_style, title_style, BAND, INK, PALETTE, WIDTH};
use crate::sweep::Summary;

/// Height of one row (a quantity or a parameter).
const ROW: u32 = 24;
/// Height of a panel's title, axis and legend.
const FRAME: u32 = 110;
/// Width of the label column.
const LABELS: u32 = 300;

/// The chart as SVG text: the fans of every reported quantity (by unit), then the tornado of
/// `tornado` (default: the first reported quantity).
pub fn svg(summary: &Summary, tornado: Option<&str>) -> String {
    let percent: Vec<&str> = names(summary, "%");
    let change: Vec<&str> = names(summary, "change");
    let q = tornado.or_else(|| summary.quantities.keys().next().map(String::as_str));
    let heights: Vec<u32> = [percent.len(), change.len()]
        .iter()
        .filter(|n| **n > 0)
        .map(|&n| FRAME + ROW * n as u32)
        .chain(q.map(|_| FRAME + ROW * summary.tornado.len().max(1) as u32))
        .collect();
    let height = heights.iter().sum::<u32>().max(200);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let mut rest = root.clone();
        let mut panel = |h: u32| {
            let (top, bottom) = rest.split_vertically(h);
            rest = bottom;
            top
        };
        if !percent.is_empty() {
            let area = panel(FRAME + ROW * percent.len() as u32);
            fans(&area, summary, &percent, "change in %");
        }
        if !change.is_empty() {
            let area = panel(FRAME + ROW * change.len() as u32);
            fans(&area, summary, &change, "change in levels");
        }
        if let Some(q) = q {
            let area = panel(FRAME + ROW * summary.tornado.len().max(1) as u32);
            tornado_panel(&area, summary, q);
        }
        let _ = root.present();
    }
    text
}

/// Quantities of one unit, in report order.
fn names<'a>(summary: &'a Summary, unit: &str) -> Vec<&'a str> {
    summary
        .quantities
        .iter()
        .filter(|(_, s)| s.unit == unit)
        .map(|(k, _)| k.as_str())
        .collect()
}

/// A range covering `values` and zero with a margin, never empty, and room on the right for
/// the legend (so that it covers no bar).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let width = (hi - lo).max(1e-9);
    (lo - 0.04 * width, hi + 0.45 * width)
}

/// Row labels left of the plot, at the rows' centres.
fn row_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    x: f64,
    labels: &[String],
) {
    let (ox, oy) = area.get_base_pixel();
    let style = label_style().pos(plotters::style::text_anchor::Pos::new(
        plotters::style::text_anchor::HPos::Right,
        plotters::style::text_anchor::VPos::Center,
    ));
    for (i, l) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(x, row_y(i, labels.len())));
        let _ = area.draw(&Text::new(l.clone(), (px - ox - 8, py - oy), style.clone()));
    }
}

/// The chart type of a panel: numbers across, rows down.
type RowsChart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A panel of `n` rows over `x` with its title, x axis and mesh (the row labels are drawn by
/// [`row_labels`]).
fn rows_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: String,
    (lo, hi): (f64, f64),
    n: usize,
) -> Option<RowsChart<'a, DB>> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, title_style())
        .margin(10)
        .margin_left(LABELS)
        .x_label_area_size(30)
        .build_cartesian_2d(lo..hi, -0.6..(n as f64 - 0.4))
        .ok()?;
    let _ = chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(8)
        .label_style(label_style())
        .draw();
    Some(chart)
}

/// The legend of the series drawn with labels.
fn legend<'a, DB: DrawingBackend + 'a>(chart: &mut RowsChart<'a, DB>) {
    let _ = chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(INK.mix(0.4))
        .label_font(label_style())
        .draw();
}

/// The y of row `i` of `n` (the first row on top).
fn row_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}

fn fans<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &Summary,
    names: &[&str],
    unit: &str,
) {
    let stats: Vec<_> = names.iter().map(|n| &s.quantities[*n]).collect();
    let (lo, hi) = span(
        stats
            .iter()
            .flat_map(|q| [q.q05, q.q95, q.central, q.q50].into_iter().flatten()),
    );
    let n = names.len();
    let title = format!(
        "{}: {} draws, 5-95 % bands, medians and the central case — {unit}",
        s.scenario, s.draws
    );
    let Some(mut chart) = rows_chart(area, title, (lo, hi), n) else {
        return;
    };
    let _ = chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, -0.6), (0.0, n as f64 - 0.4)],
        INK.mix(0.5),
    )));
    let band = stats.iter().enumerate().filter_map(|(i, q)| {
        let y = row_y(i, n);
        Some(Rectangle::new(
            [(q.q05?, y - 0.3), (q.q95?, y + 0.3)],
            BAND.filled(),
        ))
    });
    if let Ok(series) = chart.draw_series(band) {
        series
            .label("5-95 % band")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], BAND.filled()));
    }
    let median = stats.iter().enumerate().filter_map(|(i, q)| {
        let y = row_y(i, n);
        Some(PathElement::new(
            vec![(q.q50?, y - 0.3), (q.q50?, y + 0.3)],
            PALETTE[0].stroke_width(3),
        ))
    });
    if let Ok(series) = chart.draw_series(median) {
        series.label("median").legend(|(x, y)| {
            PathElement::new(
                vec![(x + 8, y - 6), (x + 8, y + 6)],
                PALETTE[0].stroke_width(3),
            )
        });
    }
    let central = stats.iter().enumerate().filter_map(|(i, q)| {
        Some(TriangleMarker::new(
            (q.central?, row_y(i, n)),
            6,
            PALETTE[1].filled(),
        ))
    });
    if let Ok(series) = chart.draw_series(central) {
        series
            .label("central case")
            .legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, PALETTE[1].filled()));
    }
    let labels: Vec<String> = names
        .iter()
        .zip(&stats)
        .map(|(n, q)| match q.sign_flip_share {
            Some(f) if f > 0.0 => format!("{n} (sign flips in {:.1} %)", 100.0 * f),
            _ => n.to_string(),
        })
        .collect();
    row_labels(area, &chart, lo, &labels);
    legend(&mut chart);
}

fn tornado_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, s: &Summary, quantity: &str) {
    let Some(j) = s.quantities.get_index_of(quantity) else {
        return;
    };
    let stats = &s.quantities[j];
    let centre = stats.central.unwrap_or(0.0);
    // Parameters by the swing they cause, largest first.
    let mut bars: Vec<(&crate::sweep::TornadoBar, Option<f64>, Option<f64>)> = s
        .tornado
        .iter()
        .map(|b| {
            (
                b,
                b.low.get(j).copied().flatten(),
                b.high.get(j).copied().flatten(),
            )
        })
        .collect();
    let swing = |l: Option<f64>, h: Option<f64>| match (l, h) {
        (Some(l), Some(h)) => (h - l).abs(),
        (Some(v), None) | (None, Some(v)) => (v - centre).abs(),
        _ => 0.0,
    };
    bars.sort_by(|a, b| swing(b.1, b.2).total_cmp(&swing(a.1, a.2)));
    let n = bars.len().max(1);
    let (lo, hi) = span(
        bars.iter()
            .flat_map(|(_, l, h)| [*l, *h])
            .flatten()
            .chain(std::iter::once(centre)),
    );
    let title = format!(
        "tornado of {quantity} ({}): each parameter at its 5 % and 95 % quantile, the others central",
        stats.unit
    );
    let Some(mut chart) = rows_chart(area, title, (lo, hi), n) else {
        return;
    };
    let bar = |k: usize| {
        bars.iter().enumerate().filter_map(move |(i, b)| {
            let v = if k == 0 { b.1 } else { b.2 }?;
            let y = row_y(i, n);
            let off = if k == 0 { 0.02 } else { -0.32 };
            Some(Rectangle::new(
                [(centre, y + off), (v, y + off + 0.3)],
                PALETTE[if k == 0 { 0 } else { 1 }].mix(0.85).filled(),
            ))
        })
    };
    for (k, label) in [
        (0, "parameter at its 5 % quantile"),
        (1, "parameter at its 95 % quantile"),
    ] {
        if let Ok(series) = chart.draw_series(bar(k)) {
            let colour = PALETTE[k];
            series.label(label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 16, y + 5)], colour.filled())
            });
        }
    }
    let _ = chart.draw_series(std::iter::once(PathElement::new(
        vec![(centre, -0.6), (centre, n as f64 - 0.4)],
        INK.stroke_width(2),
    )));
    let labels: Vec<String> = bars
        .iter()
        .map(|(b, _, _)| format!("{} ({:.3} / {:.3})", b.parameter, b.low_value, b.high_value))
        .collect();
    row_labels(area, &chart, lo, &labels);
    legend(&mut chart);
}
