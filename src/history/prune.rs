//! Retention: removing what is older than a cutoff (`warden prune`,
//! `[run] retention`) without holding up the runs recording meanwhile.
//!
//! Everything is deleted in small statements of about [`CHUNK`] rows,
//! each its own short transaction, with a pause between them: on SQLite
//! a writer waiting on its busy timeout gets the lock within one chunk
//! (milliseconds), on PostgreSQL the deletes take row locks only, on rows
//! no run writes, and no table lock. The SQL is portable (no `DELETE …
//! LIMIT`, no `USING`). Results go by the layout of each backend: SQLite
//! by ranges of test ids across all the old runs at once (`results` is
//! keyed by test first), PostgreSQL run by run, "the first N keys of this
//! run" picked by a subquery (a run's rows lie together in the heap).
//!
//! What goes, for a run that started before the cutoff:
//!
//! * its `results`, `attempts`, `batches`, `run_labels` and the `runs`
//!   row, in that order (children first: a prune stopped halfway leaves
//!   an old run without some of its results, never results without a run);
//! * with `keep_summaries`, only its `results` and `attempts`: the `runs`
//!   row (status, commit, labels, `tests_run`, `tests_failed`,
//!   `setup_failed`), its `run_labels` and its `batches` rows (status,
//!   duration, usage) stay;
//! * an unfinished run (`ended_at IS NULL`: still recording, or its warden
//!   was killed) only once it started more than [`UNFINISHED_GRACE`]
//!   before the cutoff, so a run never loses rows while it records.
//!
//! Then hunts started before the cutoff (with their arms), and the
//! `tests` rows no result names any more. Last, once all that is done
//! (not after a prune out of time), the daily rollups (`test_days`,
//! [`super::rollup`]) of the days up to the cutoff's are counted again
//! from the results that stay.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::db::{Db, Pool, Result, with_pool};
use super::model::unix_millis;
use super::rollup;

/// Rows per delete statement (one transaction each).
pub const CHUNK: i64 = 5000;

/// An unfinished run is pruned only once it started this long before the
/// cutoff: a run may still be recording up to a day after it started.
pub const UNFINISHED_GRACE: Duration = Duration::from_secs(86_400);

/// Runs picked per look-up of the runs to prune.
const RUNS_PER_PICK: i64 = 100;

/// What to prune.
#[derive(Debug, Clone)]
pub struct Prune {
    /// Runs (and hunts) that started before this go.
    pub cutoff: SystemTime,
    /// Keep the runs and batches rows; remove only results and attempts.
    pub keep_summaries: bool,
    /// Between two statements: lets a waiting writer in.
    pub pause: Duration,
    /// Stop (incomplete) once this much time has passed; `None`: finish.
    pub budget: Option<Duration>,
}

impl Prune {
    /// Everything older than `older_than` before now.
    pub fn older_than(older_than: Duration, keep_summaries: bool) -> Prune {
        Prune {
            cutoff: SystemTime::now()
                .checked_sub(older_than)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            keep_summaries,
            pause: Duration::from_millis(10),
            budget: None,
        }
    }
}

/// What a prune removed (rows per table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub runs: u64,
    /// Runs kept as summaries whose results were removed (`keep_summaries`).
    pub summarized_runs: u64,
    pub batches: u64,
    pub attempts: u64,
    pub results: u64,
    pub run_labels: u64,
    /// Test names no result uses any more.
    pub tests: u64,
    pub hunts: u64,
    /// The cutoff, Unix milliseconds.
    pub cutoff_ms: i64,
    #[serde(serialize_with = "seconds")]
    pub elapsed: Duration,
    /// False when the time budget ran out first: the next prune goes on.
    pub complete: bool,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl Pruned {
    /// Whether anything was removed.
    pub fn any(&self) -> bool {
        self.runs + self.summarized_runs + self.results + self.tests + self.hunts > 0
    }
}

/// The runs to prune, as a condition on `runs`: `$1` the cutoff, `$2`
/// the cutoff less the grace of an unfinished run.
macro_rules! victim {
    () => {
        "started_at < $1 AND (ended_at IS NOT NULL OR started_at < $2)"
    };
}
const PICK_RUNS: &str = concat!(
    "SELECT id, tests_run FROM runs WHERE id > $3 AND ",
    victim!(),
    " ORDER BY id LIMIT $4"
);
const SUMMARIZED: &str = concat!(
    "SELECT COUNT(*) FROM runs WHERE ",
    victim!(),
    " AND EXISTS (SELECT 1 FROM results r WHERE r.run_id = runs.id)"
);
const RESULT_TEST_RANGE: &str = "SELECT MIN(test_id), MAX(test_id) FROM results";
const COUNT_RUNS: &str = "SELECT COUNT(*) FROM runs";
/// SQLite: the results of all the runs to prune whose test ids are in
/// [`$3`, `$4`). `results` is keyed by test first, so one run's results
/// lie on pages all over the table, and deleting run by run rewrote most
/// of it once per run; a range of test ids is a few neighbouring pages,
/// each written once however many runs go.
const DELETE_RESULTS_RANGE: &str = concat!(
    "DELETE FROM results WHERE test_id >= $3 AND test_id < $4 AND run_id IN \
     (SELECT id FROM runs WHERE ",
    victim!(),
    ")"
);
/// SQLite: a run's results, [`CHUNK`] at a time, after the ranges
/// (results of a run that became old meanwhile).
const DELETE_RESULTS: &str = "DELETE FROM results WHERE run_id = $1 AND test_id IN \
     (SELECT test_id FROM results WHERE run_id = $1 ORDER BY test_id LIMIT $2)";
/// PostgreSQL: the keys of a group of runs' results, in key order. Found
/// through `results_run`, a BRIN index (migrations/postgres/0010): a
/// look-up reads the page ranges holding the runs' rows, which for a
/// recorded run are a few and for an imported one all of its import's
/// (an import writes test by test across its runs). One look-up per group
/// of runs, not one per statement of [`CHUNK`] rows of each run: run by
/// run, a prune of an import's runs read the whole import twice a run.
const RESULT_KEYS: &str =
    "SELECT test_id, run_id FROM results WHERE run_id = ANY($1) ORDER BY test_id, run_id";
/// PostgreSQL: results by their keys, each found through the primary key.
const DELETE_KEYS: &str = "DELETE FROM results r \
     USING unnest($1::bigint[], $2::bigint[]) AS d (test_id, run_id) \
     WHERE r.test_id = d.test_id AND r.run_id = d.run_id";
/// PostgreSQL: the delete triggers of runs and batches (migrations/postgres/
/// 0007, 0011) skip looking for their results in this transaction: the
/// prune deleted them first, and the look-up reads an imported run's whole
/// import.
const RESULTS_DELETED: &str = "SET LOCAL warden.results_deleted = 'on'";
/// PostgreSQL: the most results (by the runs' counts) whose keys a group
/// of runs holds in memory at once: 16 bytes each, 8 MB. A run with more
/// is a group of its own.
const KEYS_PER_GROUP: i64 = 500_000;
const DELETE_ATTEMPTS: &str = "DELETE FROM attempts WHERE batch_id IN \
     (SELECT id FROM batches WHERE run_id = $1)";
const DELETE_BATCHES: &str = "DELETE FROM batches WHERE id IN \
     (SELECT id FROM batches WHERE run_id = $1 ORDER BY id LIMIT $2)";
const DELETE_LABELS: &str = "DELETE FROM run_labels WHERE run_id = $1";
const DELETE_RUN: &str = "DELETE FROM runs WHERE id = $1";
const PICK_HUNTS: &str = "SELECT id FROM hunts WHERE started_at < $1 ORDER BY id LIMIT $2";
const DELETE_HUNT_ARMS: &str = "DELETE FROM hunt_arms WHERE hunt_id >= $1 AND hunt_id <= $2 \
     AND hunt_id IN (SELECT id FROM hunts WHERE started_at < $3)";
const DELETE_HUNTS: &str = "DELETE FROM hunts WHERE id >= $1 AND id <= $2 AND started_at < $3";
const TEST_ID_RANGE: &str = "SELECT MIN(id), MAX(id) FROM tests";
/// Results are keyed by test first: the `NOT EXISTS` is one index probe.
const DELETE_UNUSED_TESTS: &str = "DELETE FROM tests WHERE id >= $1 AND id < $2 \
     AND NOT EXISTS (SELECT 1 FROM results r WHERE r.test_id = tests.id)";

/// A statement that took longer than this gets a narrower range next.
const SLOW_STATEMENT: Duration = Duration::from_millis(100);

/// PostgreSQL: the results of the `picked` runs (id, results counted),
/// by groups of at most [`KEYS_PER_GROUP`]: each group's keys found once
/// ([`RESULT_KEYS`]), then deleted [`CHUNK`] at a time, each counted into
/// `removed`, with a `pause` after each. `false` when out of time.
async fn group_results(
    pg: &sqlx::PgPool,
    picked: &[(i64, i64)],
    removed: &mut u64,
    out_of_time: &dyn Fn() -> bool,
    pause: Duration,
) -> Result<bool> {
    let mut rest = picked;
    while !rest.is_empty() {
        let mut size = rest[0].1;
        let mut end = 1;
        while end < rest.len() && size.saturating_add(rest[end].1) <= KEYS_PER_GROUP {
            size = size.saturating_add(rest[end].1);
            end += 1;
        }
        let ids: Vec<i64> = rest[..end].iter().map(|r| r.0).collect();
        rest = &rest[end..];
        let keys: Vec<(i64, i64)> = sqlx::query_as(RESULT_KEYS).bind(&ids).fetch_all(pg).await?;
        for chunk in keys.chunks(CHUNK as usize) {
            if out_of_time() {
                return Ok(false);
            }
            let (tests, runs): (Vec<i64>, Vec<i64>) = chunk.iter().copied().unzip();
            *removed += sqlx::query(DELETE_KEYS)
                .bind(tests)
                .bind(runs)
                .execute(pg)
                .await?
                .rows_affected();
            tokio::time::sleep(pause).await;
        }
    }
    Ok(true)
}

/// Removes what started before `how.cutoff`, chunk by chunk. `db` must be
/// opened for writing ([`Access::Write`](super::Access)): on SQLite that
/// is one connection, the one whose foreign-key checks are turned off.
pub async fn prune(db: &Db, how: &Prune) -> Result<Pruned> {
    let pruned = prune_rows(db, how).await?;
    if pruned.results > 0 && pruned.complete {
        // The rollups of the days results went from, counted again from
        // what stays: the runs of the cutoff's day after it and the
        // unfinished runs of the day before (a few). A prune out of time
        // leaves them as they were (counting results it removed, in days
        // before the cutoff) for the prune that finishes the job: counted
        // now, they would read everything it left.
        let last = unix_millis(how.cutoff).div_euclid(rollup::DAY_MS);
        if let Some(first) = rollup::first_day(db.rollup_store()).await? {
            rollup::rebuild_days(db.rollup_store(), first, last).await?;
        }
    }
    Ok(pruned)
}

async fn prune_rows(db: &Db, how: &Prune) -> Result<Pruned> {
    // SQLite checks each deleted batch for results naming it, and there is
    // no index on `results.batch_id`: a scan of the whole table per batch.
    // Children go before their parents here, so the checks find nothing;
    // off for this connection only, during the prune. (PostgreSQL: the
    // constraint is dropped, migrations/postgres/0006.)
    let Pool::Sqlite(p) = &db.pool else {
        return prune_checked(db, how).await;
    };
    sqlx::query("PRAGMA foreign_keys = OFF").execute(p).await?;
    let pruned = prune_checked(db, how).await;
    sqlx::query("PRAGMA foreign_keys = ON").execute(p).await?;
    pruned
}

async fn prune_checked(db: &Db, how: &Prune) -> Result<Pruned> {
    let start = Instant::now();
    let cutoff = unix_millis(how.cutoff);
    let grace = i64::try_from(UNFINISHED_GRACE.as_millis()).unwrap_or(i64::MAX);
    let before = cutoff.saturating_sub(grace);
    let mut done = Pruned {
        cutoff_ms: cutoff,
        complete: false,
        ..Pruned::default()
    };
    let out_of_time = || how.budget.is_some_and(|b| start.elapsed() >= b);
    let pause = || tokio::time::sleep(how.pause);
    let sqlite = matches!(db.pool, Pool::Sqlite(_));
    // Said in each transaction that deletes runs or batches whose results
    // are gone already (migrations/postgres/0011).
    let results_deleted = if sqlite { "SELECT 1" } else { RESULTS_DELETED };
    with_pool!(db, p => {
        if how.keep_summaries {
            let n: i64 = sqlx::query_scalar(SUMMARIZED)
                .bind(cutoff)
                .bind(before)
                .fetch_one(p)
                .await?;
            done.summarized_runs = u64::try_from(n).unwrap_or(0);
        }
        // SQLite: all the runs' results first, by ranges of test ids.
        if sqlite {
            let (min, max): (Option<i64>, Option<i64>) =
                sqlx::query_as(RESULT_TEST_RANGE).fetch_one(p).await?;
            let runs: i64 = sqlx::query_scalar(COUNT_RUNS).fetch_one(p).await?;
            // About CHUNK rows read per statement, whatever stays.
            let mut width = (CHUNK / runs.max(1)).max(1);
            if let (Some(mut at), Some(max)) = (min, max) {
                while at <= max {
                    if out_of_time() {
                        done.elapsed = start.elapsed();
                        return Ok(done);
                    }
                    let t = Instant::now();
                    let n = sqlx::query(DELETE_RESULTS_RANGE)
                        .bind(cutoff)
                        .bind(before)
                        .bind(at)
                        .bind(at.saturating_add(width))
                        .execute(p)
                        .await?
                        .rows_affected();
                    done.results += n;
                    at = at.saturating_add(width);
                    if t.elapsed() > SLOW_STATEMENT || n > CHUNK as u64 {
                        width = (width / 2).max(1);
                    } else if n < CHUNK as u64 / 2 {
                        width = width.saturating_mul(2);
                    }
                    if n > 0 {
                        pause().await;
                    }
                }
            }
        }
        // Runs, by id: each run's rows, children first.
        let mut after = 0_i64;
        'runs: loop {
            let picked: Vec<(i64, i64)> = sqlx::query_as(PICK_RUNS)
                .bind(cutoff)
                .bind(before)
                .bind(after)
                .bind(RUNS_PER_PICK)
                .fetch_all(p)
                .await?;
            let Some(&(last, _)) = picked.last() else { break };
            after = last;
            // PostgreSQL: the picked runs' results first, by groups.
            if let Pool::Postgres(pg) = &db.pool
                && !group_results(pg, &picked, &mut done.results, &out_of_time, how.pause).await?
            {
                break 'runs;
            }
            for (run, _) in picked {
                // Statements of at most CHUNK rows (`$2`) of the run's,
                // each counted into `$count`, with a pause after each that
                // removed any; `false` when out of time.
                macro_rules! chunked {
                    ($sql:expr, $count:expr) => {{
                        let mut finished = true;
                        loop {
                            if out_of_time() {
                                finished = false;
                                break;
                            }
                            // Its own transaction, which says that the
                            // results are gone (PostgreSQL's delete
                            // triggers then look for none; SQLite: a
                            // no-op).
                            let mut tx = p.begin().await?;
                            sqlx::query(results_deleted).execute(&mut *tx).await?;
                            let n = sqlx::query($sql)
                                .bind(run)
                                .bind(CHUNK)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                            tx.commit().await?;
                            $count += n;
                            if n > 0 {
                                pause().await;
                            }
                            if n < CHUNK as u64 {
                                break;
                            }
                        }
                        finished
                    }};
                }
                if sqlite && !chunked!(DELETE_RESULTS, done.results) {
                    break 'runs;
                }
                done.attempts += sqlx::query(DELETE_ATTEMPTS)
                    .bind(run)
                    .execute(p)
                    .await?
                    .rows_affected();
                if how.keep_summaries {
                    continue;
                }
                if !chunked!(DELETE_BATCHES, done.batches) {
                    break 'runs;
                }
                done.run_labels += sqlx::query(DELETE_LABELS)
                    .bind(run)
                    .execute(p)
                    .await?
                    .rows_affected();
                let mut tx = p.begin().await?;
                sqlx::query(results_deleted).execute(&mut *tx).await?;
                done.runs += sqlx::query(DELETE_RUN)
                    .bind(run)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
            }
            pause().await;
        }
        if out_of_time() {
            done.elapsed = start.elapsed();
            return Ok(done);
        }
        // Hunts, a chunk of ids at a time.
        loop {
            let ids: Vec<i64> = sqlx::query_scalar(PICK_HUNTS)
                .bind(cutoff)
                .bind(CHUNK)
                .fetch_all(p)
                .await?;
            let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else { break };
            sqlx::query(DELETE_HUNT_ARMS)
                .bind(first)
                .bind(last)
                .bind(cutoff)
                .execute(p)
                .await?;
            done.hunts += sqlx::query(DELETE_HUNTS)
                .bind(first)
                .bind(last)
                .bind(cutoff)
                .execute(p)
                .await?
                .rows_affected();
            pause().await;
            if out_of_time() {
                done.elapsed = start.elapsed();
                return Ok(done);
            }
        }
    });
    // Test names: a pass over all of them, when results went (or when
    // asked for, without a time budget: after a prune cut short). A run's
    // prune with nothing to remove does not start over a pass that its
    // budget cut short the time before; the next one that removes results
    // does it.
    if done.results > 0 || how.budget.is_none() {
        let (tests, finished) = unused_tests(db, how, &out_of_time).await?;
        done.tests = tests;
        done.complete = finished;
    } else {
        done.complete = true;
    }
    done.elapsed = start.elapsed();
    Ok(done)
}

/// PostgreSQL's `lock_not_available`: `lock_timeout` ran out.
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Deletes the `tests` rows no result names, a range of [`CHUNK`] ids at
/// a time; whether it got through them all.
///
/// A name a writer has just looked up (or inserted) but whose results
/// are not committed yet is unused too. On PostgreSQL `results` has no
/// foreign key (migration 0007) and a writer looks its test ids up in
/// its own transaction (`history::copy_in`), so a name deleted between
/// the look-up and the results' insert would leave those results naming
/// no test: each chunk's delete first takes `tests` in SHARE ROW
/// EXCLUSIVE mode, which waits for every writer that has taken `tests`
/// (ROW EXCLUSIVE, before its look-up) in a transaction still open and
/// holds off new ones for the chunk's moment;
/// it waits at most 100 ms, else the chunk is skipped and the next prune
/// looks again. On SQLite (one writer at a time) a writer that finds its
/// test gone fails its batch's transaction on the foreign key, and the
/// recorder writes it again, re-creating the name (`history::recorder`).
async fn unused_tests(db: &Db, how: &Prune, out_of_time: &dyn Fn() -> bool) -> Result<(u64, bool)> {
    let mut removed = 0;
    let postgres = matches!(db.pool, Pool::Postgres(_));
    with_pool!(db, p => {
        let (min, max): (Option<i64>, Option<i64>) =
            sqlx::query_as(TEST_ID_RANGE).fetch_one(p).await?;
        let (Some(min), Some(max)) = (min, max) else {
            return Ok((0, true));
        };
        let mut at = min;
        while at <= max {
            if out_of_time() {
                return Ok((removed, false));
            }
            // One chunk, in a transaction of its own.
            let chunk = async {
                let mut tx = p.begin().await?;
                if postgres {
                    sqlx::query("SET LOCAL lock_timeout = '100ms'")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("LOCK TABLE tests IN SHARE ROW EXCLUSIVE MODE")
                        .execute(&mut *tx)
                        .await?;
                }
                let r = sqlx::query(DELETE_UNUSED_TESTS)
                    .bind(at)
                    .bind(at.saturating_add(CHUNK))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<u64, sqlx::Error>(r.rows_affected())
            };
            match chunk.await {
                Ok(n) => {
                    removed += n;
                    if n > 0 {
                        tokio::time::sleep(how.pause).await;
                    }
                }
                // A writer holds `tests` (PostgreSQL), or committed results
                // naming the chunk's tests first (SQLite): skipped, the
                // next prune looks again.
                Err(sqlx::Error::Database(e))
                    if e.is_foreign_key_violation()
                        || e.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {}
                Err(e) => return Err(e.into()),
            }
            at = at.saturating_add(CHUNK);
        }
    });
    Ok((removed, true))
}

/// `[run] retention`'s claim on a store: at most one automatic prune a
/// day. Claims the day's prune (atomically: of several runs ending at
/// once, one prunes); `false` when a prune started within the last day.
const CLAIM: &str = "INSERT INTO store_state (key, value) VALUES ('last_prune', $1) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value \
     WHERE store_state.value <= $2";
/// A prune that stopped at its time bound lets the next run go on.
const RELEASE: &str = "UPDATE store_state SET value = 0 WHERE key = 'last_prune'";

/// How often runs prune a store, at most.
pub const AUTO_EVERY: Duration = Duration::from_secs(86_400);

/// How long a run's prune goes on before it stops (the next run continues).
pub const AUTO_BUDGET: Duration = Duration::from_secs(3);

/// What `[run] retention` does after a run is recorded: prunes what is
/// older than `retention` unless a prune started within [`AUTO_EVERY`],
/// for at most [`AUTO_BUDGET`]. `None`: not its turn.
pub async fn auto(db: &Db, retention: Duration) -> Result<Option<Pruned>> {
    let now = unix_millis(SystemTime::now());
    let every = i64::try_from(AUTO_EVERY.as_millis()).unwrap_or(i64::MAX);
    let claimed = with_pool!(db, p => {
        sqlx::query(CLAIM)
            .bind(now)
            .bind(now.saturating_sub(every))
            .execute(p)
            .await?
            .rows_affected()
    });
    if claimed == 0 {
        return Ok(None);
    }
    let mut how = Prune::older_than(retention, false);
    how.budget = Some(AUTO_BUDGET);
    let pruned = prune(db, &how).await;
    if !matches!(&pruned, Ok(p) if p.complete) {
        with_pool!(db, p => sqlx::query(RELEASE).execute(p).await.map(|_| ()))?;
    }
    pruned.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Location;
    use crate::history::db::Access;
    use crate::history::model::{Labels, RunRecord, RunSource};
    use crate::status::RunStatus;

    async fn store_with_old_run(dir: &std::path::Path) -> Db {
        let db = Db::open(&Location::Sqlite(dir.join("h.db")), Access::Write)
            .await
            .unwrap();
        let started = SystemTime::now() - Duration::from_secs(100 * 86_400);
        let run = RunRecord {
            uuid: "old".into(),
            started,
            commit: None,
            branch: None,
            host: "h".into(),
            labels: Labels::default(),
            source: RunSource::Run,
        };
        let id = db.begin_run(&run).await.unwrap();
        db.finish_run(id, RunStatus::Passed, started).await.unwrap();
        db
    }

    /// Out of time before the first statement: nothing removed, incomplete.
    #[tokio::test]
    async fn a_spent_budget_removes_nothing_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_old_run(dir.path()).await;
        let mut how = Prune::older_than(Duration::from_secs(90 * 86_400), false);
        how.budget = Some(Duration::ZERO);
        let p = prune(&db, &how).await.unwrap();
        assert_eq!((p.runs, p.complete), (0, false));
        how.budget = None;
        let p = prune(&db, &how).await.unwrap();
        assert_eq!((p.runs, p.complete), (1, true));
    }

    /// The day's claim: the first `auto` prunes, the second within the day does not.
    #[tokio::test]
    async fn auto_prunes_once_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let db = store_with_old_run(dir.path()).await;
        let retention = Duration::from_secs(90 * 86_400);
        let first = auto(&db, retention).await.unwrap().unwrap();
        assert_eq!((first.runs, first.complete), (1, true));
        assert_eq!(auto(&db, retention).await.unwrap(), None);
    }
}
