//! The config file as serde reads it: every value with its span, so a
//! problem found later can point at it. Durations and counts are taken as
//! any value so a TOML integer gets the "needs a unit" hint (or a range)
//! instead of a bare type error. Unknown keys are errors here.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) run: RawRun,
    #[serde(default)]
    pub(super) defaults: RawDefaults,
    #[serde(default)]
    pub(super) setup: Vec<Spanned<RawBatch>>,
    #[serde(default)]
    pub(super) batch: Vec<Spanned<RawBatch>>,
    #[serde(default)]
    pub(super) post: Vec<Spanned<RawBatch>>,
    pub(super) resources: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(super) struct RawRun {
    pub(super) max_parallel: Option<Spanned<toml::Value>>,
    pub(super) artifacts: Option<Spanned<String>>,
    pub(super) junit: Option<Spanned<String>>,
    pub(super) deadline: Option<Spanned<toml::Value>>,
    pub(super) reserve: Option<Spanned<toml::Value>>,
    pub(super) flaky: Option<Spanned<String>>,
    pub(super) quarantine: Option<Spanned<String>>,
    pub(super) history: Option<Spanned<String>>,
    pub(super) labels: Option<std::collections::BTreeMap<Spanned<String>, Spanned<String>>>,
    pub(super) scratch_root: Option<Spanned<String>>,
    pub(super) keep_scratch: Option<Spanned<String>>,
    pub(super) retry_max_failures: Option<Spanned<toml::Value>>,
    pub(super) max_fail: Option<Spanned<toml::Value>>,
    pub(super) memory_budget: Option<Spanned<toml::Value>>,
    pub(super) retention: Option<Spanned<toml::Value>>,
    pub(super) queue: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(super) struct RawRetry {
    pub(super) attempts: Option<Spanned<i64>>,
    pub(super) when: Option<Vec<Spanned<String>>>,
    pub(super) backoff: Option<Spanned<toml::Value>>,
}

/// Durations are taken as any value so a TOML integer gets the
/// "needs a unit" hint instead of a bare type error.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(super) struct RawDefaults {
    pub(super) timeout: Option<Spanned<toml::Value>>,
    pub(super) grace: Option<Spanned<toml::Value>>,
    pub(super) leak: Option<Spanned<String>>,
    pub(super) drain: Option<Spanned<toml::Value>>,
    pub(super) fatal_patterns: Option<Vec<Spanned<String>>>,
    pub(super) retry: Option<Spanned<RawRetry>>,
    pub(super) store_success_output: Option<Spanned<bool>>,
    pub(super) limits: Option<Spanned<super::limits::RawLimits>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(super) struct RawBatch {
    // Optional here so a missing name gets our message and location.
    pub(super) name: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<Vec<String>>>,
    pub(super) shell: Option<Spanned<String>>,
    pub(super) env: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    pub(super) cwd: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<toml::Value>>,
    pub(super) grace: Option<Spanned<toml::Value>>,
    pub(super) leak: Option<Spanned<String>>,
    pub(super) drain: Option<Spanned<toml::Value>>,
    pub(super) kind: Option<Spanned<String>>,
    pub(super) fatal_patterns: Option<Vec<Spanned<String>>>,
    pub(super) retry: Option<Spanned<RawRetry>>,
    pub(super) format: Option<Spanned<String>>,
    pub(super) junit_files: Option<Spanned<Vec<String>>>,
    pub(super) json_summary: Option<Spanned<String>>,
    pub(super) rerun: Option<Spanned<Vec<String>>>,
    pub(super) store_success_output: Option<Spanned<bool>>,
    pub(super) limits: Option<Spanned<super::limits::RawLimits>>,
    /// Only in `[[post]]`.
    pub(super) required: Option<Spanned<bool>>,
    // Only in `[[batch]]`: setup and post steps run alone.
    pub(super) needs: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    pub(super) threads: Option<Spanned<toml::Value>>,
    pub(super) locks: Option<Vec<Spanned<String>>>,
    pub(super) priority: Option<Spanned<i64>>,
    pub(super) memory: Option<Spanned<toml::Value>>,
}
