//! How things ended, one closed set of values per level, below every
//! stage: the parsers, the reporters, the history store and the dashboard
//! all speak these, and each is written and read back (reports, the
//! store, `WARDEN_RUN_STATUS`) by its own `as_str`/`FromStr` (for tests,
//! the store's codes) and nowhere else.
//!
//! - [`TestStatus`]: one test or subtest (passed, failed, error, flaky, skipped).
//! - [`Status`]: a batch, setup or post step (passed … timed-out … not-run).
//! - [`RunStatus`]: the whole run (passed, failed, deadline, interrupted;
//!   incomplete in the history when it never ended).
//! - [`Exit`]: how a batch's main process ended.
//!
//! Where a unit belongs in the run is [`Phase`](crate::phase::Phase).

mod batch;
mod exit;
mod run;
mod test;

pub use batch::Status;
pub use exit::{Exit, signal_name};
pub use run::RunStatus;
pub use test::TestStatus;

/// A word that names no status of its kind: a store written by a newer
/// warden, or by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{text}` (written by a newer warden?)")]
pub struct Unknown {
    what: &'static str,
    text: String,
}

impl Unknown {
    pub(crate) fn new(what: &'static str, text: &str) -> Unknown {
        Unknown {
            what,
            text: text.to_owned(),
        }
    }
}
