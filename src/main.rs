//! The `tokencge` binary: a thin wrapper that runs the command line and exits with its code.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
