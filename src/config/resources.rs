//! `[resources]` and each batch's share of them (`needs`, `threads`,
//! `locks`, `priority`), validated against each other: a batch that needs
//! more than there is can never start, so it is an error here, not a hang.

use std::collections::BTreeMap;

use toml::Spanned;

use super::span::Source;
use super::{ConfigError, Resource, Scheduling};

/// `[resources]`: `heavy-io = 4`.
pub(super) fn resources(
    cx: &Source,
    raw: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
) -> Result<Vec<Resource>, ConfigError> {
    let mut out: Vec<Resource> = Vec::new();
    for (name, value) in raw.unwrap_or_default() {
        let key = name.get_ref();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            let msg = format!(
                "resource name {key:?}: use letters, digits, `-` and `_` (it becomes the variable {})",
                super::slot_variable("NAME")
            );
            return Err(cx.key_error("resources", name.span(), msg));
        }
        let var = super::slot_variable(key);
        if let Some(other) = out.iter().find(|r| super::slot_variable(&r.name) == var) {
            let msg = format!(
                "resources `{}` and `{key}` would share the variable {var}",
                other.name
            );
            return Err(cx.key_error("resources", name.span(), msg));
        }
        let capacity = count(cx, key, &value, "a capacity")?;
        out.push(Resource {
            name: key.clone(),
            capacity,
        });
    }
    Ok(out)
}

/// The raw scheduling keys of one `[[batch]]`.
pub(super) struct RawScheduling {
    pub needs: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    pub threads: Option<Spanned<toml::Value>>,
    pub locks: Option<Vec<Spanned<String>>>,
    pub priority: Option<Spanned<i64>>,
    pub memory: Option<Spanned<toml::Value>>,
}

pub(super) fn scheduling(
    cx: &Source,
    raw: RawScheduling,
    resources: &[Resource],
) -> Result<Scheduling, ConfigError> {
    let threads = match &raw.threads {
        Some(t) => count(cx, "threads", t, "a thread count")?,
        None => 1,
    };
    let mut needs = Vec::new();
    for (name, value) in raw.needs.unwrap_or_default() {
        let key = name.get_ref();
        let Some(resource) = resources.iter().find(|r| &r.name == key) else {
            let known: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
            let msg = if known.is_empty() {
                format!("unknown resource `{key}`: there is no [resources] table")
            } else {
                format!(
                    "unknown resource `{key}`; [resources] has {}",
                    known.join(", ")
                )
            };
            return Err(cx.key_error("needs", name.span(), msg));
        };
        let n = count(cx, key, &value, "a number of units")?;
        if n > resource.capacity {
            let msg = format!(
                "needs {n} of `{key}`, but [resources] has only {}: it could never start",
                resource.capacity
            );
            return Err(cx.key_error("needs", value.span(), msg));
        }
        needs.push((key.clone(), n));
    }
    let mut locks: Vec<String> = Vec::new();
    for lock in raw.locks.unwrap_or_default() {
        if lock.get_ref().is_empty() {
            return Err(cx.key_error("locks", lock.span(), "a lock key must not be empty"));
        }
        if !locks.contains(lock.get_ref()) {
            locks.push(lock.into_inner());
        }
    }
    Ok(Scheduling {
        threads,
        needs,
        locks,
        priority: raw.priority.map(Spanned::into_inner).unwrap_or(0),
        memory: raw
            .memory
            .as_ref()
            .map(|m| super::limits::size(cx, "memory", m))
            .transpose()?,
    })
}

/// A positive integer (at most a million: a bigger one is a typo).
fn count(
    cx: &Source,
    key: &str,
    value: &Spanned<toml::Value>,
    what: &str,
) -> Result<u32, ConfigError> {
    match value.get_ref() {
        toml::Value::Integer(n) if (1..=1_000_000).contains(n) => Ok(*n as u32),
        toml::Value::Integer(n) => Err(cx.key_error(
            key,
            value.span(),
            format!("{what} must be between 1 and 1000000, not {n}"),
        )),
        other => Err(cx.key_error(
            key,
            value.span(),
            format!("{what} must be an integer, not a {}", other.type_str()),
        )),
    }
}
