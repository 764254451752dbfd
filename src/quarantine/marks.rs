//! The marks a finished batch gets from the quarantine list.

use super::list::Quarantine;
use crate::outcome::Outcome;
use crate::status::Status;

impl Quarantine {
    /// Marks what the list covers on a batch that did not pass: its
    /// failing tests (`batch/test`, into `quarantined_tests`), and the
    /// batch itself (`quarantined`) when its name matches, or when every
    /// failing test is quarantined and nothing else went wrong.
    pub fn mark(&self, o: &mut Outcome) {
        if o.status.is_success() {
            return;
        }
        let failing: Vec<String> = o
            .tests
            .iter()
            .filter(|t| t.status.is_failure())
            .map(|t| t.name())
            .collect();
        for name in &failing {
            if let Some(e) = self.find(&format!("{}/{name}", o.name)) {
                o.quarantined_tests.push((name.clone(), e.describe()));
            }
        }
        if let Some(e) = self.find(o.name.as_str()) {
            o.quarantined = Some(e.describe());
        } else if o.status == Status::Failed
            && !failing.is_empty()
            && o.quarantined_tests.len() == failing.len()
            && o.test_problems.is_empty()
        {
            o.quarantined = Some(format!(
                "every failing test is quarantined: {}",
                o.quarantined_tests
                    .iter()
                    .map(|(n, why)| format!("{n} ({why})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::parsers::TestResult;
    use crate::report::test_support::outcome;
    use crate::status::TestStatus;

    fn list(patterns: &[&str]) -> Quarantine {
        let text: String = patterns
            .iter()
            .map(|p| format!("[[quarantine]]\npattern = \"{p}\"\nreason = \"known\"\n"))
            .collect();
        crate::quarantine::parse(Path::new("q.toml"), &text).unwrap()
    }

    fn failed(name: &str) -> TestResult {
        TestResult {
            path: vec![name.into()],
            status: TestStatus::Failed,
            duration: None,
            output: String::new(),
            message: None,
        }
    }

    #[test]
    fn a_batch_is_quarantined_by_name_or_by_all_its_failing_tests() {
        let mut o = outcome("net", Status::Failed, "exit code 1");
        list(&["net"]).mark(&mut o);
        assert_eq!(o.quarantined.as_deref(), Some("known"));

        let mut o = outcome("net", Status::Failed, "2 tests failed");
        o.tests = vec![failed("a"), failed("b")];
        list(&["net/a"]).mark(&mut o);
        assert_eq!(o.quarantined_tests, [("a".to_owned(), "known".to_owned())]);
        assert_eq!(o.quarantined, None);

        list(&["net/b"]).mark(&mut o);
        assert_eq!(
            o.quarantined.as_deref(),
            Some("every failing test is quarantined: a (known), b (known)")
        );

        // A timeout is more than its tests' failures.
        let mut o = outcome("net", Status::TimedOut, "timed out");
        o.tests = vec![failed("a")];
        list(&["net/*"]).mark(&mut o);
        assert_eq!(o.quarantined_tests.len(), 1);
        assert_eq!(o.quarantined, None);

        let mut o = outcome("net", Status::Passed, "");
        list(&["net"]).mark(&mut o);
        assert_eq!(o.quarantined, None);
    }
}
