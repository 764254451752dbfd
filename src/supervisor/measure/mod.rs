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

use std::ffi::CStr;
use std::fs;
use std::io::Read;
use std::os::fd::BorrowedFd;
use std::path::Path;

use crate::supervisor::limits::{Applied, Controller};
use crate::supervisor::reaper::Rusage;
use crate::usage::Usage;

fn read(dir: &Path, file: &str) -> Option<String> {
    fs::read_to_string(dir.join(file)).ok()
}

/// A file of the batch's v2 cgroup, opened relative to its directory's fd
/// and read in one go into `buf` (every file read here is small; a longer
/// `io.stat` is read whole).
fn read_at<'b>(dir: BorrowedFd<'_>, file: &CStr, buf: &'b mut Vec<u8>) -> Option<&'b str> {
    let fd = rustix::fs::openat(
        dir,
        file,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    buf.clear();
    let mut file = fs::File::from(fd);
    file.read_to_end(buf).ok()?;
    std::str::from_utf8(buf).ok()
}

/// A batch's usage from its cgroups (`cgroup`: its v2 cgroup's directory).
pub fn from_cgroups(cgroup: BorrowedFd<'_>, applied: &Applied) -> Usage {
    let mut buf = Vec::with_capacity(512);
    let mut u = Usage {
        cpu: read_at(cgroup, c"cpu.stat", &mut buf).and_then(files::cpu_usage),
        ..Usage::default()
    };
    if applied.pressure {
        let mut stall = |f| read_at(cgroup, f, &mut buf).and_then(files::pressure_some);
        u.cpu_stall = stall(c"cpu.pressure");
        u.memory_stall = stall(c"memory.pressure");
        u.io_stall = stall(c"io.pressure");
    }
    if applied.v2_memory {
        u.peak_memory =
            read_at(cgroup, c"memory.peak", &mut buf).and_then(|t| t.trim().parse().ok());
        u.oom_kills = read_at(cgroup, c"memory.events", &mut buf)
            .and_then(|t| files::keyed(t, "oom_kill"))
            .unwrap_or(0);
    } else if let Some(group) = applied.v1_group(Controller::Memory) {
        u.peak_memory =
            read(group, "memory.max_usage_in_bytes").and_then(|t| t.trim().parse().ok());
        u.oom_kills = read(group, "memory.oom_control")
            .and_then(|t| files::keyed(&t, "oom_kill"))
            .unwrap_or(0);
    }
    let io = if applied.v2_io {
        read_at(cgroup, c"io.stat", &mut buf).map(files::io_stat)
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

/// Where the cgroups gave no peak memory (a hybrid host puts a batch in a
/// v1 memory group only when its limits or expectation need one), the
/// first process's rusage fills it in: the largest process's, partial.
/// Bytes read and written are not: rusage counts only the processes
/// waited for, and a figure that low would pass for the batch's.
pub fn fill_from_rusage(u: &mut Usage, r: &Rusage) {
    if u.peak_memory.is_none() {
        u.peak_memory = Some(r.max_rss);
        u.partial = true;
    }
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
