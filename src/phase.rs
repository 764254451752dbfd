//! Where in the run a unit of work belongs, below every stage: the plan
//! gives it, the reports group by it, the history stores it (with
//! imported JUnit suites as a phase of their own).

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
    /// Every phase as the store knows it (a post step without `required`).
    pub const ALL: [Phase; 4] = [
        Phase::Setup,
        Phase::Batch,
        Phase::Post { required: false },
        Phase::Suite,
    ];

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

crate::status::word_enum!(Phase, "phase");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for p in Phase::ALL {
            assert_eq!(p.as_str().parse::<Phase>(), Ok(p));
        }
        assert_eq!("post".parse::<Phase>(), Ok(Phase::Post { required: false }));
        assert!("steps".parse::<Phase>().is_err());
    }
}
