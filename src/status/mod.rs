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

/// `Display`, `FromStr` and `Serialize` for an enum written as one word:
/// its `as_str`, read back by finding it among its `ALL` (an [`Unknown`]
/// naming `$what` otherwise). One definition for every such enum.
macro_rules! word_enum {
    ($ty:ty, $what:literal) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// The word `as_str` writes, back (as the history store reads it).
        impl std::str::FromStr for $ty {
            type Err = $crate::status::Unknown;

            fn from_str(s: &str) -> Result<$ty, $crate::status::Unknown> {
                <$ty>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::status::Unknown::new($what, s))
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use word_enum;

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
