//! The config file: TOML in, validated [`Config`] out. Every error names
//! `file:line:column` and the offending key; unknown keys are errors.
//!
//! This file holds the validated types; `parse` reads the text (`raw`: the
//! spanned serde structs; `span`: spans to `file:line:column`) and has
//! each section checked: `run`, `resources`, `defaults`, `unit` (setup,
//! batch and post entries, with `output` for how their output is read),
//! with `value` for the single values any of them holds.

mod defaults;
mod error;
mod limits;
mod name;
mod output;
mod parse;
mod pattern;
mod raw;
mod resources;
mod run;
pub(crate) mod span;
#[cfg(test)]
mod tests;
mod unit;
mod value;

pub use error::ConfigError;
pub use limits::Limits;
pub use name::BatchName;
pub use pattern::Pattern;

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

/// What to run: an argv executed directly, or a string for `sh -c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Never empty (validated).
    Argv(Vec<String>),
    Shell(String),
}

/// What to do with processes a batch leaves behind after its main process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeakPolicy {
    /// Kill them and warn; the status stays what the exit made it.
    #[default]
    Warn,
    /// Kill them and mark the batch `leaked`.
    Fail,
}

/// `[run]`, with the file's values (CLI overrides are applied by the plan).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub max_parallel: Option<NonZeroUsize>,
    /// Relative paths are relative to the config file's directory.
    pub artifacts: Option<PathBuf>,
    /// Relative paths are relative to the config file's directory.
    pub junit: Option<PathBuf>,
    /// Counted from warden's start; the CLI and environment may also set it.
    pub deadline: Option<Duration>,
    /// Time kept back before the deadline for termination, post steps and reports.
    pub reserve: Option<Duration>,
    pub flaky: FlakyPolicy,
    /// The quarantine file, relative to the config file's directory.
    pub quarantine: Option<PathBuf>,
    /// Where runs are recorded; a relative SQLite path is relative to the
    /// config file's directory.
    pub history: Option<crate::history::Location>,
    /// Labels of every run of this config (`arch = "x86_64"`).
    pub labels: crate::history::model::Labels,
    /// Where batches' scratch directories go (relative to the config
    /// file's directory); `None`: the system temp dir.
    pub scratch_root: Option<PathBuf>,
    pub keep_scratch: KeepScratch,
    /// Once more than this many tests (or batches without tests) have
    /// failed, no more retries start; `None`: no cap.
    pub retry_max_failures: Option<u64>,
    /// `max-fail = 2` or `"2:terminate"`: once this many batches have
    /// failed, no new batch starts (fail_fast.rs).
    pub max_fail: Option<crate::fail_fast::MaxFail>,
    /// Batches start only while their expected memory fits (`memory-budget`).
    pub memory_budget: Option<MemoryBudget>,
    /// `[run] retention`: after recording, a run prunes the store of what
    /// started longer ago than this (history::prune::auto).
    pub retention: Option<Duration>,
    /// `[run] queue = true`: queue mode (`warden run --queue`).
    pub queue: bool,
}

/// `[run] memory-budget`: how much memory the run's batches may expect to
/// use at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryBudget {
    Bytes(u64),
    /// The machine's available memory when the run starts, less a margin.
    Auto,
}

/// One `[[batch]]` with `[defaults]` and built-in defaults already applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    pub name: BatchName,
    pub command: Command,
    /// Added to warden's own environment.
    pub env: BTreeMap<String, String>,
    /// Relative paths are relative to the config file's directory; `None` = that directory.
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    pub grace: Duration,
    pub leak: LeakPolicy,
    pub drain: Duration,
    pub kind: Option<String>,
    /// A line of output matching one of these stops the batch at once
    /// (status `aborted`): a kernel panic on a VM console.
    pub fatal_patterns: Vec<Pattern>,
    pub retry: RetryPolicy,
    /// How its output is read into tests.
    pub format: OutputFormat,
    /// What it takes while it runs, and when it starts.
    pub scheduling: Scheduling,
    /// The command for a retry that runs only the failed tests: an argv with
    /// `{tests}` where they go (needs a `format`).
    pub rerun: Option<Vec<String>>,
    /// Keep passing tests' output for JUnit's `<system-out>`
    /// (`store-success-output`); by default only failing tests' is kept.
    pub store_success_output: bool,
    /// What it may use (`limits`), `[defaults]`' merged in key by key.
    pub limits: Limits,
}

/// One `[resources]` entry: `heavy-io = 4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub capacity: u32,
}

/// `WARDEN_SLOT_<NAME>`: the name upper-cased, `-` as `_`.
pub fn slot_variable(resource: &str) -> String {
    let name: String = resource
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    format!("WARDEN_SLOT_{name}")
}

/// What a batch takes while it runs (`threads`, `needs`, `locks`) and how
/// early it should start (`priority`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduling {
    /// How many of `max-parallel` it occupies.
    pub threads: u32,
    /// (resource name, units), every name in `[resources]`, within its capacity.
    pub needs: Vec<(String, u32)>,
    /// Keyed exclusive locks, without duplicates.
    pub locks: Vec<String>,
    /// Higher starts first; ties are ordered by expected duration.
    pub priority: i64,
    /// Memory it is expected to use, in bytes (`memory`), for `[run]
    /// memory-budget`; `None`: the history's p90 peak, if any.
    pub memory: Option<u64>,
}

impl Default for Scheduling {
    fn default() -> Self {
        Scheduling {
            threads: 1,
            needs: Vec::new(),
            locks: Vec::new(),
            memory: None,
            priority: 0,
        }
    }
}

/// `[run] keep-scratch`: when a batch's scratch directory outlives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepScratch {
    #[default]
    Never,
    OnFailure,
    Always,
}

/// `format`: what the batch's output says about tests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// The batch is one test.
    #[default]
    None,
    Tap,
    /// KUnit's KTAP inside a kernel log: `[    1.234567] ` prefixes and
    /// non-KTAP kernel messages around it.
    Kunit,
    /// LTP's `TPASS`/`TFAIL`/`TBROK`/`TCONF` result lines and `Summary:`.
    Ltp,
    /// `test_progs` output; `json-summary` names the file its
    /// `--json-summary` writes (relative to the batch's cwd), read after
    /// the batch ends for the failures' messages.
    TestProgs {
        json_summary: Option<PathBuf>,
    },
    GoJson,
    Libtest,
    /// JUnit files the batch writes (`junit-files` globs, relative to its cwd).
    Junit(Vec<String>),
}

/// `retry = { attempts = 3, when = ["EOF", "@oom"], backoff = "2s" }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs in all, the first included (1 = no retry).
    pub attempts: u32,
    /// Retry only failures whose output matches one of these (or, with
    /// `oom`, that the OOM killer killed); any failure when both are unset.
    pub when: Vec<Pattern>,
    /// `"@oom"` in `when`: retry a batch the OOM killer killed.
    pub oom: bool,
    /// Pause before each retry.
    pub backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 1,
            when: Vec::new(),
            oom: false,
            backoff: Duration::ZERO,
        }
    }
}

/// What a batch that failed and then passed does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlakyPolicy {
    /// The run passes (the batch is reported `flaky`).
    #[default]
    Pass,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub run: RunConfig,
    /// `[resources]`, in file order.
    pub resources: Vec<Resource>,
    /// `[[setup]]`, in file order.
    pub setup: Vec<BatchConfig>,
    /// In file order; names are unique across setup, batches and post.
    pub batches: Vec<BatchConfig>,
    /// `[[post]]`, in file order.
    pub post: Vec<PostConfig>,
}

/// A `[[post]]` step: a batch that always runs after the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostConfig {
    pub step: BatchConfig,
    /// Whether its failure fails the run (default: reported only).
    pub required: bool,
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(1);
pub const DEFAULT_RESERVE: Duration = Duration::from_secs(5 * 60);

/// `Config::load` and `Config::parse` are in `parse.rs`.
impl Config {
    /// `[run] history`, with a relative SQLite path taken from the file's directory.
    pub fn history(&self) -> Option<crate::history::Location> {
        use crate::history::Location;
        match self.run.history.clone()? {
            Location::Sqlite(p) => Some(Location::Sqlite(self.base_dir().join(p))),
            other => Some(other),
        }
    }

    /// The directory relative paths in the file are resolved against.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}
