//! The dynamic mode of the command line (`solve --dynamic`, `compare --dynamic`, `--plot`, and
//! the targets with a period that `check` runs): resolves names, calls `tokencge::dynamic` and
//! the path reports, prints, and maps outcomes to exit codes like the static commands.

use std::path::Path;

use tokencge::chart::paths::{path_panels, paths_svg};
use tokencge::compile::Structure;
use tokencge::dynamic::{self as paths, PathRun, PeriodOutcome};
use tokencge::report::dynamic::{compare_paths, series_names, PathReport};
use tokencge::report::TargetResult;
use tokencge::solve::NewtonSettings;

use super::{
    load, progress_bar, report_non_convergence, write_atomic, DynamicArgs, Format, BAD_INPUT,
    FAILED, OK,
};

/// Loads a model for the dynamic mode: its structure and the number of periods of its path, or
/// exit 2 when it cannot be loaded or has no `[dynamics]`.
fn load_dynamic(path: &Path) -> Result<(Structure, usize), i32> {
    let (structure, _) = load(path)?;
    match paths::dynamics_of(structure.model()) {
        Ok(d) => {
            let periods = d.periods;
            Ok((structure, periods))
        }
        Err(e) => {
            eprintln!("{}: --dynamic: {e}", path.display());
            Err(BAD_INPUT)
        }
    }
}

/// Scenario indices by name (`benchmark` is None), or exit 2 naming the unknown one.
fn scenario_indices(structure: &Structure, names: &[String]) -> Result<Vec<Option<usize>>, i32> {
    let model = structure.model();
    names
        .iter()
        .map(|n| match n.as_str() {
            "benchmark" => Ok(None),
            _ => model.scenario_index(n).map(Some).ok_or_else(|| {
                let known: Vec<&str> = model.scenarios.iter().map(|s| s.name.as_str()).collect();
                eprintln!(
                    "{}: unknown scenario '{n}' (scenarios: benchmark, {})",
                    model.path.display(),
                    known.join(", ")
                );
                BAD_INPUT
            }),
        })
        .collect()
}

/// The quantities `--plot` draws, checked against what the paths report (exit 2 on an unknown
/// name): `--series`, or every sector's activity level.
fn plotted(structure: &Structure, args: &DynamicArgs) -> Result<Vec<String>, i32> {
    if args.plot.is_none() {
        return Ok(Vec::new());
    }
    let model = structure.model();
    if args.series.is_empty() {
        return Ok(model.sectors.iter().map(|s| s.name.clone()).collect());
    }
    let known = series_names(structure);
    for name in &args.series {
        if !known.contains(name) {
            eprintln!(
                "{}: --series: unknown quantity '{name}' (a variable, an indicator or a parameter that moves along the path)",
                model.path.display()
            );
            return Err(BAD_INPUT);
        }
    }
    Ok(args.series.clone())
}

/// Solves paths in parallel with a progress bar on an interactive terminal; every path that
/// stopped early is reported on stderr with the period and why.
fn solve(
    structure: &Structure,
    indices: &[Option<usize>],
    periods: usize,
    extra: &[(usize, f64)],
    settings: &NewtonSettings,
) -> Vec<PathRun> {
    let bar = progress_bar(indices.len(), "paths");
    let runs =
        paths::solve_paths_with(structure, indices, periods, extra, settings, &|| bar.inc(1))
            .unwrap_or_default();
    bar.finish_and_clear();
    let file = structure.model().path.display();
    for run in &runs {
        let Some(stop) = run.stopped_at() else {
            continue;
        };
        let before = match stop.period {
            0 => "no period before it".to_string(),
            1 => "period 0 is reported".to_string(),
            k => format!("periods 0 to {} are reported", k - 1),
        };
        eprintln!(
            "{file}: scenario {}: the path stopped at period {} (year {}); {before}",
            run.scenario,
            stop.period,
            tokencge::expr::fmt_num(stop.year),
        );
        match &stop.outcome {
            PeriodOutcome::Solved(s) => report_non_convergence(structure, &s.solution),
            PeriodOutcome::Unsolved(e) => {
                eprintln!(
                    "{file}: scenario {}: period {} not solved: {e}",
                    run.scenario, stop.period
                )
            }
        }
    }
    runs
}

/// Picks the scenarios of a command (None: the baseline), or an exit code.
type Choose<'a> = &'a dyn Fn(&Structure) -> Result<Vec<Option<usize>>, i32>;

/// What both dynamic commands share: the model loaded, the paths of the chosen scenarios
/// solved (in `indices` order) and reported, and the quantities `--plot` will draw.
struct Solved {
    structure: Structure,
    indices: Vec<Option<usize>>,
    reports: Vec<PathReport>,
    plotted: Vec<String>,
}

impl Solved {
    /// Loads, resolves the scenarios `choose` picks, checks `--series`, solves and reports.
    fn run(
        path: &Path,
        (args, set): (&DynamicArgs, &[String]),
        settings: &NewtonSettings,
        choose: Choose,
    ) -> Result<Solved, i32> {
        let (structure, periods) = load_dynamic(path)?;
        let indices = choose(&structure)?;
        let plotted = plotted(&structure, args)?;
        let extra = super::overrides_of(&structure, set)?;
        let runs = solve(&structure, &indices, periods, &extra, settings);
        let reports = runs
            .iter()
            .map(|r| PathReport::new(structure.model(), r))
            .collect();
        Ok(Solved {
            structure,
            indices,
            reports,
            plotted,
        })
    }

    /// Draws the plotted quantities of every path (the baseline first) into the `--plot` file;
    /// `code` when that works, 2 when it does not.
    fn plot(&self, path: &Path, args: &DynamicArgs, code: i32) -> i32 {
        let Some(file) = &args.plot else {
            return code;
        };
        let title = format!("{}: paths by year", self.structure.model().name);
        let reports: Vec<&PathReport> = self.reports.iter().collect();
        let written = paths_svg(&title, &path_panels(&reports, &self.plotted))
            .map_err(|e| format!("{}: --plot: {e}", path.display()))
            .and_then(|svg| {
                write_atomic(file, svg.as_bytes())
                    .map_err(|e| format!("{}: cannot write: {e}", file.display()))
            });
        match written {
            Ok(()) => code,
            Err(message) => {
                eprintln!("{message}");
                BAD_INPUT
            }
        }
    }
}

/// `tokencge solve MODEL [--scenario NAME | --all] --dynamic [--plot FILE.svg]`.
pub(super) fn cmd_solve_dynamic(
    path: &Path,
    (scenario, all): (Option<String>, bool),
    format: Format,
    (args, set): (&DynamicArgs, &[String]),
    settings: &NewtonSettings,
) -> i32 {
    let requested = |structure: &Structure| -> Result<Vec<Option<usize>>, i32> {
        if all {
            Ok(std::iter::once(None)
                .chain((0..structure.model().scenarios.len()).map(Some))
                .collect())
        } else {
            let name = scenario.clone().unwrap_or_else(|| "benchmark".into());
            scenario_indices(structure, &[name])
        }
    };
    // A plot shows the baseline beside the scenario.
    let choose = |structure: &Structure| {
        let mut indices = requested(structure)?;
        if args.plot.is_some() && !indices.contains(&None) {
            indices.insert(0, None);
        }
        Ok(indices)
    };
    let solved = match Solved::run(path, (args, set), settings, &choose) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let wanted = requested(&solved.structure).unwrap_or_default();
    let shown: Vec<&PathReport> = solved
        .reports
        .iter()
        .zip(&solved.indices)
        .filter(|(_, i)| wanted.contains(i))
        .map(|(r, _)| r)
        .collect();
    let code = if shown.iter().all(|r| r.complete()) {
        OK
    } else {
        FAILED
    };
    let out = match format {
        Format::Json => {
            let objects: Vec<serde_json::Value> = shown.iter().flat_map(|r| r.json()).collect();
            serde_json::to_string_pretty(&objects).unwrap_or_default() + "\n"
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let width = PathReport::index_width(&shown);
            let _ = w.write_record(PathReport::csv_header(width));
            for r in &shown {
                let _ = r.csv_rows(&mut w, width);
            }
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        Format::Table => shown.iter().map(|r| r.table() + "\n").collect(),
    };
    print!("{out}");
    solved.plot(path, args, code)
}

/// Run bundles (`--out`) hold static results: with --dynamic, an exit code 2 and why.
pub(super) fn no_bundle(out: Option<&Path>) -> Option<i32> {
    out.map(|dir| {
        eprintln!(
            "--out {}: run bundles hold static results; with --dynamic write the paths with --format json|csv (or sweep them with sweep --dynamic --out)",
            dir.display()
        );
        BAD_INPUT
    })
}

/// `tokencge compare MODEL --dynamic [--scenarios a,b] [--plot FILE.svg]`.
pub(super) fn cmd_compare_dynamic(
    path: &Path,
    names: &[String],
    format: Format,
    (args, set): (&DynamicArgs, &[String]),
    settings: &NewtonSettings,
) -> i32 {
    let choose = |structure: &Structure| -> Result<Vec<Option<usize>>, i32> {
        let mut indices = vec![None];
        if names.is_empty() {
            indices.extend((0..structure.model().scenarios.len()).map(Some));
        } else {
            indices.extend(
                scenario_indices(structure, names)?
                    .into_iter()
                    .flatten()
                    .map(Some),
            );
        }
        Ok(indices)
    };
    let solved = match Solved::run(path, (args, set), settings, &choose) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let code = if solved.reports.iter().all(PathReport::complete) {
        OK
    } else {
        FAILED
    };
    let (baseline, scenarios) = solved.reports.split_at(1);
    let comparison = compare_paths(solved.structure.model(), &baseline[0], scenarios);
    match format {
        Format::Table => print!("{}", comparison.table()),
        Format::Csv => print!("{}", comparison.csv()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&comparison.json()).unwrap_or_default()
        ),
    }
    solved.plot(path, args, code)
}

/// For `check`: every target with a period, on its scenario's path run as far as the targets
/// need.
pub(super) fn check_path_targets(
    structure: &Structure,
    settings: &NewtonSettings,
) -> Vec<TargetResult> {
    let model = structure.model();
    let mut needed: Vec<(Option<usize>, usize)> = Vec::new();
    for t in &model.targets {
        let Some(k) = t.period else { continue };
        match needed.iter_mut().find(|(s, _)| *s == t.scenario) {
            Some((_, n)) => *n = (*n).max(k + 1),
            None => needed.push((t.scenario, k + 1)),
        }
    }
    let mut results = Vec::new();
    for (index, periods) in needed {
        let runs = solve(structure, &[index], periods, &[], settings);
        for run in &runs {
            results.extend(tokencge::report::dynamic::check_path_targets(
                structure, run,
            ));
        }
    }
    results
}
