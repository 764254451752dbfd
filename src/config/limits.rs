//! `limits = { cpu = "150%", memory = "4G", memory-high = "3G", pids = 4096,
//! io-read = "50M", io-write = "20M" }` (a batch's or `[defaults]`), and
//! the batch's expected `memory` for admission. Checked here; applied by
//! the supervisor to the batch's cgroup (`supervisor::limits`).

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::span::Source;

/// What a batch may use, each `None` when unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// CPU time per wall-clock time, in percent of one CPU (150 = one and a
    /// half CPUs): `cpu.max` / `cpu.cfs_quota_us`.
    pub cpu: Option<u32>,
    /// Hard memory limit in bytes: past it the OOM killer acts
    /// (`memory.max` / `memory.limit_in_bytes`).
    pub memory: Option<u64>,
    /// Throttling point in bytes: past it the batch is slowed and reclaimed
    /// (`memory.high`; cgroup v1 has no equivalent, `memory.soft_limit_in_bytes`
    /// is the nearest).
    pub memory_high: Option<u64>,
    /// Most processes and threads at once (`pids.max`).
    pub pids: Option<u64>,
    /// Bytes per second read from / written to the block devices of the
    /// batch's working directory and scratch root (`io.max` /
    /// `blkio.throttle.*_bps_device`).
    pub io_read: Option<u64>,
    pub io_write: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// These limits, with `base`'s where these have none (a batch's over
    /// `[defaults]`, a hunt's pressure over the batch's).
    pub fn over(&self, base: &Limits) -> Limits {
        Limits {
            cpu: self.cpu.or(base.cpu),
            memory: self.memory.or(base.memory),
            memory_high: self.memory_high.or(base.memory_high),
            pids: self.pids.or(base.pids),
            io_read: self.io_read.or(base.io_read),
            io_write: self.io_write.or(base.io_write),
        }
    }

    /// As the config writes them: `cpu=150% memory=4G io-write=20M`.
    pub fn describe(&self) -> String {
        let size = crate::size::exact;
        [
            ("cpu", self.cpu.map(|c| format!("{c}%"))),
            ("memory", self.memory.map(size)),
            ("memory-high", self.memory_high.map(size)),
            ("pids", self.pids.map(|p| p.to_string())),
            ("io-read", self.io_read.map(size)),
            ("io-write", self.io_write.map(size)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
pub(super) struct RawLimits {
    cpu: Option<Spanned<toml::Value>>,
    memory: Option<Spanned<toml::Value>>,
    memory_high: Option<Spanned<toml::Value>>,
    pids: Option<Spanned<toml::Value>>,
    io_read: Option<Spanned<toml::Value>>,
    io_write: Option<Spanned<toml::Value>>,
}

pub(super) fn limits(cx: &Source, raw: Spanned<RawLimits>) -> Result<Limits, ConfigError> {
    let raw = raw.into_inner();
    let limits = Limits {
        cpu: raw.cpu.as_ref().map(|v| cpu(cx, v)).transpose()?,
        memory: raw
            .memory
            .as_ref()
            .map(|v| size(cx, "memory", v))
            .transpose()?,
        memory_high: raw
            .memory_high
            .as_ref()
            .map(|v| size(cx, "memory-high", v))
            .transpose()?,
        pids: raw.pids.as_ref().map(|v| pids(cx, v)).transpose()?,
        io_read: raw
            .io_read
            .as_ref()
            .map(|v| rate(cx, "io-read", v))
            .transpose()?,
        io_write: raw
            .io_write
            .as_ref()
            .map(|v| rate(cx, "io-write", v))
            .transpose()?,
    };
    if let (Some(high), Some(max), Some(span)) = (
        limits.memory_high,
        limits.memory,
        raw.memory_high.as_ref().map(Spanned::span),
    ) && high > max
    {
        let msg = format!(
            "{} is above `memory` ({}): it would never throttle",
            crate::size::exact(high),
            crate::size::exact(max)
        );
        return Err(cx.key_error("memory-high", span, msg));
    }
    Ok(limits)
}

/// A size: a string like `"4G"`, or an integer number of bytes.
pub(super) fn size(cx: &Source, key: &str, raw: &Spanned<toml::Value>) -> Result<u64, ConfigError> {
    let parsed = match raw.get_ref() {
        toml::Value::String(s) => crate::size::parse(s),
        toml::Value::Integer(n) => crate::size::parse(&n.to_string()),
        other => Err(format!(
            "expected a size like \"4G\", found {}",
            other.type_str()
        )),
    };
    parsed.map_err(|msg| cx.key_error(key, raw.span(), msg))
}

/// A rate: a size per second, `"20M"` or `"20M/s"`.
fn rate(cx: &Source, key: &str, raw: &Spanned<toml::Value>) -> Result<u64, ConfigError> {
    if let toml::Value::String(s) = raw.get_ref()
        && let Some(per_second) = s.strip_suffix("/s")
    {
        return crate::size::parse(per_second).map_err(|msg| cx.key_error(key, raw.span(), msg));
    }
    size(cx, key, raw)
}

/// `"150%"`: percent of one CPU, from 1% to 100000% (1000 CPUs).
fn cpu(cx: &Source, raw: &Spanned<toml::Value>) -> Result<u32, ConfigError> {
    let bad = || {
        cx.key_error(
            "cpu",
            raw.span(),
            "expected a share of one CPU like \"150%\" (1% to 100000%)",
        )
    };
    let toml::Value::String(s) = raw.get_ref() else {
        return Err(bad());
    };
    s.strip_suffix('%')
        .and_then(|n| n.trim().parse::<u32>().ok())
        .filter(|n| (1..=100_000).contains(n))
        .ok_or_else(bad)
}

fn pids(cx: &Source, raw: &Spanned<toml::Value>) -> Result<u64, ConfigError> {
    match raw.get_ref() {
        toml::Value::Integer(n) if *n >= 1 => Ok(*n as u64),
        _ => Err(cx.key_error(
            "pids",
            raw.span(),
            "expected a whole number of processes, at least 1",
        )),
    }
}
