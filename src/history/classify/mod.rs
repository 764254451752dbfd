//! One verdict per test and label set — healthy, flaky, broken, regressed
//! or fixed — from its results in commit order, with the evidence.
//!
//! The method (README, "How a test is classified"):
//!
//! 1. The results (skipped left out, and those of mass-failure runs) are
//!    put in commit order, then time order; results on one commit form
//!    one *position*. A result is *failing* when it failed or was flaky
//!    (failed, then passed on a retry within its run).
//! 2. [`changepoint`] splits the positions into regimes of one failure
//!    rate each (Beta-Binomial segments, a change kept when more probable
//!    than none). The last regime is the test's *current* one.
//! 3. The verdict, from the current regime. *Failing now*: at least
//!    `broken_share` of its results `failed` (not merely flaky), the latest
//!    too.
//!    - **regressed**: failing now, with at least `min_failures` results,
//!      after an earlier regime with a lower failure rate: the change
//!      point is the break, with the last good and first bad result
//!      around it;
//!    - **broken**: failing now with no earlier regime (failing since
//!      before the window), with at least `min_failures` results or every
//!      result failed (a new test failing from its first run is broken);
//!    - **fixed**: no failing result, after an earlier regime with some;
//!    - **healthy**: no failing result in the window;
//!    - **flaky**: anything else with failing results: failures and
//!      passes in one regime, or a change to failing too recent to call.
//!
//! Direct evidence of flakiness — a flaky result, or a failure and a pass
//! on one commit — is counted and shown; a commit with both is one
//! position, so no change point can cut through it.

pub mod changepoint;
pub mod interval;

use serde::Serialize;

use crate::status::TestStatus;
use changepoint::{Counts, Model};

/// What a test's history says about it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Healthy,
    Flaky,
    Broken,
    Regressed,
    Fixed,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Healthy,
        Verdict::Flaky,
        Verdict::Broken,
        Verdict::Regressed,
        Verdict::Fixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Flaky => "flaky",
            Verdict::Broken => "broken",
            Verdict::Regressed => "regressed",
            Verdict::Fixed => "fixed",
        }
    }

    /// What its last change of regime was, in a sentence ("broke between
    /// A and B"): `broke`, `fixed`, or `changed` (a flaky test's rate).
    pub fn change_word(self) -> &'static str {
        match self {
            Verdict::Regressed => "broke",
            Verdict::Fixed => "fixed",
            _ => "changed",
        }
    }

    /// Failing consistently now: `warden regressed` lists it.
    pub fn is_failing(self) -> bool {
        matches!(self, Verdict::Broken | Verdict::Regressed)
    }
}

crate::status::word_enum!(Verdict, "verdict");

/// The classification's knobs; [`Params::default`] is what the commands
/// use (README gives the reasons for each value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub model: Model,
    /// The fewest results a failing regime needs to be broken.
    pub min_failures: usize,
    /// The least share of `failed` results in a broken regime.
    pub broken_share: f64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            model: Model {
                // Jeffreys' prior: no rate favoured, yet regimes that
                // always pass or always fail (most tests) are likely.
                alpha: 0.5,
                beta: 0.5,
                // A change between two given commits is rare; 2% keeps a
                // flaky test's streaks whole while three failures after
                // ten clean runs are a break.
                change_prior: 0.02,
            },
            min_failures: 3,
            broken_share: 0.9,
        }
    }
}

/// One result, in commit (then time) order.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// Results with the same commit are one position; `None`: a position
    /// of its own.
    pub commit: Option<&'a str>,
    pub status: &'a TestStatus,
}

/// A change of regime between two results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    /// The last result before the change that shows the old regime: for a
    /// break, the last passing (passed or flaky) one; for a fix, the last
    /// failing one. Index into the observations.
    pub before: usize,
    /// The first result of the new regime.
    pub after: usize,
    /// The posterior probability that the change is between exactly these
    /// two commits (given one change there), 0–1.
    pub confidence: f64,
}

/// The verdict and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub verdict: Verdict,
    /// Results in the window (skipped and mass-failure runs left out).
    pub runs: u64,
    /// `failed` results.
    pub failures: u64,
    /// `flaky` results: failed, then passed on a retry.
    pub flaky: u64,
    /// Commits with both a failing and a passing result.
    pub flaky_commits: u64,
    /// The current regime: its first result, size and failing results.
    pub regime_start: usize,
    pub regime_runs: u64,
    pub regime_failing: u64,
    /// Failing share of the current regime, with its 95% interval.
    pub failure_rate: f64,
    pub interval: (f64, f64),
    /// The last change of regime, if any.
    pub change: Option<Change>,
    /// The latest `failed` results in a row (skipping none).
    pub streak: u64,
}

fn failing(s: &TestStatus) -> bool {
    s.is_failure() || *s == TestStatus::Flaky
}

fn passing(s: &TestStatus) -> bool {
    matches!(s, TestStatus::Passed | TestStatus::Flaky)
}

/// The order the results of one test under one label set are classified
/// in: by the first time their commit appears among them, then by time
/// (a commit tested again later joins its first appearance; results
/// without a commit stand alone). `items` are `(time, commit)` in time
/// order; returns their indexes in classification order.
pub fn commit_order(items: &[(i64, Option<&str>)]) -> Vec<usize> {
    let mut first: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (t, c) in items {
        if let Some(c) = c {
            first.entry(c).or_insert(*t);
        }
    }
    let mut order: Vec<usize> = (0..items.len()).collect();
    // Stable: equal keys keep time order.
    order.sort_by_key(|&i| {
        let (t, c) = items[i];
        (c.map_or(t, |c| first[c]), c, t)
    });
    order
}

/// Classifies one test under one label set. `obs` must be in commit order
/// (results of one commit adjacent), skipped results left out.
pub fn classify(obs: &[Observation<'_>], params: &Params) -> Classification {
    // Positions: (first observation, counts).
    let mut starts: Vec<usize> = Vec::new();
    let mut counts: Vec<Counts> = Vec::new();
    for (i, o) in obs.iter().enumerate() {
        let same = i > 0 && o.commit.is_some() && o.commit == obs[i - 1].commit;
        if !same {
            starts.push(i);
            counts.push(Counts::default());
        }
        if let Some(c) = counts.last_mut() {
            c.n += 1;
            c.k += u64::from(failing(o.status));
        }
    }
    let flaky_commits = counts.iter().filter(|c| c.k > 0 && c.k < c.n).count() as u64;
    let splits = params.model.segment(&counts);

    let runs = obs.len() as u64;
    let failures = obs.iter().filter(|o| o.status.is_failure()).count() as u64;
    let flaky = obs
        .iter()
        .filter(|o| *o.status == TestStatus::Flaky)
        .count() as u64;
    let streak = obs
        .iter()
        .rev()
        .take_while(|o| o.status.is_failure())
        .count() as u64;

    let last = splits.last();
    let regime_start = last.map_or(0, |s| starts[s.at]);
    let regime = &obs[regime_start..];
    let regime_runs = regime.len() as u64;
    let regime_failing = regime.iter().filter(|o| failing(o.status)).count() as u64;
    let regime_failed = regime.iter().filter(|o| o.status.is_failure()).count() as u64;
    let failure_rate = if regime_runs == 0 {
        0.0
    } else {
        regime_failing as f64 / regime_runs as f64
    };
    // Failing now: (almost) every result of the regime failed, the
    // latest too.
    let failing_now = regime_failed as f64 >= params.broken_share * regime_runs as f64
        && obs.last().is_some_and(|o| o.status.is_failure());
    // The previous regime's failing share, to tell a break from a fix.
    let before = last.map(|s| {
        let from = splits
            .len()
            .checked_sub(2)
            .map_or(0, |i| starts[splits[i].at]);
        let previous = &obs[from..starts[s.at]];
        let f = previous.iter().filter(|o| failing(o.status)).count();
        f as f64 / previous.len().max(1) as f64
    });
    let enough = regime_runs >= params.min_failures.max(1) as u64;
    let verdict = match before {
        // No failing result now: fixed after a change the model kept (the
        // regime before had failures: no change separates two clean ones).
        _ if regime_failing == 0 => {
            if before.is_some() {
                Verdict::Fixed
            } else {
                Verdict::Healthy
            }
        }
        Some(b) if failing_now && enough && b < failure_rate => Verdict::Regressed,
        Some(_) if failing_now && enough => Verdict::Broken,
        // The whole window failing: broken, however few its results (a
        // new test failing from its first run is broken, not unknown).
        None if failing_now && (enough || regime_failed == regime_runs) => Verdict::Broken,
        // Failures and passes in one regime, or a change to failing too
        // recent to call (fewer than `min_failures` results).
        _ => Verdict::Flaky,
    };
    let change = last.map(|s| {
        let at = starts[s.at];
        let old_side = |o: &Observation<'_>| match verdict {
            Verdict::Fixed => failing(o.status),
            _ => passing(o.status),
        };
        Change {
            before: obs[..at].iter().rposition(old_side).unwrap_or(at - 1),
            after: at,
            confidence: s.confidence,
        }
    });
    Classification {
        verdict,
        runs,
        failures,
        flaky,
        flaky_commits,
        regime_start,
        regime_runs,
        regime_failing,
        failure_rate,
        interval: interval::wilson(regime_failing, regime_runs),
        change,
        streak,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::query::marks;

    /// One commit per mark.
    fn verdict_of(m: &str) -> Classification {
        let statuses = marks(m);
        let obs: Vec<Observation<'_>> = statuses
            .iter()
            .filter(|s| !s.is_skipped())
            .map(|status| Observation {
                commit: None,
                status,
            })
            .collect();
        classify(&obs, &Params::default())
    }

    fn v(m: &str) -> Verdict {
        verdict_of(m).verdict
    }

    #[test]
    fn a_commit_tested_again_joins_its_first_appearance() {
        let items = [
            (1, Some("a")),
            (2, Some("b")),
            (3, None),
            (4, Some("a")),
            (5, Some("c")),
        ];
        assert_eq!(commit_order(&items), [0, 3, 1, 2, 4]);
    }

    #[test]
    fn the_five_verdicts() {
        assert_eq!(v("...................."), Verdict::Healthy);
        assert_eq!(v(""), Verdict::Healthy);
        assert_eq!(v("..F.......F.......F....."), Verdict::Flaky);
        assert_eq!(v("FFFFFFFFFFFF"), Verdict::Broken);
        assert_eq!(v("..............FFFF"), Verdict::Regressed);
        assert_eq!(v("..........FFFFFFFF.........."), Verdict::Fixed);
    }

    #[test]
    fn a_streak_inside_a_flaky_regime_is_not_a_break() {
        // 40% flaky; four failures in a row, then it passes again.
        let c = verdict_of(".F..F.FFFF..F.F...F..F.F.");
        assert_eq!(c.verdict, Verdict::Flaky);
        assert!(c.change.is_none());
        assert_eq!(c.failures, 11);
        assert!(c.interval.0 < 0.4 && c.interval.1 > 0.4, "{:?}", c.interval);
        // Four failures in a row at the end of a 40% flaky history are
        // still the flakiness.
        assert_eq!(v(".F..F.F..F.F...F..F.FFFF"), Verdict::Flaky);
    }

    #[test]
    fn a_break_is_located_even_after_flakiness() {
        let c = verdict_of("..F......F.....F....FFFFFFFF");
        assert_eq!(c.verdict, Verdict::Regressed);
        let change = c.change.unwrap();
        assert_eq!((change.before, change.after), (19, 20));
        assert_eq!(c.regime_runs, 8);
        assert_eq!(c.failure_rate, 1.0);
    }

    #[test]
    fn too_short_a_failing_regime_is_not_yet_broken() {
        // Two failures after a clean history: not min_failures (3) yet.
        assert!(!v("...............FF").is_failing());
        // Failing in every run of the window, however few: broken.
        assert_eq!(v("FF"), Verdict::Broken);
        assert_eq!(v("F"), Verdict::Broken);
        // A pass at the end: not failing now.
        assert!(!v("FFFFFFFFF.").is_failing());
    }

    #[test]
    fn flaky_results_and_mixed_commits_are_evidence() {
        let statuses = marks(".R...F..F.");
        let commits = ["a", "b", "b", "c", "d", "d", "e", "f", "g", "h"];
        let obs: Vec<Observation<'_>> = statuses
            .iter()
            .zip(commits)
            .map(|(status, c)| Observation {
                commit: Some(c),
                status,
            })
            .collect();
        let c = classify(&obs, &Params::default());
        assert_eq!(c.verdict, Verdict::Flaky);
        assert_eq!((c.runs, c.failures, c.flaky), (10, 2, 1));
        // Commits b (flaky, passed) and d (passed, failed).
        assert_eq!(c.flaky_commits, 2);
    }

    #[test]
    fn a_regression_names_the_results_around_the_break() {
        // The last pass before the break is two results earlier (a failure
        // of the old, flaky regime in between).
        let c = verdict_of(".............F..F.F....FFFFFFFFF");
        assert_eq!(c.verdict, Verdict::Regressed);
        let ch = c.change.unwrap();
        assert_eq!(ch.after, 23);
        assert_eq!(ch.before, 22);
        assert!(ch.confidence > 0.3 && ch.confidence <= 1.0, "{ch:?}");
        assert_eq!(c.streak, 9);
    }
}
