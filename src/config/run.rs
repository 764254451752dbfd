//! `[run]`: the run-wide settings, checked against each other (a reserve
//! must be shorter than the deadline).

use std::num::NonZeroUsize;

use toml::Spanned;

use super::raw::RawRun;
use super::span::Source;
use super::value::{duration, path};
use super::{ConfigError, FlakyPolicy, RunConfig};
use crate::duration::exact;

pub(super) fn run(cx: &Source, raw: RawRun) -> Result<RunConfig, ConfigError> {
    let max_parallel = raw.max_parallel.map(|v| max_parallel(cx, &v)).transpose()?;
    let deadline = duration(cx, "deadline", raw.deadline.as_ref())?;
    let reserve = duration(cx, "reserve", raw.reserve.as_ref())?;
    if let (Some(deadline), Some(reserve), Some(span)) =
        (deadline, reserve, raw.reserve.as_ref().map(Spanned::span))
        && reserve >= deadline
    {
        let msg = format!(
            "the reserve ({}) must be shorter than the deadline ({})",
            exact(reserve),
            exact(deadline)
        );
        return Err(cx.key_error("reserve", span, msg));
    }
    let flaky = match raw.flaky {
        None => FlakyPolicy::default(),
        Some(f) => match f.get_ref().as_str() {
            "pass" => FlakyPolicy::Pass,
            "fail" => FlakyPolicy::Fail,
            other => {
                let msg = format!("invalid value {other:?}, expected \"pass\" or \"fail\"");
                return Err(cx.key_error("flaky", f.span(), msg));
            }
        },
    };
    let retry_max_failures = raw
        .retry_max_failures
        .map(|v| count(cx, "retry-max-failures", &v))
        .transpose()?;
    let max_fail = raw.max_fail.map(|v| max_fail(cx, &v)).transpose()?;
    let history = raw
        .history
        .map(|h| {
            h.get_ref()
                .parse::<crate::history::Location>()
                .map_err(|msg| cx.key_error("history", h.span(), msg))
        })
        .transpose()?;
    let mut labels = crate::history::model::Labels::default();
    for (key, value) in raw.labels.unwrap_or_default() {
        let label = format!("{}={}", key.get_ref(), value.get_ref())
            .parse::<crate::history::model::Label>()
            .map_err(|msg| cx.key_error("labels", key.span(), msg))?;
        labels.insert(label.key, label.value);
    }
    let keep_scratch = match raw.keep_scratch {
        None => super::KeepScratch::default(),
        Some(k) => match k.get_ref().as_str() {
            "never" => super::KeepScratch::Never,
            "on-failure" => super::KeepScratch::OnFailure,
            "always" => super::KeepScratch::Always,
            other => {
                let msg = format!(
                    "invalid value {other:?}, expected \"never\", \"on-failure\" or \"always\""
                );
                return Err(cx.key_error("keep-scratch", k.span(), msg));
            }
        },
    };
    let memory_budget = raw
        .memory_budget
        .as_ref()
        .map(|v| match v.get_ref() {
            toml::Value::String(s) if s == "auto" => Ok(super::MemoryBudget::Auto),
            _ => super::limits::size(cx, "memory-budget", v).map(super::MemoryBudget::Bytes),
        })
        .transpose()?;
    let retention = duration(cx, "retention", raw.retention.as_ref())?;
    Ok(RunConfig {
        queue: raw.queue.map(|q| *q.get_ref()).unwrap_or(false),
        memory_budget,
        retention,
        deadline,
        reserve,
        flaky,
        history,
        labels,
        scratch_root: raw
            .scratch_root
            .map(|v| path(cx, "scratch-root", v))
            .transpose()?,
        keep_scratch,
        quarantine: raw
            .quarantine
            .map(|v| path(cx, "quarantine", v))
            .transpose()?,
        max_parallel,
        artifacts: raw
            .artifacts
            .map(|v| path(cx, "artifacts", v))
            .transpose()?,
        junit: raw.junit.map(|v| path(cx, "junit", v)).transpose()?,
        retry_max_failures,
        max_fail,
    })
}

/// `max-fail = N` or `max-fail = "N:terminate"` (the flag's syntax).
fn max_fail(
    cx: &Source,
    raw: &Spanned<toml::Value>,
) -> Result<crate::fail_fast::MaxFail, ConfigError> {
    let parsed = match raw.get_ref() {
        toml::Value::Integer(n) => n.to_string().parse(),
        toml::Value::String(s) => s.parse(),
        other => Err(format!(
            "expected N or \"N:terminate\" (N a whole number, 1 or more), found {}",
            other.type_str()
        )),
    };
    parsed.map_err(|msg| cx.key_error("max-fail", raw.span(), msg))
}

/// A count: zero or more.
fn count(cx: &Source, key: &str, raw: &Spanned<toml::Value>) -> Result<u64, ConfigError> {
    let found = match raw.get_ref() {
        toml::Value::Integer(n) => match u64::try_from(*n) {
            Ok(n) => return Ok(n),
            Err(_) => n.to_string(),
        },
        other => other.type_str().to_owned(),
    };
    let msg = format!("must be a whole number, 0 or more, found {found}");
    Err(cx.key_error(key, raw.span(), msg))
}

fn max_parallel(cx: &Source, raw: &Spanned<toml::Value>) -> Result<NonZeroUsize, ConfigError> {
    let found = match raw.get_ref() {
        toml::Value::Integer(n) => {
            let n = usize::try_from(*n).ok().and_then(NonZeroUsize::new);
            if let Some(n) = n {
                return Ok(n);
            }
            raw.get_ref().to_string()
        }
        other => other.type_str().to_owned(),
    };
    let msg = format!("must be a positive integer, found {found}");
    Err(cx.key_error("max-parallel", raw.span(), msg))
}
