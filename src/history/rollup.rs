//! Daily rollups of `results` (`test_days`, migrations/*/0009): per test
//! and day (UTC, the day its run started) how many results passed,
//! failed, flaked and were skipped, the longest duration, and a histogram
//! of the durations. `durations --tests` and the start of `flaky` and
//! `regressed` (which tests failed in the window) read these instead of
//! every result of the window: with a year of a big CI (100,000,000
//! results), a 30-day window holds millions of results but only
//! tests x 30 rollup rows.
//!
//! Kept as results are written, in the transaction that inserted them
//! ([`Rollup`]): the writer counts the rows it holds in memory into
//! increments ([`tallies`]) and [`Rollup::add`]s them; only when some of
//! its rows did not go in (a recording's batch written again, results
//! already stored) does [`Rollup::rollup`] read back what did. Either
//! way the increments are merged into the stored rows by the store
//! itself, set-based ([`Rollup::write_rows`]): counts added, maxima
//! kept, and the two lists below appended to, so nothing stored is read.
//! The batches a rollup has counted are marked (`batches.rolled = 1`),
//! so a run recorded batch by batch, in many transactions, is counted
//! once, and a store written before migration 0009 is filled by
//! [`catch_up`] (the first warden that opens it) from the batches not
//! marked yet. `warden prune` rebuilds the days it removed results from
//! ([`rebuild_days`]), which also compacts their lists.
//!
//! The histogram holds each duration to within 1/128 of its value
//! (exact below 128 ms): [`bucket`]. Percentiles read from it are the
//! middle of the bucket the nearest rank falls in, clamped to the exact
//! maximum; counts and the maximum are exact.
//!
//! Both lists are varints that step from the value before; appending
//! increments makes a row a sequence of such segments, each after a
//! reset marker ([`RESET_RESULTS`], [`RESET_DURATIONS`]) that no segment
//! holds otherwise: a result's step is never 0 (one result per test and
//! run), a histogram count never 0.

use std::collections::{BTreeMap, HashMap};

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{QueryBuilder, Row};

/// sqlx's errors, as [`super::copy_in`] returns them: `history::db`
/// calls this module, so it names nothing of that one's.
type Result<T> = std::result::Result<T, sqlx::Error>;

/// The open store's pool ([`super::db::Db::rollup_store`]).
#[derive(Clone, Copy)]
pub enum Store<'a> {
    Sqlite(&'a SqlitePool),
    Postgres(&'a PgPool),
}
use crate::status::TestStatus;

/// Milliseconds in a day: `day = started_at / DAY_MS`.
pub const DAY_MS: i64 = 86_400_000;

/// Runs per statement that reads their new results.
const RUNS_PER_READ: usize = 200;

/// Between two segments of a stored result list: a step of 0 (the
/// next value counts from 0 again).
pub const RESET_RESULTS: &[u8] = &[0];

/// Between two segments of a stored histogram: a pair (step 0, count 0)
/// (the next bucket counts from 0 again).
pub const RESET_DURATIONS: &[u8] = &[0, 0];

/// Rollup rows per multi-row upsert (9 values each: far below both
/// backends' parameter limits).
const ROWS_PER_UPSERT: usize = 1000;

/// Rollup rows per multi-row upsert into SQLite by a writer: 27,000
/// values, within SQLite's 32,766.
const SQLITE_ROWS_PER_UPSERT: usize = 3000;

/// Results counted into tallies at a time by a writer ([`tallies`],
/// `history::db`): bounds the tallies it holds.
pub(crate) const ROWS_PER_TALLY: usize = 1 << 16;

/// The key of PostgreSQL's transaction-level advisory lock that makes
/// rollup upkeep one writer at a time (and the catch-up, which picks the
/// batches not counted yet, one at a time with the writers). Held from
/// the upkeep to the commit.
const PG_LOCK: i64 = 0x7761_7264_656e_0009;

/// Runs whose batches are read per catch-up transaction.
const CATCH_UP_RUNS: i64 = 100;

/// Sub-buckets per power of two: 64, i.e. a bucket spans at most 1/64 of
/// its lower bound and its middle is within 1/128 of any value in it.
const SUB: i64 = 64;

/// The histogram bucket of a duration in milliseconds: the value itself
/// below 128, else its top 7 bits and their position.
pub fn bucket(ms: i64) -> u32 {
    if ms < 2 * SUB {
        return ms.max(0) as u32;
    }
    let shift = 63 - ms.leading_zeros() as i64 - 6;
    (SUB * shift + (ms >> shift)) as u32
}

/// The lowest and highest duration of bucket `b`.
pub fn bounds(b: u32) -> (i64, i64) {
    let b = i64::from(b);
    if b < 2 * SUB {
        return (b, b);
    }
    let shift = b / SUB - 1;
    let m = b % SUB + SUB;
    let lo = m << shift;
    (lo, lo.saturating_add((1_i64 << shift) - 1))
}

/// What `durations` reports for bucket `b`: its middle.
pub fn representative(b: u32) -> i64 {
    let (lo, hi) = bounds(b);
    lo + (hi - lo) / 2
}

/// One test's counts and durations over some results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub passed: i64,
    pub failed: i64,
    pub flaky: i64,
    pub skipped: i64,
    /// The longest duration of a result that was not skipped.
    pub max_ms: Option<i64>,
    /// (bucket, durations in it), ascending by bucket (results not
    /// skipped, with a duration). A sorted vector, not a map: most
    /// tallies hold one or two buckets, and a writer holds one per test
    /// of its results (a map's node is a few hundred bytes).
    pub hist: Vec<(u32, u64)>,
    /// The results not skipped, each `run id × 4 + status code − 1`
    /// ([`pack`]): what `flaky` and `regressed` classify.
    pub results: Vec<u64>,
}

/// A result as [`Tally::results`] holds it.
pub fn pack(run: i64, status: i64) -> u64 {
    (u64::try_from(run).unwrap_or(0) << 2) | (u64::try_from(status - 1).unwrap_or(0) & 3)
}

/// (run id, status code) of a packed result.
pub fn unpack(packed: u64) -> (i64, i64) {
    ((packed >> 2) as i64, (packed & 3) as i64 + 1)
}

impl Tally {
    /// Counts one result of run `run` in.
    pub fn add(&mut self, run: i64, status: i64, duration: Option<i64>) {
        match TestStatus::from_code(status) {
            Some(TestStatus::Passed) => self.passed += 1,
            Some(TestStatus::Failed) => self.failed += 1,
            Some(TestStatus::Flaky) => self.flaky += 1,
            Some(TestStatus::Skipped(_)) => {
                self.skipped += 1;
                return;
            }
            _ => return,
        }
        self.results.push(pack(run, status));
        if let Some(ms) = duration {
            self.add_duration(ms);
        }
    }

    /// `n` more durations in bucket `b`.
    fn count(&mut self, b: u32, n: u64) {
        match self.hist.binary_search_by_key(&b, |&(k, _)| k) {
            Ok(at) => self.hist[at].1 += n,
            Err(at) => self.hist.insert(at, (b, n)),
        }
    }

    /// One duration of a result that was not skipped.
    pub fn add_duration(&mut self, ms: i64) {
        self.max_ms = Some(self.max_ms.map_or(ms, |m| m.max(ms)));
        self.count(bucket(ms), 1);
    }

    pub fn merge(&mut self, other: &Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.flaky += other.flaky;
        self.skipped += other.skipped;
        self.max_ms = match (self.max_ms, other.max_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        for &(b, n) in &other.hist {
            self.count(b, n);
        }
        self.results.extend_from_slice(&other.results);
    }

    /// Durations counted.
    pub fn timed(&self) -> u64 {
        self.hist.iter().map(|(_, n)| n).sum()
    }

    /// The nearest-rank `p`th percentile (as
    /// [`super::query::durations::percentile`]): the middle of the bucket
    /// that rank falls in, at most the maximum. `None` without durations.
    pub fn percentile(&self, p: usize) -> Option<i64> {
        let n = self.timed() as usize;
        if n == 0 {
            return None;
        }
        let rank = (p * n).div_ceil(100).clamp(1, n) as u64;
        let mut seen = 0;
        for (b, count) in &self.hist {
            seen += count;
            if seen >= rank {
                let v = representative(*b);
                return Some(self.max_ms.map_or(v, |m| v.min(m)));
            }
        }
        self.max_ms
    }

    /// The histogram as stored: (bucket − previous bucket, count) pairs,
    /// ascending, each number a LEB128 varint.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.hist.len() * 2);
        let mut last = 0;
        for (b, n) in &self.hist {
            varint(&mut out, u64::from(b - last));
            varint(&mut out, *n);
            last = *b;
        }
        out
    }

    /// The results as stored: ascending, each the step from the one
    /// before as a varint (mostly one byte: a test's runs of one day are
    /// close together).
    pub fn encode_results(&self) -> Vec<u8> {
        let mut sorted = self.results.clone();
        sorted.sort_unstable();
        let mut out = Vec::with_capacity(sorted.len() * 2);
        let mut last = 0;
        for r in sorted {
            varint(&mut out, r - last);
            last = r;
        }
        out
    }

    /// Adds stored results ([`Tally::encode_results`]) in.
    pub fn decode_results_into(&mut self, bytes: &[u8]) {
        decode_results(bytes, |r| self.results.push(r));
    }

    /// Adds a stored histogram ([`Tally::encode`]) in; a malformed end is ignored.
    pub fn decode_into(&mut self, mut bytes: &[u8]) {
        let mut last = 0_u32;
        while let (Some(delta), rest) = read_varint(bytes) {
            let (Some(n), rest) = read_varint(rest) else {
                break;
            };
            bytes = rest;
            if n == 0 {
                // RESET_DURATIONS: a segment appended after this one.
                last = 0;
                continue;
            }
            last = last.saturating_add(u32::try_from(delta).unwrap_or(u32::MAX));
            self.count(last, n);
        }
    }
}

/// Calls `each` with every packed result of a stored list: ascending
/// within each appended segment, not across them.
pub fn decode_results(mut bytes: &[u8], mut each: impl FnMut(u64)) {
    let mut last = 0_u64;
    while let (Some(step), rest) = read_varint(bytes) {
        bytes = rest;
        if step == 0 {
            // RESET_RESULTS: the next segment starts.
            last = 0;
            continue;
        }
        last = last.wrapping_add(step);
        each(last);
    }
}

/// The increments of some results, sorted by key (day, test id): each
/// result as (day, test id, run id, status code, duration in ms). What
/// a writer builds from the rows it holds ([`Rollup::add`]); results of
/// one key next to each other (a write's rows in (test, run) order)
/// merge without a look-up.
pub fn tallies(
    results: impl Iterator<Item = (i64, i64, i64, i64, Option<i64>)>,
) -> Vec<((i64, i64), Tally)> {
    let mut out: Vec<((i64, i64), Tally)> = Vec::new();
    for (day, test, run, status, duration) in results {
        match out.last_mut() {
            Some((key, t)) if *key == (day, test) => t.add(run, status, duration),
            _ => {
                let mut t = Tally::default();
                t.add(run, status, duration);
                out.push(((day, test), t));
            }
        }
    }
    if !out.is_sorted_by_key(|(k, _)| *k) {
        out.sort_by_key(|(k, _)| *k);
        // Keys apart in the input (a test's runs on days out of order).
        let mut merged: Vec<((i64, i64), Tally)> = Vec::with_capacity(out.len());
        for (key, t) in out {
            match merged.last_mut() {
                Some((k, m)) if *k == key => m.merge(&t),
                _ => merged.push((key, t)),
            }
        }
        out = merged;
    }
    out
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8]) -> (Option<u64>, &[u8]) {
    let mut v = 0_u64;
    for (i, b) in bytes.iter().enumerate() {
        if i >= 10 {
            break;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (Some(v), &bytes[i + 1..]);
        }
    }
    (None, &[])
}

/// The new results of `$runs` (in batches not rolled up yet), added to
/// `test_days` within the transaction `$tx`, and their batches marked.
/// Counts rows read back from `results` (test id, run start, status,
/// duration, run id: the columns' order in every read here) into
/// `tallies`; a macro because the row type is each backend's own.
macro_rules! tally_rows {
    ($tallies:expr, $rows:expr) => {
        for row in $rows {
            let test: i64 = row.try_get(0)?;
            let started: i64 = row.try_get(1)?;
            $tallies
                .entry((started.div_euclid(DAY_MS), test))
                .or_default()
                .add(row.try_get(4)?, row.try_get(2)?, row.try_get(3)?);
        }
    };
}

macro_rules! apply {
    ($tx:expr, $runs:expr) => {{
        let runs: &[i64] = $runs;
        let mut tallies: HashMap<(i64, i64), Tally> = HashMap::new();
        // An import of most of the store's runs (a new store): a scan in
        // key order beats a look-up per result through `results_run` on
        // SQLite (`+`, a no-op, keeps it off the index; see
        // query::durations).
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM runs")
            .fetch_one(&mut *$tx)
            .await?;
        let plus = if runs.len() as i64 * 3 >= total && runs.len() > 1 {
            "+"
        } else {
            ""
        };
        for chunk in runs.chunks(RUNS_PER_READ) {
            let list = id_list(chunk);
            // By run (`results_run`), then the batches not counted yet as
            // a set: joined batch by batch instead, PostgreSQL read each
            // run's results once per batch of it.
            let text = format!(
                "SELECT r.test_id, runs.started_at, r.status, r.duration_ms, r.run_id \
                 FROM results r JOIN runs ON runs.id = r.run_id \
                 WHERE {plus}r.run_id IN ({list}) AND r.batch_id IN \
                 (SELECT b.id FROM batches b WHERE b.rolled = 0 AND b.run_id IN ({list}))"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(text))
                .fetch_all(&mut *$tx)
                .await?;
            tally_rows!(tallies, rows);
        }
        if !tallies.is_empty() {
            // Merged into the stored rows by the store (write_rows).
            let mut rows: Vec<((i64, i64), Tally)> = tallies.into_iter().collect();
            rows.sort_unstable_by_key(|(k, _)| *k);
            $tx.write_rows(&rows).await?;
        }
        for chunk in runs.chunks(RUNS_PER_READ) {
            let list = id_list(chunk);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE batches SET rolled = 1 WHERE rolled = 0 AND run_id IN ({list})"
            )))
            .execute(&mut *$tx)
            .await?;
        }
        Ok(())
    }};
}

/// Ids as an SQL list: integers only, no text of anyone's.
fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The upkeep of the rollups within a writer's transaction: every writer
/// of `results` calls [`add`](Rollup::add) or [`rollup`](Rollup::rollup)
/// before it commits.
pub(crate) trait Rollup {
    /// Adds the results just written to some runs (in batches not counted
    /// yet), read back from `results`, and marks their batches: for a
    /// write some of whose rows did not go in.
    async fn rollup(&mut self, runs: &[i64]) -> Result<()>;

    /// Adds increments ([`tallies`] of every result the writer inserted,
    /// sorted by key) and marks `batches` (the writer's, by row id) as
    /// counted.
    async fn add(&mut self, rows: &[((i64, i64), Tally)], batches: &[i64]) -> Result<()>;

    /// Adds rollup rows (sorted by key) to those of the same keys.
    async fn write_rows(&mut self, rows: &[((i64, i64), Tally)]) -> Result<()>;

    /// [`tallies`] as [`add_prepared`](Self::add_prepared) sends them:
    /// put together by the writer while the store runs the statement
    /// before (PostgreSQL's columns: a million results' tallies took
    /// 0.25 s to encode, bench/ingest.py).
    type Prepared: Send;

    fn prepare(rows: Increments) -> Self::Prepared;

    /// [`add`](Self::add) of prepared tallies.
    async fn add_prepared(&mut self, rows: &Self::Prepared, batches: &[i64]) -> Result<()>;
}

/// `R`'s [`Rollup::prepare`], named through a value of `R` (a writer's
/// transaction, whose type a macro does not spell).
pub(crate) fn preparer<R: Rollup + ?Sized>(_: &R) -> fn(Increments) -> R::Prepared {
    R::prepare
}

/// [`tallies`]' output: each key's (day, test id) increment, by key.
pub(crate) type Increments = Vec<((i64, i64), Tally)>;

/// Adds a row to the stored one of its key, in the store: counts summed,
/// the larger maximum, the lists appended after a reset marker (`{r}`,
/// `{d}`: [`RESET_RESULTS`], [`RESET_DURATIONS`] as each backend writes
/// bytes; `{cat}`: how it concatenates them).
fn upsert(cat: impl Fn(&str, &str, &str) -> String, r: &str, d: &str) -> String {
    format!(
        " ON CONFLICT (day, test_id) DO UPDATE SET \
         passed = test_days.passed + excluded.passed, \
         failed = test_days.failed + excluded.failed, \
         flaky = test_days.flaky + excluded.flaky, \
         skipped = test_days.skipped + excluded.skipped, \
         max_ms = CASE WHEN excluded.max_ms IS NULL THEN test_days.max_ms \
         WHEN test_days.max_ms IS NULL OR excluded.max_ms > test_days.max_ms \
         THEN excluded.max_ms ELSE test_days.max_ms END, \
         durations = {}, results = {}",
        cat("test_days.durations", d, "excluded.durations"),
        cat("test_days.results", r, "excluded.results"),
    )
}

/// SQLite's [`upsert`]: `||` of blobs is text, cast back (byte for byte).
fn upsert_sqlite() -> String {
    upsert(
        |a, m, b| format!("CAST({a} || {m} || {b} AS BLOB)"),
        "X'00'",
        "X'0000'",
    )
}

/// PostgreSQL's [`upsert`].
fn upsert_pg() -> String {
    upsert(
        |a, m, b| format!("{a} || {m} || {b}"),
        "'\\x00'::BYTEA",
        "'\\x0000'::BYTEA",
    )
}

impl Rollup for SqliteConnection {
    type Prepared = Increments;

    fn prepare(rows: Increments) -> Self::Prepared {
        rows
    }

    async fn add_prepared(&mut self, rows: &Self::Prepared, batches: &[i64]) -> Result<()> {
        self.add(rows, batches).await
    }

    async fn rollup(&mut self, runs: &[i64]) -> Result<()> {
        apply!(self, runs)
    }

    async fn add(&mut self, rows: &[((i64, i64), Tally)], batches: &[i64]) -> Result<()> {
        self.write_rows(rows).await?;
        for chunk in batches.chunks(ROWS_PER_UPSERT) {
            let list = id_list(chunk);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE batches SET rolled = 1 WHERE id IN ({list})"
            )))
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    /// Each statement is put together while SQLite's thread runs the one
    /// before, as the results' INSERTs are (`history::db`).
    async fn write_rows(&mut self, rows: &[((i64, i64), Tally)]) -> Result<()> {
        let upsert = upsert_sqlite();
        let statement = |chunk: &[((i64, i64), Tally)]| {
            let mut q = QueryBuilder::new(
                "INSERT INTO test_days \
                 (day, test_id, passed, failed, flaky, skipped, max_ms, durations, results) ",
            );
            q.push_values(chunk, |mut row, ((day, test), t)| {
                row.push_bind(*day)
                    .push_bind(*test)
                    .push_bind(t.passed)
                    .push_bind(t.failed)
                    .push_bind(t.flaky)
                    .push_bind(t.skipped)
                    .push_bind(t.max_ms)
                    .push_bind(t.encode())
                    .push_bind(t.encode_results());
            });
            q.push(&upsert);
            q
        };
        let mut chunks = rows.chunks(SQLITE_ROWS_PER_UPSERT);
        let mut next = chunks.next().map(statement);
        while let Some(mut q) = next.take() {
            let (done, following) = tokio::join!(q.build().execute(&mut *self), async {
                chunks.next().map(statement)
            });
            done?;
            next = following;
        }
        Ok(())
    }
}

/// One writer at a time: an advisory lock held until the writer's
/// transaction ends.
impl Rollup for PgConnection {
    type Prepared = Vec<PgColumns>;

    fn prepare(rows: Increments) -> Self::Prepared {
        rows.chunks(PG_ROWS).map(PgColumns::of).collect()
    }

    async fn add_prepared(&mut self, rows: &Self::Prepared, batches: &[i64]) -> Result<()> {
        lock_pg(self).await?;
        for columns in rows {
            columns.upsert(self).await?;
        }
        mark_pg(self, batches).await
    }

    async fn rollup(&mut self, runs: &[i64]) -> Result<()> {
        lock_pg(self).await?;
        apply!(self, runs)
    }

    async fn add(&mut self, rows: &[((i64, i64), Tally)], batches: &[i64]) -> Result<()> {
        lock_pg(self).await?;
        self.write_rows(rows).await?;
        mark_pg(self, batches).await
    }

    async fn write_rows(&mut self, rows: &[((i64, i64), Tally)]) -> Result<()> {
        for chunk in rows.chunks(PG_ROWS) {
            PgColumns::of(chunk).upsert(self).await?;
        }
        Ok(())
    }
}

/// Marks `batches` counted.
async fn mark_pg(tx: &mut PgConnection, batches: &[i64]) -> Result<()> {
    if !batches.is_empty() {
        sqlx::query("UPDATE batches SET rolled = 1 WHERE id = ANY($1)")
            .bind(batches)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Rollup rows as the columns of one PostgreSQL statement, arrays: a
/// multi-row VALUES of nine binds a row cost the server more than the
/// rows themselves.
pub(crate) struct PgColumns {
    keys: [Vec<i64>; 6],
    max: Vec<Option<i64>>,
    hists: Vec<Vec<u8>>,
    lists: Vec<Vec<u8>>,
}

impl PgColumns {
    fn of(rows: &[((i64, i64), Tally)]) -> PgColumns {
        let mut keys: [Vec<i64>; 6] = Default::default();
        for k in &mut keys {
            k.reserve_exact(rows.len());
        }
        let mut max: Vec<Option<i64>> = Vec::with_capacity(rows.len());
        let mut hists: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
        let mut lists: Vec<Vec<u8>> = Vec::with_capacity(rows.len());
        for ((day, test), t) in rows {
            for (c, v) in keys
                .iter_mut()
                .zip([*day, *test, t.passed, t.failed, t.flaky, t.skipped])
            {
                c.push(v);
            }
            max.push(t.max_ms);
            hists.push(t.encode());
            lists.push(t.encode_results());
        }
        PgColumns {
            keys,
            max,
            hists,
            lists,
        }
    }

    async fn upsert(&self, tx: &mut PgConnection) -> Result<()> {
        let upsert = upsert_pg();
        let [days, tests, passed, failed, flaky, skipped] = &self.keys;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO test_days \
             (day, test_id, passed, failed, flaky, skipped, max_ms, durations, results) \
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], \
             $5::BIGINT[], $6::BIGINT[], $7::BIGINT[], $8::BYTEA[], $9::BYTEA[]){upsert}"
        )))
        .bind(days)
        .bind(tests)
        .bind(passed)
        .bind(failed)
        .bind(flaky)
        .bind(skipped)
        .bind(&self.max)
        .bind(&self.hists)
        .bind(&self.lists)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Rollup rows per statement on PostgreSQL.
const PG_ROWS: usize = 50_000;

async fn lock_pg(tx: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Whether some batch is not rolled up yet (`batches_unrolled`: cheap).
async fn behind(db: Store<'_>) -> Result<bool> {
    let q = "SELECT run_id FROM batches WHERE rolled = 0 LIMIT 1";
    let found: Option<i64> = match db {
        Store::Sqlite(p) => sqlx::query_scalar(q).fetch_optional(p).await?,
        Store::Postgres(p) => sqlx::query_scalar(q).fetch_optional(p).await?,
    };
    Ok(found.is_some())
}

/// Rolls up every batch not counted yet: a store written before migration
/// 0009 (its first opening fills the rollups), a hundred runs per
/// transaction. Batches of a run recording right now are counted by their
/// own transaction (they are uncommitted, so not seen here).
pub async fn catch_up(db: Store<'_>) -> Result<()> {
    if !behind(db).await? {
        return Ok(());
    }
    if let Store::Sqlite(p) = db {
        // Nothing rolled up yet (the store as migration 0009 left it):
        // all of it in key order, a range of tests at a time, rather
        // than run by run through `results_run` (a look-up per result).
        let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
        let rolled: Option<i64> =
            sqlx::query_scalar("SELECT run_id FROM batches WHERE rolled = 1 LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        if rolled.is_none() {
            fill_sqlite(&mut tx).await?;
            tx.commit().await?;
            return Ok(());
        }
    }
    loop {
        let pick = format!(
            "SELECT DISTINCT run_id FROM batches WHERE rolled = 0 ORDER BY run_id LIMIT {CATCH_UP_RUNS}"
        );
        let done = match db {
            Store::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let runs: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(pick))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.rollup(&runs).await?;
                tx.commit().await?;
                runs.len()
            }
            Store::Postgres(p) => {
                let mut tx = p.begin().await?;
                lock_pg(&mut tx).await?;
                let runs: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(pick))
                    .fetch_all(&mut *tx)
                    .await?;
                tx.rollup(&runs).await?;
                tx.commit().await?;
                runs.len()
            }
        };
        if (done as i64) < CATCH_UP_RUNS {
            return Ok(());
        }
    }
}

/// Tests per statement of [`fill_sqlite`]: a year of daily rows of a few
/// hundred tests in memory at a time.
const FILL_TESTS: i64 = 256;

/// Rolls up every result of a store with no rollups yet, within `tx`
/// (SQLite, whose `results` is keyed by test first), and marks every batch.
async fn fill_sqlite(tx: &mut SqliteConnection) -> Result<()> {
    let (min, max): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT MIN(test_id), MAX(test_id) FROM results")
            .fetch_one(&mut *tx)
            .await?;
    if let (Some(mut at), Some(max)) = (min, max) {
        while at <= max {
            let rows = sqlx::query(
                "SELECT r.test_id, runs.started_at, r.status, r.duration_ms, r.run_id \
                 FROM results r JOIN runs ON runs.id = r.run_id \
                 WHERE r.test_id >= $1 AND r.test_id < $2",
            )
            .bind(at)
            .bind(at.saturating_add(FILL_TESTS))
            .fetch_all(&mut *tx)
            .await?;
            let mut tallies: BTreeMap<(i64, i64), Tally> = BTreeMap::new();
            tally_rows!(tallies, rows);
            let rows: Vec<((i64, i64), Tally)> = tallies.into_iter().collect();
            tx.write_rows(&rows).await?;
            at = at.saturating_add(FILL_TESTS);
        }
    }
    sqlx::query("UPDATE batches SET rolled = 1 WHERE rolled = 0")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The first day with a rollup row; `None` when there is none.
pub async fn first_day(db: Store<'_>) -> Result<Option<i64>> {
    let q = "SELECT MIN(day) FROM test_days";
    Ok(match db {
        Store::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await?,
        Store::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await?,
    })
}

/// Recounts the rollups of days `first..=last` from the results still
/// there (after `warden prune` removed some): their rows are replaced.
pub async fn rebuild_days(db: Store<'_>, first: i64, last: i64) -> Result<()> {
    let lo = first.saturating_mul(DAY_MS);
    let hi = last.saturating_add(1).saturating_mul(DAY_MS);
    let read = "SELECT r.test_id, runs.started_at, r.status, r.duration_ms, r.run_id \
                FROM runs JOIN results r ON r.run_id = runs.id \
                WHERE runs.started_at >= $1 AND runs.started_at < $2";
    macro_rules! rebuild {
        ($tx:expr) => {{
            let mut tallies: BTreeMap<(i64, i64), Tally> = BTreeMap::new();
            let rows = sqlx::query(read)
                .bind(lo)
                .bind(hi)
                .fetch_all(&mut *$tx)
                .await?;
            tally_rows!(tallies, rows);
            sqlx::query("DELETE FROM test_days WHERE day >= $1 AND day <= $2")
                .bind(first)
                .bind(last)
                .execute(&mut *$tx)
                .await?;
            let rows: Vec<((i64, i64), Tally)> = tallies.into_iter().collect();
            $tx.write_rows(&rows).await?;
        }};
    }
    match db {
        Store::Sqlite(p) => {
            let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
            rebuild!(tx);
            tx.commit().await?;
        }
        Store::Postgres(p) => {
            let mut tx = p.begin().await?;
            lock_pg(&mut tx).await?;
            rebuild!(tx);
            tx.commit().await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_values_within_one_128th() {
        for v in (0..200_000).chain([1 << 30, i64::MAX / 2, i64::MAX]) {
            let b = bucket(v);
            let (lo, hi) = bounds(b);
            assert!(lo <= v && v <= hi, "{v} in {lo}..={hi}");
            let mid = representative(b);
            assert!(
                (mid - v).abs() as f64 <= v as f64 / 128.0 + 0.5,
                "{v}: {mid}"
            );
        }
        assert_eq!(bucket(127), 127);
        assert_eq!(bounds(bucket(128)), (128, 129));
        // Increasing: the histogram's order is the values' order.
        assert!((1..100_000).all(|v| bucket(v) >= bucket(v - 1)));
    }

    #[test]
    fn histograms_round_trip_and_give_percentiles() {
        let mut t = Tally::default();
        for (run, (st, d)) in [
            (1, Some(5)),
            (2, Some(700)),
            (4, None),
            (3, Some(90_000)),
            (1, None),
        ]
        .into_iter()
        .enumerate()
        {
            t.add(1000 - run as i64, st, d);
        }
        assert_eq!((t.passed, t.failed, t.flaky, t.skipped), (2, 1, 1, 1));
        assert_eq!(t.timed(), 3);
        assert_eq!(t.max_ms, Some(90_000));
        let mut back = Tally::default();
        back.decode_into(&t.encode());
        assert_eq!(back.hist, t.hist);
        // Skipped results are left out; the rest come back sorted by run.
        back.decode_results_into(&t.encode_results());
        let runs: Vec<(i64, i64)> = back.results.iter().map(|&r| unpack(r)).collect();
        assert_eq!(runs, [(996, 1), (997, 3), (999, 2), (1000, 1)]);
        assert_eq!(t.percentile(50), Some(representative(bucket(700))));
        assert_eq!(t.percentile(90), Some(representative(bucket(90_000))));
        // The top bucket's middle is above the maximum: the maximum.
        let mut top = Tally::default();
        top.add(1, 1, Some(128));
        assert_eq!(representative(bucket(128)), 128);
        top.add(2, 1, Some(3));
        top.add(3, 1, Some(1_000_001));
        assert!(representative(bucket(1_000_001)) > 1_000_001);
        assert_eq!(top.percentile(90), Some(1_000_001));
        assert_eq!(Tally::default().percentile(50), None);
    }

    /// What the stores' upserts make of a row: segments appended after
    /// reset markers read back as the merged tally.
    #[test]
    fn appended_segments_read_back_merged() {
        let mut a = Tally::default();
        a.add(7, 1, Some(300));
        a.add(9, 2, Some(5));
        let mut b = Tally::default();
        b.add(8, 3, Some(300));
        b.add(8, 4, None);
        b.add(12, 1, Some(90_000));
        let mut hist = a.encode();
        hist.extend_from_slice(RESET_DURATIONS);
        hist.extend_from_slice(&b.encode());
        let mut results = a.encode_results();
        results.extend_from_slice(RESET_RESULTS);
        results.extend_from_slice(&b.encode_results());
        let mut back = Tally::default();
        back.decode_into(&hist);
        back.decode_results_into(&results);
        let mut want = a.clone();
        want.merge(&b);
        assert_eq!(back.hist, want.hist);
        back.results.sort_unstable();
        want.results.sort_unstable();
        assert_eq!(back.results, want.results);
    }

    #[test]
    fn tallies_merge_keys_apart_and_sort() {
        let rows = [
            (20, 1, 5, 1, Some(3)),
            (20, 1, 6, 2, Some(4)),
            (19, 1, 7, 1, None),
            (20, 2, 5, 4, None),
            (20, 1, 8, 1, Some(9)),
        ];
        let t = tallies(rows.into_iter());
        let keys: Vec<(i64, i64)> = t.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, [(19, 1), (20, 1), (20, 2)]);
        assert_eq!(
            (t[1].1.passed, t[1].1.failed, t[1].1.max_ms),
            (2, 1, Some(9))
        );
        assert_eq!(t[2].1.skipped, 1);
    }
}
