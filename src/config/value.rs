//! Single values any section may hold: durations, paths, non-empty
//! strings, `leak`, regex lists, a `retry` table; each checked where it
//! stands, its error pointing at it.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use super::raw::RawRetry;
use super::span::Source;
use super::{ConfigError, LeakPolicy, Pattern, RetryPolicy};

pub(super) fn duration(
    cx: &Source,
    key: &str,
    raw: Option<&Spanned<toml::Value>>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let parsed = match raw.get_ref() {
        toml::Value::String(s) => crate::duration::parse(s),
        toml::Value::Integer(n) => crate::duration::parse(&n.to_string()),
        other => Err(format!(
            "expected a duration string like \"10s\", found {}",
            other.type_str()
        )),
    };
    parsed
        .map(Some)
        .map_err(|msg| cx.key_error(key, raw.span(), msg))
}

pub(super) fn leak(
    cx: &Source,
    raw: Option<&Spanned<String>>,
) -> Result<Option<LeakPolicy>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.get_ref().as_str() {
        "warn" => Ok(Some(LeakPolicy::Warn)),
        "fail" => Ok(Some(LeakPolicy::Fail)),
        other => {
            let msg = format!("invalid value {other:?}, expected \"warn\" or \"fail\"");
            Err(cx.key_error("leak", raw.span(), msg))
        }
    }
}

pub(super) fn path(cx: &Source, key: &str, raw: Spanned<String>) -> Result<PathBuf, ConfigError> {
    non_empty(cx, key, raw).map(PathBuf::from)
}

pub(super) fn non_empty(
    cx: &Source,
    key: &str,
    raw: Spanned<String>,
) -> Result<String, ConfigError> {
    if raw.get_ref().is_empty() {
        return Err(cx.key_error(key, raw.span(), "must not be empty"));
    }
    Ok(raw.into_inner())
}

/// `fatal-patterns`: each a regex, located on its own string when invalid.
pub(super) fn patterns(
    cx: &Source,
    raw: Option<Vec<Spanned<String>>>,
) -> Result<Option<Vec<Pattern>>, ConfigError> {
    raw.map(|list| {
        list.into_iter()
            .map(|s| {
                Pattern::new(s.get_ref()).map_err(|e| cx.key_error("fatal-patterns", s.span(), e))
            })
            .collect()
    })
    .transpose()
}

/// The `retry.when` entry for a batch the OOM killer killed.
pub const RETRY_WHEN_OOM: &str = "@oom";

pub(super) fn retry(cx: &Source, raw: Spanned<RawRetry>) -> Result<RetryPolicy, ConfigError> {
    let raw = raw.into_inner();
    let attempts = match raw.attempts {
        Some(a) => u32::try_from(*a.get_ref())
            .ok()
            .filter(|&n| (1..=100).contains(&n))
            .ok_or_else(|| {
                cx.key_error("attempts", a.span(), "must be a whole number from 1 to 100")
            })?,
        None => RetryPolicy::default().attempts,
    };
    // `"@oom"` is not a regex: it stands for "killed by the OOM killer".
    // (To match the text `@oom` in the output, write `[@]oom`.)
    let mut when = raw.when;
    let mut oom = false;
    if let Some(list) = &mut when {
        list.retain(|s| {
            let is_oom = s.get_ref() == RETRY_WHEN_OOM;
            oom |= is_oom;
            !is_oom
        });
    }
    Ok(RetryPolicy {
        attempts,
        when: patterns(cx, when)?.unwrap_or_default(),
        oom,
        backoff: duration(cx, "backoff", raw.backoff.as_ref())?.unwrap_or(Duration::ZERO),
    })
}
