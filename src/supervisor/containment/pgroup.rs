//! The fallback without cgroups: the batch's process group, plus every
//! process carrying the batch's cookie (which catches `setsid` escapees that
//! kept their environment).

use super::Cookie;
use crate::supervisor::procfs;

#[derive(Debug)]
pub(super) struct ProcessGroup {
    /// The main process, which made itself leader of a new group before exec.
    leader: Option<i32>,
    /// Taken before the batch started: an older process can't be one of
    /// its descendants, so its environment need not be read.
    since_ticks: u64,
}

impl ProcessGroup {
    pub(super) fn new() -> ProcessGroup {
        ProcessGroup {
            leader: None,
            since_ticks: procfs::now_ticks(),
        }
    }

    pub(super) fn set_leader(&mut self, pid: i32) {
        self.leader = Some(pid);
    }

    pub(super) fn members(&self, cookie: &Cookie) -> Vec<i32> {
        let me = std::process::id() as i32;
        procfs::all_pids()
            .into_iter()
            .filter(|&pid| pid != me && self.contains(pid, cookie))
            .collect()
    }

    /// A live process in our group or carrying our cookie.
    pub(super) fn contains(&self, pid: i32, cookie: &Cookie) -> bool {
        let Some(stat) = procfs::stat(pid) else {
            return false;
        };
        if stat.is_zombie() || stat.starttime < self.since_ticks {
            return false;
        }
        self.leader == Some(stat.pgid) || cookie.held_by(pid)
    }
}
