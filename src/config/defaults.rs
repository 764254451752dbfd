//! `[defaults]`: what every `[[setup]]`, `[[batch]]` and `[[post]]` entry
//! gets unless it says otherwise, over the built-in defaults.

use std::time::Duration;

use toml::Spanned;

use super::raw::RawDefaults;
use super::span::Source;
use super::value::{duration, leak, patterns, retry};
use super::{
    ConfigError, DEFAULT_DRAIN, DEFAULT_GRACE, DEFAULT_TIMEOUT, LeakPolicy, Pattern, RetryPolicy,
};

/// `[defaults]` after validation, with built-in defaults filled in.
pub(super) struct Defaults {
    pub(super) timeout: Duration,
    pub(super) grace: Duration,
    pub(super) leak: LeakPolicy,
    pub(super) drain: Duration,
    pub(super) fatal_patterns: Vec<Pattern>,
    pub(super) retry: RetryPolicy,
    pub(super) store_success_output: bool,
    pub(super) limits: super::Limits,
}

pub(super) fn defaults(cx: &Source, raw: RawDefaults) -> Result<Defaults, ConfigError> {
    Ok(Defaults {
        timeout: duration(cx, "timeout", raw.timeout.as_ref())?.unwrap_or(DEFAULT_TIMEOUT),
        grace: duration(cx, "grace", raw.grace.as_ref())?.unwrap_or(DEFAULT_GRACE),
        leak: leak(cx, raw.leak.as_ref())?.unwrap_or_default(),
        drain: duration(cx, "drain", raw.drain.as_ref())?.unwrap_or(DEFAULT_DRAIN),
        fatal_patterns: patterns(cx, raw.fatal_patterns)?.unwrap_or_default(),
        retry: raw
            .retry
            .map(|r| retry(cx, r))
            .transpose()?
            .unwrap_or_default(),
        store_success_output: raw
            .store_success_output
            .map(Spanned::into_inner)
            .unwrap_or(false),
        limits: raw
            .limits
            .map(|l| super::limits::limits(cx, l))
            .transpose()?
            .unwrap_or_default(),
    })
}
