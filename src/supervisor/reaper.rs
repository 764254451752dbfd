//! The only place that waits for children.
//!
//! warden is a child subreaper, so orphans of every batch re-parent to it
//! and must be reaped, which takes `waitpid(-1)`. That would steal the exit
//! status of a batch's main process from anyone else waiting for it, so all
//! waiting happens here: one task reaps everything on SIGCHLD and hands each
//! main process's status to whoever registered its pid. Spawning and reaping
//! share one lock, so a child can't be reaped before its pid is registered,
//! and a reaped orphan's pid can't be handed out again while its status is
//! being dispatched.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use rustix::process::{WaitOptions, WaitStatus};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::oneshot;

use crate::status::Exit;

type Waiters = HashMap<i32, oneshot::Sender<Exit>>;

#[derive(Clone)]
pub struct Reaper {
    waiters: Arc<Mutex<Waiters>>,
}

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

    /// Runs `spawn` (which starts a child and returns its pid, and what else
    /// it wants to hand back) and returns those and a receiver for the
    /// child's exit. `spawn` runs under the reaping lock: the child can't be
    /// reaped before it returns.
    pub fn spawn<T>(
        &self,
        spawn: impl FnOnce() -> io::Result<(i32, T)>,
    ) -> io::Result<(i32, T, oneshot::Receiver<Exit>)> {
        let mut waiters = lock(&self.waiters);
        let (pid, extra) = spawn()?;
        let (tx, rx) = oneshot::channel();
        waiters.insert(pid, tx);
        Ok((pid, extra, rx))
    }
}

fn lock(waiters: &Mutex<Waiters>) -> std::sync::MutexGuard<'_, Waiters> {
    // A panic while holding the lock can't leave the map inconsistent
    // (inserts and removes are single calls), so poisoning is ignored.
    waiters.lock().unwrap_or_else(|p| p.into_inner())
}

fn reap_all(waiters: &Mutex<Waiters>) {
    let mut waiters = lock(waiters);
    loop {
        match rustix::process::wait(WaitOptions::NOHANG) {
            Ok(Some((pid, status))) => {
                if let Some(tx) = waiters.remove(&pid.as_raw_nonzero().get()) {
                    let _ = tx.send(exit_of(status));
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
