//! `warden durations`: how long each test or batch takes — p50, p90, max —
//! slowest p90 first. The scheduler's longest-first order and sharding use
//! [`batch_p90`].
//!
//! Percentiles are nearest-rank: the p-th percentile of n sorted values is
//! the value at rank ⌈p·n/100⌉ (1-based), always one of the measured
//! values. Skipped results and results without a duration are left out;
//! batches are those of phase `batch` (warden's own) or `suite` (imported).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Filter, Result, Sql, for_each_row, serialize_ms, test_names};
use crate::history::Db;
use crate::history::model::{from_duration_millis, unix_millis};
use crate::history::rollup::{DAY_MS, Tally};
use crate::phase::Phase;
use crate::status::TestStatus;

/// What `durations` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Tests,
    Batches,
}

/// One test's or batch's durations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationRow {
    pub name: String,
    pub count: u64,
    #[serde(rename = "p50_ms", serialize_with = "serialize_ms")]
    pub p50: Duration,
    #[serde(rename = "p90_ms", serialize_with = "serialize_ms")]
    pub p90: Duration,
    #[serde(rename = "max_ms", serialize_with = "serialize_ms")]
    pub max: Duration,
}

/// Durations per test or per batch name in `filter`'s runs, slowest p90
/// first, then by name.
pub async fn durations(db: &Db, filter: &Filter, subject: Subject) -> Result<Vec<DurationRow>> {
    durations_until(db, filter, subject, None, None).await
}

/// [`durations`] of the runs of `filter` that started before `until`
/// (`None`: any time): a window in the past, such as the one before
/// the window asked about, to see the trend. With `only`, just the tests
/// or batches of those names: the rows a page shows, without reading
/// every other test's durations.
pub async fn durations_until(
    db: &Db,
    filter: &Filter,
    subject: Subject,
    until: Option<SystemTime>,
    only: Option<&[String]>,
) -> Result<Vec<DurationRow>> {
    let until = until.map(unix_millis);
    if only.is_some_and(<[String]>::is_empty) {
        return Ok(Vec::new());
    }
    if subject == Subject::Tests && filter.labels.is_empty() {
        return rolled_up(db, filter, until, only).await;
    }
    let mut rows: Vec<DurationRow> = match subject {
        Subject::Tests => test_values(db, filter, until, only).await?,
        Subject::Batches => {
            let mut values = batch_values(db, filter, None, until).await?;
            if let Some(only) = only {
                values.retain(|name, _| only.contains(name));
            }
            values.into_iter().collect()
        }
    }
    .into_iter()
    .filter_map(|(name, mut values)| {
        values.sort_unstable();
        Some(DurationRow {
            count: values.len() as u64,
            p50: from_duration_millis(percentile(&values, 50)?),
            p90: from_duration_millis(percentile(&values, 90)?),
            max: from_duration_millis(*values.last()?),
            name,
        })
    })
    .collect();
    rows.sort_by(|a, b| b.p90.cmp(&a.p90).then_with(|| a.name.cmp(&b.name)));
    Ok(rows)
}

/// Each batch's p90 duration in `filter`'s runs, by batch name.
pub async fn batch_p90(db: &Db, filter: &Filter) -> Result<HashMap<String, Duration>> {
    p90s(batch_values(db, filter, None, None).await?)
}

/// [`batch_p90`] of the batches that ended before `ended_before`: the same
/// answer however many runs are recorded after it (once the ones running
/// then have written their batches), so shards of one CI run that start
/// minutes apart split their batches alike.
pub async fn batch_p90_as_of(
    db: &Db,
    filter: &Filter,
    ended_before: SystemTime,
) -> Result<HashMap<String, Duration>> {
    p90s(batch_values(db, filter, Some(ended_before), None).await?)
}

fn p90s(values: HashMap<String, Vec<i64>>) -> Result<HashMap<String, Duration>> {
    Ok(values
        .into_iter()
        .filter_map(|(name, mut values)| {
            values.sort_unstable();
            Some((name, from_duration_millis(percentile(&values, 90)?)))
        })
        .collect())
}

/// The nearest-rank `p`th percentile of `sorted` (ascending); `None` if empty.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    let rank = (p * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied()
}

/// `durations --tests` without labels: the whole days of the window from
/// the rollups (`test_days`), the results of the runs before the first
/// of them one by one. Counts and maxima are exact; p50 and p90 are
/// within 1/128 of the value (exact below 128 ms): see
/// [`crate::history::rollup`]. With `until` (Unix milliseconds), only
/// runs started before it: the whole days before its day from the
/// rollups, the runs of its day before it one by one too.
async fn rolled_up(
    db: &Db,
    filter: &Filter,
    until: Option<i64>,
    only: Option<&[String]>,
) -> Result<Vec<DurationRow>> {
    let since = unix_millis(filter.since);
    let first_day = since.div_euclid(DAY_MS) + i64::from(since.rem_euclid(DAY_MS) != 0);
    // The whole days are [first_day, end_day); without `until`, every day
    // from first_day on.
    let end_day = until.map(|u| u.div_euclid(DAY_MS).max(first_day));
    let mut tallies: HashMap<i64, Tally> = HashMap::new();
    let mut sql = Sql::default();
    let mut text = format!(
        "SELECT test_id, max_ms, durations FROM test_days WHERE day >= {} AND max_ms IS NOT NULL",
        sql.int(first_day)
    );
    if let Some(end) = end_day {
        text.push_str(&format!(" AND day < {}", sql.int(end)));
    }
    text.push_str(&named(&mut sql, "test_id", only));
    for_each_row!(db, sql, &text, |row| {
        let t = tallies.entry(row.try_get(0)?).or_default();
        let max: Option<i64> = row.try_get(1)?;
        t.max_ms = t.max_ms.max(max);
        t.decode_into(row.try_get::<&[u8], _>(2)?);
    });
    let edge = Filter {
        since: filter.since,
        labels: Vec::new(),
        mass_failure_share: filter.mass_failure_share,
    };
    let before_days = until.map_or(first_day * DAY_MS, |u| u.min(first_day * DAY_MS));
    let mut edges = raw_values(db, &edge, Some(before_days), only).await?;
    if let (Some(until), Some(end)) = (until, end_day)
        && end * DAY_MS < until
    {
        let after = Filter {
            since: crate::history::model::from_unix_millis(end * DAY_MS),
            ..edge
        };
        for (id, values) in raw_values(db, &after, Some(until), only).await? {
            edges.entry(id).or_default().extend(values);
        }
    }
    for (id, values) in edges {
        let t = tallies.entry(id).or_default();
        for v in values {
            t.add_duration(v);
        }
    }
    let names = test_names(db, tallies.keys().copied()).await?;
    let mut rows: Vec<DurationRow> = tallies
        .into_iter()
        .filter_map(|(id, t)| {
            Some(DurationRow {
                name: names.get(&id).cloned().unwrap_or_else(|| format!("#{id}")),
                count: t.timed(),
                p50: from_duration_millis(t.percentile(50)?),
                p90: from_duration_millis(t.percentile(90)?),
                max: from_duration_millis(t.max_ms?),
            })
        })
        .collect();
    rows.sort_by(|a, b| b.p90.cmp(&a.p90).then_with(|| a.name.cmp(&b.name)));
    Ok(rows)
}

/// Test names with their durations in milliseconds, unsorted (runs
/// started before `until`, if given).
async fn test_values(
    db: &Db,
    filter: &Filter,
    until: Option<i64>,
    only: Option<&[String]>,
) -> Result<Vec<(String, Vec<i64>)>> {
    let tests = raw_values(db, filter, until, only).await?;
    let names = test_names(db, tests.keys().copied()).await?;
    Ok(tests
        .into_iter()
        .map(|(id, values)| {
            let name = names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"));
            (name, values)
        })
        .collect())
}

/// Test ids with their durations in milliseconds, unsorted, from the
/// results of `filter`'s runs (that started before `before`, if given).
async fn raw_values(
    db: &Db,
    filter: &Filter,
    before: Option<i64>,
    only: Option<&[String]>,
) -> Result<HashMap<i64, Vec<i64>>> {
    let mut sql = Sql::default();
    let mut run_ids = filter.run_ids(&mut sql);
    if let Some(before) = before {
        run_ids.push_str(&format!(" AND runs.started_at < {}", sql.int(before)));
    }
    // Reading most of the table, a scan in primary-key order beats a
    // lookup per result through `results_run` (0.16 s against 1.1 s for a
    // million on SQLite); for a narrow window of a long history it is the
    // other way round. `+r.run_id` (a no-op on both backends) keeps SQLite
    // off the index; PostgreSQL plans from its own statistics anyway.
    // The edge of a window before its first whole day: a few runs.
    let plus = if before.is_none() && mostly(db, filter).await? {
        "+"
    } else {
        ""
    };
    let mut text = format!(
        "SELECT r.test_id, r.duration_ms FROM results r \
         WHERE {plus}r.run_id IN ({run_ids}) AND r.status <> {skipped} \
         AND r.duration_ms IS NOT NULL",
        skipped = TestStatus::Skipped(None).code(),
    );
    text.push_str(&named(&mut sql, "r.test_id", only));
    let mut tests: HashMap<i64, Vec<i64>> = HashMap::new();
    for_each_row!(db, sql, &text, |row| {
        let id: i64 = row.try_get(0)?;
        tests.entry(id).or_default().push(row.try_get(1)?);
    });
    Ok(tests)
}

/// ` AND column IN (the ids of the tests named `only`)`, or nothing
/// without `only`.
fn named(sql: &mut Sql, column: &str, only: Option<&[String]>) -> String {
    let Some(only) = only else {
        return String::new();
    };
    let names: Vec<String> = only.iter().map(|n| sql.text(n)).collect();
    format!(
        " AND {column} IN (SELECT id FROM tests WHERE name IN ({}))",
        names.join(", ")
    )
}

/// Whether `filter` selects at least a third of all runs.
async fn mostly(db: &Db, filter: &Filter) -> Result<bool> {
    let mut sql = Sql::default();
    let cond = filter.runs_condition(&mut sql);
    let text =
        format!("SELECT (SELECT COUNT(*) FROM runs WHERE {cond}), (SELECT COUNT(*) FROM runs)");
    let mut counts = (0_i64, 0_i64);
    for_each_row!(db, sql, &text, |row| {
        counts = (row.try_get(0)?, row.try_get(1)?);
    });
    Ok(counts.0 * 3 >= counts.1)
}

/// Batch names with their durations in milliseconds, unsorted; only
/// batches that ended before `ended_before`, and of runs started before
/// `until` (Unix milliseconds), when given.
async fn batch_values(
    db: &Db,
    filter: &Filter,
    ended_before: Option<SystemTime>,
    until: Option<i64>,
) -> Result<HashMap<String, Vec<i64>>> {
    let mut sql = Sql::default();
    let mut run_ids = filter.run_ids(&mut sql);
    if let Some(until) = until {
        run_ids.push_str(&format!(" AND runs.started_at < {}", sql.int(until)));
    }
    let ended = match ended_before {
        Some(t) => format!(
            " AND b.started_at + b.duration_ms < {}",
            sql.int(unix_millis(t))
        ),
        None => String::new(),
    };
    // Batches and imported suites; their words are fixed, not user text.
    let text = format!(
        "SELECT b.name, b.duration_ms FROM batches b \
         WHERE b.run_id IN ({run_ids}) AND b.phase IN ('{batch}', '{suite}'){ended}",
        batch = Phase::Batch.as_str(),
        suite = Phase::Suite.as_str(),
    );
    let mut batches: HashMap<String, Vec<i64>> = HashMap::new();
    for_each_row!(db, sql, &text, |row| {
        let name: String = row.try_get(0)?;
        let ms: i64 = row.try_get(1)?;
        batches.entry(name).or_default().push(ms);
    });
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 90), Some(4));
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 50), Some(50));
        assert_eq!(percentile(&hundred, 90), Some(90));
        assert_eq!(percentile(&hundred, 100), Some(100));
        let ten: Vec<i64> = (1..=10).map(|v| v * 10).collect();
        assert_eq!(percentile(&ten, 90), Some(90));
        assert_eq!(percentile(&ten, 91), Some(100));
        assert_eq!(percentile(&ten, 0), Some(10));
    }
}
