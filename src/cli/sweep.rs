//! `tokencge sweep` (a sensitivity sweep, whole or one shard, resumable) and `tokencge merge`
//! (shards into the whole result). The numbers come from `tokencge::sweep`; this module reads
//! and writes the directories, shows progress and maps outcomes to exit codes.
//!
//! A sweep's `--out DIR` holds `plan.json` (what the draws are of: the model files' hashes,
//! scenario, seed, draws, overrides, distributions, settings), `batches/` (finished draws, each
//! batch written atomically: an interrupted sweep resumes from them, and `merge` reads them),
//! and once every draw is there `draws.csv`, `sweep.json`, `sweep.csv`, `report.json` and
//! `run.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use tokencge::bundle::{self as lib_bundle, ReportData, ScenarioRecord};
use tokencge::compile::Structure;
use tokencge::solve::NewtonSettings;
use tokencge::sweep::{self, Plan, Row, Shard, WarmStart};

use super::bundle::{write_files, RunLog};
use super::{load, overrides_of, write_atomic, Format, BAD_INPUT, FAILED, OK};

/// What a directory of draws is of.
const PLAN_FILE: &str = "plan.json";
const BATCHES: &str = "batches";

/// The arguments of `tokencge sweep`.
#[derive(clap::Args, Debug)]
pub(super) struct SweepArgs {
    /// Model file (default: models/token_economy.toml, else the built-in copy).
    pub model: Option<PathBuf>,
    /// The scenario to sweep.
    #[arg(long)]
    pub scenario: String,
    /// Number of draws (default: [sensitivity] draws).
    #[arg(long)]
    pub draws: Option<u64>,
    /// Seed of the draws (default: [sensitivity] seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output of the summary: a quantile table for people, or JSON or CSV.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write draws.csv, sweep.json, sweep.csv, report.json and run.json into DIR, keeping
    /// finished draws in DIR/batches (a rerun resumes from them).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Solve only the K-th of N disjoint parts of the draws (needs --out; then merge).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Draw the sensitivity fans and a tornado chart into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// The quantity of the tornado chart (default: the first reported).
    #[arg(long, value_name = "QUANTITY")]
    pub tornado: Option<String>,
    /// Override a parameter in every draw's benchmark and scenario (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Worker threads (default: all cores; RAYON_NUM_THREADS works too).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Start every draw from the central case's equilibrium (fewer iterations; rows then
    /// agree with a re-solve to the tolerance, not bitwise, where the draw has one equilibrium).
    #[arg(long)]
    pub warm_start: bool,
    /// Sweep paths ([dynamics]): each draw solves the baseline's and the scenario's paths and
    /// reports every quantity's change in the --years, and present values of level changes.
    #[arg(long)]
    pub dynamic: bool,
    /// With --dynamic: the years to report, comma-separated (default: the horizon's last).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "YEAR,…",
        requires = "dynamic"
    )]
    pub years: Vec<f64>,
    #[command(flatten)]
    pub(super) solver: super::SolverArgs,
}

/// Runs `f` on a pool of `threads` threads (rayon's default pool when None).
fn on_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T, i32> {
    match threads {
        None => Ok(f()),
        Some(0) => {
            eprintln!("--threads must be at least 1");
            Err(BAD_INPUT)
        }
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => Ok(pool.install(f)),
            Err(e) => {
                eprintln!("--threads {n}: {e}");
                Err(BAD_INPUT)
            }
        },
    }
}

/// The identity of a plan: `Plan::identity` with the input files' hashes.
fn identity(
    structure: &Structure,
    plan: &Plan,
    settings: &NewtonSettings,
) -> Result<serde_json::Value, i32> {
    let model = structure.model();
    let inputs = lib_bundle::inputs(model).map_err(|e| {
        eprintln!("{}: cannot hash the inputs: {e}", model.path.display());
        BAD_INPUT
    })?;
    let mut id = plan.identity(model, settings);
    id["inputs"] = inputs.iter().map(|i| i.sha256.clone()).collect();
    Ok(id)
}

/// Every row in a directory's batches, by draw.
fn read_batches(
    dir: &Path,
    params: &[String],
    quantities: &[String],
) -> Result<BTreeMap<u64, Row>, String> {
    let mut rows = BTreeMap::new();
    let batches = dir.join(BATCHES);
    let entries = match std::fs::read_dir(&batches) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(rows),
        Err(e) => return Err(format!("{}: {e}", batches.display())),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for r in sweep::parse_rows(&text, params, quantities)
            .map_err(|e| format!("{}: {e}", f.display()))?
        {
            if let Some(prev) = rows.get(&r.draw) {
                if sweep::rows_csv(params, quantities, std::slice::from_ref(prev))
                    != sweep::rows_csv(params, quantities, std::slice::from_ref(&r))
                {
                    return Err(format!(
                        "{}: draw {} differs from the same draw in another batch",
                        f.display(),
                        r.draw
                    ));
                }
            }
            rows.insert(r.draw, r);
        }
    }
    Ok(rows)
}

/// The progress of a sweep: an indicatif bar with rate and ETA on a terminal, otherwise a
/// plain line per batch.
struct Progress {
    bar: indicatif::ProgressBar,
    plain: bool,
    total: u64,
    started: Instant,
    label: String,
}

impl Progress {
    fn new(total: u64, label: String) -> Progress {
        use indicatif::{ProgressBar, ProgressStyle};
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal && total > 0 {
            let b = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} draws  {rate}  ETA {eta}")
            {
                b.set_style(style.with_key(
                    "rate",
                    |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} draws/s", s.per_sec());
                    },
                ));
            }
            b.set_message(label.clone());
            b
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            plain: !terminal,
            total,
            started: Instant::now(),
            label,
        }
    }

    fn batch_done(&self, done: u64) {
        if self.plain && self.total > 0 {
            let secs = self.started.elapsed().as_secs_f64();
            let rate = done as f64 / secs.max(1e-9);
            let eta = (self.total - done) as f64 / rate.max(1e-9);
            eprintln!(
                "{}: {done}/{} draws ({rate:.0} draws/s, ETA {eta:.0} s)",
                self.label, self.total
            );
        }
    }
}

/// `tokencge sweep`.
pub(super) fn cmd_sweep(a: SweepArgs, settings: &NewtonSettings) -> i32 {
    let started = Instant::now();
    let model_file = super::model_path(a.model.clone());
    let (structure, _) = match load(&model_file) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let model = structure.model();
    let file = model_file.display().to_string();
    let Some(index) = model.scenario_index(&a.scenario) else {
        let known: Vec<&str> = model.scenarios.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "{file}: unknown scenario '{}' (a sweep solves a scenario against each draw's benchmark; scenarios: {})",
            a.scenario,
            known.join(", ")
        );
        return BAD_INPUT;
    };
    if model.is_dynamic_scenario(index) && !a.dynamic {
        eprintln!(
            "{file}: scenario '{}' is defined over time (it has paths of its own): sweep its paths with --dynamic",
            a.scenario
        );
        return BAD_INPUT;
    }
    let overrides = match overrides_of(&structure, &a.set) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let warm = if a.warm_start {
        WarmStart::Central
    } else {
        WarmStart::Fallback
    };
    let plan = Plan::new(model, index, a.draws, a.seed, overrides.clone(), warm).and_then(|p| {
        if a.dynamic {
            p.over_paths(model, &a.years)
        } else {
            Ok(p)
        }
    });
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return BAD_INPUT;
        }
    };
    let shard = match a.shard.as_deref().map(Shard::parse).transpose() {
        Ok(s) => s.unwrap_or(Shard::ALL),
        Err(e) => {
            eprintln!("{e}");
            return BAD_INPUT;
        }
    };
    if shard != Shard::ALL && a.out.is_none() {
        eprintln!(
            "--shard {}/{}: a shard's draws must be written: give --out DIR (then tokencge merge)",
            shard.k, shard.n
        );
        return BAD_INPUT;
    }
    let id = match identity(&structure, &plan, settings) {
        Ok(i) => i,
        Err(c) => return c,
    };
    let params = plan.active_names(model);
    let quantities = plan.quantity_names(model);
    // Draws already finished in DIR (a resumed sweep) are kept and not solved again.
    let mut rows: BTreeMap<u64, Row> = BTreeMap::new();
    if let Some(dir) = &a.out {
        let plan_path = dir.join(PLAN_FILE);
        if let Ok(text) = std::fs::read_to_string(&plan_path) {
            let previous: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if previous.get("identity") != Some(&id) {
                eprintln!(
                    "{}: holds the draws of another sweep (the model files, scenario, draws, seed, overrides, distributions or settings differ): choose another --out or remove it",
                    dir.display()
                );
                return BAD_INPUT;
            }
        }
        let model_path = tokencge::model::sources::canonical(&model_file);
        let plan_json = serde_json::json!({
            "identity": id,
            "model_path": model_path.display().to_string(),
        });
        let text = serde_json::to_string_pretty(&plan_json).unwrap_or_default() + "\n";
        if let Err(c) = write_files(dir, &[(PLAN_FILE, text)]) {
            return c;
        }
        if let Err(e) = std::fs::create_dir_all(dir.join(BATCHES)) {
            eprintln!("{}: cannot create: {e}", dir.join(BATCHES).display());
            return BAD_INPUT;
        }
        match read_batches(dir, &params, &quantities) {
            Ok(r) => rows = r,
            Err(e) => {
                eprintln!("{e}");
                return BAD_INPUT;
            }
        }
    }
    let range = shard.range(plan.draws());
    let kept = rows.range(range.clone()).count() as u64;
    if kept > 0 {
        eprintln!(
            "{file}: {kept} draw(s) of {}..{} already solved in {}: not solved again",
            range.start,
            range.end,
            a.out.as_deref().unwrap_or(Path::new(".")).display()
        );
    }
    let label = format!("sweep {}", a.scenario);
    let progress = Progress::new(range.end - range.start - kept, label);
    let work = || -> Result<(sweep::Central, Vec<Row>, u64), i32> {
        let central = sweep::central(&structure, &plan, settings);
        if !central.row.converged() {
            eprintln!(
                "{file}: the central case of {} did not converge ({}): its changes and sign flips are not reported",
                a.scenario, central.row.status
            );
        }
        let mut fresh = Vec::new();
        let mut done = 0u64;
        let mut block = range.start - range.start % sweep::BATCH;
        while block < range.end {
            let lo = block.max(range.start);
            let hi = (block + sweep::BATCH).min(range.end);
            block += sweep::BATCH;
            let todo: Vec<u64> = (lo..hi).filter(|d| !rows.contains_key(d)).collect();
            if todo.is_empty() {
                continue;
            }
            let t0 = Instant::now();
            let mut solved: Vec<Row> = Vec::new();
            // Contiguous runs of missing draws (a resumed batch may be partly there).
            let mut i = 0;
            while i < todo.len() {
                let mut j = i + 1;
                while j < todo.len() && todo[j] == todo[j - 1] + 1 {
                    j += 1;
                }
                solved.extend(sweep::solve_draws(
                    &structure,
                    &plan,
                    &central,
                    todo[i]..todo[j - 1] + 1,
                    settings,
                    &|| progress.bar.inc(1),
                ));
                i = j;
            }
            let failed = solved.iter().filter(|r| !r.converged()).count();
            let iterations: u64 = solved.iter().map(|r| r.iterations).sum();
            tracing::info!(
                target: "tokencge::run",
                scenario = a.scenario.as_str(),
                first = todo[0],
                last = todo[todo.len() - 1],
                solved = solved.len() - failed,
                failed,
                iterations,
                seconds = t0.elapsed().as_secs_f64(),
                "sweep batch"
            );
            if let Some(dir) = &a.out {
                let name = format!("draws-{:010}-{:010}.csv", todo[0], todo[todo.len() - 1]);
                let path = dir.join(BATCHES).join(name);
                let text = sweep::rows_csv(&params, &quantities, &solved);
                if let Err(e) = write_atomic(&path, text.as_bytes()) {
                    eprintln!("{}: cannot write: {e}", path.display());
                    return Err(BAD_INPUT);
                }
            }
            done += solved.len() as u64;
            progress.batch_done(done);
            fresh.extend(solved);
        }
        progress.bar.finish_and_clear();
        Ok((central, fresh, done))
    };
    let (central, fresh, solved_now) = match on_threads(a.threads, work) {
        Ok(Ok(v)) => v,
        Ok(Err(c)) | Err(c) => return c,
    };
    let fresh_failed = fresh.iter().filter(|r| !r.converged()).count();
    let fresh_iterations: u64 = fresh.iter().map(|r| r.iterations).sum();
    for r in fresh {
        rows.insert(r.draw, r);
    }
    let log = central_log(&overrides, started, &central);
    let seconds = started.elapsed().as_secs_f64();
    let figures = serde_json::json!({
        "scenario": a.scenario,
        "draws": plan.draws(),
        "seed": plan.sensitivity.seed,
        "shard": format!("{}/{}", shard.k, shard.n),
        "draws_solved_now": solved_now,
        "failed_now": fresh_failed,
        "newton_iterations_now": fresh_iterations,
        "iterations_per_draw_now": (solved_now > 0).then(|| fresh_iterations as f64 / solved_now as f64),
        "draws_per_second_now": (solved_now > 0).then(|| solved_now as f64 / seconds),
        "warm_start": plan.warm_start,
    });
    let all_there = rows.range(0..plan.draws()).count() as u64 == plan.draws();
    if !all_there {
        // A shard (or an unfinished sweep): its draws are in DIR/batches for `merge`.
        let dir = a.out.as_deref().unwrap_or(Path::new("."));
        let mut run = match log.run_record(&structure, settings) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{file}: {e}");
                return BAD_INPUT;
            }
        };
        run.sweep = Some(figures);
        if let Err(c) = write_files(dir, &[(lib_bundle::RUN_FILE, run.json())]) {
            return c;
        }
        eprintln!(
            "{file}: shard {}/{} (draws {}..{}) written to {}, {fresh_failed} failed; combine the shards with tokencge merge",
            shard.k,
            shard.n,
            range.start,
            range.end,
            dir.display()
        );
        return if fresh_failed > 0 { FAILED } else { OK };
    }
    let all: Vec<Row> = rows
        .into_values()
        .filter(|r| r.draw < plan.draws())
        .collect();
    finish(
        &structure,
        &plan,
        &central,
        &all,
        settings,
        Finish {
            format: a.format,
            out: a.out.as_deref(),
            plot: a.plot.as_deref(),
            tornado: a.tornado.as_deref(),
            threads: a.threads,
            log,
            figures,
        },
    )
}

/// The run log of a sweep: its start and the central case's two solves.
fn central_log(overrides: &[(usize, f64)], started: Instant, central: &sweep::Central) -> RunLog {
    let mut log = RunLog::new(overrides);
    log.started = started;
    for s in [&central.benchmark, &central.scenario]
        .into_iter()
        .flatten()
    {
        log.scenarios.push(ScenarioRecord::of(s));
    }
    log
}

/// Where and how a complete sweep's result goes.
struct Finish<'a> {
    format: Format,
    out: Option<&'a Path>,
    plot: Option<&'a Path>,
    tornado: Option<&'a str>,
    threads: Option<usize>,
    log: RunLog,
    figures: serde_json::Value,
}

/// The result of a complete sweep (every draw there): the tornado, the summary on stdout, the
/// bundle and the plot.
fn finish(
    structure: &Structure,
    plan: &Plan,
    central: &sweep::Central,
    rows: &[Row],
    settings: &NewtonSettings,
    f: Finish<'_>,
) -> i32 {
    let model = structure.model();
    let file = model.path.display().to_string();
    let bars = match on_threads(f.threads, || {
        sweep::tornado(structure, plan, central, settings)
    }) {
        Ok(b) => b,
        Err(c) => return c,
    };
    let summary = sweep::summarise(model, plan, &central.row, rows, bars);
    for d in &summary.failed {
        let p: Vec<String> = d
            .parameters
            .iter()
            .map(|(k, v)| format!("{k}={}", tokencge::report::csv_num(*v)))
            .collect();
        eprintln!(
            "{file}: sweep {}: draw {} not solved ({}{}): --set {}",
            summary.scenario,
            d.draw,
            d.status,
            d.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default(),
            p.join(" --set ")
        );
    }
    let code = if summary.failed.is_empty() && central.row.converged() {
        OK
    } else {
        FAILED
    };
    match f.format {
        Format::Table => print!("{}", summary.table()),
        Format::Json => print!("{}", summary.json()),
        Format::Csv => print!("{}", summary.csv()),
    }
    if let Some(path) = f.plot {
        let quantity = match f.tornado {
            Some(q) if !summary.quantities.contains_key(q) => {
                eprintln!(
                    "--tornado {q}: not a reported quantity of this sweep (one of: {})",
                    summary
                        .quantities
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return BAD_INPUT;
            }
            Some(q) => Some(q),
            None => None,
        };
        let svg = tokencge::chart::sweep::svg(&summary, quantity);
        if let Err(e) = write_atomic(path, svg.as_bytes()) {
            eprintln!("{}: cannot write: {e}", path.display());
            return BAD_INPUT;
        }
    }
    if let Some(dir) = f.out {
        let mut run = match f.log.run_record(structure, settings) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{file}: {e}");
                return BAD_INPUT;
            }
        };
        run.sweep = Some(f.figures);
        let draws = sweep::rows_csv(&plan.active_names(model), &plan.quantity_names(model), rows);
        let data = ReportData::Sweep {
            summary: Box::new(summary.clone()),
        };
        if let Err(c) = write_files(
            dir,
            &[
                ("draws.csv", draws),
                ("sweep.json", summary.json()),
                ("sweep.csv", summary.csv()),
                (lib_bundle::REPORT_FILE, data.json()),
                (lib_bundle::RUN_FILE, run.json()),
            ],
        ) {
            return c;
        }
    }
    code
}

/// `tokencge merge DIR… --out DIR`: the shards' draws combined into the whole result, exactly
/// as one unsharded sweep gives it.
pub(super) fn cmd_merge(
    dirs: &[PathBuf],
    out: &Path,
    format: Format,
    plot: Option<&Path>,
    tornado: Option<&str>,
    threads: Option<usize>,
) -> i32 {
    let started = Instant::now();
    let mut plans = Vec::new();
    for d in dirs {
        let path = d.join(PLAN_FILE);
        let v: serde_json::Value = match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                eprintln!(
                    "{}: cannot read: {e} (a directory written by tokencge sweep --out)",
                    path.display()
                );
                return BAD_INPUT;
            }
        };
        plans.push(v);
    }
    let Some(first) = plans.first() else {
        eprintln!("merge: name at least one directory of draws");
        return BAD_INPUT;
    };
    let id = first["identity"].clone();
    for (d, p) in dirs.iter().zip(&plans).skip(1) {
        if p["identity"] != id {
            eprintln!(
                "{}: holds the draws of another sweep than {} (the model files, scenario, draws, seed, overrides, distributions or settings differ)",
                d.display(),
                dirs[0].display()
            );
            return BAD_INPUT;
        }
    }
    let model_path = PathBuf::from(first["model_path"].as_str().unwrap_or_default());
    let (structure, _) = match load(&model_path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let model = structure.model();
    let file = model_path.display().to_string();
    // The plan again, from what the shards recorded; it must give the same identity (the same
    // model files among them).
    let str_of = |k: &str| id[k].as_str().unwrap_or_default().to_string();
    let Some(index) = model.scenario_index(&str_of("scenario")) else {
        eprintln!("{file}: no scenario '{}' any more", str_of("scenario"));
        return BAD_INPUT;
    };
    let mut overrides = Vec::new();
    if let Some(o) = id["overrides"].as_object() {
        for (name, v) in o {
            match (model.parameter_index(name), v.as_f64()) {
                (Some(p), Some(v)) => overrides.push((p, v)),
                _ => {
                    eprintln!("{file}: no parameter '{name}' any more");
                    return BAD_INPUT;
                }
            }
        }
    }
    let warm: WarmStart =
        serde_json::from_value(id["warm_start"].clone()).unwrap_or(WarmStart::Fallback);
    let mut settings = NewtonSettings::default();
    settings.tolerance = id["tolerance"].as_f64().unwrap_or(settings.tolerance);
    settings.max_iterations = id["max_iterations"]
        .as_u64()
        .unwrap_or(settings.max_iterations);
    let years: Option<Vec<f64>> = id["years"]
        .as_array()
        .map(|y| y.iter().filter_map(|v| v.as_f64()).collect());
    let plan = Plan::new(
        model,
        index,
        id["draws"].as_u64(),
        id["seed"].as_u64(),
        overrides.clone(),
        warm,
    )
    .and_then(|p| match &years {
        Some(y) => p.over_paths(model, y),
        None => Ok(p),
    });
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return BAD_INPUT;
        }
    };
    match identity(&structure, &plan, &settings) {
        Ok(now) if now == id => {}
        Ok(_) => {
            eprintln!("{file}: the model or its data changed since the shards ran (their hashes or [sensitivity] differ): run the sweep again");
            return BAD_INPUT;
        }
        Err(c) => return c,
    }
    let params = plan.active_names(model);
    let quantities = plan.quantity_names(model);
    let mut rows: BTreeMap<u64, Row> = BTreeMap::new();
    for d in dirs {
        match read_batches(d, &params, &quantities) {
            Ok(r) => {
                for (k, row) in r {
                    if let Some(prev) = rows.get(&k) {
                        if sweep::rows_csv(&params, &quantities, std::slice::from_ref(prev))
                            != sweep::rows_csv(&params, &quantities, std::slice::from_ref(&row))
                        {
                            eprintln!(
                                "{}: draw {k} differs from the same draw in another directory",
                                d.display()
                            );
                            return BAD_INPUT;
                        }
                    }
                    rows.insert(k, row);
                }
            }
            Err(e) => {
                eprintln!("{e}");
                return BAD_INPUT;
            }
        }
    }
    let missing: Vec<u64> = (0..plan.draws())
        .filter(|d| !rows.contains_key(d))
        .collect();
    if !missing.is_empty() {
        let mut ranges = Vec::new();
        let mut i = 0;
        while i < missing.len() && ranges.len() < 10 {
            let mut j = i + 1;
            while j < missing.len() && missing[j] == missing[j - 1] + 1 {
                j += 1;
            }
            ranges.push(format!("{}..{}", missing[i], missing[j - 1] + 1));
            i = j;
        }
        eprintln!(
            "merge: {} of {} draws are missing ({}{}): run their shards (again) into these directories",
            missing.len(),
            plan.draws(),
            ranges.join(", "),
            if i < missing.len() { ", …" } else { "" }
        );
        return BAD_INPUT;
    }
    let central = match on_threads(threads, || sweep::central(&structure, &plan, &settings)) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let log = central_log(&overrides, started, &central);
    let all: Vec<Row> = rows
        .into_values()
        .filter(|r| r.draw < plan.draws())
        .collect();
    let figures = serde_json::json!({
        "scenario": str_of("scenario"),
        "draws": plan.draws(),
        "seed": plan.sensitivity.seed,
        "merged": dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
        "warm_start": plan.warm_start,
    });
    if let Err(c) = write_files(
        out,
        &[(
            PLAN_FILE,
            serde_json::to_string_pretty(&plans[0]).unwrap_or_default() + "\n",
        )],
    ) {
        return c;
    }
    finish(
        &structure,
        &plan,
        &central,
        &all,
        &settings,
        Finish {
            format,
            out: Some(out),
            plot,
            tornado,
            threads,
            log,
            figures,
        },
    )
}
