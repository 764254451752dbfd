//! The only place that waits for children.
//!
//! warden is a child subreaper, so orphans of every batch re-parent to it
//! and must be reaped, which takes `waitpid(-1)`. That would steal the exit
//! status of a batch's main process from anyone else waiting for it, so all
//! waiting happens here: one task reaps everything on SIGCHLD and hands each
//! main process's status to whoever registered its pid.
//!
//! A child may exit, and be reaped, before its spawner has registered its
//! pid, and spawning can take long (an exec that blocks on a stalled mount),
//! so spawning must not hold the reaping lock. Instead a spawner announces
//! itself ([`Reaper::begin_spawn`]); while any spawn is in flight, statuses
//! nobody waits for are kept, and [`Reaper::finish_spawn`] claims its
//! child's. A kept status is taken as the child's only if the child's pidfd
//! says it has exited: an orphan reaped just before the clone could have
//! had the same pid (pids are handed out cyclically, so only a wrapped
//! pid space could make that happen). Once no spawn is in flight the kept
//! statuses (orphans') are dropped.
//!
//! Each status comes with the process's resource usage (`wait4`'s rusage,
//! which the kernel fills in anyway): what a batch used when there is no
//! cgroup to ask (`supervisor::measure`).

use std::collections::HashMap;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::status::Exit;

/// What `wait4` says a process and the children it waited for used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rusage {
    /// Largest resident set of the process or one of those children.
    pub max_rss: u64,
    /// User and system time together.
    pub cpu: Duration,
    /// Bytes read from and written to block devices (512-byte blocks).
    pub read_bytes: u64,
    pub written_bytes: u64,
}

impl Rusage {
    fn of(ru: &libc::rusage) -> Rusage {
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Rusage {
            // Linux reports kilobytes.
            max_rss: (ru.ru_maxrss.max(0) as u64) * 1024,
            cpu: time(ru.ru_utime) + time(ru.ru_stime),
            read_bytes: (ru.ru_inblock.max(0) as u64) * 512,
            written_bytes: (ru.ru_oublock.max(0) as u64) * 512,
        }
    }
}

/// Where a registered process's end goes.
struct Waiting {
    exit: oneshot::Sender<Exit>,
    usage: oneshot::Sender<Rusage>,
}

/// A registered process's end: its exit status, and (separately, so that
/// nobody waiting for the status must take it) its resource usage.
pub struct Registered {
    pub exit: oneshot::Receiver<Exit>,
    pub usage: oneshot::Receiver<Rusage>,
}

#[derive(Default)]
struct Waiters {
    /// Registered pids and where their status goes.
    waiting: HashMap<i32, Waiting>,
    /// Spawns between `begin_spawn` and `finish_spawn`.
    spawning: usize,
    /// Statuses reaped while a spawn was in flight that nobody waited for.
    unclaimed: HashMap<i32, (Exit, Rusage)>,
}

#[derive(Clone)]
pub struct Reaper {
    waiters: Arc<Mutex<Waiters>>,
}

/// A spawn announced to the reaper; [`Reaper::finish_spawn`] ends it.
#[must_use = "a spawn in flight keeps the reaper storing statuses"]
pub struct InFlight(());

impl Reaper {
    /// Makes warden a child subreaper and starts reaping. Must run inside the
    /// tokio runtime, before the first spawn.
    pub fn start() -> io::Result<Reaper> {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Reaper {
            waiters: Arc::default(),
        };
        let waiters = reaper.waiters.clone();
        tokio::spawn(async move {
            loop {
                reap_all(&waiters);
                if sigchld.recv().await.is_none() {
                    return;
                }
            }
        });
        Ok(reaper)
    }

    /// Announces a spawn: from now until [`finish_spawn`](Self::finish_spawn)
    /// the status of a child nobody has registered yet is kept for it.
    /// Called on any thread; holds the lock only for the bookkeeping.
    pub fn begin_spawn(&self) -> InFlight {
        lock(&self.waiters).spawning += 1;
        InFlight(())
    }

    /// Ends a spawn: registers its child (`pid`, with its pidfd if the
    /// kernel gave one; `None` if the spawn failed) and returns the
    /// receivers of its exit status and usage.
    pub fn finish_spawn(
        &self,
        spawn: InFlight,
        child: Option<(i32, Option<BorrowedFd<'_>>)>,
    ) -> Registered {
        let InFlight(()) = spawn;
        let (exit, exit_rx) = oneshot::channel();
        let (usage, usage_rx) = oneshot::channel();
        let tx = Waiting { exit, usage };
        let mut w = lock(&self.waiters);
        if let Some((pid, pidfd)) = child {
            match w.unclaimed.remove(&pid) {
                // Reaped before we got here: ours if it has exited.
                Some(reaped) if pidfd.is_none_or(has_exited) => tx.send(reaped),
                _ => {
                    w.waiting.insert(pid, tx);
                }
            }
        }
        w.spawning -= 1;
        if w.spawning == 0 {
            w.unclaimed.clear();
        }
        Registered {
            exit: exit_rx,
            usage: usage_rx,
        }
    }
}

impl Waiting {
    fn send(self, (exit, usage): (Exit, Rusage)) {
        let _ = self.exit.send(exit);
        let _ = self.usage.send(usage);
    }
}

/// Whether the process behind `pidfd` has exited (a pidfd polls readable
/// once it has).
fn has_exited(pidfd: BorrowedFd<'_>) -> bool {
    let mut fds = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    matches!(rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())), Ok(n) if n > 0)
}

fn lock(waiters: &Mutex<Waiters>) -> std::sync::MutexGuard<'_, Waiters> {
    // A panic while holding the lock can't leave the map inconsistent
    // (inserts and removes are single calls), so poisoning is ignored.
    waiters.lock().unwrap_or_else(|p| p.into_inner())
}

fn reap_all(waiters: &Mutex<Waiters>) {
    let mut w = lock(waiters);
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes only the status and rusage we pass.
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut ru) };
        match pid {
            pid if pid > 0 => {
                let reaped = (exit_of(status), Rusage::of(&ru));
                if let Some(tx) = w.waiting.remove(&pid) {
                    tx.send(reaped);
                } else if w.spawning > 0 {
                    w.unclaimed.insert(pid, reaped);
                }
            }
            _ if pid < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {
                continue;
            }
            // 0: children remain, none exited; ECHILD: no children at all.
            _ => return,
        }
    }
}

fn exit_of(status: i32) -> Exit {
    if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        // wait4 without WUNTRACED/WCONTINUED only reports terminations.
        Exit::Code(-1)
    }
}
