//! What the end of a run says about the quarantine list, so it can't rot.

use chrono::NaiveDate;

use super::list::Quarantine;
use crate::outcome::Outcome;
use crate::phase::Phase;

/// Lines for the end of a run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// For stdout: quarantined batches that passed.
    pub out: Vec<String>,
    /// For stderr: entries past their `until`.
    pub err: Vec<String>,
    /// False when an entry expired: that fails the run.
    pub valid: bool,
}

impl Quarantine {
    /// Lists quarantined batches that passed (the entry can go), and
    /// entries past their `until` on `today` (which fail the run).
    pub fn notes(&self, outcomes: &[Outcome], today: NaiveDate) -> Notes {
        let mut notes = Notes {
            valid: true,
            ..Notes::default()
        };
        for o in outcomes {
            if o.phase == Phase::Batch
                && o.status.is_success()
                && let Some(e) = self.find(o.name.as_str())
            {
                notes.out.push(format!(
                    "warden: quarantined but passing: {} ({}): consider removing `{}` from {}",
                    o.name,
                    e.describe(),
                    e.pattern,
                    self.path.display()
                ));
            }
        }
        for e in self.entries.iter().filter(|e| e.expired(today)) {
            notes.valid = false;
            notes.err.push(format!(
                "warden: quarantine entry `{}` in {} expired on {}: {}; fix the test or move `until`",
                e.pattern,
                self.path.display(),
                e.until.map(|d| d.to_string()).unwrap_or_default(),
                e.describe()
            ));
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::report::test_support::outcome;
    use crate::status::Status;

    #[test]
    fn passing_batches_and_expired_entries_are_named() {
        let q = crate::quarantine::parse(
            Path::new("q.toml"),
            "[[quarantine]]\npattern = \"net-*\"\nreason = \"flaky\"\nuntil = 2026-12-31\n",
        )
        .unwrap();
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let outcomes = [
            outcome("net-tcp", Status::Passed, ""),
            outcome("net-udp", Status::Failed, "exit code 1"),
        ];
        let notes = q.notes(&outcomes, day("2026-12-31"));
        assert_eq!(
            notes,
            Notes {
                out: vec![
                    "warden: quarantined but passing: net-tcp (flaky): consider removing \
                     `net-*` from q.toml"
                        .into()
                ],
                err: Vec::new(),
                valid: true,
            }
        );
        let notes = q.notes(&[], day("2027-01-01"));
        assert!(!notes.valid);
        assert_eq!(
            notes.err,
            [
                "warden: quarantine entry `net-*` in q.toml expired on 2026-12-31: flaky; \
              fix the test or move `until`"
            ]
        );
    }
}
