//! How a batch's processes are found and killed (DESIGN.md, "Containment").
//!
//! A cgroup v2 per batch when the machine gives us a writable cgroup2 mount;
//! otherwise the batch's own process group plus an environment cookie,
//! found by scanning `/proc`. Both are exact-match: a process is touched only
//! if it is in this batch's cgroup, in this batch's process group, or carries
//! this run's and this batch's cookie byte for byte.
//!
//! On top of either, where it can be had, a PID namespace per batch
//! (`supervisor::pidns`): its init is the batch's first process, and what
//! left the cgroup, the group and the cookie is still in the namespace.
//! Without one, the batch's main process is still tracked by its pidfd, so
//! a main process that left the cgroup is neither missed nor reported gone.

mod cgroup;
mod pgroup;

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use rustix::process::{Pid, PidfdFlags, Signal};

use crate::outcome::ProcessInfo;
use crate::supervisor::{pidns, procfs};

pub use cgroup::{CgroupRoot, RUN_PREFIX, kill_and_remove, lock_dir, remove_tree, runs_parent};

/// The environment variables that mark every process of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    run: String,
    batch: String,
}

impl Cookie {
    pub const RUN_VAR: &'static str = "WARDEN_RUN";
    pub const BATCH_VAR: &'static str = "WARDEN_BATCH";

    pub fn new(run: &str, batch: &str) -> Cookie {
        Cookie {
            run: format!("{}={run}", Self::RUN_VAR),
            batch: format!("{}={batch}", Self::BATCH_VAR),
        }
    }

    /// `(key, value)` pairs to put in the batch's environment.
    pub fn env(&self) -> [(&str, &str); 2] {
        [split_entry(&self.run), split_entry(&self.batch)]
    }

    fn held_by(&self, pid: i32) -> bool {
        procfs::environ_has_all(pid, &[self.run.as_bytes(), self.batch.as_bytes()])
    }
}

fn split_entry(entry: &str) -> (&str, &str) {
    entry.split_once('=').unwrap_or((entry, ""))
}

/// The containment mechanism chosen once per run.
#[derive(Debug)]
pub enum Mode {
    Cgroup(CgroupRoot),
    /// Why the cgroup layer is not used, for the verbose log.
    Pgroup {
        why: String,
    },
}

impl Mode {
    /// Uses a cgroup under our own when possible, unless `force_pgroup`.
    pub fn detect(run_id: &str, force_pgroup: bool) -> Mode {
        if force_pgroup {
            return Mode::Pgroup {
                why: "forced by WARDEN_CONTAINMENT=pgroup".into(),
            };
        }
        match CgroupRoot::create(run_id) {
            Ok(root) => Mode::Cgroup(root),
            Err(e) => Mode::Pgroup { why: e.to_string() },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Mode::Cgroup(root) => format!("cgroup v2 ({})", root.path().display()),
            Mode::Pgroup { why } => format!("process group + environment cookie ({why})"),
        }
    }

    /// As `describe`, without this run's own cgroup path (for `warden check`).
    pub fn kind(&self) -> String {
        match self {
            Mode::Cgroup(_) => "cgroup v2".into(),
            Mode::Pgroup { .. } => self.describe(),
        }
    }

    /// Sets up the containment of one batch, before its process starts.
    pub fn prepare(&self, cookie: Cookie, unit: &str) -> io::Result<Containment> {
        let kind = match self {
            Mode::Cgroup(root) => Kind::Cgroup(root.child(unit)?),
            Mode::Pgroup { .. } => Kind::Pgroup(pgroup::ProcessGroup::new()),
        };
        Ok(Containment {
            kind,
            cookie,
            anchor: None,
        })
    }

    /// Removes the run's cgroup once every batch's is gone.
    pub fn finish(&self) {
        if let Mode::Cgroup(root) = self {
            root.remove();
        }
    }
}

#[derive(Debug)]
enum Kind {
    Cgroup(cgroup::BatchCgroup),
    Pgroup(pgroup::ProcessGroup),
}

/// The processes of one batch.
#[derive(Debug)]
pub struct Containment {
    kind: Kind,
    cookie: Cookie,
    anchor: Option<Anchor>,
}

/// The batch's first process, pinned by a pidfd (opened before it could be
/// reaped): its main program, or the init of its PID namespace.
#[derive(Debug)]
struct Anchor {
    pid: i32,
    pidfd: AsyncFd<OwnedFd>,
    /// The batch's PID namespace, when `pid` is its init.
    ns: Option<u64>,
}

impl Anchor {
    /// Not yet exited (a zombie has: its pidfd is readable).
    fn alive(&self) -> bool {
        let mut pfd = libc::pollfd {
            fd: self.pidfd.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes only the one pollfd we pass.
        unsafe { libc::poll(&mut pfd, 1, 0) == 0 }
    }

    /// Waits until the process has exited, up to `deadline`.
    async fn wait_gone(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            if !self.alive() {
                return true;
            }
            match tokio::time::timeout_at(deadline, self.pidfd.readable()).await {
                Err(_) => return !self.alive(),
                Ok(Ok(mut guard)) => {
                    if self.alive() {
                        guard.clear_ready();
                    }
                }
                Ok(Err(_)) => {
                    while self.alive() {
                        if tokio::time::Instant::now() >= deadline {
                            return false;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    return true;
                }
            }
        }
    }
}

impl Containment {
    pub fn cookie(&self) -> &Cookie {
        &self.cookie
    }

    /// The batch cgroup's directory, to clone the child straight into it.
    pub fn cgroup_dir_fd(&self) -> Option<RawFd> {
        match &self.kind {
            Kind::Cgroup(cg) => Some(cg.dir_fd().as_raw_fd()),
            Kind::Pgroup(_) => None,
        }
    }

    /// The batch's v2 cgroup directory, open (`O_PATH`): its usage files
    /// are opened relative to it, without walking the path each time.
    pub fn cgroup_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match &self.kind {
            Kind::Cgroup(cg) => Some(cg.dir_fd()),
            Kind::Pgroup(_) => None,
        }
    }

    /// The batch's v2 cgroup directory, where its usage is read.
    pub fn cgroup_path(&self) -> Option<&std::path::Path> {
        match &self.kind {
            Kind::Cgroup(cg) => Some(cg.path()),
            Kind::Pgroup(_) => None,
        }
    }

    /// The `cgroup.procs` a forked child writes itself into before exec
    /// (only where clone3 can't start it in its cgroup).
    pub fn procs_path(&self) -> Option<std::path::PathBuf> {
        match &self.kind {
            Kind::Cgroup(cg) => Some(cg.procs_path()),
            Kind::Pgroup(_) => None,
        }
    }

    /// Records the first process once started (its pid is the process group
    /// id): with its pidfd, opened before it could have been reaped, and
    /// whether it is the init of the batch's PID namespace.
    pub fn started(&mut self, pid: i32, pidfd: Option<OwnedFd>, init: bool) {
        if let Kind::Pgroup(pg) = &mut self.kind {
            pg.set_leader(pid);
        }
        self.anchor = pidfd.and_then(|fd| {
            Some(Anchor {
                pid,
                // SAFETY: the AsyncFd owns the pidfd, which stays open and
                // the same for the AsyncFd's whole life.
                pidfd: unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()?,
                ns: if init { pidns::ns_of(pid) } else { None },
            })
        });
    }

    /// Whether the batch runs in a PID namespace of its own.
    pub fn has_pid_ns(&self) -> bool {
        self.anchor.as_ref().is_some_and(|a| a.ns.is_some())
    }

    /// Live (non-zombie) processes of the batch, warden's init excepted:
    /// the cgroup's or the group's and cookie's, the namespace's while its
    /// init lives, and the main process wherever it moved.
    pub fn members(&self) -> Vec<i32> {
        let mut pids = match &self.kind {
            Kind::Cgroup(cg) => cg.members(),
            Kind::Pgroup(pg) => pg.members(&self.cookie),
        };
        if let Some(a) = &self.anchor {
            match a.ns {
                Some(ns) => {
                    pids.retain(|&p| p != a.pid);
                    if a.alive() {
                        pids.extend(pidns::members(ns, a.pid));
                    }
                }
                None => {
                    if a.alive() {
                        pids.push(a.pid);
                    }
                }
            }
            pids.sort_unstable();
            pids.dedup();
        }
        pids
    }

    pub fn members_info(&self) -> Vec<ProcessInfo> {
        self.members().into_iter().map(procfs::info).collect()
    }

    fn contains(&self, pid: i32) -> bool {
        let base = match &self.kind {
            Kind::Cgroup(cg) => cg.contains(pid),
            Kind::Pgroup(pg) => pg.contains(pid, &self.cookie),
        };
        match &self.anchor {
            None => base,
            Some(a) if a.pid == pid => a.ns.is_none(),
            Some(a) => base || a.ns.is_some_and(|ns| pidns::is_member(ns, pid)),
        }
    }

    /// Waits for the anchor to be gone (the init: the whole namespace).
    async fn anchor_gone(&self, deadline: tokio::time::Instant) -> bool {
        match &self.anchor {
            Some(a) => a.wait_gone(deadline).await,
            None => true,
        }
    }

    /// SIGKILLs the anchor: for an init, the kernel then kills every
    /// process of the namespace.
    fn kill_anchor(&self) {
        if let Some(a) = &self.anchor {
            let _ = rustix::process::pidfd_send_signal(a.pidfd.get_ref(), Signal::KILL);
        }
    }

    /// Sends `signals` to every member, in order. Each target is pinned with a
    /// pidfd and re-checked before signalling, so a pid reused by an
    /// unrelated process between listing and signalling is never hit.
    /// Returns how many processes were signalled.
    pub fn signal_all(&self, signals: &[Signal]) -> usize {
        let mut count = 0;
        for pid in self.members() {
            let Some(fd) = Pid::from_raw(pid)
                .and_then(|p| rustix::process::pidfd_open(p, PidfdFlags::empty()).ok())
            else {
                continue;
            };
            if !self.contains(pid) {
                continue;
            }
            let mut sent = false;
            for &sig in signals {
                sent |= rustix::process::pidfd_send_signal(fd.as_fd(), sig).is_ok();
            }
            count += usize::from(sent);
        }
        count
    }

    /// Waits until no live process is left, up to `limit`. Returns whether
    /// it emptied. The anchor's end is waited for too: an init ends only
    /// when its namespace is empty, and a main process that left the
    /// cgroup is still the batch's.
    pub async fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let base = match &self.kind {
            Kind::Cgroup(cg) => cg.wait_empty(limit).await,
            Kind::Pgroup(_) => self.poll_empty(limit, false).await,
        };
        base && self.anchor_gone(deadline).await
    }

    /// SIGKILLs every member, including ones forked meanwhile, and waits up
    /// to `limit` for them to be gone. Returns whether the batch emptied.
    pub async fn kill_and_wait(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        self.kill_anchor();
        let base = match &self.kind {
            Kind::Cgroup(cg) => {
                // The anchor, killed above, may have left the cgroup.
                if cg.kill().is_err() {
                    self.signal_all(&[Signal::KILL]);
                }
                cg.wait_empty(limit).await
            }
            Kind::Pgroup(_) => self.poll_empty(limit, true).await,
        };
        base && self.anchor_gone(deadline).await
    }

    /// Polls until no member is left: without a cgroup nothing tells us
    /// when the last process is gone. With `kill`, every round SIGKILLs
    /// what is there, so processes forked mid-kill die too.
    async fn poll_empty(&self, limit: Duration, kill: bool) -> bool {
        poll_until(tokio::time::Instant::now() + limit, || {
            if kill {
                self.signal_all(&[Signal::KILL]);
            }
            self.members().is_empty()
        })
        .await
    }

    /// Removes the batch's cgroup (it must be empty).
    pub fn remove(self) {
        if let Kind::Cgroup(cg) = self.kind {
            cg.remove();
        }
    }
}

/// Checks `done` with a short, growing backoff (1 ms doubling to 20 ms)
/// until it says so or `deadline` passes; returns its last answer. The one
/// polling loop, where nothing can tell us when a batch has emptied.
pub(super) async fn poll_until(
    deadline: tokio::time::Instant,
    mut done: impl FnMut() -> bool,
) -> bool {
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
