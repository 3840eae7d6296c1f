//! The command line: arguments → a validated command → run → exit code (0 ok, 1 a target failed
//! or a solve did not converge, 2 bad input or I/O). Only this module prints, touches
//! `std::process` or installs the tracing subscriber.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use tokencge::batch;
use tokencge::calibrate::Coefficients;
use tokencge::compile::Structure;
use tokencge::files::write_atomic;
use tokencge::report::stream::{ReportStream, SolveFormat};
use tokencge::report::{self, compare};
use tokencge::scenario::{self, Solution};
use tokencge::solve::{Backend, NewtonSettings};

mod bundle;
mod dynamic;
mod shell;
mod sweep;

/// The model that runs when no model is named: this file from the current directory, else the
/// copy built into the binary (`tokencge::model::sources::BUILT_IN`).
pub const DEFAULT_MODEL: &str = tokencge::model::sources::FLAGSHIP;

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Solve the benchmark, one scenario or all of them.
    Solve {
        /// Model file (default: models/token_economy.toml, else the built-in copy).
        model: Option<PathBuf>,
        /// Scenario to solve (default: the benchmark).
        #[arg(long, conflicts_with = "all")]
        scenario: Option<String>,
        /// Solve the benchmark and every scenario (without --dynamic: every static one; a
        /// scenario with paths of its own is dynamic).
        #[arg(long)]
        all: bool,
        /// Output: tables for people, the contract's JSON object(s), or CSV rows.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Override a parameter on top of the scenario's own (repeatable; derived parameters
        /// follow).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Also write a run bundle into DIR: results.json, results.csv, report.json, run.json.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        dynamic: DynamicArgs,
        #[command(flatten)]
        solver: SolverArgs,
    },
    /// Check benchmark replication, then every target; exit 0 only if all pass.
    Check {
        /// Model files (default: models/token_economy.toml, else the built-in copy).
        models: Vec<PathBuf>,
        /// Override a parameter in the benchmark and every scenario (repeatable).
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        solver: SolverArgs,
    },
    /// Describe a model: sectors and nests, commodities, consumers, scenarios.
    Describe {
        /// Model file (default: models/token_economy.toml, else the built-in copy).
        model: Option<PathBuf>,
        /// Output: text for people, or one JSON object for programs.
        #[arg(long, value_enum, default_value_t = DescribeFormat::Text)]
        format: DescribeFormat,
    },
    /// Solve scenarios and show them side by side against the benchmark.
    Compare {
        /// Model file (default: models/token_economy.toml, else the built-in copy).
        model: Option<PathBuf>,
        /// Comma-separated scenario names (default: all; without --dynamic, all static ones;
        /// `benchmark` may be named and is always the reference).
        #[arg(long, value_delimiter = ',')]
        scenarios: Vec<String>,
        /// Output: headline tables for people, or long typed records as CSV or JSON.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// With the table format: every activity, price, income and indicator after the
        /// headline.
        #[arg(long)]
        full: bool,
        /// Override a parameter in the benchmark and every scenario (repeatable): changes are
        /// measured against the benchmark with the same overrides.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        /// Also write a run bundle into DIR: results.json, results.csv, report.json, run.json.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[command(flatten)]
        dynamic: DynamicArgs,
        #[command(flatten)]
        solver: SolverArgs,
    },
    /// Systematic sensitivity analysis: the scenario solved for every draw of the model's
    /// [sensitivity] parameters, each change against the draw's own benchmark.
    Sweep(sweep::SweepArgs),
    /// Combine the directories of a sharded sweep into the whole result.
    Merge {
        /// Directories written by `sweep --shard K/N --out DIR`.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where the merged result goes.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Output of the merged summary: a table for people, or JSON or CSV.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also draw the merged sweep's fans (and tornado) as SVG.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// The quantity whose tornado chart is drawn (one-at-a-time low/high solves).
        #[arg(long, value_name = "QUANTITY")]
        tornado: Option<String>,
        /// Worker threads of the tornado's solves (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Print the tables of a run bundle (written by --out DIR) again, as the run printed them.
    Report {
        /// A directory written by `--out DIR` of solve, compare or sweep.
        dir: PathBuf,
    },
    /// Balance a social accounting matrix by the least total absolute adjustment (an LP).
    Balance {
        /// The SAM to balance (CSV: a header `account,A,B,…` and one row per account).
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
        /// Model file (default: models/token_economy.toml, else the built-in copy).
        model: Option<PathBuf>,
        /// Output file (written atomically), or `-` for standard output.
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
    /// Print a shell completion script to standard output (e.g. `tokencge completions bash >
    /// ~/.local/share/bash-completion/completions/tokencge`).
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) to standard output (`tokencge man | man -l -`), or write
    /// one page per command into DIR.
    Man {
        /// Write tokencge.1 and tokencge-COMMAND.1 for every command into DIR (created if
        /// missing) instead of printing tokencge.1.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Print the JSON Schema of the model format, for TOML editors (Taplo, Even Better TOML)
    /// and other tools.
    Schema,
}

/// The Newton solver's options, on the commands that solve.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Solver")]
pub(crate) struct SolverArgs {
    /// Convergence tolerance on the largest scaled residual.
    #[arg(long, default_value_t = 1e-9)]
    tolerance: f64,
    /// Iteration limit of one Newton solve.
    #[arg(long, default_value_t = 200)]
    max_iterations: u64,
    /// Wall-clock limit of one Newton solve, in seconds (argmin's executor enforces it).
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Linear solver of the Newton step: auto (by size and density), dense (LU), sparse (LU,
    /// rank-one terms by Sherman–Morrison–Woodbury) or krylov (GMRES preconditioned by the sparse
    /// LU of the Jacobian without its dense input-output runs).
    #[arg(long, value_enum, default_value_t = LinearSolver::Auto)]
    linear_solver: LinearSolver,
}

impl Default for SolverArgs {
    fn default() -> SolverArgs {
        SolverArgs {
            tolerance: 1e-9,
            max_iterations: 200,
            timeout: None,
            linear_solver: LinearSolver::Auto,
        }
    }
}

impl SolverArgs {
    /// The validated settings, or exit 2 with the option at fault.
    fn settings(&self) -> Result<NewtonSettings, i32> {
        NewtonSettings::default()
            .with_backend(self.linear_solver.into())
            .with_tolerance(self.tolerance)
            .and_then(|s| s.with_max_iterations(self.max_iterations))
            .and_then(|s| match self.timeout {
                None => Ok(s),
                Some(t) => s.with_timeout(t),
            })
            .map_err(|e| {
                eprintln!("error: --{e}");
                BAD_INPUT
            })
    }
}

/// The dynamic mode of `solve` and `compare` (models with `[dynamics]`).
#[derive(clap::Args, Debug, Clone, Default)]
struct DynamicArgs {
    /// Solve the scenarios' paths over the periods of [dynamics] instead of static equilibria.
    #[arg(long)]
    dynamic: bool,
    /// Draw an SVG chart into this file: with --dynamic the paths of --series (baseline and
    /// scenarios); for a static compare, EV by consumer and scenario (grouped bars) and the %
    /// changes of the headline prices and activities (a heat map).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Comma-separated quantities to plot: variables, indicators, parameters moving along the
    /// path (default: every sector's activity level).
    #[arg(long, value_delimiter = ',', requires = "plot")]
    series: Vec<String>,
}

/// What `describe` prints: its structure is nested, so there is no CSV.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum DescribeFormat {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum LinearSolver {
    Auto,
    Dense,
    Sparse,
    Krylov,
}

impl From<LinearSolver> for Backend {
    fn from(l: LinearSolver) -> Backend {
        match l {
            LinearSolver::Auto => Backend::Auto,
            LinearSolver::Dense => Backend::Dense,
            LinearSolver::Sparse => Backend::Sparse,
            LinearSolver::Krylov => Backend::Krylov,
        }
    }
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
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Colour only for a person at a terminal: a log file or a batch scheduler's capture gets
    // plain text (and NO_COLOR turns colour off everywhere).
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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
    let command = cli.command.unwrap_or(Command::Compare {
        model: None,
        scenarios: Vec::new(),
        format: Format::Table,
        full: false,
        set: Vec::new(),
        out: None,
        dynamic: DynamicArgs::default(),
        solver: SolverArgs::default(),
    });
    // The solver's settings, validated, for the commands that solve.
    let solver = match &command {
        Command::Solve { solver, .. }
        | Command::Check { solver, .. }
        | Command::Compare { solver, .. } => Some(solver.clone()),
        Command::Sweep(args) => Some(args.solver.clone()),
        _ => None,
    };
    let settings = match solver.map(|s| s.settings()).transpose() {
        Ok(s) => s.unwrap_or_default(),
        Err(code) => return code,
    };
    match command {
        Command::Solve {
            model,
            scenario,
            all,
            format,
            dynamic,
            set,
            out,
            ..
        } if dynamic.dynamic => dynamic::no_bundle(out.as_deref()).unwrap_or_else(|| {
            dynamic::cmd_solve_dynamic(
                &model_path(model),
                (scenario, all),
                format,
                (&dynamic, &set),
                &settings,
            )
        }),
        Command::Solve {
            model,
            scenario,
            all,
            format,
            set,
            out,
            dynamic,
            solver: _,
        } => {
            if dynamic.plot.is_some() {
                eprintln!("error: solve --plot draws a dynamic path: it needs --dynamic (compare --plot draws a static comparison)");
                return BAD_INPUT;
            }
            cmd_solve(
                &model_path(model),
                scenario,
                all,
                format,
                &set,
                out.as_deref(),
                &settings,
            )
        }
        Command::Check { models, set, .. } => {
            let models = if models.is_empty() {
                vec![model_path(None)]
            } else {
                models
            };
            let mut code = OK;
            for m in &models {
                code = code.max(cmd_check(m, &set, &settings));
            }
            code
        }
        Command::Describe { model, format } => cmd_describe(&model_path(model), format),
        Command::Sweep(args) => sweep::cmd_sweep(args, &settings),
        Command::Merge {
            dirs,
            out,
            format,
            plot,
            tornado,
            threads,
        } => sweep::cmd_merge(
            &dirs,
            &out,
            format,
            plot.as_deref(),
            tornado.as_deref(),
            threads,
        ),
        Command::Report { dir } => bundle::cmd_report(&dir),
        Command::Compare {
            model,
            scenarios,
            format,
            dynamic,
            set,
            out,
            ..
        } if dynamic.dynamic => dynamic::no_bundle(out.as_deref()).unwrap_or_else(|| {
            dynamic::cmd_compare_dynamic(
                &model_path(model),
                &scenarios,
                format,
                (&dynamic, &set),
                &settings,
            )
        }),
        Command::Compare {
            model,
            scenarios,
            format,
            full,
            set,
            out,
            dynamic,
            solver: _,
        } => cmd_compare(
            &model_path(model),
            &scenarios,
            CompareOutput {
                format,
                full,
                plot: dynamic.plot.as_deref(),
                out: out.as_deref(),
            },
            &set,
            &settings,
        ),
        Command::Balance {
            sam,
            output,
            fix,
            fix_account,
            relative,
        } => cmd_balance(&sam, &output, &fix, &fix_account, relative),
        Command::Flatten { model, output } => cmd_flatten(&model_path(model), &output),
        Command::Generate {
            sectors,
            households,
            seed,
            output,
        } => cmd_generate(sectors, households, seed, &output),
        Command::Completions { shell } => shell::cmd_completions(shell),
        Command::Man { out } => shell::cmd_man(out.as_deref()),
        Command::Schema => shell::cmd_schema(),
    }
}

/// Resolves `--set NAME=VALUE` arguments against a model; every bad one is reported (exit 2).
fn overrides_of(structure: &Structure, set: &[String]) -> Result<Vec<(usize, f64)>, i32> {
    structure.model().resolve_overrides(set).map_err(|errors| {
        for e in errors {
            eprintln!("{e}");
        }
        BAD_INPUT
    })
}

/// The model a command runs: the one named; else [`DEFAULT_MODEL`] from the current directory;
/// else the flagship built into the binary, with a note on stderr saying so (stdout stays the
/// command's output, so `--format json|csv` remain clean).
fn model_path(p: Option<PathBuf>) -> PathBuf {
    if let Some(p) = p {
        return p;
    }
    let local = PathBuf::from(DEFAULT_MODEL);
    if local.is_file() {
        // Said with -v only: the usual case in the repository.
        tracing::info!("model: {DEFAULT_MODEL} from the current directory");
        return local;
    }
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "the current directory".into());
    let built_in = tokencge::model::sources::built_in_flagship();
    eprintln!(
        "model: built-in token_economy.toml ({DEFAULT_MODEL} not found from {cwd}; read as {})",
        built_in.display()
    );
    built_in
}

fn load(path: &Path) -> Result<(Structure, Coefficients), i32> {
    tokencge::build(path).map_err(|e| {
        report_build_error(path, &e);
        BAD_INPUT
    })
}

/// Prints why a model could not be built: each diagnostic's `file:line:column` line, then
/// (when the file can be read) the offending source line with a caret under the column.
fn report_build_error(path: &Path, e: &tokencge::BuildError) {
    match e {
        tokencge::BuildError::Load(load) => report_load_error(path, load),
        other => eprintln!("{other}"),
    }
}

fn report_load_error(path: &Path, e: &tokencge::model::LoadError) {
    let text = tokencge::model::sources::provider_for(path)
        .read(path)
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match text {
        Some(text) => eprint!("{}", e.render(&text)),
        None => eprintln!("{e}"),
    }
}

/// Solves scenarios in parallel through the library; a progress bar shows on an interactive
/// terminal. A scenario that cannot be set up is reported on stderr as
/// `file: scenario NAME: reason` and comes back as `Err` beside the others.
fn solve_many(
    structure: &Structure,
    indices: &[Option<usize>],
    overrides: &[(usize, f64)],
    settings: &NewtonSettings,
) -> Vec<batch::Outcome> {
    let bar = progress_bar(indices.len(), "scenarios");
    let out = batch::solve_all_with(structure, indices, overrides, settings, &|| bar.inc(1));
    bar.finish_and_clear();
    for r in &out {
        report_failure(structure, r);
    }
    out
}

/// On stderr, why an outcome is not an equilibrium: the worst equations of a solve that did
/// not converge, the reason of a scenario that could not be set up; nothing for a solved one.
fn report_failure(structure: &Structure, outcome: &batch::Outcome) {
    match outcome {
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

/// A progress bar of `n` items on an interactive terminal (hidden otherwise, or for one item).
fn progress_bar(n: usize, items: &str) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressStyle};
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || n <= 1 {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(n as u64);
    if let Ok(style) =
        ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {items} {{msg}}"))
    {
        b.set_style(style);
    }
    b
}

/// The report of an outcome, solved or not.
fn report_of(structure: &Structure, outcome: batch::Outcome) -> report::SolutionReport {
    match outcome {
        Ok(solved) => solved.report,
        Err(u) => u.report(structure),
    }
}

/// The report of an outcome it keeps, solved or not.
fn report_ref<'a>(
    structure: &Structure,
    outcome: &'a batch::Outcome,
) -> std::borrow::Cow<'a, report::SolutionReport> {
    match outcome {
        Ok(solved) => std::borrow::Cow::Borrowed(&solved.report),
        Err(u) => std::borrow::Cow::Owned(u.report(structure)),
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
    set: &[String],
    out: Option<&Path>,
    settings: &NewtonSettings,
) -> i32 {
    let (structure, _) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let overrides = match overrides_of(&structure, set) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let model = structure.model();
    let indices: Vec<Option<usize>> = if all {
        std::iter::once(None)
            .chain(model.static_scenarios().into_iter().map(Some))
            .collect()
    } else {
        match scenario.as_deref() {
            None | Some("benchmark") => vec![None],
            Some(name) => match model.scenario_index(name) {
                Some(i) => vec![Some(i)],
                None => {
                    eprintln!("{}: {}", path.display(), unknown_scenario(model, name));
                    return BAD_INPUT;
                }
            },
        }
    };
    // Each report is rendered on the worker that solved it and written as soon as those
    // before it are (the same bytes as writing them all at the end); `--out` renders the
    // bundle's JSON and CSV in the same pass.
    let total = indices.len();
    let stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout());
    let mut printed = ReportStream::new(format.into(), stdout, total, &structure);
    let mut files = out.map(|_| {
        (
            ReportStream::new(SolveFormat::Json, Vec::new(), total, &structure),
            ReportStream::new(SolveFormat::Csv, Vec::new(), total, &structure),
        )
    });
    let renderers = (
        printed.renderer(),
        files.as_ref().map(|(j, c)| (j.renderer(), c.renderer())),
    );
    let mut code = OK;
    let mut log = bundle::RunLog::new(&overrides);
    let mut records = Vec::new();
    let bar = progress_bar(total, "scenarios");
    batch::solve_in_order(
        &structure,
        &indices,
        &overrides,
        settings,
        &|| bar.inc(1),
        &|outcome| {
            let report = report_ref(&structure, &outcome);
            let text = renderers.0.render(&report);
            let files = renderers
                .1
                .map(|(j, c)| (j.render(&report), c.render(&report)));
            (outcome, text, files)
        },
        &mut |(outcome, text, rendered)| {
            if !solved_ok(&outcome) {
                code = FAILED;
            }
            report_failure(&structure, &outcome);
            log.record(&outcome);
            let report = report_ref(&structure, &outcome);
            printed.push(&report, text);
            if let (Some((json, csv)), Some((j, c))) = (files.as_mut(), rendered) {
                json.push(&report, j);
                csv.push(&report, c);
                records.push(bundle::record(&report));
            }
        },
    );
    bar.finish_and_clear();
    if let Err(e) = printed.finish() {
        eprintln!("stdout: {e}");
        return BAD_INPUT;
    }
    if let (Some(dir), Some((json, csv))) = (out, files) {
        let text = |s: ReportStream<Vec<u8>>| String::from_utf8(s.finish().unwrap_or_default());
        let (Ok(json), Ok(csv)) = (text(json), text(csv)) else {
            eprintln!("{}: the results are not UTF-8", dir.display());
            return BAD_INPUT;
        };
        let data = tokencge::bundle::ReportData::Solve { reports: records };
        if let Err(c) =
            bundle::write_solve_bundle(dir, &structure, settings, &log, (json, csv), data)
        {
            return c;
        }
    }
    code
}

impl From<Format> for SolveFormat {
    fn from(f: Format) -> SolveFormat {
        match f {
            Format::Table => SolveFormat::Table,
            Format::Json => SolveFormat::Json,
            Format::Csv => SolveFormat::Csv,
        }
    }
}

fn cmd_check(path: &Path, set: &[String], settings: &NewtonSettings) -> i32 {
    let (structure, coef) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let file = path.display().to_string();
    let overrides = match overrides_of(&structure, set) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let coef = if overrides.is_empty() {
        coef
    } else {
        match scenario::prepare_with(&structure, None, &overrides) {
            Ok((_, c)) => c,
            Err(e) => {
                eprintln!("{file}: benchmark with --set: {e}");
                return BAD_INPUT;
            }
        }
    };
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
        if t.period.is_none() && !order.contains(&t.scenario) {
            order.push(t.scenario);
        }
    }
    let mut results = Vec::new();
    for (idx, outcome) in order
        .iter()
        .zip(solve_many(&structure, &order, &overrides, settings))
    {
        match outcome {
            Ok(solved) => {
                let sol = &solved.solution;
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
    // Targets with a period: the paths they need, as far as they need them.
    results.extend(dynamic::check_path_targets(&structure, settings));
    let failed = results.iter().filter(|r| !r.pass).count();
    // Value and expectation in aligned columns, the target's name whole at the end.
    let ew = results
        .iter()
        .map(|r| r.expected.chars().count())
        .max()
        .unwrap_or(8)
        .min(40);
    for r in &results {
        let v = r.value.map(report::sig).unwrap_or_else(|| "-".into());
        let note = if r.note.is_empty() {
            String::new()
        } else {
            format!("  ({})", r.note)
        };
        println!(
            "{}  {:>16}  {:<ew$}  {}{}",
            if r.pass { "PASS" } else { "FAIL" },
            v,
            r.expected,
            r.name,
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

fn cmd_describe(path: &Path, format: DescribeFormat) -> i32 {
    let (structure, coef) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    match format {
        DescribeFormat::Text => print!("{}", report::describe::describe(&structure, &coef)),
        DescribeFormat::Json => {
            let v = report::describe::describe_json(&structure, &coef);
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    OK
}

/// What a static comparison writes: the printed format, the full tables, an SVG chart, a run
/// bundle.
struct CompareOutput<'a> {
    format: Format,
    full: bool,
    plot: Option<&'a Path>,
    out: Option<&'a Path>,
}

fn cmd_compare(
    path: &Path,
    names: &[String],
    output: CompareOutput<'_>,
    set: &[String],
    settings: &NewtonSettings,
) -> i32 {
    let CompareOutput {
        format,
        full,
        plot,
        out,
    } = output;
    let (structure, _) = match load(path) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let overrides = match overrides_of(&structure, set) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let model = structure.model();
    let mut indices = Vec::new();
    if names.is_empty() {
        indices.extend(model.static_scenarios());
    } else {
        let mut bad = Vec::new();
        let mut seen = Vec::new();
        for n in names {
            if seen.contains(&n) {
                bad.push(format!("scenario '{n}' is listed twice in --scenarios"));
                continue;
            }
            seen.push(n);
            match model.scenario_index(n) {
                Some(i) => indices.push(i),
                // The benchmark is always the reference column.
                None if n == "benchmark" => {}
                None => bad.push(unknown_scenario(model, n)),
            }
        }
        if !bad.is_empty() {
            for b in bad {
                eprintln!("{}: {b}", path.display());
            }
            return BAD_INPUT;
        }
    }
    let all: Vec<Option<usize>> = std::iter::once(None)
        .chain(indices.into_iter().map(Some))
        .collect();
    let mut code = OK;
    let mut log = bundle::RunLog::new(&overrides);
    let mut reports = Vec::new();
    for outcome in solve_many(&structure, &all, &overrides, settings) {
        if !solved_ok(&outcome) {
            code = FAILED;
        }
        log.record(&outcome);
        reports.push(report_of(&structure, outcome));
    }
    let data = out.map(|_| tokencge::bundle::ReportData::Compare {
        reports: bundle::records(&reports),
        full,
    });
    let bench = reports.remove(0);
    let cmp = compare::build(model, &bench, &reports);
    if let Some(file) = plot {
        let written = tokencge::chart::compare::comparison_svg(&cmp)
            .map_err(|e| e.to_string())
            .and_then(|svg| write_atomic(file, svg.as_bytes()).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("{}: {e}", file.display());
            return BAD_INPUT;
        }
    }
    let json = || serde_json::to_string_pretty(&cmp.json()).unwrap_or_default() + "\n";
    match format {
        Format::Table if full => print!("{}", cmp.full()),
        Format::Table => print!("{}", cmp.headline()),
        Format::Csv => print!("{}", cmp.csv()),
        Format::Json => print!("{}", json()),
    }
    if let (Some(dir), Some(data)) = (out, data) {
        let results = (json(), cmp.csv());
        if let Err(c) = bundle::write_solve_bundle(dir, &structure, settings, &log, results, data) {
            return c;
        }
    }
    code
}

/// "unknown scenario 'x' (scenarios: benchmark, a, b)".
fn unknown_scenario(model: &tokencge::model::Model, name: &str) -> String {
    let known: Vec<&str> = std::iter::once("benchmark")
        .chain(model.scenarios.iter().map(|s| s.name.as_str()))
        .collect();
    format!(
        "unknown scenario '{name}' (scenarios: {})",
        known.join(", ")
    )
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
            report_load_error(path, &e);
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
    if output == Path::new("-") {
        print!("{text}");
        return OK;
    }
    if let Err(e) = write_atomic(output, text.as_bytes()) {
        eprintln!("{}: cannot write: {e}", output.display());
        return BAD_INPUT;
    }
    println!("{}: flattened into {}", path.display(), output.display());
    OK
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every argument of every command says what it is for (`--help` never shows a bare flag).
    #[test]
    fn every_argument_has_help_text() {
        let cli = super::Cli::command();
        let mut bare = Vec::new();
        for cmd in std::iter::once(&cli).chain(cli.get_subcommands()) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    bare.push(format!("{} {id}", cmd.get_name()));
                }
            }
        }
        assert!(bare.is_empty(), "arguments without help: {bare:?}");
    }
}
