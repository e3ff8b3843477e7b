//! The `mxharden` binary: parses the command line, runs one subcommand and
//! maps its result to an exit code.

mod cli;
mod commands;
mod logging;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(&cli.global);
    match commands::run(&cli) {
        Ok(code) => code,
        Err(error) => report::print_error(&cli.global, &error),
    }
}
