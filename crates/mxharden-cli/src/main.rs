//! The `mxharden` binary: parses the command line, runs one subcommand and
//! maps its result to an exit code.

mod cli;
mod commands;
mod logging;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    logging::init(&cli.global);
    match commands::run(&cli) {
        Ok(code) => code,
        Err(error) => report::print_error(&cli.global, &error),
    }
}

/// Prints clap's message. Help and version exit 0; every other command-line
/// error exits 1, because `--detailed-exitcode` gives 2 its own meaning.
fn usage_error(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    match error.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Lets a closed pipe (`mxharden schema | head`) end the process quietly, as
/// it does other command-line tools, instead of a panic in `println!`.
fn restore_default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: the default handler runs no code in this process, and nothing
    // else has installed a SIGPIPE handler this early.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigDfl);
    }
}
