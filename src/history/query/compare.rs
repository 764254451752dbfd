//! Two runs side by side: what newly failed, what was fixed, what got
//! slower, per batch and per test — the dashboard's `/compare`.
//!
//! Run A is the baseline, run B the one looked at. A test or batch
//! *newly failed* when it failed in B and did not in A (passed, flaked,
//! or was not there); it was *fixed* when it failed in A and passed or
//! flaked in B; it got *slower* when B took at least [`SLOWER_FACTOR`]
//! times as long as A and at least [`SLOWER_BY`] more (so a 2 ms test
//! that now takes 4 ms is noise, not news). Tests are matched by name,
//! batches by name (the first of a name in each run).
//!
//! One statement reads the tests: B's results with A's result of the
//! same test (a primary-key lookup each), only the rows that can be any
//! of the three; each list is cut to `limit` (slowest first, else by
//! name) with its full count.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;

use super::runs::{BatchSummary, RunSummary};
use super::{Result, Sql, for_each_row, serialize_opt_ms, status, test_names};
use crate::history::Db;
use crate::history::model::{duration_millis, from_duration_millis};
use crate::status::{Status, TestStatus};

/// Slower means at least this many times as long…
pub const SLOWER_FACTOR: f64 = 1.5;
/// …and at least this much longer.
pub const SLOWER_BY: Duration = Duration::from_secs(1);

/// A test or batch in both runs (or only in B).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub name: String,
    /// For a test: its batch in B.
    pub batch: Option<String>,
    /// Its status in A (`null`: not in A).
    pub before: Option<String>,
    pub after: String,
    #[serde(rename = "before_ms", serialize_with = "serialize_opt_ms")]
    pub before_duration: Option<Duration>,
    #[serde(rename = "after_ms", serialize_with = "serialize_opt_ms")]
    pub after_duration: Option<Duration>,
}

/// One kind of change: the first `limit`, and how many in all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    pub total: u64,
    pub items: Vec<Change>,
}

/// The three lists, for batches or tests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Diff {
    pub newly_failed: Changes,
    pub fixed: Changes,
    pub slower: Changes,
}

/// What changed from run `a` to run `b`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub a: RunSummary,
    pub b: RunSummary,
    pub batches: Diff,
    pub tests: Diff,
}

/// Whether `after` is slower than `before` by the rule above.
pub fn slower(before: Duration, after: Duration) -> bool {
    after >= before + SLOWER_BY && after.as_secs_f64() >= before.as_secs_f64() * SLOWER_FACTOR
}

/// A batch that failed: neither passed, flaky nor not-run.
fn batch_failed(s: Status) -> bool {
    !matches!(s, Status::Passed | Status::Flaky | Status::NotRun)
}

/// What changed from run `a` to run `b` (their batches as
/// [`super::run_batches`] gives them), each list cut to `limit` (0: all).
pub async fn compare(
    db: &Db,
    a: RunSummary,
    b: RunSummary,
    a_batches: &[BatchSummary],
    b_batches: &[BatchSummary],
    limit: usize,
) -> Result<Comparison> {
    let batches = diff_batches(a_batches, b_batches, limit);
    let batch_names: HashMap<i64, &str> =
        b_batches.iter().map(|x| (x.id, x.name.as_str())).collect();

    let failed = TestStatus::Failed.code();
    let mut sql = Sql::default();
    let text = format!(
        "SELECT rb.test_id, ra.status, rb.status, ra.duration_ms, rb.duration_ms, rb.batch_id \
         FROM results rb LEFT JOIN results ra ON ra.test_id = rb.test_id AND ra.run_id = {a} \
         WHERE rb.run_id = {b} AND (rb.status = {failed} OR ra.status = {failed} \
         OR (rb.duration_ms >= ra.duration_ms + {by} AND rb.duration_ms * 2 >= ra.duration_ms * 3))",
        a = sql.int(a.number),
        b = sql.int(b.number),
        by = sql.int(duration_millis(SLOWER_BY)),
    );
    let mut rows: Vec<(i64, Change, Kind)> = Vec::new();
    for_each_row!(db, sql, &text, |row| {
        let before: Option<i64> = row.try_get(1)?;
        let before = before.map(status).transpose()?;
        let after = status(row.try_get(2)?)?;
        let before_ms: Option<i64> = row.try_get(3)?;
        let after_ms: Option<i64> = row.try_get(4)?;
        let batch: Option<i64> = row.try_get(5)?;
        let change = Change {
            name: String::new(),
            batch: batch
                .and_then(|id| batch_names.get(&id))
                .map(|n| (*n).to_owned()),
            before: before.as_ref().map(|s| s.as_str().to_owned()),
            after: after.as_str().to_owned(),
            before_duration: before_ms.map(from_duration_millis),
            after_duration: after_ms.map(from_duration_millis),
        };
        let was_failed = before.as_ref() == Some(&TestStatus::Failed);
        let kind = if after == TestStatus::Failed && !was_failed {
            Some(Kind::NewlyFailed)
        } else if was_failed && matches!(after, TestStatus::Passed | TestStatus::Flaky) {
            Some(Kind::Fixed)
        } else {
            None
        };
        let id: i64 = row.try_get(0)?;
        if let Some(kind) = kind {
            rows.push((id, change.clone(), kind));
        }
        let timed = |s: Option<&TestStatus>| s.is_some_and(|s| !s.is_skipped());
        if let (Some(x), Some(y)) = (change.before_duration, change.after_duration)
            && timed(before.as_ref())
            && timed(Some(&after))
            && slower(x, y)
        {
            rows.push((id, change, Kind::Slower));
        }
    });
    let names = test_names(db, rows.iter().map(|(id, _, _)| *id)).await?;
    let mut tests = Diff::default();
    for (id, mut change, kind) in rows {
        change.name = names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
        tests.list(kind).items.push(change);
    }
    tests.finish(limit);
    Ok(Comparison {
        a,
        b,
        batches,
        tests,
    })
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    NewlyFailed,
    Fixed,
    Slower,
}

impl Diff {
    fn list(&mut self, kind: Kind) -> &mut Changes {
        match kind {
            Kind::NewlyFailed => &mut self.newly_failed,
            Kind::Fixed => &mut self.fixed,
            Kind::Slower => &mut self.slower,
        }
    }

    /// Sorts each list (by name; slower ones by how much slower, most
    /// first), counts and cuts it.
    fn finish(&mut self, limit: usize) {
        for kind in [Kind::NewlyFailed, Kind::Fixed, Kind::Slower] {
            let list = self.list(kind);
            if let Kind::Slower = kind {
                let gain = |c: &Change| {
                    c.after_duration.unwrap_or_default().as_secs_f64()
                        / c.before_duration
                            .unwrap_or_default()
                            .as_secs_f64()
                            .max(1e-3)
                };
                list.items.sort_by(|x, y| {
                    gain(y)
                        .total_cmp(&gain(x))
                        .then_with(|| x.name.cmp(&y.name))
                });
            } else {
                list.items.sort_by(|x, y| x.name.cmp(&y.name));
            }
            list.total = list.items.len() as u64;
            if limit > 0 {
                list.items.truncate(limit);
            }
        }
    }
}

/// The batches' changes, matched by name (the first of a name in each).
fn diff_batches(a: &[BatchSummary], b: &[BatchSummary], limit: usize) -> Diff {
    let mut before: HashMap<&str, &BatchSummary> = HashMap::new();
    for x in a {
        before.entry(x.name.as_str()).or_insert(x);
    }
    let mut seen = std::collections::HashSet::new();
    let mut diff = Diff::default();
    for y in b {
        if !seen.insert(y.name.as_str()) {
            continue;
        }
        let x = before.get(y.name.as_str());
        let change = Change {
            name: y.name.clone(),
            batch: None,
            before: x.map(|x| x.status.as_str().to_owned()),
            after: y.status.as_str().to_owned(),
            before_duration: x.map(|x| x.duration),
            after_duration: Some(y.duration),
        };
        let was_failed = x.is_some_and(|x| batch_failed(x.status));
        if batch_failed(y.status) && !was_failed {
            diff.newly_failed.items.push(change.clone());
        } else if was_failed && y.status.is_success() {
            diff.fixed.items.push(change.clone());
        }
        if let Some(x) = x
            && slower(x.duration, y.duration)
        {
            diff.slower.items.push(change);
        }
    }
    diff.finish(limit);
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slower_needs_both_the_factor_and_the_second() {
        let ms = Duration::from_millis;
        assert!(slower(ms(1000), ms(2000)));
        assert!(slower(ms(2000), ms(3000)));
        assert!(!slower(ms(2001), ms(3000)));
        // Three times as long, but only 20 ms more: noise.
        assert!(!slower(ms(10), ms(30)));
        // A second more, but only 1.1 times as long.
        assert!(!slower(ms(10_000), ms(11_000)));
    }
}
