//! Leftovers of runs whose warden is gone: processes that escaped to a new
//! session and outlived a SIGKILLed warden (its direct children die with it
//! through PDEATHSIG), and the cgroups it never removed.
//!
//! A run id is `<pid>-<start time>-<PID namespace>` of its warden. In our own
//! PID namespace, "is that warden still alive" is exact even if the pid was
//! reused. A run of another PID namespace (two CI containers on one host
//! sharing a cgroup parent) can't be checked by pid: its pid means nothing
//! here. So every warden holds an exclusive `flock` on its run's cgroup
//! directory for the run's life (the kernel drops it when warden dies,
//! however it dies), and a foreign run counts as dead only when that lock
//! can be taken and the directory has been untouched for a while (a warden
//! takes its lock just after creating the directory). A run's v1 groups
//! (`limits`, on a hybrid host) are locked the same way and reaped only
//! when the run is dead by that rule and their own lock is free. Without a cgroup a
//! foreign run's liveness can't be proven, so it is never touched. Only
//! processes carrying a dead run's `WARDEN_RUN` cookie, and only cgroups
//! named after a dead run, are touched: never a live run's, never anything else.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::process::{Pid, PidfdFlags, Signal};

use crate::outcome::ProcessInfo;
use crate::supervisor::containment::{self, Cookie};
use crate::supervisor::{limits, pidns, procfs};

/// How long a foreign run's unlocked cgroup directory must have been
/// untouched before it counts as dead: far more than the moment between a
/// warden creating the directory and locking it.
const FOREIGN_QUIET: Duration = Duration::from_secs(5);

/// The inode of the initial PID namespace (the kernel's PROC_PID_INIT_INO).
const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;

/// What a dead run left behind.
#[derive(Debug, Default)]
pub struct Leftovers {
    pub cgroups: Vec<PathBuf>,
    /// Dead runs' groups in cgroup v1 hierarchies (limits on a hybrid host).
    pub v1_groups: Vec<PathBuf>,
    /// Each with the run id it carries.
    pub processes: Vec<(ProcessInfo, String)>,
    /// The dead runs' cgroup locks, held until they are reaped so that no
    /// warden starting meanwhile mistakes them for anything else.
    locks: Vec<OwnedFd>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.cgroups.is_empty() && self.v1_groups.is_empty() && self.processes.is_empty()
    }
}

/// A run's identity: its warden's pid and start time, as seen in the
/// warden's PID namespace, and that namespace (the inode of
/// `/proc/<pid>/ns/pid`; `None` for ids of wardens before namespaces
/// were part of the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunId {
    pub pid: i32,
    pub start: u64,
    pub ns: Option<u64>,
}

impl RunId {
    pub fn new(pid: i32, start: u64, ns: u64) -> RunId {
        RunId {
            pid,
            start,
            ns: Some(ns),
        }
    }

    pub fn parse(s: &str) -> Option<RunId> {
        let mut parts = s.split('-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        let ns = match parts.next() {
            Some(ns) => Some(ns.parse().ok()?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(RunId { pid, start, ns })
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ns {
            Some(ns) => write!(f, "{}-{}-{ns}", self.pid, self.start),
            None => write!(f, "{}-{}", self.pid, self.start),
        }
    }
}

/// Whether `/proc` shows our PID namespace (it may be mounted from another:
/// `unshare --pid` without a new `/proc`); if not, no pid read there is ours.
fn proc_is_ours() -> bool {
    fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<u32>().ok()))
        == Some(std::process::id())
}

/// Takes the lock a live warden holds on its run's cgroup directory: the
/// held lock when it was free; `None` when a live warden holds it (or the
/// directory can't be opened: then nothing is proven).
fn try_lock(dir: &Path) -> Option<OwnedFd> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    rustix::fs::flock(&fd, rustix::fs::FlockOperation::NonBlockingLockExclusive).ok()?;
    Some(fd)
}

/// How the liveness of runs is decided, once per scan.
struct Judge {
    own_ns: Option<u64>,
    proc_ours: bool,
    runs_parent: Option<PathBuf>,
    /// Decisions so far: dead runs keep their lock here.
    seen: HashMap<String, bool>,
    locks: Vec<OwnedFd>,
}

impl Judge {
    fn new() -> Judge {
        Judge {
            own_ns: pidns::own_ns(),
            proc_ours: proc_is_ours(),
            runs_parent: containment::runs_parent().ok().map(|(p, _)| p),
            seen: HashMap::new(),
            locks: Vec::new(),
        }
    }

    fn in_initial_ns(&self) -> bool {
        self.own_ns == Some(PROC_PID_INIT_INO)
    }

    fn alive(&mut self, id: &str) -> bool {
        if let Some(&alive) = self.seen.get(id) {
            return alive;
        }
        let alive = self.decide(id);
        self.seen.insert(id.to_string(), alive);
        alive
    }

    fn decide(&mut self, id: &str) -> bool {
        // Not one of ours: treat as alive so it is never touched.
        let Some(run) = RunId::parse(id) else {
            return true;
        };
        let dir = self
            .runs_parent
            .as_ref()
            .map(|p| p.join(format!("{}{id}", containment::RUN_PREFIX)))
            .filter(|d| d.is_dir());
        // An id without a namespace (a warden from before namespaces were
        // part of the id) is judged by its pid only from the initial PID
        // namespace, where such runs usually are; elsewhere it is foreign.
        let ns = run.ns.or((!self.in_initial_ns()).then_some(0));
        let same_ns = self.proc_ours && (ns.is_none() || ns == self.own_ns);
        if same_ns {
            if pid_alive(run) {
                return true;
            }
            // Dead by its pid; a lock still held would say otherwise.
            return match dir.map(|d| try_lock(&d)) {
                Some(None) => true,
                Some(Some(lock)) => {
                    self.locks.push(lock);
                    false
                }
                None => false,
            };
        }
        // Another namespace: only its free lock on a quiet directory proves it dead.
        let Some(dir) = dir else {
            return true;
        };
        if !quiet_for(&dir, FOREIGN_QUIET) {
            return true;
        }
        match try_lock(&dir) {
            Some(lock) => {
                self.locks.push(lock);
                false
            }
            None => true,
        }
    }
}

fn pid_alive(run: RunId) -> bool {
    procfs::stat(run.pid).is_some_and(|s| s.starttime == run.start && !s.is_zombie())
}

/// Whether the directory has not changed for `quiet`.
fn quiet_for(dir: &Path, quiet: Duration) -> bool {
    fs::metadata(dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age >= quiet)
}

/// Whether the warden of `run_id` is still running (or can't be proven dead).
pub fn run_alive(run_id: &str) -> bool {
    Judge::new().alive(run_id)
}

/// The `WARDEN_RUN` value in a process's environment, if any.
fn run_of(pid: i32) -> Option<String> {
    procfs::environ_var(pid, Cookie::RUN_VAR)
}

pub fn find() -> Leftovers {
    let mut found = Leftovers::default();
    let mut judge = Judge::new();
    if let Some(parent) = judge.runs_parent.clone()
        && let Ok(entries) = fs::read_dir(&parent)
    {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix(containment::RUN_PREFIX)
                && !judge.alive(id)
            {
                found.cgroups.push(e.path());
            }
        }
    }
    // v1 groups: dead by the same rule, and their own lock free (a live
    // warden holds it for the run's life).
    for (dir, id) in limits::v1_run_groups() {
        if !judge.alive(&id)
            && let Some(lock) = try_lock(&dir)
        {
            judge.locks.push(lock);
            found.v1_groups.push(dir);
        }
    }
    let me = std::process::id() as i32;
    for pid in procfs::all_pids() {
        if pid == me || procfs::stat(pid).is_none_or(|s| s.is_zombie()) {
            continue;
        }
        if let Some(id) = run_of(pid)
            && !judge.alive(&id)
        {
            found.processes.push((procfs::info(pid), id));
        }
    }
    found.locks = judge.locks;
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
    for dir in &found.v1_groups {
        if let Err(e) = limits::remove_dead_v1_group(dir) {
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
    lines.extend(
        found
            .v1_groups
            .iter()
            .map(|d| format!("cgroup v1 group {}", d.display())),
    );
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_round_trip() {
        let id = RunId::new(42, 12345, 4026531836);
        assert_eq!(id.to_string(), "42-12345-4026531836");
        assert_eq!(RunId::parse(&id.to_string()), Some(id));
        let old = RunId::parse("42-12345").unwrap();
        assert_eq!(old.ns, None);
        assert_eq!(old.to_string(), "42-12345");
        for bad in ["", "42", "x-1", "1-2-3-4", "1-2-x"] {
            assert_eq!(RunId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn this_run_is_alive_and_a_dead_one_is_not() {
        let me = std::process::id() as i32;
        let start = procfs::stat(me).unwrap().starttime;
        let ns = pidns::own_ns().unwrap();
        assert!(run_alive(&RunId::new(me, start, ns).to_string()));
        assert!(!run_alive(&RunId::new(me, start + 1, ns).to_string()));
        // Another namespace without a cgroup to lock: can't be proven dead.
        assert!(run_alive(&RunId::new(me, start + 1, ns + 1).to_string()));
        assert!(run_alive("not-an-id"));
    }
}
