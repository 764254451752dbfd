//! Config + command-line choices → the [`Plan`]: which batches run, where
//! their files go, how many at once. Every path in it is resolved.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use crate::config::{BatchConfig, Config};

#[derive(Debug, Clone)]
pub struct PlannedBatch {
    pub config: BatchConfig,
    /// Working directory, resolved.
    pub cwd: PathBuf,
    pub log: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Plan {
    /// In config order.
    pub batches: Vec<PlannedBatch>,
    pub max_parallel: NonZeroUsize,
    pub artifacts: PathBuf,
    pub junit: PathBuf,
}

/// What the command line says about the plan. Its paths are relative to the
/// current directory; the config's are relative to the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub artifacts: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub max_parallel: Option<NonZeroUsize>,
    /// Run only these batches (all when empty).
    pub only: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no batch named \"{name}\" in {config} (batches: {known})")]
    UnknownBatch {
        name: String,
        config: String,
        known: String,
    },
}

pub const DEFAULT_ARTIFACTS: &str = "warden-artifacts";

impl Plan {
    pub fn new(config: Config, overrides: Overrides) -> Result<Plan, PlanError> {
        let base = config.base_dir();
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
        let artifacts = overrides
            .artifacts
            .or_else(|| config.run.artifacts.as_ref().map(|p| base.join(p)))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ARTIFACTS));
        let junit = overrides
            .junit
            .or_else(|| config.run.junit.as_ref().map(|p| base.join(p)))
            .unwrap_or_else(|| artifacts.join("junit.xml"));
        let max_parallel = overrides
            .max_parallel
            .or(config.run.max_parallel)
            .or_else(|| std::thread::available_parallelism().ok())
            .unwrap_or(NonZeroUsize::MIN);
        let batches = config
            .batches
            .into_iter()
            .filter(|b| {
                overrides.only.is_empty() || overrides.only.iter().any(|n| n == b.name.as_str())
            })
            .map(|b| PlannedBatch {
                cwd: resolve(&base, b.cwd.as_deref()),
                log: crate::supervisor::log_path(&artifacts, &b.name),
                config: b,
            })
            .collect();
        Ok(Plan {
            batches,
            max_parallel,
            artifacts,
            junit,
        })
    }
}

fn resolve(base: &Path, p: Option<&Path>) -> PathBuf {
    match p {
        Some(p) => base.join(p),
        None => base.to_path_buf(),
    }
}
