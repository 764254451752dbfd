//! Queue mode (`warden run --queue`): the machines of one CI run pull
//! batches from one queue in the PostgreSQL history they already share,
//! instead of each running a static shard. Machines boot minutes apart,
//! run at different speeds and die; a shared queue absorbs all three: a
//! machine takes the next batch (longest first) when it has room, holds it
//! under a lease it keeps renewing, and a batch whose machine stopped
//! renewing goes back to the queue. No service of our own: the queue is
//! three tables (migrations/postgres/0008).
//!
//! - `key`: the run key the machines share (`--run-key`, or the CI's
//!   environment).
//! - `store`: the SQL (join/seed, claim, renew, finish, release, read).
//! - `lease`: one machine's claims and their background renewal.
//! - `report`: the whole run's outcomes, rebuilt from the store, for
//!   `warden report`.

pub mod key;
pub mod lease;
pub mod report;
pub mod store;

use crate::plan::PlannedBatch;
use crate::scheduler::partition::fnv1a64;

pub use key::{KeyError, RunKey};
pub use lease::{Claim, Queue};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(
        "queue {key} was made from other batches (fingerprint {theirs}, this config's {ours}): \
         every machine of a run must run the same config"
    )]
    Fingerprint {
        key: String,
        ours: String,
        theirs: String,
    },
    #[error("the queue's store: {0}")]
    Store(#[from] sqlx::Error),
}

/// The batches' names and commands, hashed: the same on every machine that
/// runs the same batches (environment and paths, which differ between
/// machines, are left out).
pub fn fingerprint(batches: &[PlannedBatch]) -> String {
    let mut text = Vec::new();
    for b in batches {
        text.extend_from_slice(b.config.name.as_str().as_bytes());
        text.push(0);
        match &b.config.command {
            crate::config::Command::Argv(argv) => {
                text.extend_from_slice(b"argv");
                for a in argv {
                    text.push(0);
                    text.extend_from_slice(a.as_bytes());
                }
            }
            crate::config::Command::Shell(s) => {
                text.extend_from_slice(b"shell\0");
                text.extend_from_slice(s.as_bytes());
            }
        }
        text.push(b'\n');
    }
    format!("{:016x}", fnv1a64(&text))
}
