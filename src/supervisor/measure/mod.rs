//! What a batch used, read when it ends, before its cgroups are removed:
//! from its v2 cgroup `cpu.stat` (there even without the cpu controller)
//! and the pressure files, `memory.peak`/`memory.events` and `io.stat`
//! where v2 has those controllers, else its v1 groups'
//! `memory.max_usage_in_bytes`/`memory.oom_control` and
//! `blkio.throttle.io_service_bytes_recursive`. Without a cgroup, the
//! rusage `wait4` gave for its first process (with a PID namespace,
//! warden's init, whose rusage includes everything it reaped): partial.
//!
//! A few small reads per batch, each file opened once and only where it
//! exists: the 1000-batch spawn benchmark must not notice.

mod files;

use std::fs;
use std::path::Path;

use crate::supervisor::limits::{Applied, Controller};
use crate::supervisor::reaper::Rusage;
use crate::usage::Usage;

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A batch's usage from its cgroups (`cgroup`: its v2 cgroup).
pub fn from_cgroups(cgroup: &Path, applied: &Applied) -> Usage {
    let mut u = Usage {
        cpu: read(cgroup, "cpu.stat").and_then(|t| files::cpu_usage(&t)),
        ..Usage::default()
    };
    if applied.pressure {
        let stall = |f| read(cgroup, f).and_then(|t| files::pressure_some(&t));
        u.cpu_stall = stall("cpu.pressure");
        u.memory_stall = stall("memory.pressure");
        u.io_stall = stall("io.pressure");
    }
    if applied.v2_memory {
        u.peak_memory = read(cgroup, "memory.peak").and_then(|t| t.trim().parse().ok());
        u.oom_kills = read(cgroup, "memory.events")
            .and_then(|t| files::keyed(&t, "oom_kill"))
            .unwrap_or(0);
    } else if let Some(group) = applied.v1_group(Controller::Memory) {
        u.peak_memory =
            read(group, "memory.max_usage_in_bytes").and_then(|t| t.trim().parse().ok());
        u.oom_kills = read(group, "memory.oom_control")
            .and_then(|t| files::keyed(&t, "oom_kill"))
            .unwrap_or(0);
    }
    let io = if applied.v2_io {
        read(cgroup, "io.stat").map(|t| files::io_stat(&t))
    } else {
        applied
            .v1_group(Controller::Io)
            .and_then(|g| read(g, "blkio.throttle.io_service_bytes_recursive"))
            .map(|t| files::blkio_bytes(&t))
    };
    if let Some((read, written)) = io {
        u.read_bytes = Some(read);
        u.written_bytes = Some(written);
    }
    u
}

/// A batch's usage from its first process's rusage: partial.
pub fn from_rusage(r: &Rusage) -> Usage {
    Usage {
        partial: true,
        peak_memory: Some(r.max_rss),
        cpu: Some(r.cpu),
        read_bytes: Some(r.read_bytes),
        written_bytes: Some(r.written_bytes),
        ..Usage::default()
    }
}
