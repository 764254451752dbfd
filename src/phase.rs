//! Where in the run a unit of work belongs, below every stage: the plan
//! gives it, the reports group by it, the history stores it (with
//! imported JUnit suites as a phase of their own).

use std::fmt;
use std::str::FromStr;

use crate::status::Unknown;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `[[setup]]`: runs first, in order; one failing means no batch runs.
    Setup,
    /// `[[batch]]`: the work itself, in parallel.
    Batch,
    /// `[[post]]`: always runs last, in order; fails the run only if
    /// `required`. The store keeps no `required`: a post step reads back
    /// as not required.
    Post { required: bool },
    /// A `<testsuite>` of imported JUnit (`warden import junit`): a batch
    /// that warden did not run. Only in the history.
    Suite,
}

impl Phase {
    /// The word for it: `setup`, `batch`, `post`, `suite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Batch => "batch",
            Phase::Post { .. } => "post",
            Phase::Suite => "suite",
        }
    }

    /// Whether a non-passing status here makes the run fail.
    pub fn counts_for_run(self) -> bool {
        !matches!(self, Phase::Post { required: false })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The word [`Phase::as_str`] writes, back (a batch row of the store).
impl FromStr for Phase {
    type Err = Unknown;

    fn from_str(s: &str) -> Result<Phase, Unknown> {
        [
            Phase::Setup,
            Phase::Batch,
            Phase::Post { required: false },
            Phase::Suite,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| Unknown::new("phase", s))
    }
}

impl serde::Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for p in [
            Phase::Setup,
            Phase::Batch,
            Phase::Post { required: false },
            Phase::Suite,
        ] {
            assert_eq!(p.as_str().parse::<Phase>(), Ok(p));
        }
        assert_eq!("post".parse::<Phase>(), Ok(Phase::Post { required: false }));
        assert!("steps".parse::<Phase>().is_err());
    }
}
