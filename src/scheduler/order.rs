//! Longest expected duration first: the start order that keeps a long
//! batch from starting last and stretching the run's tail.
//!
//! The expected duration of a batch is its p90 in the history (see
//! `history::query::durations::batch_p90`). A batch the history has never
//! seen is guessed at the median of the known ones: it is as likely to be
//! long as short, and the median keeps both mistakes moderate — first
//! would put a dozen new short batches ahead of the known-long ones, last
//! would start a new long one at the very end. The same guess serves the
//! order, the predicted makespan and `--partition duration`, so all three
//! describe one schedule. With no durations at all, the order is the
//! config's. `priority` comes before all of this; ties keep config order.

use std::collections::HashMap;
use std::time::Duration;

/// How long each batch is expected to take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// p90 from the history, by batch name: only batches of the plan.
    known: HashMap<String, Duration>,
    /// The median of `known`: the guess for the others.
    median: Option<Duration>,
}

/// What is known of one batch's duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimate {
    /// Its p90 in the history.
    Known(Duration),
    /// Not in the history: the median of the known ones.
    Median(Duration),
    /// Nothing is known of any batch.
    Unknown,
}

impl Estimate {
    pub fn duration(self) -> Option<Duration> {
        match self {
            Estimate::Known(d) | Estimate::Median(d) => Some(d),
            Estimate::Unknown => None,
        }
    }
}

impl Expected {
    /// No history: every estimate is [`Estimate::Unknown`].
    pub fn none() -> Expected {
        Expected::default()
    }

    /// The p90s of `names` found in `p90` (batches of other configs and
    /// runs are left out, and so out of the median).
    pub fn new<'a>(
        p90: &HashMap<String, Duration>,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Expected {
        let known: HashMap<String, Duration> = names
            .into_iter()
            .filter_map(|n| Some((n.to_owned(), *p90.get(n)?)))
            .collect();
        let mut values: Vec<Duration> = known.values().copied().collect();
        values.sort_unstable();
        // The lower median (nearest rank), one of the measured values.
        let median = values.get(values.len().saturating_sub(1) / 2).copied();
        Expected { known, median }
    }

    pub fn get(&self, name: &str) -> Estimate {
        match (self.known.get(name), self.median) {
            (Some(d), _) => Estimate::Known(*d),
            (None, Some(m)) => Estimate::Median(m),
            (None, None) => Estimate::Unknown,
        }
    }

    /// How many batches have a p90.
    pub fn known(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub fn median(&self) -> Option<Duration> {
        self.median
    }
}

/// One batch as ordering sees it.
#[derive(Debug, Clone, Copy)]
pub struct Unit<'a> {
    pub name: &'a str,
    pub priority: i64,
}

/// Indices into `units`, each once: higher `priority` first, then longer
/// expected duration, then config order (the sort is stable).
pub fn start_order(units: &[Unit<'_>], expected: &Expected) -> Vec<usize> {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by_key(|&i| {
        let u = &units[i];
        let d = expected.get(u.name).duration().unwrap_or(Duration::ZERO);
        (std::cmp::Reverse(u.priority), std::cmp::Reverse(d))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(pairs: &[(&str, u64)]) -> HashMap<String, Duration> {
        pairs
            .iter()
            .map(|(n, s)| (n.to_string(), Duration::from_secs(*s)))
            .collect()
    }

    fn units<'a>(names: &[(&'a str, i64)]) -> Vec<Unit<'a>> {
        names
            .iter()
            .map(|&(name, priority)| Unit { name, priority })
            .collect()
    }

    fn names<'a>(units: &[Unit<'a>], order: &[usize]) -> Vec<&'a str> {
        order.iter().map(|&i| units[i].name).collect()
    }

    #[test]
    fn median_of_the_plans_batches_only() {
        let p90 = secs(&[("a", 10), ("b", 30), ("c", 20), ("gone", 999)]);
        let e = Expected::new(&p90, ["a", "b", "c", "new"]);
        assert_eq!(e.known(), 3);
        assert_eq!(e.median(), Some(Duration::from_secs(20)));
        assert_eq!(e.get("new"), Estimate::Median(Duration::from_secs(20)));
        assert_eq!(e.get("gone"), Estimate::Median(Duration::from_secs(20)));
        assert_eq!(e.get("b"), Estimate::Known(Duration::from_secs(30)));
        // Even count: the lower of the two middle values.
        let e = Expected::new(&p90, ["a", "b", "c", "gone"]);
        assert_eq!(e.median(), Some(Duration::from_secs(20)));
        let e = Expected::new(&p90, ["x"]);
        assert!(e.is_empty());
        assert_eq!(e.get("x"), Estimate::Unknown);
    }

    #[test]
    fn longest_first_new_ones_at_the_median_priority_first() {
        let p90 = secs(&[("short", 5), ("long", 300), ("mid", 60), ("mid2", 60)]);
        let u = units(&[
            ("short", 0),
            ("new", 0),
            ("mid", 0),
            ("long", 0),
            ("mid2", 0),
            ("urgent", 1),
        ]);
        let e = Expected::new(&p90, u.iter().map(|u| u.name));
        // Median of 5, 60, 60, 300 is 60: `new` ties with mid and mid2 and
        // keeps its config place among them.
        assert_eq!(
            names(&u, &start_order(&u, &e)),
            ["urgent", "long", "new", "mid", "mid2", "short"]
        );
        // Without history: priority, then config order.
        assert_eq!(
            names(&u, &start_order(&u, &Expected::none())),
            ["urgent", "short", "new", "mid", "long", "mid2"]
        );
    }
}
