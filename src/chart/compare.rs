//! The comparison chart (`compare --plot FILE.svg`): who gains and who loses — EV by consumer
//! and scenario as grouped bars — above a heat map of the % changes of the model's headline
//! prices and activities.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{diverging, series_colour, ChartError};
use crate::report::compare::{pct, Comparison, Kind};

/// Pixels per scenario column: wide enough for a group of bars and a rotated label.
fn column_width(series: usize) -> u32 {
    (10 * (series as u32 + 1)).max(28)
}

/// Space under each panel for the rotated scenario names.
const LABELS: u32 = 170;
const LEFT: u32 = 230;

/// The chart as SVG text.
pub fn comparison_svg(cmp: &Comparison) -> Result<String, ChartError> {
    let scenarios: Vec<usize> = (0..cmp.columns.len())
        .filter(|&k| cmp.columns[k].status == "converged")
        .collect();
    // The series: each household and the government, then the rest of the world as one.
    let mut series: Vec<(String, usize)> = Vec::new();
    let first_ev = cmp.ev_domestic - cmp.consumers.len();
    for (h, c) in cmp.consumers.iter().enumerate() {
        if c.role.domestic() {
            series.push((c.name.clone(), first_ev + h));
        }
    }
    if let Some(r) = cmp.ev_foreign {
        series.push(("rest of world".into(), r));
    }
    let heat_rows: Vec<usize> = cmp
        .headline
        .iter()
        .copied()
        .filter(|&r| matches!(cmp.rows[r].kind, Kind::Price | Kind::Activity))
        .collect();
    let n = scenarios.len().max(1);
    let width = LEFT + 40 + n as u32 * column_width(series.len());
    let width = width.max(900);
    let top = 360 + LABELS;
    let bottom = if heat_rows.is_empty() {
        0
    } else {
        90 + 26 * heat_rows.len() as u32 + LABELS
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, top + bottom)).into_drawing_area();
        root.fill(&WHITE).map_err(ChartError::from)?;
        let (upper, lower) = root.split_vertically(top);
        bars(cmp, &upper, &scenarios, &series)?;
        if !heat_rows.is_empty() {
            heat_map(cmp, &lower, &scenarios, &heat_rows)?;
        }
        root.present().map_err(ChartError::from)?;
    }
    Ok(svg)
}

/// Scenario names under a panel, rotated, centred on their columns.
fn scenario_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    cmp: &Comparison,
    scenarios: &[usize],
    at: &dyn Fn(f64) -> (i32, i32),
) -> Result<(), ChartError> {
    let style = ("sans-serif", 13)
        .into_font()
        .transform(FontTransform::Rotate90)
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    // Chart coordinates are the root's pixels; the area draws in its own.
    let (bx, by) = area.get_base_pixel();
    for (i, &k) in scenarios.iter().enumerate() {
        let (x, y) = at(i as f64 + 0.5);
        let (x, y) = (x - bx, y - by);
        area.draw(&Text::new(
            cmp.columns[k].name.clone(),
            (x, y + 6),
            style.clone(),
        ))
        .map_err(ChartError::from)?;
    }
    Ok(())
}

fn bars<DB: DrawingBackend>(
    cmp: &Comparison,
    area: &DrawingArea<DB, Shift>,
    scenarios: &[usize],
    series: &[(String, usize)],
) -> Result<(), ChartError> {
    let values: Vec<f64> = scenarios
        .iter()
        .flat_map(|&k| {
            series
                .iter()
                .filter_map(move |&(_, r)| cmp.rows[r].change(k))
        })
        .collect();
    let lo = values.iter().copied().fold(0.0_f64, f64::min);
    let hi = values.iter().copied().fold(0.0_f64, f64::max);
    let pad = 0.08 * (hi - lo).max(1e-9);
    let n = scenarios.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Who gains and who loses: EV by consumer, {}", cmp.unit),
            ("sans-serif", 18),
        )
        .margin(12)
        .margin_bottom(LABELS)
        .x_label_area_size(4)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n, (lo - pad)..(hi + pad))
        .map_err(ChartError::from)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(format!("EV, {}", cmp.unit))
        .draw()
        .map_err(ChartError::from)?;
    let w = 0.8 / series.len().max(1) as f64;
    for (s, (name, r)) in series.iter().enumerate() {
        let colour = series_colour(s);
        let rects = scenarios.iter().enumerate().filter_map(|(i, &k)| {
            let v = cmp.rows[*r].change(k)?;
            let x0 = i as f64 + 0.1 + s as f64 * w;
            Some(Rectangle::new([(x0, 0.0), (x0 + w, v)], colour.filled()))
        });
        chart
            .draw_series(rects)
            .map_err(ChartError::from)?
            .label(name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (n, 0.0)],
            BLACK.stroke_width(1),
        )))
        .map_err(ChartError::from)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(ChartError::from)?;
    let floor = lo - pad;
    scenario_labels(area, cmp, scenarios, &|x| chart.backend_coord(&(x, floor)))
}

fn heat_map<DB: DrawingBackend>(
    cmp: &Comparison,
    area: &DrawingArea<DB, Shift>,
    scenarios: &[usize],
    rows: &[usize],
) -> Result<(), ChartError> {
    let n = scenarios.len().max(1) as f64;
    let m = rows.len() as f64;
    let changes: Vec<f64> = rows
        .iter()
        .flat_map(|&r| scenarios.iter().filter_map(move |&k| cmp.rows[r].pct(k)))
        .collect();
    // The colour scale saturates at the largest change, or at 50 % if one is larger.
    let scale = changes
        .iter()
        .fold(0.0_f64, |a, v| a.max(v.abs()))
        .clamp(1e-9, 50.0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Headline prices and activities: % change from the benchmark",
            ("sans-serif", 18),
        )
        .margin(12)
        .margin_bottom(LABELS)
        .margin_left(LEFT - 82)
        .x_label_area_size(4)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n, 0.0..m)
        .map_err(ChartError::from)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .map_err(ChartError::from)?;
    let cell_px = {
        let (a, _) = chart.backend_coord(&(0.0, 0.0));
        let (b, _) = chart.backend_coord(&(1.0, 0.0));
        b - a
    };
    for (j, &r) in rows.iter().enumerate() {
        let y = m - 1.0 - j as f64;
        let cells = scenarios.iter().enumerate().map(|(i, &k)| {
            let colour = cmp.rows[r]
                .pct(k)
                .map(|p| diverging(p / scale))
                .unwrap_or(RGBColor(200, 200, 200));
            Rectangle::new([(i as f64, y), (i as f64 + 1.0, y + 1.0)], colour.filled())
        });
        chart.draw_series(cells).map_err(ChartError::from)?;
        if cell_px >= 34 {
            let style = ("sans-serif", 10)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let labels = scenarios.iter().enumerate().filter_map(|(i, &k)| {
                let p = cmp.rows[r].pct(k)?;
                Some(Text::new(
                    short_pct(p),
                    (i as f64 + 0.5, y + 0.5),
                    style.clone(),
                ))
            });
            chart.draw_series(labels).map_err(ChartError::from)?;
        }
        let (x, py) = chart.backend_coord(&(0.0, y + 0.5));
        let (bx, by) = area.get_base_pixel();
        let (x, py) = (x - bx, py - by);
        let row = &cmp.rows[r];
        let label = if row.description.is_empty() {
            row.name.clone()
        } else {
            format!(
                "{} {}",
                row.name,
                crate::report::compare::short_description(&row.description)
            )
        };
        let style = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        area.draw(&Text::new(label, (x - 6, py), style))
            .map_err(ChartError::from)?;
    }
    scenario_labels(area, cmp, scenarios, &|x| chart.backend_coord(&(x, 0.0)))?;
    let note = format!(
        "colour: blue falls, red rises, saturating at ±{}; grey: not available",
        pct(scale).trim_start_matches('+')
    );
    let style = ("sans-serif", 12).into_font().color(&BLACK);
    let (_, h) = area.dim_in_pixel();
    area.draw(&Text::new(note, (12, h as i32 - 16), style))
        .map_err(ChartError::from)?;
    Ok(())
}

/// A % change in a heat-map cell: at most five characters.
fn short_pct(p: f64) -> String {
    let a = p.abs();
    if a >= 9.95 {
        format!("{p:+.0}")
    } else if a >= 0.05 {
        format!("{p:+.1}")
    } else {
        "0".into()
    }
}
