//! How many tests each verdict has, per label set: the classification
//! `flaky` and `regressed` make (the same sequences, [`failing`], the same
//! [`Sequence::classify`]), counted instead of listed, in one pass over
//! the window. What `warden serve`'s `/metrics` reports as gauges.
//!
//! A test counts once per full label set it has that verdict under: the
//! flaky count of a label set is the number of `warden flaky --by <every
//! key>` rows with its values, the broken and regressed counts the number
//! of `warden regressed` rows with its labels.

use std::collections::{BTreeMap, BTreeSet};

use super::sequences::{Sequence, Window, failing};
use super::{Filter, Result};
use crate::history::Db;
use crate::history::classify::{Params, Verdict};

/// The verdicts counted.
pub const COUNTED: [Verdict; 3] = [Verdict::Flaky, Verdict::Broken, Verdict::Regressed];

/// The counts of one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerdictCounts {
    /// Every label set (`k=v k=v`) of the window's runs, sorted.
    pub label_sets: Vec<String>,
    /// (label set, verdict) → tests; only the [`COUNTED`] verdicts, only
    /// pairs with a test.
    pub tests: BTreeMap<(String, Verdict), u64>,
}

impl VerdictCounts {
    /// Tests with `verdict` under `labels` (0 when none).
    pub fn get(&self, labels: &str, verdict: Verdict) -> u64 {
        self.tests
            .get(&(labels.to_owned(), verdict))
            .copied()
            .unwrap_or(0)
    }
}

/// Flaky, broken and regressed tests in `filter`'s runs, per label set.
pub async fn verdicts(db: &Db, filter: &Filter, params: &Params) -> Result<VerdictCounts> {
    let (window, sequences) = failing(db, filter, &[]).await?;
    Ok(count(&window, &sequences, params))
}

fn count(window: &Window, sequences: &[Sequence], params: &Params) -> VerdictCounts {
    let label_sets: BTreeSet<&str> = window.runs.iter().map(|r| r.labels.as_str()).collect();
    let mut tests = BTreeMap::new();
    for seq in sequences {
        let (c, _) = seq.classify(window, params);
        if COUNTED.contains(&c.verdict) {
            *tests.entry((seq.labels.clone(), c.verdict)).or_default() += 1;
        }
    }
    VerdictCounts {
        label_sets: label_sets.into_iter().map(str::to_owned).collect(),
        tests,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::marks;
    use crate::history::query::sequences::Run;

    #[test]
    fn counts_each_label_set_verdict_once_per_test() {
        let window = Window {
            runs: (0..20)
                .map(|i| Run {
                    uuid: format!("r{i}"),
                    started: 1_000 * i as i64,
                    commit: Some(format!("c{i}")),
                    labels: if i % 2 == 0 { "arch=x" } else { "arch=y" }.into(),
                    by: Vec::new(),
                    infra: None,
                })
                .collect(),
        };
        let seq = |test: &str, labels: &str, m: &str| Sequence {
            test: test.into(),
            labels: labels.into(),
            results: marks(m).into_iter().enumerate().collect(),
        };
        let c = count(
            &window,
            &[
                seq("a", "arch=x", "..F....F...F...F..F."),
                seq("a", "arch=y", "FFFFFFFFFFFFFFFFFFFF"),
                seq("b", "arch=x", "..R.....F...R....F.."),
                seq("c", "arch=x", "..............FFFFFF"),
                // Healthy and fixed: not counted.
                seq("d", "arch=x", "...................."),
                seq("e", "arch=x", "FFFFFFFFFF.........."),
            ],
            &Params::default(),
        );
        assert_eq!(c.label_sets, ["arch=x", "arch=y"]);
        assert_eq!(c.get("arch=x", Verdict::Flaky), 2);
        assert_eq!(c.get("arch=x", Verdict::Regressed), 1);
        assert_eq!(c.get("arch=y", Verdict::Broken), 1);
        assert_eq!(c.get("arch=y", Verdict::Flaky), 0);
        assert_eq!(c.tests.len(), 3);
    }
}
