//! How a batch's processes are found and killed (DESIGN.md, "Containment").
//!
//! A cgroup v2 per batch when the machine gives us a writable cgroup2 mount;
//! otherwise the batch's own process group plus an environment cookie,
//! found by scanning `/proc`. Both are exact-match: a process is touched only
//! if it is in this batch's cgroup, in this batch's process group, or carries
//! this run's and this batch's cookie byte for byte.

mod cgroup;
mod pgroup;

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, Signal};

use crate::outcome::ProcessInfo;
use crate::supervisor::procfs;

pub use cgroup::{CgroupRoot, RUN_PREFIX, kill_and_remove, runs_parent};

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

    /// Sets up the containment of one batch, before its process starts.
    pub fn prepare(&self, cookie: Cookie, unit: &str) -> io::Result<Containment> {
        let kind = match self {
            Mode::Cgroup(root) => Kind::Cgroup(root.child(unit)?),
            Mode::Pgroup { .. } => Kind::Pgroup(pgroup::ProcessGroup::new()),
        };
        Ok(Containment { kind, cookie })
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

    /// The `cgroup.procs` a forked child writes itself into before exec
    /// (only where clone3 can't start it in its cgroup).
    pub fn procs_path(&self) -> Option<std::path::PathBuf> {
        match &self.kind {
            Kind::Cgroup(cg) => Some(cg.procs_path()),
            Kind::Pgroup(_) => None,
        }
    }

    /// Records the main process once started; its pid is the process group id.
    pub fn started(&mut self, pid: i32) {
        if let Kind::Pgroup(pg) = &mut self.kind {
            pg.set_leader(pid);
        }
    }

    /// Live (non-zombie) processes of the batch.
    pub fn members(&self) -> Vec<i32> {
        match &self.kind {
            Kind::Cgroup(cg) => cg.members(),
            Kind::Pgroup(pg) => pg.members(&self.cookie),
        }
    }

    pub fn members_info(&self) -> Vec<ProcessInfo> {
        self.members().into_iter().map(procfs::info).collect()
    }

    fn contains(&self, pid: i32) -> bool {
        match &self.kind {
            Kind::Cgroup(cg) => cg.contains(pid),
            Kind::Pgroup(pg) => pg.contains(pid, &self.cookie),
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

    /// Waits until no live process is left, up to `limit`. Returns whether it emptied.
    pub async fn wait_empty(&self, limit: Duration) -> bool {
        match &self.kind {
            Kind::Cgroup(cg) => cg.wait_empty(limit).await,
            Kind::Pgroup(_) => self.poll_empty(limit, false).await,
        }
    }

    /// SIGKILLs every member, including ones forked meanwhile, and waits up
    /// to `limit` for them to be gone. Returns whether the batch emptied.
    pub async fn kill_and_wait(&self, limit: Duration) -> bool {
        match &self.kind {
            Kind::Cgroup(cg) => {
                if cg.kill().is_err() {
                    self.signal_all(&[Signal::KILL]);
                }
                cg.wait_empty(limit).await
            }
            Kind::Pgroup(_) => self.poll_empty(limit, true).await,
        }
    }

    /// Polls with a short, growing backoff: without a cgroup nothing tells us
    /// when the last process is gone. With `kill`, every round SIGKILLs what is
    /// there, so processes forked mid-kill die too.
    async fn poll_empty(&self, limit: Duration, kill: bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if kill {
                self.signal_all(&[Signal::KILL]);
            }
            if self.members().is_empty() {
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

    /// Removes the batch's cgroup (it must be empty).
    pub fn remove(self) {
        if let Kind::Cgroup(cg) = self.kind {
            cg.remove();
        }
    }
}
