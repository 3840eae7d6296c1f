//! The command line: arguments → a validated command → run → exit code (0 ok, 1 a target failed
//! or a solve did not converge, 2 bad input or I/O). Only this module prints, touches
//! `std::process` or installs the tracing subscriber.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use tokencge::batch;
use tokencge::calibrate::Coefficients;
use tokencge::compile::Structure;
use tokencge::report::{self, compare};
use tokencge::scenario::{self, Solution};
use tokencge::solve::NewtonSettings;

/// The model that runs when no model is named.
pub const DEFAULT_MODEL: &str = "models/token_economy.toml";

#[derive(Parser, Debug)]
#[command(
    name = "tokencge",
    version,
    about = "Computable general equilibrium models: MPSGE-style files, calibrated MCP, semismooth Newton"
)]
pub struct Cli {
    /// Log solver iterations (-v: info, -vv: debug, -vvv: trace). RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Convergence tolerance on the largest scaled residual.
    #[arg(long, global = true, default_value_t = 1e-9)]
    tolerance: f64,
    /// Iteration limit of one Newton solve.
    #[arg(long, global = true, default_value_t = 200)]
    max_iterations: u64,
    /// Wall-clock limit of one Newton solve, in seconds (argmin's executor enforces it).
    #[arg(long, global = true, value_name = "SECONDS")]
    timeout: Option<f64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Solve the benchmark, one scenario or all of them.
    Solve {
        /// Model file (default: models/token_economy.toml).
        model: Option<PathBuf>,
        /// Scenario to solve (default: the benchmark).
        #[arg(long, conflicts_with = "all")]
        scenario: Option<String>,
        /// Solve the benchmark and every scenario.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Check benchmark replication, then every target; exit 0 only if all pass.
    Check {
        /// Model files (default: models/token_economy.toml).
        models: Vec<PathBuf>,
    },
    /// Describe a model: sectors and nests, commodities, consumers, scenarios.
    Describe { model: PathBuf },
    /// Solve scenarios and show them side by side against the benchmark.
    Compare {
        model: Option<PathBuf>,
        /// Comma-separated scenario names (default: all).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Balance a social accounting matrix by the least total absolute adjustment (an LP).
    Balance {
        sam: PathBuf,
        /// Output file (written atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Keep a cell fixed: ROW,COL (repeatable).
        #[arg(long = "fix", value_name = "ROW,COL")]
        fix: Vec<String>,
        /// Keep every cell of an account's row and column fixed (repeatable).
        #[arg(long = "fix-account", value_name = "ACCOUNT")]
        fix_account: Vec<String>,
        /// Minimise relative rather than absolute adjustments.
        #[arg(long)]
        relative: bool,
    },
    /// Write the model in the plain contract format (SAM references and extensions resolved).
    Flatten {
        model: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Write the peers' scalable economy (gen_cge.py's instance) as a model over sets with CSV
    /// tables: DIR/model.toml and DIR/data/*.csv, scenarios tax1 and notax.
    Generate {
        /// Number of sectors (and goods), N ≥ 1.
        #[arg(long, default_value_t = 5)]
        sectors: usize,
        /// Number of households, H ≥ 1.
        #[arg(long, default_value_t = 2)]
        households: usize,
        /// Seed of the SplitMix64 draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output directory (created if missing; each file written atomically).
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

/// Exit codes.
const OK: i32 = 0;
const FAILED: i32 = 1;
const BAD_INPUT: i32 = 2;

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Runs the command line and returns the exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { BAD_INPUT } else { OK };
            let _ = e.print();
            return code;
        }
    };
    init_tracing(cli.verbose);
    let settings = match NewtonSettings::default()
        .with_tolerance(cli.tolerance)
        .and_then(|s| s.with_max_iterations(cli.max_iterations))
        .and_then(|s| match cli.timeout {
            None => Ok(s),
            Some(t) => s.with_timeout(t),
        }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --{e}");
            return BAD_INPUT;
        }
    };
    let command = cli.command.unwrap_or(Command::Compare {
        model: None,
        scenarios: Vec::new(),
        format: Format::Table,
    });
    match command {
        Command::Solve {
            model,
            scenario,
            all,
            format,
        } => cmd_solve(&model_path(model), scenario, all, format, &settings),
        Command::Check { models } => {
            let models = if models.is_empty() {
                vec![PathBuf::from(DEFAULT_MODEL)]
            } else {
                models
            };
            let mut code = OK;
            for m in &models {
                code = code.max(cmd_check(m, &settings));
            }
            code
        }
        Command::Describe { model } => cmd_describe(&model),
        Command::Compare {
            model,
            scenarios,
            format,
        } => cmd_compare(&model_path(model), &scenarios, format, &settings),
        Command::Balance {
            sam,
            output,
            fix,
            fix_account,
            relative,
        } => cmd_balance(&sam, &output, &fix, &fix_account, relative),
        Command::Flatten { model, output } => cmd_flatten(&model, &output),
        Command::Generate {
            sectors,
            households,
            seed,
            output,
        } => cmd_generate(sectors, households, seed, &output),
    }
}

fn model_path(p: Option<PathBuf>) -> PathBuf {
    p.unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
}

fn load(path: &Path) -> Result<(Structure, Coefficients), i32> {
    tokencge::build(path).map_err(|e| {
        eprintln!("{e}");
        BAD_INPUT
    })
}

/// Writes a file atomically: a temporary file in the same directory, then a rename.
fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.flush()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Solves scenarios in parallel through the library; a progress bar shows on an interactive
/// terminal. A scenario that cannot be set up is reported on stderr as
/// `file: scenario NAME: reason` and comes back as `Err` beside the others.
fn solve_many(
    structure: &Structure,
    indices: &[Option<usize>],
    settings: &NewtonSettings,
) -> Vec<batch::Outcome> {
    use indicatif::{ProgressBar, ProgressStyle};
    use std::io::IsTerminal;
    let bar = if std::io::stderr().is_terminal() && indices.len() > 1 {
        let b = ProgressBar::new(indices.len() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} scenarios {msg}") {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let out = batch::solve_all(structure, indices, settings, &|| bar.inc(1));
    bar.finish_and_clear();
    for r in &out {
        match r {
            Ok(solved) if !solved.solution.converged() => {
                report_non_convergence(structure, &solved.solution)
            }
            Ok(_) => {}
            Err(u) => eprintln!(
                "{}: scenario {}: not solved: {}",
                structure.model().path.display(),
                u.scenario,
                u.error
            ),
        }
    }
    out
}

/// The report of an outcome, solved or not.
fn report_of(structure: &Structure, outcome: batch::Outcome) -> report::SolutionReport {
    match outcome {
        Ok(solved) => solved.report,
        Err(u) => u.report(structure),
    }
}

/// True when an outcome is a verified equilibrium.
fn solved_ok(outcome: &batch::Outcome) -> bool {
    outcome.as_ref().is_ok_and(|s| s.solution.converged())
}

fn report_non_convergence(structure: &Structure, sol: &Solution) {
    let walras = match (sol.scenario.walras, sol.walras_residual) {
        (Some(v), Some(w)) => format!(", {} (dropped) {w:.3e}", structure.equation_name(v)),
        _ => String::new(),
    };
    eprintln!(
        "{}: scenario {}: did not converge ({}, residual {:.3e}{walras} after {} iterations); worst equations:",
        structure.model().path.display(),
        sol.scenario.name,
        sol.status.label(),
        sol.residual,
        sol.info.iterations
    );
    for &(v, r) in &sol.worst {
        eprintln!("  {:<44} residual {:.3e}", structure.equation_name(v), r);
    }
    if !sol.runaway.is_empty() {
        eprintln!(
            "  levels that ran off from the benchmark (no equilibrium at finite prices?): {}",
            scenario::describe_ratios(structure, &sol.runaway)
        );
    }
    if let Some(stop) = &sol.path {
        eprintln!(
            "  the path from the model's benchmark found equilibria up to {:.1} % of the shock, none beyond it{}",
            100.0 * stop.reached,
            if stop.moved.is_empty() {
                String::new()
            } else {
                format!("; there: {}", scenario::describe_ratios(structure, &stop.moved))
            }
        );
    }
}

fn cmd_solve(
    path: &Path,
    scenario: Option<String>,
    all: bool,
    format: Format,
    settings: &NewtonSettings,
) -> i32 {
    let (structure, _) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let model = structure.model();
    let indices: Vec<Option<usize>> = if all {
        std::iter::once(None)
            .chain((0..model.scenarios.len()).map(Some))
            .collect()
    } else {
        match scenario.as_deref() {
            None | Some("benchmark") => vec![None],
            Some(name) => match model.scenario_index(name) {
                Some(i) => vec![Some(i)],
                None => {
                    let known: Vec<&str> =
                        model.scenarios.iter().map(|s| s.name.as_str()).collect();
                    eprintln!(
                        "{}: unknown scenario '{name}' (scenarios: benchmark, {})",
                        path.display(),
                        known.join(", ")
                    );
                    return BAD_INPUT;
                }
            },
        }
    };
    let mut code = OK;
    let mut json_out = Vec::new();
    let mut csv_out = csv::Writer::from_writer(Vec::new());
    let width = report::index_width(structure.model());
    if format == Format::Csv {
        let _ = csv_out.write_record(report::csv_header(width));
    }
    let mut text = String::new();
    for outcome in solve_many(&structure, &indices, settings) {
        if !solved_ok(&outcome) {
            code = FAILED;
        }
        let report = report_of(&structure, outcome);
        match format {
            Format::Json => json_out.push(report.to_json()),
            Format::Csv => {
                let _ = report.csv_rows(&mut csv_out, width);
            }
            Format::Table => {
                text.push_str(&report.table());
                text.push('\n');
            }
        }
    }
    let out = match format {
        Format::Json => {
            let v = if json_out.len() == 1 {
                json_out.pop().unwrap()
            } else {
                serde_json::Value::Array(json_out)
            };
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        Format::Csv => {
            String::from_utf8(csv_out.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        Format::Table => text,
    };
    print!("{out}");
    code
}

fn cmd_check(path: &Path, settings: &NewtonSettings) -> i32 {
    let (structure, coef) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let file = path.display().to_string();
    let setup = match scenario::resolve(&structure, &coef, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{file}: benchmark: {e}");
            return BAD_INPUT;
        }
    };
    match report::benchmark_failures(structure.with(&coef), &setup, settings.tolerance) {
        Ok(bad) if bad.is_empty() => {}
        Ok(bad) => {
            eprintln!(
                "{file}: the benchmark does not replicate: {} function(s) off by more than {:e}:",
                bad.len(),
                settings.tolerance
            );
            eprint!("{}", report::describe_failures(&structure, &bad));
            return BAD_INPUT;
        }
        Err(e) => {
            eprintln!("{file}: the benchmark point cannot be evaluated: {e}");
            return BAD_INPUT;
        }
    }
    println!(
        "{file}: benchmark replicates (largest residual ≤ {:e})",
        settings.tolerance
    );
    // Scenarios in the order of their first target, the benchmark first.
    let mut order: Vec<Option<usize>> = vec![None];
    for t in &structure.model().targets {
        if !order.contains(&t.scenario) {
            order.push(t.scenario);
        }
    }
    let mut results = Vec::new();
    for (idx, outcome) in order.iter().zip(solve_many(&structure, &order, settings)) {
        match outcome {
            Ok(solved) => {
                let sol = &solved.solution;
                tracing::info!(scenario = %sol.scenario.name, iterations = sol.info.iterations, seconds = sol.info.seconds, continuation = sol.continuation_steps, "solved");
                results.extend(report::check_targets(
                    structure.with(&solved.coefficients),
                    sol,
                    *idx,
                ));
            }
            Err(u) => results.extend(report::unsolved_targets(
                structure.model(),
                *idx,
                &u.error.to_string(),
            )),
        }
    }
    let failed = results.iter().filter(|r| !r.pass).count();
    let w = results
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4)
        .min(60);
    for r in &results {
        let v = r
            .value
            .map(|v| format!("{v:.12}"))
            .unwrap_or_else(|| "-".into());
        let name: String = r.name.chars().take(60).collect();
        let note = if r.note.is_empty() {
            String::new()
        } else {
            format!("  ({})", r.note)
        };
        println!(
            "{}  {:<w$}  {:>22}  {}{}",
            if r.pass { "PASS" } else { "FAIL" },
            name,
            v,
            r.expected,
            note
        );
    }
    println!(
        "{file}: {} passed, {} failed",
        results.len() - failed,
        failed
    );
    if failed > 0 {
        FAILED
    } else {
        OK
    }
}

fn cmd_describe(path: &Path) -> i32 {
    let (structure, coef) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    print!("{}", report::describe::describe(&structure, &coef));
    OK
}

fn cmd_compare(path: &Path, names: &[String], format: Format, settings: &NewtonSettings) -> i32 {
    let (structure, _) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let model = structure.model();
    let mut indices = Vec::new();
    if names.is_empty() {
        indices.extend(0..model.scenarios.len());
    } else {
        for n in names {
            match model.scenario_index(n) {
                Some(i) => indices.push(i),
                None => {
                    eprintln!("{}: unknown scenario '{n}'", path.display());
                    return BAD_INPUT;
                }
            }
        }
    }
    let all: Vec<Option<usize>> = std::iter::once(None)
        .chain(indices.into_iter().map(Some))
        .collect();
    let mut code = OK;
    let mut reports = Vec::new();
    for outcome in solve_many(&structure, &all, settings) {
        if !solved_ok(&outcome) {
            code = FAILED;
        }
        reports.push(report_of(&structure, outcome));
    }
    let bench = reports.remove(0);
    let cmp = compare::build(&bench, &reports);
    match format {
        Format::Table => print!("{}", cmp.table()),
        Format::Csv => print!("{}", cmp.csv()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&cmp.json()).unwrap_or_default()
        ),
    }
    code
}

fn cmd_balance(
    path: &Path,
    output: &Path,
    fix: &[String],
    fix_account: &[String],
    relative: bool,
) -> i32 {
    use tokencge::sam::{balance, BalanceOptions, Sam};
    let sam = match Sam::read(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return BAD_INPUT;
        }
    };
    let mut fixed = Vec::new();
    for f in fix {
        match f.split_once(',') {
            Some((r, c)) => fixed.push((r.trim().to_string(), c.trim().to_string())),
            None => {
                eprintln!("--fix takes ROW,COL, got '{f}'");
                return BAD_INPUT;
            }
        }
    }
    let options = BalanceOptions {
        relative,
        fixed,
        fixed_accounts: fix_account.to_vec(),
    };
    let (balanced, rep) = match balance(&sam, &options) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            return BAD_INPUT;
        }
    };
    if let Err(e) = balanced.write_csv_atomic(output) {
        eprintln!("{e}");
        return BAD_INPUT;
    }
    println!(
        "{}: balanced into {}: {} cell(s) changed, total absolute adjustment {}",
        path.display(),
        output.display(),
        rep.changes.len(),
        report::fmt(rep.total_abs_adjustment)
    );
    for c in &rep.changes {
        println!(
            "  {:>8} , {:<8} {:>14} -> {}",
            c.row,
            c.col,
            report::fmt(c.old),
            report::fmt(c.new)
        );
    }
    OK
}

fn cmd_generate(sectors: usize, households: usize, seed: u64, output: &Path) -> i32 {
    if sectors == 0 || households == 0 {
        eprintln!("generate: --sectors and --households must be at least 1");
        return BAD_INPUT;
    }
    let files = tokencge::generate::generate(sectors, households, seed).indexed_files();
    // The data first, the model file last: a model.toml present is a complete instance.
    for (rel, text) in &files {
        let path = output.join(rel);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| write_atomic(&path, text.as_bytes()));
        if let Err(e) = written {
            eprintln!("{}: cannot write: {e}", path.display());
            return BAD_INPUT;
        }
    }
    println!(
        "generated N = {sectors}, H = {households}, seed {seed} into {}",
        output.join("model.toml").display()
    );
    OK
}

fn cmd_flatten(path: &Path, output: &Path) -> i32 {
    let model = match tokencge::model::load(path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return BAD_INPUT;
        }
    };
    let text = match tokencge::flatten::flatten(&model) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return BAD_INPUT;
        }
    };
    if let Err(e) = write_atomic(output, text.as_bytes()) {
        eprintln!("{}: cannot write: {e}", output.display());
        return BAD_INPUT;
    }
    println!("{}: flattened into {}", path.display(), output.display());
    OK
}
