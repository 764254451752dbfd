//! Command-line definitions.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Supervises CI test batches: never hangs, never leaks, always reports."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the batches of a config file.
    Run(RunArgs),
    /// Validate a config file and print the plan; run nothing.
    Check(CheckArgs),
    /// Kill what runs whose warden is gone left behind (processes, cgroups);
    /// never touches a live run. `warden run` does this at start too.
    Reap(ReapArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReapArgs {
    /// Only list what would be killed and removed.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config file.
    #[arg(short, long, default_value = "warden.toml")]
    pub config: PathBuf,
    /// Directory for logs and reports (overrides `[run] artifacts`).
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Where to write JUnit XML (overrides `[run] junit`).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// How many batches run at once (overrides `[run] max-parallel`).
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<NonZeroUsize>,
    /// Run deadline, counted from warden's start (overrides `[run] deadline`;
    /// else `JOB_TIMEOUT_MINUTES` is used). The watchdog fires at deadline − reserve.
    #[arg(long, value_name = "DURATION", env = "WARDEN_DEADLINE", value_parser = duration)]
    pub deadline: Option<Duration>,
    /// Time kept back before the deadline for termination, post steps and
    /// reports (overrides `[run] reserve`; default 5m, at most a quarter of the deadline).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub reserve: Option<Duration>,
    /// A batch that failed and then passed on a retry fails the run
    /// (default: it passes, reported `flaky`; also `[run] flaky = "fail"`).
    #[arg(long)]
    pub flaky_fails: bool,
    /// Echo every batch's output, prefixed with its name.
    #[arg(short, long)]
    pub verbose: bool,
    /// How batch processes are tracked: a cgroup v2 per batch when possible
    /// (auto), required (cgroup), or process group + environment cookie (pgroup).
    #[arg(long, value_enum, env = "WARDEN_CONTAINMENT", default_value = "auto")]
    pub containment: ContainmentChoice,
    /// Run only these batches.
    #[arg(value_name = "BATCH")]
    pub batches: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContainmentChoice {
    Auto,
    Cgroup,
    Pgroup,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Config file.
    #[arg(short, long, default_value = "warden.toml")]
    pub config: PathBuf,
    /// As for `run`: shows the deadline the run would have.
    #[arg(long, value_name = "DURATION", env = "WARDEN_DEADLINE", value_parser = duration)]
    pub deadline: Option<Duration>,
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub reserve: Option<Duration>,
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s)
}
