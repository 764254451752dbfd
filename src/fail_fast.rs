//! Fail fast: `--max-fail N` / `[run] max-fail` (`--fail-fast` is 1).
//!
//! A CI job whose first batches already failed rarely gains from running
//! the rest: it holds a runner and delays the red signal. Once N batches
//! have failed, no new batch starts; running ones finish (or, with
//! `N:terminate`, are stopped through the run's stop state, the one kill
//! path a deadline takes); the batches never started are `not-run` with
//! the reason; post steps still run.
//!
//! A batch counts when its outcome fails the run (`verdict::fails_run`):
//! failed, crashed, timed out, leaked, aborted — a batch whose tests failed
//! is one failed batch, whatever their number; one that passed on a retry
//! (`flaky`) counts only under `flaky = "fail"`; a quarantined failure does
//! not count. Setup steps already stop the run when they fail; post steps
//! never count.

use std::fmt;
use std::str::FromStr;

use crate::watchdog::StopCause;

/// `N` or `N:terminate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxFail {
    /// At least 1.
    pub limit: u64,
    /// Stop the running batches too, as a deadline stop does.
    pub terminate: bool,
}

impl MaxFail {
    /// `--fail-fast`.
    pub const FIRST: MaxFail = MaxFail {
        limit: 1,
        terminate: false,
    };
}

impl FromStr for MaxFail {
    type Err = String;

    fn from_str(s: &str) -> Result<MaxFail, String> {
        let bad =
            || format!("expected N or N:terminate (N a whole number, 1 or more), found {s:?}");
        let (n, terminate) = match s.split_once(':') {
            None => (s, false),
            Some((n, "terminate")) => (n, true),
            Some(_) => return Err(bad()),
        };
        let limit = n
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(bad)?;
        Ok(MaxFail { limit, terminate })
    }
}

impl fmt::Display for MaxFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.limit)?;
        if self.terminate {
            f.write_str(":terminate")?;
        }
        Ok(())
    }
}

/// The run's failed batches against the limit: the dispatcher's own count.
#[derive(Debug)]
pub struct Tally {
    max: MaxFail,
    failed: u64,
    /// Batches not started because the limit was reached.
    pub not_started: u64,
}

impl Tally {
    pub fn new(max: MaxFail) -> Tally {
        Tally {
            max,
            failed: 0,
            not_started: 0,
        }
    }

    /// Counts a finished batch; true when this one reached the limit.
    /// With `terminate`, the batches the limit stopped are not counted:
    /// they did not fail, they were stopped.
    pub fn add(&mut self, fails_run: bool) -> bool {
        if !fails_run || (self.max.terminate && self.reached()) {
            return false;
        }
        self.failed += 1;
        self.failed == self.max.limit
    }

    pub fn reached(&self) -> bool {
        self.failed >= self.max.limit
    }

    pub fn terminate(&self) -> bool {
        self.max.terminate
    }

    /// Why nothing more starts.
    pub fn cause(&self) -> StopCause {
        StopCause::MaxFail {
            limit: self.max.limit,
            failed: self.failed,
            terminate: self.max.terminate,
        }
    }

    /// The summary's line, once the limit was reached:
    /// `Max-fail: 2 batches failed (max-fail 2): 3 batches not started`.
    pub fn summary(&self) -> Option<String> {
        if !self.reached() {
            return None;
        }
        let n = self.not_started;
        Some(format!(
            "Max-fail: {} (max-fail {}): {n} {} not started{}",
            batches(self.failed, "failed"),
            self.max,
            if n == 1 { "batch" } else { "batches" },
            if self.max.terminate {
                ", running ones stopped"
            } else {
                ""
            }
        ))
    }
}

/// `1 batch failed`, `2 batches failed`.
pub fn batches(n: u64, what: &str) -> String {
    format!("{n} {} {what}", if n == 1 { "batch" } else { "batches" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_shows() {
        let m = |limit, terminate| MaxFail { limit, terminate };
        assert_eq!("2".parse(), Ok(m(2, false)));
        assert_eq!("1:terminate".parse(), Ok(m(1, true)));
        assert_eq!(m(3, true).to_string(), "3:terminate");
        for bad in [
            "0",
            "-1",
            "",
            "x",
            "2:kill",
            "2:",
            ":terminate",
            "0:terminate",
        ] {
            let e = bad.parse::<MaxFail>().unwrap_err();
            assert!(e.contains("expected N or N:terminate"), "{bad}: {e}");
        }
    }

    #[test]
    fn counts_failed_batches_up_to_the_limit() {
        let mut t = Tally::new(MaxFail {
            limit: 2,
            terminate: false,
        });
        assert!(!t.add(false));
        assert!(!t.add(true));
        assert_eq!(t.summary(), None);
        assert!(t.add(true));
        assert!(t.reached());
        // Batches running when the limit was reached finish and count, but
        // trip nothing again.
        assert!(!t.add(true));
        t.not_started = 3;
        assert_eq!(
            t.summary().unwrap(),
            "Max-fail: 3 batches failed (max-fail 2): 3 batches not started"
        );
        assert_eq!(
            t.cause().to_string(),
            "max-fail 2 reached (3 batches failed)"
        );
        // With terminate, what the limit stopped is not counted.
        let mut t = Tally::new("1:terminate".parse().unwrap());
        assert!(t.add(true));
        assert!(!t.add(true));
        assert_eq!(
            t.summary().unwrap(),
            "Max-fail: 1 batch failed (max-fail 1:terminate): 0 batches not started, \
             running ones stopped"
        );
    }
}
