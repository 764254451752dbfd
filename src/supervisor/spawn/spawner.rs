//! The threads that start batches, so the runtime thread never waits for a
//! spawn.
//!
//! Starting a batch can block: looking its program up on `PATH` and
//! exec'ing it touch the filesystem, and with `CLONE_VFORK` the spawning
//! thread waits until the child has exec'd. A binary on a stalled NFS or
//! FUSE mount would freeze the thread that runs the watchdog, the timeouts
//! and every other batch. So each spawn runs on a spawner thread and the
//! runtime awaits its answer; meanwhile [`Pending::kill`] can end a spawn
//! whose exec hangs (the batch's timeout or the run's stop does that).
//!
//! **Threads live as long as warden.** PDEATHSIG, which kills a batch's
//! first process when warden dies, fires when the *thread* that spawned it
//! exits, not the process. So spawner threads never exit: an idle one waits
//! for its next job, and a new one is started only when every existing one
//! is busy (a spawn blocked in exec keeps its thread). At most as many
//! threads as batches were ever being started at once.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{Pending, Request, SpawnCache};
use crate::status::Exit;
use crate::supervisor::reaper::{Reaper, Rusage};

/// A batch's first process, started.
pub struct Started {
    pub pid: i32,
    /// Its pidfd, where the kernel gives one.
    pub pidfd: Option<OwnedFd>,
    /// In a PID namespace: the init's status pipe (see [`super::Spawned`]).
    pub status: Option<OwnedFd>,
    /// Its exit status, from the reaper.
    pub exit: oneshot::Receiver<Exit>,
    /// What it and the children it waited for used, once reaped.
    pub usage: oneshot::Receiver<Rusage>,
}

struct Job {
    request: Request,
    pending: Arc<Pending>,
    reply: oneshot::Sender<std::io::Result<Started>>,
}

pub struct Spawner {
    cache: Arc<SpawnCache>,
    reaper: Reaper,
    /// Threads waiting for a job.
    idle: Arc<Mutex<Vec<mpsc::Sender<Job>>>>,
}

impl Spawner {
    pub fn new(cache: SpawnCache, reaper: Reaper) -> Spawner {
        Spawner {
            cache: Arc::new(cache),
            reaper,
            idle: Arc::default(),
        }
    }

    /// Starts `request` on a spawner thread. Returns the handle that can
    /// kill the child while it is being started, and the answer.
    pub fn spawn(
        &self,
        request: Request,
    ) -> (
        Arc<Pending>,
        impl Future<Output = std::io::Result<Started>> + use<>,
    ) {
        let pending = Arc::new(Pending::new());
        let (reply, answer) = oneshot::channel();
        let mut job = Job {
            request,
            pending: pending.clone(),
            reply,
        };
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let thread = match idle {
                Some(thread) => thread,
                None => match self.start_thread() {
                    Ok(thread) => thread,
                    Err(e) => {
                        let _ = job.reply.send(Err(std::io::Error::new(
                            e.kind(),
                            format!("cannot start a spawner thread: {e}"),
                        )));
                        break;
                    }
                },
            };
            match thread.send(job) {
                Ok(()) => break,
                // Cannot happen (threads never exit); try another.
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        let answer = async move {
            answer.await.unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "the spawner thread ended without an answer",
                ))
            })
        };
        (pending, answer)
    }

    /// Starts a new spawner thread; returns where to send it jobs.
    fn start_thread(&self) -> std::io::Result<mpsc::Sender<Job>> {
        let (tx, rx) = mpsc::channel::<Job>();
        let cache = self.cache.clone();
        let reaper = self.reaper.clone();
        let idle = self.idle.clone();
        let own = tx.clone();
        std::thread::Builder::new()
            .name("warden-spawn".into())
            .spawn(move || {
                // `own` keeps the channel open: `recv` never fails, and the
                // thread never exits (see the module doc: PDEATHSIG).
                while let Ok(job) = rx.recv() {
                    let Job {
                        request,
                        pending,
                        reply,
                    } = job;
                    let _ = reply.send(start(&cache, &reaper, request, &pending));
                    idle.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(own.clone());
                }
            })?;
        Ok(tx)
    }
}

/// One spawn, on a spawner thread.
fn start(
    cache: &SpawnCache,
    reaper: &Reaper,
    request: Request,
    pending: &Pending,
) -> std::io::Result<Started> {
    let prepared = super::prepare(cache, request)?;
    let in_flight = reaper.begin_spawn();
    let spawned = super::spawn(&prepared, cache, pending);
    let pidfd = pending.finish();
    match spawned {
        Ok(spawned) => {
            // The fork fallback gives no pidfd: open one now (the child has
            // exec'd; it can only be gone if it already exited).
            let pidfd = pidfd.or_else(|| {
                rustix::process::Pid::from_raw(spawned.pid).and_then(|p| {
                    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
                })
            });
            let registered = reaper.finish_spawn(
                in_flight,
                Some((spawned.pid, pidfd.as_ref().map(|fd| fd.as_fd()))),
            );
            Ok(Started {
                pid: spawned.pid,
                pidfd,
                status: spawned.status,
                exit: registered.exit,
                usage: registered.usage,
            })
        }
        Err(e) => {
            drop(reaper.finish_spawn(in_flight, None));
            Err(e)
        }
    }
}
