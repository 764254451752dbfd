//! Command-line definitions.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand, ValueEnum};

use crate::history::Location;
use crate::history::model::Label;
use crate::scheduler::partition::Partition;

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
    /// Write a commented starter warden.toml for the projects found in the
    /// directory (a Cargo workspace, a Go module, a pytest project, a
    /// kernel tree's selftests), or a generic one.
    Init(InitArgs),
    /// Kill what runs whose warden is gone left behind (processes, cgroups);
    /// never touches a live run. `warden run` does this at start too.
    Reap(ReapArgs),
    /// Record test results written by other runners into the history.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Tests that fail intermittently: failure %, flaky runs, flip rate.
    Flaky(FlakyArgs),
    /// The recent results of one test, as a strip with commits and durations.
    History(HistoryArgs),
    /// Tests that were passing and now fail consistently.
    Regressed(RegressedArgs),
    /// The failures grouped by cause: their messages with the variable
    /// parts (numbers, hex, paths, addresses, durations, times) masked.
    Failures(FailuresArgs),
    /// How long tests or batches take: p50, p90, max.
    Durations(DurationsArgs),
    /// Serve the history as web pages and a JSON API (read-only).
    Serve(ServeArgs),
    /// Run one batch (or one of its tests) N times under each pressure
    /// (`--pressure`), K at once, and say whether it fails on its own and
    /// what makes it fail more. Exit 1 when an attempt failed, 0 when none did.
    Hunt(HuntArgs),
    /// Delete the runs (results, batches, attempts, labels) and hunts that
    /// started before now − `--older-than`, in small chunks that never hold
    /// up a run recording meanwhile; says what it removed.
    Prune(PruneArgs),
    /// A queue-mode run's whole result from the store (every machine's
    /// batches): its JUnit, summary and exit code, and what is still
    /// running or was never claimed (then exit 1).
    Report(ReportArgs),
    /// Print a shell completion script, generated from these definitions.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per subcommand with --dir.
    Man(ManArgs),
}

/// Where the history is: `--history`, else `WARDEN_HISTORY`, else the
/// config's `[run] history`, else `sqlite:.warden/history.db`.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// History store: `sqlite:PATH`, `postgres://…` or `none`.
    #[arg(long, value_name = "URL", env = "WARDEN_HISTORY")]
    pub history: Option<Location>,
    /// Config file whose `[run] history` to use (default: warden.toml, if it exists).
    #[arg(short, long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// JUnit XML files (Surefire, gotestsum, pytest, nextest, warden), all
    /// one run unless --run-per-file.
    Junit(ImportJunitArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportJunitArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A label of the run, `KEY=VALUE` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<Label>,
    /// The commit tested (default: from the CI environment, else git).
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// The branch tested (default: from the CI environment, else git).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// When the run happened, RFC 3339 (`2026-11-20T10:00:00Z`) or a date
    /// (default: the files' earliest `timestamp`, else their modification time).
    #[arg(long, value_name = "TIME", value_parser = time)]
    pub at: Option<SystemTime>,
    /// Each file is a run of its own (backfilling history from old artifacts).
    #[arg(long)]
    pub run_per_file: bool,
    /// Record every suite as this one batch, naming tests
    /// `NAME/classname/name` as `warden run` does for a batch of this name
    /// with `format = "junit"` (default: each `<testsuite name>` is a batch).
    #[arg(long, value_name = "NAME")]
    pub batch: Option<crate::config::BatchName>,
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Filters and output shared by the history queries.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only runs that started within this long before now.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = since)]
    pub since: Duration,
    /// Only runs with this label, `KEY=VALUE` (repeatable; all must match).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<Label>,
    /// At most this many rows (0: all).
    #[arg(long, value_name = "N", default_value = "50")]
    pub limit: usize,
    /// A run where more than this share of its tests failed (at least 5
    /// run), or whose setup failed, is a mass failure: shown as such, left
    /// out of flaky and regressed. `50%` or `0.5`; `100%` turns it off.
    #[arg(long, value_name = "PCT", default_value = "50%", value_parser = crate::history::query::mass::parse_share)]
    pub mass_failure: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct FlakyArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// One row per test and value of these label keys, e.g. `arch,compiler`.
    #[arg(long, value_name = "KEYS", value_delimiter = ',')]
    pub by: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// The test: its full name (`batch/test`), or a suffix of it that names one test.
    #[arg(value_name = "TEST")]
    pub test: String,
}

#[derive(Debug, clap::Args)]
pub struct RegressedArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// How many failures in a row, after a pass, make a regression.
    #[arg(long, value_name = "N", default_value = "3")]
    pub min_failures: NonZeroUsize,
}

#[derive(Debug, clap::Args)]
pub struct FailuresArgs {
    #[command(flatten)]
    pub query: QueryArgs,
}

#[derive(Debug, clap::Args)]
pub struct DurationsArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Per test (the default).
    #[arg(long, conflicts_with = "batches")]
    pub tests: bool,
    /// Per batch.
    #[arg(long)]
    pub batches: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on; port 0 picks a free port. Anything but a
    /// loopback address lets whoever reaches it read the history.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// A test (its exact name) whose results `/metrics` counts in series
    /// of their own, by label set and status; repeatable (not split at
    /// commas: test names hold them). Without it no series names a test.
    #[arg(long = "metrics-test", value_name = "NAME")]
    pub metrics_tests: Vec<String>,
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
    /// Write the run's events as JSON Lines here, as they happen (`-`:
    /// standard output, and the human output goes to standard error).
    /// Schema: docs/events.schema.json.
    #[arg(long, value_name = "PATH")]
    pub events: Option<PathBuf>,
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
    /// Once N batches have failed, start no new batch: running ones finish
    /// (with `N:terminate` they are stopped, as by the deadline), the rest
    /// are reported `not-run`, post steps still run (overrides `[run] max-fail`).
    #[arg(long, value_name = "N[:terminate]")]
    pub max_fail: Option<crate::fail_fast::MaxFail>,
    /// `--max-fail 1`: start no new batch once one has failed.
    #[arg(long, conflicts_with = "max_fail")]
    pub fail_fast: bool,
    /// Run only what did not pass in an earlier run: FROM is its artifacts
    /// directory (its junit.xml; a CI artifact downloaded will do), a JUnit
    /// report warden wrote, or a run uuid in the history. Batches with
    /// `rerun` run only their failed tests. Nothing failed: exit 0.
    #[arg(long, value_name = "DIR|UUID", conflicts_with = "queue")]
    pub rerun_failed: Option<String>,
    /// History store (overrides `[run] history`): `sqlite:PATH`, `postgres://…` or `none`.
    #[arg(long, value_name = "URL", env = "WARDEN_HISTORY")]
    pub history: Option<Location>,
    /// A label of this run in the history, `KEY=VALUE`, e.g. `arch=x86_64`
    /// (repeatable; adds to and overrides `[run] labels`).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<Label>,
    /// Send the run as an OpenTelemetry trace over OTLP/HTTP (http or
    /// https) to this base URL (`/v1/traces` is appended unless it ends
    /// so), each batch's spans as it finishes; else
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`.
    /// Protocol, compression, timeout and TLS files: the
    /// `OTEL_EXPORTER_OTLP_*` variables. Each batch gets `TRACEPARENT`; a
    /// failed export is only a warning.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Echo every batch's output, prefixed with its name.
    #[arg(short, long)]
    pub verbose: bool,
    /// How batch processes are tracked: a cgroup v2 per batch when possible
    /// (auto), required (cgroup), or process group + environment cookie
    /// (pgroup). Either way a PID namespace per batch is added on top where
    /// it can be made (see --pid-namespace); `warden check` prints the layers.
    #[arg(long, value_enum, env = "WARDEN_CONTAINMENT", default_value = "auto")]
    pub containment: ContainmentChoice,
    /// A PID namespace per batch, whose init warden kills to kill all the
    /// batch left, however it escaped the other layers: when it can be made
    /// (auto: needs root / CAP_SYS_ADMIN), required, off, or `user`: inside
    /// an unprivileged user namespace mapping only warden's uid and gid, for
    /// runners without root (setuid programs such as sudo then don't work
    /// in batches; falls back as auto does).
    #[arg(long, value_enum, env = "WARDEN_PID_NAMESPACE", default_value = "auto")]
    pub pid_namespace: PidNsChoice,
    /// Run only shard K of N of the batches: `count:K/N`, `hash:K/N` or
    /// `duration:K/N` (balanced by the history's durations). Setup and post
    /// steps run in every shard.
    #[arg(long, value_name = "KIND:K/N", env = "WARDEN_PARTITION")]
    pub partition: Option<Partition>,
    /// Queue mode (also `[run] queue = true`): the machines of one CI run
    /// take batches one at a time from one queue in the PostgreSQL history,
    /// longest first, until it is empty. Needs a run key (--run-key).
    #[arg(long, conflicts_with = "partition")]
    pub queue: bool,
    /// The key the machines of one CI run share in queue mode, `BASE` or
    /// `BASE#ATTEMPT` (default: from the CI's environment: WARDEN_RUN_KEY,
    /// GITHUB_RUN_ID + GITHUB_RUN_ATTEMPT, BUILDKITE_BUILD_ID, CI_PIPELINE_ID, …).
    #[arg(long, value_name = "KEY")]
    pub run_key: Option<crate::queue::RunKey>,
    /// Queue mode: how long a claimed batch stays this machine's without a
    /// renewal (renewed every third of it).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration)]
    pub queue_lease: Duration,
    /// Run only these batches.
    #[arg(value_name = "BATCH")]
    pub batches: Vec<String>,
}

/// `warden report`: a queue-mode run's whole result, from the store.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The run key (default: from the CI's environment, as `run --queue`).
    #[arg(long, value_name = "KEY")]
    pub run_key: Option<crate::queue::RunKey>,
    /// Write the whole run's JUnit XML here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write the whole run's summary (text) here too.
    #[arg(long, value_name = "PATH")]
    pub summary: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct HuntArgs {
    /// Config file.
    #[arg(short, long, default_value = "warden.toml")]
    pub config: PathBuf,
    /// Attempts per arm.
    #[arg(long, value_name = "N")]
    pub runs: std::num::NonZeroU32,
    /// How many attempts run at once.
    #[arg(long, value_name = "K", default_value = "1")]
    pub parallel: NonZeroUsize,
    /// An arm of the experiment (repeatable): `io=10M` (the batch's I/O
    /// read and write limit), `cpu=50%`, `memory=512M` (memory-high),
    /// `noise=cpu:2` (busy-looping siblings), `noise=io` (a sibling writing
    /// and syncing a scratch file), `none` (the control, always run first).
    #[arg(long = "pressure", value_name = "SPEC")]
    pub pressures: Vec<crate::hunt::arms::Pressure>,
    /// Stop everything at the first failed attempt and print its log.
    #[arg(long)]
    pub until_fail: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Directory for the logs (overrides `[run] artifacts`): `hunt-<time>/<arm>/<i>.log`.
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// History store (overrides `[run] history`): `sqlite:PATH`, `postgres://…` or `none`.
    #[arg(long, value_name = "URL", env = "WARDEN_HISTORY")]
    pub history: Option<Location>,
    /// A label of this hunt in the history, `KEY=VALUE` (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<Label>,
    /// As for `run`.
    #[arg(long, value_enum, env = "WARDEN_CONTAINMENT", default_value = "auto")]
    pub containment: ContainmentChoice,
    /// As for `run`.
    #[arg(long, value_enum, env = "WARDEN_PID_NAMESPACE", default_value = "auto")]
    pub pid_namespace: PidNsChoice,
    /// The batch, or `BATCH/TEST`: one test of it, run alone through the
    /// batch's `rerun` template (TEST as the history names it below the batch).
    #[arg(value_name = "BATCH[/TEST]")]
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContainmentChoice {
    Auto,
    Cgroup,
    Pgroup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PidNsChoice {
    Auto,
    Required,
    Off,
    User,
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
    /// As for `run`: the predicted makespan depends on it.
    #[arg(long, value_name = "N")]
    pub max_parallel: Option<NonZeroUsize>,
    /// As for `run`: where the expected durations come from.
    #[arg(long, value_name = "URL", env = "WARDEN_HISTORY")]
    pub history: Option<Location>,
    /// As for `run`: shows which batches this shard runs.
    #[arg(long, value_name = "KIND:K/N", env = "WARDEN_PARTITION")]
    pub partition: Option<Partition>,
    /// As for `run`: the containment layers printed.
    #[arg(long, value_enum, env = "WARDEN_CONTAINMENT", default_value = "auto")]
    pub containment: ContainmentChoice,
    /// As for `run`.
    #[arg(long, value_enum, env = "WARDEN_PID_NAMESPACE", default_value = "auto")]
    pub pid_namespace: PidNsChoice,
    /// As for `run`: only these batches.
    #[arg(value_name = "BATCH")]
    pub batches: Vec<String>,
}

/// `warden init`: a starter config for what the directory holds.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The project's directory, where warden.toml is written.
    #[arg(long, value_name = "PATH", default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite an existing warden.toml.
    #[arg(long)]
    pub force: bool,
    /// Kernel trees: the selftest targets to run, one batch each, e.g.
    /// `net,bpf`, or `all` (default: a few quick, self-contained ones that
    /// the tree has, else all of them).
    #[arg(long, value_name = "TARGETS", value_delimiter = ',')]
    pub selftests: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell, e.g. `warden completions bash > /etc/bash_completion.d/warden`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write warden.1 and one page per subcommand (warden-run.1, …) into
    /// this directory instead of printing warden.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Remove what started longer ago than this, e.g. `90d`.
    #[arg(long, value_name = "DURATION", value_parser = older_than)]
    pub older_than: Duration,
    /// Keep the old runs' rows (status, commit, labels, counts) and their
    /// batches' rows (status, duration, usage); remove only their
    /// per-test results and retried attempts.
    #[arg(long)]
    pub keep_summaries: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// `--older-than`: a window, but not an empty one (that would be everything).
fn older_than(s: &str) -> Result<Duration, String> {
    match crate::duration::parse_window(s)? {
        d if d.is_zero() => Err("must be longer than zero".to_owned()),
        d => Ok(d),
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s)
}

/// A look-back window: `30d`, `12h`, `1y`.
fn since(s: &str) -> Result<Duration, String> {
    crate::duration::parse_window(s)
}

/// RFC 3339, with or without the zone (UTC), or a bare date (midnight UTC).
fn time(s: &str) -> Result<SystemTime, String> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc).into());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc().into());
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2026-11-20T10:00:00Z) or a date (2026-11-20)"
    ))
}
