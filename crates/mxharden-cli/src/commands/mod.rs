//! One file per subcommand.

mod apply;
mod confirm;
mod remove;
mod render;
mod schema;
mod validate;

use std::process::ExitCode;

use mxharden_policy::RuntimePolicy;
use mxharden_render::Engine;

use crate::cli::{Cli, Command, GlobalOptions};

/// Runs the chosen subcommand and returns its exit code.
pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Apply(args) => apply::run(&cli.global, args),
        Command::Remove(args) => remove::run(&cli.global, args),
        Command::Render(args) => render::run(&cli.global, args),
        Command::Validate(args) => validate::run(&cli.global, args),
        Command::Schema => schema::run(),
    }
}

/// Loads the templates, honouring `--templates`.
pub(crate) fn load_engine(options: &GlobalOptions) -> anyhow::Result<Engine> {
    Ok(Engine::load(options.templates.as_deref())?)
}

/// Loads the runtime policy, honouring `--policy`.
pub(crate) fn load_policy(options: &GlobalOptions) -> anyhow::Result<RuntimePolicy> {
    Ok(match &options.policy {
        Some(path) => RuntimePolicy::load(path)?,
        None => RuntimePolicy::built_in(),
    })
}
