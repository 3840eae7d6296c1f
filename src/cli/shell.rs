//! What a system's tools need from `tokencge` besides results: shell completion scripts
//! (clap_complete), manual pages (clap_mangen) and the JSON Schema of the model format
//! (schemars, `tokencge::model::schema`). All three are generated from the same definitions the
//! program runs on (the clap tree, the loader's types), so they cannot fall behind it.

use std::path::Path;

use clap::CommandFactory as _;

use super::{write_atomic, Cli, BAD_INPUT, OK};

/// `tokencge completions SHELL`: the completion script on stdout.
pub(crate) fn cmd_completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "tokencge", &mut std::io::stdout());
    OK
}

/// The manual pages: `tokencge.1` (every command listed), then `tokencge-COMMAND.1` for each
/// command, as (file name, roff).
fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    // Built, so that each command knows its full name (`tokencge-solve`) for its page.
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let mut pages = Vec::new();
    let commands: Vec<clap::Command> = std::iter::once(cli.clone())
        .chain(cli.get_subcommands().filter(|c| !c.is_hide_set()).cloned())
        .collect();
    for cmd in commands {
        let man = clap_mangen::Man::new(cmd);
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        pages.push((man.get_filename(), roff));
    }
    Ok(pages)
}

/// `tokencge man`: the main page (`tokencge.1`) on stdout; with `--out DIR`, every page into
/// DIR (created when missing), each written atomically.
pub(crate) fn cmd_man(out: Option<&Path>) -> i32 {
    let pages = match man_pages() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("man: {e}");
            return BAD_INPUT;
        }
    };
    let Some(dir) = out else {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(&pages[0].1);
        return OK;
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("{}: cannot create: {e}", dir.display());
        return BAD_INPUT;
    }
    for (name, roff) in &pages {
        let path = dir.join(name);
        if let Err(e) = write_atomic(&path, roff) {
            eprintln!("{}: cannot write: {e}", path.display());
            return BAD_INPUT;
        }
    }
    println!(
        "{} manual pages written into {}",
        pages.len(),
        dir.display()
    );
    OK
}

/// `tokencge schema`: the JSON Schema of the model format on stdout.
pub(crate) fn cmd_schema() -> i32 {
    let schema = tokencge::model::schema::model_schema();
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).unwrap_or_default()
    );
    OK
}
