//! A machine's hold on the batches it claimed: [`Queue`] claims for the
//! dispatcher (runner.rs, queue mode) and renews every lease it holds in
//! the background, every third of the lease. A batch whose lease could not
//! be renewed in time (the store unreachable, or the row taken by another
//! machine after it expired) is marked lost before the server's lease
//! runs out — at 80% of the lease, counted on this machine's monotonic
//! clock from when the last successful renewal was sent, so never after
//! the server's `now()` — and the dispatcher stops it like a deadline
//! stop: a batch never runs on two machines at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgPool;
use tokio::sync::watch;
use tokio::time::Instant;

use super::QueueError;
use super::store::{self, Claimed, Runner};

/// What [`Queue::claim`] hands the dispatcher.
pub enum Claim {
    Batch {
        name: String,
        /// `re-run: …` when another runner held it first.
        rerun: Option<String>,
        /// Turns `true` when the lease is lost.
        lost: watch::Receiver<bool>,
    },
    /// Nothing to claim now; ask again after a while.
    Wait,
    /// Every batch is done.
    Empty,
}

struct Held {
    lost: watch::Sender<bool>,
    /// When the last renewal that counted it was sent (at first: the claim).
    renewed: Instant,
    /// When the claim came back: a renewal sent before then may not see it.
    claimed: Instant,
}

/// One machine's view of one run key's queue.
pub struct Queue {
    pool: PgPool,
    key: String,
    me: Runner,
    lease: Duration,
    held: Mutex<HashMap<String, Held>>,
}

impl Queue {
    pub fn new(pool: PgPool, key: String, me: Runner, lease: Duration) -> Arc<Queue> {
        Arc::new(Queue {
            pool,
            key,
            me,
            lease,
            held: Mutex::new(HashMap::new()),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// How long to wait before asking again after [`Claim::Wait`]: short,
    /// since the machines waiting at the end of a run exit only once they
    /// have seen the last batch done (one indexed read each time).
    pub fn poll(&self) -> Duration {
        (self.lease / 3).min(Duration::from_millis(200))
    }

    /// How long claims may keep failing before this machine stops asking:
    /// ten leases, at least a minute.
    pub fn give_up(&self) -> Duration {
        (self.lease * 10).max(Duration::from_secs(60))
    }

    /// How long a lost batch gets to end: what is left of the lease.
    pub fn grace(&self) -> Duration {
        self.lease / 10
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding it leaves a map that is still whole.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the next batch; starts its lease's clock.
    pub async fn claim(&self) -> Result<Claim, QueueError> {
        let sent = Instant::now();
        Ok(
            match store::claim(&self.pool, &self.key, &self.me, self.lease).await? {
                Claimed::Batch { name, lost_by } => {
                    let (tx, rx) = watch::channel(false);
                    self.held().insert(
                        name.clone(),
                        Held {
                            lost: tx,
                            renewed: sent,
                            claimed: Instant::now(),
                        },
                    );
                    Claim::Batch {
                        name,
                        rerun: lost_by.map(|(host, pid)| {
                            format!(
                                "re-run: its first runner ({host}, pid {pid}) stopped renewing its lease"
                            )
                        }),
                        lost: rx,
                    }
                }
                Claimed::Wait => Claim::Wait,
                Claimed::Empty => Claim::Empty,
            },
        )
    }

    /// Records `name`'s end; `false`: its lease was lost, nothing written
    /// (its result is another machine's to give).
    pub async fn finish(
        &self,
        name: &str,
        status: &str,
        reason: &str,
        duration: Duration,
    ) -> Result<bool, QueueError> {
        let lost = self.held().remove(name).is_none_or(|h| *h.lost.borrow());
        if lost {
            return Ok(false);
        }
        store::finish(
            &self.pool, &self.key, &self.me, name, status, reason, duration,
        )
        .await
    }

    /// Gives `name` back to the queue (claimed, not run).
    pub async fn release(&self, name: &str) -> Result<(), QueueError> {
        self.held().remove(name);
        store::release(&self.pool, &self.key, &self.me, name).await
    }

    /// Renews every lease held, every third of the lease, until dropped
    /// (abort the handle); marks lost what could not be renewed in time.
    pub fn renew_in_background(self: &Arc<Queue>) -> tokio::task::JoinHandle<()> {
        let q = self.clone();
        tokio::spawn(async move {
            let every = q.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                q.renew_once(every).await;
            }
        })
    }

    async fn renew_once(&self, within: Duration) {
        if self.held().is_empty() {
            return;
        }
        let sent = Instant::now();
        let renewed = tokio::time::timeout(
            within,
            store::renew(&self.pool, &self.key, &self.me, self.lease),
        )
        .await;
        let now = Instant::now();
        let limit = self.lease.mul_f64(0.8);
        let mut held = self.held();
        match renewed {
            Ok(Ok(names)) => {
                for (name, h) in held.iter_mut() {
                    if names.iter().any(|n| n == name) {
                        h.renewed = sent;
                    } else if h.claimed < sent {
                        // Not ours any more: another machine took it.
                        let _ = h.lost.send(true);
                    }
                }
            }
            Ok(Err(_)) | Err(_) => {
                for h in held.values() {
                    if now.saturating_duration_since(h.renewed) > limit {
                        let _ = h.lost.send(true);
                    }
                }
            }
        }
    }
}
