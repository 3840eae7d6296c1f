//! The `tokencge` binary: a thin wrapper that runs the command line and exits with its code.

mod cli;

fn main() {
    restore_sigpipe();
    std::process::exit(cli::run());
}

/// Rust ignores SIGPIPE, so printing into a pipe whose reader has gone (`tokencge | head`)
/// would panic; the default action ends the process quietly, as every Unix filter does.
#[cfg(unix)]
fn restore_sigpipe() {
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_sigpipe() {}
