//! Leftovers of runs whose warden is gone: processes that escaped to a new
//! session and outlived a SIGKILLed warden (its direct children die with it
//! through PDEATHSIG), and the cgroups it never removed.
//!
//! A run id is `<pid>-<start time>` of its warden, so "is that warden still
//! alive" is exact even if the pid was reused. Only processes carrying a
//! dead run's `WARDEN_RUN` cookie, and only cgroups named after a dead run,
//! are touched: never a live run's, never anything else.

use std::fs;
use std::path::PathBuf;

use rustix::process::{Pid, PidfdFlags, Signal};

use crate::outcome::ProcessInfo;
use crate::supervisor::containment::{self, Cookie};
use crate::supervisor::procfs;

/// What a dead run left behind.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub cgroups: Vec<PathBuf>,
    /// Each with the run id it carries.
    pub processes: Vec<(ProcessInfo, String)>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.cgroups.is_empty() && self.processes.is_empty()
    }
}

/// Whether the warden of `run_id` is still running.
pub fn run_alive(run_id: &str) -> bool {
    let Some((pid, start)) = run_id.split_once('-') else {
        // Not one of ours: treat as alive so it is never touched.
        return true;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
        return true;
    };
    procfs::stat(pid).is_some_and(|s| s.starttime == start && !s.is_zombie())
}

/// The `WARDEN_RUN` value in a process's environment, if any.
fn run_of(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let key = format!("{}=", Cookie::RUN_VAR);
    raw.split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(key.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

pub fn find() -> Leftovers {
    let mut found = Leftovers::default();
    if let Ok((parent, _)) = containment::runs_parent()
        && let Ok(entries) = fs::read_dir(&parent)
    {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix(containment::RUN_PREFIX)
                && !run_alive(id)
            {
                found.cgroups.push(e.path());
            }
        }
    }
    let me = std::process::id() as i32;
    for pid in procfs::all_pids() {
        if pid == me || procfs::stat(pid).is_none_or(|s| s.is_zombie()) {
            continue;
        }
        if let Some(id) = run_of(pid)
            && !run_alive(&id)
        {
            found.processes.push((procfs::info(pid), id));
        }
    }
    found
}

/// Kills the leftover processes (each pinned by a pidfd and re-checked
/// first) and removes the cgroups, killing what is still in them.
/// Returns messages for what could not be done.
pub fn reap(found: &Leftovers) -> Vec<String> {
    let mut problems = Vec::new();
    for (p, id) in &found.processes {
        let Some(fd) = Pid::from_raw(p.pid)
            .and_then(|pid| rustix::process::pidfd_open(pid, PidfdFlags::empty()).ok())
        else {
            continue;
        };
        // The pid may have been reused since the scan.
        if run_of(p.pid).as_deref() != Some(id.as_str()) {
            continue;
        }
        let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
    }
    for dir in &found.cgroups {
        if let Err(e) = containment::kill_and_remove(dir) {
            problems.push(format!("cannot remove {}: {e}", dir.display()));
        }
    }
    problems
}

/// One line per leftover, for `warden reap` and the run's start.
pub fn describe(found: &Leftovers) -> Vec<String> {
    let mut lines: Vec<String> = found
        .processes
        .iter()
        .map(|(p, id)| format!("process {} ({}) of dead run {id}", p.pid, p.cmdline))
        .collect();
    lines.extend(
        found
            .cgroups
            .iter()
            .map(|d| format!("cgroup {}", d.display())),
    );
    lines
}
