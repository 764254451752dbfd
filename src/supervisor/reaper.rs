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

use std::collections::HashMap;
use std::io;
use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};

use rustix::process::{WaitOptions, WaitStatus};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::status::Exit;

#[derive(Default)]
struct Waiters {
    /// Registered pids and where their status goes.
    waiting: HashMap<i32, oneshot::Sender<Exit>>,
    /// Spawns between `begin_spawn` and `finish_spawn`.
    spawning: usize,
    /// Statuses reaped while a spawn was in flight that nobody waited for.
    unclaimed: HashMap<i32, Exit>,
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
    /// kernel gave one; `None` if the spawn failed) and returns the receiver
    /// of its exit status.
    pub fn finish_spawn(
        &self,
        spawn: InFlight,
        child: Option<(i32, Option<BorrowedFd<'_>>)>,
    ) -> oneshot::Receiver<Exit> {
        let InFlight(()) = spawn;
        let (tx, rx) = oneshot::channel();
        let mut w = lock(&self.waiters);
        if let Some((pid, pidfd)) = child {
            match w.unclaimed.remove(&pid) {
                // Reaped before we got here: ours if it has exited.
                Some(exit) if pidfd.is_none_or(has_exited) => {
                    let _ = tx.send(exit);
                }
                _ => {
                    w.waiting.insert(pid, tx);
                }
            }
        }
        w.spawning -= 1;
        if w.spawning == 0 {
            w.unclaimed.clear();
        }
        rx
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
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                let pid = pid.as_raw_nonzero().get();
                if let Some(tx) = w.waiting.remove(&pid) {
                    let _ = tx.send(exit_of(status));
                } else if w.spawning > 0 {
                    w.unclaimed.insert(pid, exit_of(status));
                }
            }
            Err(rustix::io::Errno::INTR) => continue,
            // None: children remain, none exited; ECHILD: no children at all.
            Ok(None) | Err(_) => return,
        }
    }
}

fn exit_of(status: WaitStatus) -> Exit {
    match (status.exit_status(), status.terminating_signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        // waitpid without WUNTRACED/WCONTINUED only reports terminations.
        (None, None) => Exit::Code(-1),
    }
}
