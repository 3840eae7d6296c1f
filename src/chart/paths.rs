//! Paths over time: one panel per quantity, one line per scenario (the baseline first, in
//! black), the years on the horizontal axis and a legend shared by all panels at the top.

use plotters::prelude::*;

use super::{colour, padded_range, ChartError, Series};

/// One quantity's panel: its name and a series per scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

const PANEL_WIDTH: u32 = 420;
const PANEL_HEIGHT: u32 = 280;
const TITLE_HEIGHT: u32 = 40;
const LEGEND_ROW: u32 = 22;

/// Draws the panels as one SVG document. Every panel has the same series labels, in the same
/// order and colours (those of the first panel make the legend).
pub fn paths_svg(title: &str, panels: &[Panel]) -> Result<String, ChartError> {
    let first = panels
        .first()
        .ok_or_else(|| ChartError::Empty("no quantity to plot".into()))?;
    let cols = (panels.len() as f64).sqrt().ceil().clamp(1.0, 3.0) as usize;
    let rows = panels.len().div_ceil(cols);
    let labels: Vec<&str> = first.series.iter().map(|s| s.label.as_str()).collect();
    let per_row = (cols as u32 * PANEL_WIDTH / 200).max(1) as usize;
    let legend_height = LEGEND_ROW * labels.len().div_ceil(per_row).max(1) as u32 + 8;
    let width = cols as u32 * PANEL_WIDTH;
    let height = TITLE_HEIGHT + legend_height + rows as u32 * PANEL_HEIGHT;
    let draw = |e: &dyn std::fmt::Display| ChartError::Draw(e.to_string());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let (head, body) = root.split_vertically(TITLE_HEIGHT + legend_height);
        head.draw_text(
            title,
            &("sans-serif", 20).into_font().color(&BLACK),
            (10, 10),
        )
        .map_err(|e| draw(&e))?;
        for (k, label) in labels.iter().enumerate() {
            let x = 10 + (k % per_row) as i32 * 200;
            let y = (TITLE_HEIGHT + LEGEND_ROW * (k / per_row) as u32) as i32 + 8;
            let style = colour(k).stroke_width(3);
            head.draw(&PathElement::new(vec![(x, y), (x + 24, y)], style))
                .map_err(|e| draw(&e))?;
            head.draw_text(
                label,
                &("sans-serif", 14).into_font().color(&BLACK),
                (x + 30, y - 7),
            )
            .map_err(|e| draw(&e))?;
        }
        for (area, panel) in body.split_evenly((rows, cols)).iter().zip(panels) {
            let points = || panel.series.iter().flat_map(|s| s.points.iter());
            let Some((x0, x1)) = padded_range(points().map(|p| p.0)) else {
                continue;
            };
            let Some((y0, y1)) = padded_range(points().map(|p| p.1)) else {
                continue;
            };
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(28)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| draw(&e))?;
            chart
                .configure_mesh()
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&|v| crate::expr::fmt_num(v.round()))
                .y_label_formatter(&|v| short(*v))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(|e| draw(&e))?;
            for (k, s) in panel.series.iter().enumerate() {
                let width = if k == 0 { 3 } else { 2 };
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        colour(k).stroke_width(width),
                    ))
                    .map_err(|e| draw(&e))?;
            }
        }
        root.present().map_err(|e| draw(&e))?;
    }
    Ok(svg)
}

/// An axis label in a few characters.
fn short(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e5 || v.abs() < 1e-3 {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// The panels of `names` (variables, indicators, moving parameters): one series per path
/// report, the converged periods of each as (year, level). A name a path does not know gives
/// that path no line.
pub fn path_panels(
    reports: &[&crate::report::dynamic::PathReport],
    names: &[String],
) -> Vec<Panel> {
    names
        .iter()
        .map(|name| Panel {
            title: name.clone(),
            series: reports
                .iter()
                .map(|r| Series {
                    label: r.scenario.clone(),
                    points: r
                        .series(name)
                        .unwrap_or_default()
                        .into_iter()
                        .map_while(|(year, v)| v.map(|v| (year, v)))
                        .collect(),
                })
                .collect(),
        })
        .collect()
}
