//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Makes a server that runs Mendix apps follow Mendix's security checklist
/// for on-premises installations, and shows what it changed.
#[derive(Debug, Parser)]
#[command(name = "mxharden", version)]
pub struct Cli {
    /// Options shared by every subcommand.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every subcommand.
#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// Output format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail on stderr: -v for info, -vv for debug.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Folder of templates that replace built-in ones of the same name.
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Runtime version policy file to use instead of the built-in one.
    #[arg(long, global = true, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Plan lines and unified diffs for people.
    Text,
    /// One JSON document, e.g. for Ansible.
    Json,
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring each app to its desired state.
    Apply(ApplyArgs),
    /// Delete each app's firewall rules, rules files and boot unit; nothing else.
    Remove(RemoveArgs),
    /// Write every generated file under a folder and change nothing else.
    Render(RenderArgs),
    /// Parse and check desired-state files against the policy; change nothing.
    Validate(ValidateArgs),
    /// Print the JSON Schema of a desired-state file.
    Schema,
}

/// Arguments of `apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Change nothing: print the plan and a unified diff of every file.
    #[arg(long)]
    pub dry_run: bool,
    /// Act on the system tree under DIR (accounts in DIR/etc/passwd); reload no service.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Exit 2 when something changed (or, with --dry-run, would change), 0 when nothing did.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Seconds to wait for another run's lock before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// After changing the firewall, wait this many seconds for `yes` on
    /// stdin, and roll the firewall back when it does not come. For
    /// interactive runs over SSH.
    #[arg(long, value_name = "SECONDS", conflicts_with = "dry_run")]
    pub confirm_timeout: Option<u64>,
    /// Desired-state files, one app each.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Arguments of `remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Change nothing: print what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Act on the system tree under DIR: delete files only, never live rules.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Exit 2 when something was (or, with --dry-run, would be) deleted, 0 when nothing was.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Seconds to wait for another run's lock before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lock_timeout: u64,
    /// Desired-state files, one app each.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Arguments of `render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Folder to write the generated files under, at their host paths.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Desired-state files, one app each.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Read deployed models under DIR instead of `/`.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Desired-state files, one app each.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}
