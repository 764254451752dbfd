//! Config + command-line choices → the [`Plan`]: which batches run, where
//! their files go, how many at once. Every path in it is resolved.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crate::config::quarantine::Quarantine;
use crate::config::{BatchConfig, Config, DEFAULT_RESERVE, FlakyPolicy, MAX_DURATION};
use crate::outcome::Phase;

#[derive(Debug, Clone)]
pub struct PlannedBatch {
    pub phase: Phase,
    /// `env` already holds `WARDEN_SHARED_DIR` and `WARDEN_ARTIFACTS`.
    pub config: BatchConfig,
    /// Working directory, resolved.
    pub cwd: PathBuf,
    pub log: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// Run first, one at a time, in config order.
    pub setup: Vec<PlannedBatch>,
    /// In config order.
    pub batches: Vec<PlannedBatch>,
    /// Run last, one at a time, in config order, whatever happened before.
    pub post: Vec<PlannedBatch>,
    pub max_parallel: NonZeroUsize,
    pub artifacts: PathBuf,
    pub junit: PathBuf,
    /// One directory for the whole run (`WARDEN_SHARED_DIR`).
    pub shared_dir: PathBuf,
    pub deadline: Option<RunDeadline>,
    pub flaky: FlakyPolicy,
    pub quarantine: Quarantine,
    /// Where the run is recorded.
    pub history: crate::history::Location,
    /// The run's labels in the history: `[run] labels`, then `--label`.
    pub labels: crate::history::model::Labels,
}

/// The run's deadline and the reserve kept before it, both validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunDeadline {
    pub deadline: Duration,
    pub reserve: Duration,
    /// Where the deadline came from, for messages.
    pub source: DeadlineSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineSource {
    /// `--deadline` or `WARDEN_DEADLINE`.
    CommandLine,
    Config,
    /// `JOB_TIMEOUT_MINUTES`.
    JobTimeout,
}

/// What the command line says about the plan. Its paths are relative to the
/// current directory; the config's are relative to the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub artifacts: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub max_parallel: Option<NonZeroUsize>,
    /// `--deadline`, or `WARDEN_DEADLINE`.
    pub deadline: Option<Duration>,
    pub reserve: Option<Duration>,
    /// `JOB_TIMEOUT_MINUTES`, used when no deadline is set otherwise.
    pub job_timeout_minutes: Option<String>,
    /// `--flaky-fails`.
    pub flaky_fails: bool,
    /// Run only these batches (all when empty).
    pub only: Vec<String>,
    /// `--history` / `WARDEN_HISTORY`.
    pub history: Option<crate::history::Location>,
    /// `--label`: added to `[run] labels`, overriding the same keys.
    pub labels: crate::history::model::Labels,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no batch named \"{name}\" in {config} (batches: {known})")]
    UnknownBatch {
        name: String,
        config: String,
        known: String,
    },
    #[error("the reserve ({reserve}) must be shorter than the deadline ({deadline})")]
    ReserveTooLong { reserve: String, deadline: String },
    #[error("JOB_TIMEOUT_MINUTES={0:?} is not a positive whole number of minutes")]
    BadJobTimeout(String),
    #[error(transparent)]
    Quarantine(#[from] crate::config::ConfigError),
    #[error("cannot resolve {}: {error}", path.display())]
    Path {
        path: PathBuf,
        error: std::io::Error,
    },
}

pub const DEFAULT_ARTIFACTS: &str = "warden-artifacts";

impl Plan {
    pub fn new(config: Config, overrides: Overrides) -> Result<Plan, PlanError> {
        let base = config.base_dir();
        let history = crate::history::Location::resolve(
            overrides.history.as_ref(),
            config.history().as_ref(),
        );
        let labels = config.run.labels.clone().merged(&overrides.labels);
        let known = || {
            config
                .batches
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in &overrides.only {
            if !config.batches.iter().any(|b| b.name.as_str() == name) {
                return Err(PlanError::UnknownBatch {
                    name: name.clone(),
                    config: config.path.display().to_string(),
                    known: known(),
                });
            }
        }
        // Absolute, because batches see it from their own working directories.
        let artifacts = overrides
            .artifacts
            .clone()
            .or_else(|| config.run.artifacts.as_ref().map(|p| base.join(p)))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ARTIFACTS));
        let artifacts = std::path::absolute(&artifacts).map_err(|error| PlanError::Path {
            path: artifacts.clone(),
            error,
        })?;
        let junit = overrides
            .junit
            .clone()
            .or_else(|| config.run.junit.as_ref().map(|p| base.join(p)))
            .unwrap_or_else(|| artifacts.join("junit.xml"));
        let max_parallel = overrides
            .max_parallel
            .or(config.run.max_parallel)
            .or_else(|| std::thread::available_parallelism().ok())
            .unwrap_or(NonZeroUsize::MIN);
        let deadline = run_deadline(&config, &overrides)?;
        let flaky = if overrides.flaky_fails {
            FlakyPolicy::Fail
        } else {
            config.run.flaky
        };
        let quarantine = match &config.run.quarantine {
            Some(p) => crate::config::quarantine::load(&base.join(p))?,
            None => Quarantine::default(),
        };
        let shared_dir = artifacts.join("shared");
        let run_env = [
            ("WARDEN_SHARED_DIR", &shared_dir),
            ("WARDEN_ARTIFACTS", &artifacts),
        ];
        let unit = |phase: Phase, mut b: BatchConfig| {
            for (k, v) in run_env {
                b.env.insert(k.to_string(), v.display().to_string());
            }
            PlannedBatch {
                phase,
                cwd: resolve(&base, b.cwd.as_deref()),
                log: crate::supervisor::log_path(&artifacts, &b.name),
                config: b,
            }
        };
        let only = &overrides.only;
        let batches = config
            .batches
            .into_iter()
            .filter(|b| only.is_empty() || only.iter().any(|n| n == b.name.as_str()))
            .map(|b| unit(Phase::Batch, b))
            .collect();
        let setup = config
            .setup
            .into_iter()
            .map(|b| unit(Phase::Setup, b))
            .collect();
        let post = config
            .post
            .into_iter()
            .map(|p| {
                unit(
                    Phase::Post {
                        required: p.required,
                    },
                    p.step,
                )
            })
            .collect();
        Ok(Plan {
            history,
            labels,
            setup,
            batches,
            post,
            max_parallel,
            artifacts,
            junit,
            shared_dir,
            deadline,
            flaky,
            quarantine,
        })
    }

    /// Every unit of the plan, in the order the run reports them.
    pub fn units(&self) -> impl Iterator<Item = &PlannedBatch> {
        self.setup.iter().chain(&self.batches).chain(&self.post)
    }
}

/// `--deadline`/`WARDEN_DEADLINE`, else `[run] deadline`, else
/// `JOB_TIMEOUT_MINUTES`. An explicit reserve must be shorter than the
/// deadline; the default (5m) shrinks to a quarter of a short deadline.
fn run_deadline(config: &Config, o: &Overrides) -> Result<Option<RunDeadline>, PlanError> {
    let job_timeout = match &o.job_timeout_minutes {
        Some(m) if !m.trim().is_empty() => {
            let secs = m
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .and_then(|n| n.checked_mul(60))
                .filter(|&s| s <= MAX_DURATION.as_secs())
                .ok_or_else(|| PlanError::BadJobTimeout(m.clone()))?;
            Some(Duration::from_secs(secs))
        }
        _ => None,
    };
    let found = o
        .deadline
        .map(|d| (d, DeadlineSource::CommandLine))
        .or(config.run.deadline.map(|d| (d, DeadlineSource::Config)))
        .or(job_timeout.map(|d| (d, DeadlineSource::JobTimeout)));
    let Some((deadline, source)) = found else {
        return Ok(None);
    };
    let reserve = match o.reserve.or(config.run.reserve) {
        Some(r) if r >= deadline => {
            return Err(PlanError::ReserveTooLong {
                reserve: humantime::format_duration(r).to_string(),
                deadline: humantime::format_duration(deadline).to_string(),
            });
        }
        Some(r) => r,
        None => DEFAULT_RESERVE.min(deadline / 4),
    };
    Ok(Some(RunDeadline {
        deadline,
        reserve,
        source,
    }))
}

fn resolve(base: &Path, p: Option<&Path>) -> PathBuf {
    match p {
        Some(p) => base.join(p),
        None => base.to_path_buf(),
    }
}
