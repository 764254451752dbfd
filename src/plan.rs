//! Config + command-line choices → the [`Plan`]: which batches run, where
//! their files go, how many at once. Every path in it is resolved.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use std::time::Duration;

use crate::artifacts::Artifacts;
use crate::config::{BatchConfig, Config, DEFAULT_RESERVE, FlakyPolicy};
use crate::duration;
use crate::phase::Phase;
use crate::quarantine::{self, Quarantine};
use crate::scheduler::memory::{Budget, Expectation};
use crate::scheduler::order::{Expected, Unit};
use crate::scheduler::partition::{Partition, Strategy};
use crate::scheduler::{Capacity, Demand};

#[derive(Debug, Clone)]
pub struct PlannedBatch {
    pub phase: Phase,
    /// `env` already holds `WARDEN_SHARED_DIR` and `WARDEN_ARTIFACTS`.
    pub config: BatchConfig,
    /// Working directory, resolved.
    pub cwd: PathBuf,
    pub log: PathBuf,
    /// The thread slot it runs in (`WARDEN_SLOT`), once granted; `None`
    /// for setup and post steps, which run one at a time.
    pub slot: Option<u32>,
    /// Which attempt of it this is, from 1 (`WARDEN_ATTEMPT`; the retries
    /// count it up).
    pub attempt: u32,
    /// The run's trace when it is exported (`--otlp-endpoint`): each
    /// attempt then gets `TRACEPARENT` naming its own span (see `retry`).
    pub trace: Option<crate::trace_context::TraceContext>,
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
    /// Where the run's files go (absolute).
    pub artifacts: Artifacts,
    pub junit: PathBuf,
    pub deadline: Option<RunDeadline>,
    pub flaky: FlakyPolicy,
    /// `[run] retry-max-failures`: no retry starts once more than this
    /// many tests (or batches without tests) have failed; `None`: no cap.
    pub retry_max_failures: Option<u64>,
    /// `--max-fail` / `--fail-fast`, else `[run] max-fail`: once this many
    /// batches have failed, no new batch starts; `None`: all run.
    pub max_fail: Option<crate::fail_fast::MaxFail>,
    pub quarantine: Quarantine,
    /// Where the run is recorded.
    pub history: crate::history::Location,
    /// The run's labels in the history: `[run] labels`, then `--label`.
    pub labels: crate::history::model::Labels,
    /// `[run] retention`: prune the history of what is older, after recording.
    pub retention: Option<std::time::Duration>,
    /// `[run] queue = true` (or `--queue`): batches come from the shared queue.
    pub queue: bool,
    /// `[resources]`.
    pub resources: Vec<crate::config::Resource>,
    pub scratch: Scratch,
    /// The order batches start in: indices into `batches`, each once.
    /// [`Plan::new`] orders by priority only; [`Plan::order_by`] adds the
    /// expected durations.
    pub order: Vec<usize>,
    /// `[run] memory-budget` and what each batch is expected to use.
    pub memory: Memory,
}

/// Memory-aware admission's inputs (see `scheduler::memory`).
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// `[run] memory-budget` as written.
    pub configured: Option<crate::config::MemoryBudget>,
    /// The budget in bytes: a configured size at once, `auto` once the app
    /// has measured the machine at the run's start; `None`: not counted.
    pub budget: Option<Budget>,
    /// By batch name, from [`Plan::expect_memory`]; a batch not here is
    /// expected to use its `memory` key, if any.
    pub expected: HashMap<String, Expectation>,
}

/// What [`Plan::partition`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sharded {
    /// The batches selected before sharding.
    pub total: usize,
    /// This shard's.
    pub kept: Vec<String>,
    /// What split them (`duration` without history is `hash`).
    pub strategy: Strategy,
    /// The same in every shard that split the same way.
    pub fingerprint: String,
}

/// Where batches' scratch directories go, and when they are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scratch {
    /// Absolute.
    pub root: PathBuf,
    pub keep: crate::config::KeepScratch,
}

/// `sun_path` holds 108 bytes with its NUL.
const SUN_PATH_MAX: usize = 107;
/// What a test typically adds below its scratch directory (`/vm3/qmp.sock`).
const SOCKET_ALLOWANCE: usize = 40;
/// `/warden-XXXXXX/`: the directory a batch gets under the root.
pub const SCRATCH_DIR_LEN: usize = "/warden-XXXXXX/".len();

impl Scratch {
    /// A warning when unix sockets under a batch's scratch directory would
    /// not fit `sun_path` (`bind` fails with ENAMETOOLONG, or the path is
    /// silently cut).
    pub fn socket_warning(&self) -> Option<String> {
        let len = self.root.as_os_str().len();
        let total = len + SCRATCH_DIR_LEN + SOCKET_ALLOWANCE;
        (total > SUN_PATH_MAX).then(|| {
            format!(
                "scratch root {} is {len} bytes long: a unix socket in a batch's scratch directory \
                 ({} more bytes, allowing {SOCKET_ALLOWANCE} for the test's own path) would pass the \
                 108-byte sun_path limit; set [run] scratch-root to a shorter directory",
                self.root.display(),
                SCRATCH_DIR_LEN
            )
        })
    }
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
    /// `--max-fail` (or `--fail-fast`).
    pub max_fail: Option<crate::fail_fast::MaxFail>,
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
    #[error(
        "batch \"{batch}\" takes {threads} threads, but max-parallel is {max_parallel}: it could never start"
    )]
    TooManyThreads {
        batch: String,
        threads: u32,
        max_parallel: usize,
    },
    #[error("cannot resolve {}: {error}", path.display())]
    Path {
        path: PathBuf,
        error: std::io::Error,
    },
}

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
            .unwrap_or_else(|| PathBuf::from(crate::artifacts::DEFAULT_DIR));
        let artifacts = std::path::absolute(&artifacts).map_err(|error| PlanError::Path {
            path: artifacts.clone(),
            error,
        })?;
        let artifacts = Artifacts::new(artifacts);
        let junit = overrides
            .junit
            .clone()
            .or_else(|| config.run.junit.as_ref().map(|p| base.join(p)))
            .unwrap_or_else(|| artifacts.default_junit());
        let max_parallel = overrides
            .max_parallel
            .or(config.run.max_parallel)
            .or_else(|| std::thread::available_parallelism().ok())
            .unwrap_or(NonZeroUsize::MIN);
        if let Some(b) = config
            .batches
            .iter()
            .find(|b| b.scheduling.threads as usize > max_parallel.get())
        {
            return Err(PlanError::TooManyThreads {
                batch: b.name.to_string(),
                threads: b.scheduling.threads,
                max_parallel: max_parallel.get(),
            });
        }
        let scratch_root = match &config.run.scratch_root {
            Some(p) => base.join(p),
            None => std::env::temp_dir(),
        };
        // Absolute: batches see it from their own working directories.
        let scratch_root = std::path::absolute(&scratch_root).map_err(|error| PlanError::Path {
            path: scratch_root.clone(),
            error,
        })?;
        let retry_max_failures = config.run.retry_max_failures;
        let max_fail = overrides.max_fail.or(config.run.max_fail);
        let scratch = Scratch {
            root: scratch_root,
            keep: config.run.keep_scratch,
        };
        let resources = config.resources.clone();
        let deadline = run_deadline(&config, &overrides)?;
        let flaky = if overrides.flaky_fails {
            FlakyPolicy::Fail
        } else {
            config.run.flaky
        };
        let quarantine = match &config.run.quarantine {
            Some(p) => quarantine::load(&base.join(p))?,
            None => Quarantine::default(),
        };
        let shared_dir = artifacts.shared();
        let run_env = [
            ("WARDEN_SHARED_DIR", shared_dir.as_path()),
            ("WARDEN_ARTIFACTS", artifacts.dir()),
        ];
        let unit = |phase: Phase, mut b: BatchConfig| {
            for (k, v) in run_env {
                b.env.insert(k.to_string(), v.display().to_string());
            }
            PlannedBatch {
                phase,
                cwd: resolve(&base, b.cwd.as_deref()),
                log: artifacts.log(&b.name),
                slot: None,
                attempt: 1,
                config: b,
                trace: None,
            }
        };
        let only = &overrides.only;
        let batches: Vec<PlannedBatch> = config
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
        let order = start_order(&batches, &Expected::none());
        let memory = Memory {
            configured: config.run.memory_budget,
            budget: match config.run.memory_budget {
                Some(crate::config::MemoryBudget::Bytes(b)) => Some(Budget::configured(b)),
                _ => None,
            },
            expected: HashMap::new(),
        };
        Ok(Plan {
            memory,
            history,
            labels,
            resources,
            scratch,
            order,
            setup,
            batches,
            post,
            max_parallel,
            artifacts,
            junit,
            deadline,
            flaky,
            retry_max_failures,
            max_fail,
            quarantine,
            retention: config.run.retention,
            queue: config.run.queue,
        })
    }

    /// Every unit of the plan, in the order the run reports them.
    pub fn units(&self) -> impl Iterator<Item = &PlannedBatch> {
        self.setup.iter().chain(&self.batches).chain(&self.post)
    }

    /// Starts the batches by priority, then longest expected first.
    pub fn order_by(&mut self, expected: &Expected) {
        self.order = start_order(&self.batches, expected);
    }

    /// Keeps only the batches of `partition`'s shard (setup and post steps
    /// run in every shard), ordered by `expected`. `expected` must be the
    /// same in every shard for `duration` to split the same way.
    pub fn partition(&mut self, partition: &Partition, expected: &Expected) -> Sharded {
        let names: Vec<&str> = self
            .batches
            .iter()
            .map(|b| b.config.name.as_str())
            .collect();
        let weights: Option<Vec<Duration>> = (!expected.is_empty()).then(|| {
            self.batches
                .iter()
                .map(|b| {
                    let d = expected.get(b.config.name.as_str()).duration();
                    d.unwrap_or_default()
                        .saturating_mul(b.config.scheduling.threads)
                })
                .collect()
        });
        let assignment = partition.assign(&names, weights.as_deref());
        let fingerprint = assignment.fingerprint(&names);
        let total = self.batches.len();
        let mut i = 0;
        self.batches.retain(|_| {
            i += 1;
            assignment.keeps(partition, i - 1)
        });
        self.order_by(expected);
        Sharded {
            total,
            kept: self
                .batches
                .iter()
                .map(|b| b.config.name.to_string())
                .collect(),
            strategy: assignment.strategy,
            fingerprint,
        }
    }

    /// What the batches share: `max-parallel` threads and `[resources]`.
    pub fn capacity(&self) -> Capacity {
        Capacity {
            // max-parallel counts threads; a u32 is plenty.
            threads: u32::try_from(self.max_parallel.get()).unwrap_or(u32::MAX),
            resources: self
                .resources
                .iter()
                .map(|r| (r.name.clone(), r.capacity))
                .collect(),
            memory: self.memory.budget.map(|b| b.bytes),
        }
    }

    /// Each batch's expected memory: its `memory`, else its p90 peak in
    /// `p90` (the history's, by batch name), else none.
    pub fn expect_memory(&mut self, p90: &HashMap<String, u64>) {
        self.memory.expected = self
            .batches
            .iter()
            .map(|b| {
                let name = b.config.name.as_str();
                let e = Expectation::new(b.config.scheduling.memory, p90.get(name).copied());
                (name.to_owned(), e)
            })
            .collect();
    }

    /// What `b` is expected to use, and why.
    pub fn memory_expectation(&self, b: &PlannedBatch) -> Expectation {
        match self.memory.expected.get(b.config.name.as_str()) {
            Some(e) => *e,
            None => Expectation::new(b.config.scheduling.memory, None),
        }
    }

    /// What `b` takes while it runs.
    pub fn demand(&self, b: &PlannedBatch) -> Demand {
        let s = &b.config.scheduling;
        Demand {
            threads: s.threads,
            needs: s
                .needs
                .iter()
                .filter_map(|(name, n)| {
                    let r = self.resources.iter().position(|r| &r.name == name)?;
                    Some((r, *n))
                })
                .collect(),
            locks: s.locks.clone(),
            memory: self.memory_expectation(b).bytes,
        }
    }
}

fn start_order(batches: &[PlannedBatch], expected: &Expected) -> Vec<usize> {
    let units: Vec<Unit<'_>> = batches
        .iter()
        .map(|b| Unit {
            name: b.config.name.as_str(),
            priority: b.config.scheduling.priority,
        })
        .collect();
    crate::scheduler::order::start_order(&units, expected)
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
                .filter(|&s| s <= duration::MAX.as_secs())
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
                reserve: duration::exact(r),
                deadline: duration::exact(deadline),
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
