//! The connection to the store, its schema migrations, and the writes.
//!
//! One schema and one set of SQL texts serve both backends: the texts use
//! `$N` placeholders, which SQLite accepts too, and only the DDL differs
//! (migrations/sqlite, migrations/postgres). [`with_pool!`] runs the same
//! code against whichever pool is open.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder};

use super::copy_in::{self, RunResults, Runs};
use super::keyed;
use super::location::Location;
use super::model::{
    AttemptRecord, BatchRecord, RunRecord, duration_millis, from_duration_millis, unix_millis,
};
use super::partition;
use super::results::Results;
use super::rollup::{self, Rollup};
use crate::status::RunStatus;
use crate::usage::Usage;

/// How long a write waits for a store that is locked or a server that does
/// not answer before it gives up (and the run goes on without it).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections of a store opened for reading (`warden serve`): enough
/// for every core to run a query while others wait on I/O, few enough
/// that a PostgreSQL server shared by a CI fleet is not crowded.
const READERS: u32 = 8;

/// How long a reader waits for a free connection of the pool before the
/// query fails: a crowd of requests queues instead of getting errors.
const READ_WAIT: Duration = Duration::from_secs(60);

/// WAL pages (4 KiB) between automatic checkpoints of a SQLite store.
const WAL_PAGES: u64 = 16384;

/// SQLite's page cache when writing, in KiB (negative: KiB, not pages):
/// recording a million results within warden's memory bound.
const WRITE_CACHE_KIB: &str = "-16384";

/// Rows per multi-row INSERT: far below both backends' bound-parameter
/// limits (SQLite 32766, PostgreSQL 65535) with six columns.
const ROWS_PER_INSERT: usize = 1000;
/// Results per INSERT into SQLite: 6 parameters each, within SQLite's
/// 32,766 parameters per statement.
const SQLITE_RESULT_ROWS: usize = 5000;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no history: the history location is `none`")]
    Disabled,
    #[error("no history at {0} yet: nothing was recorded there")]
    Missing(String),
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error("cannot migrate {location} to the current schema: {source}")]
    Migrate {
        location: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("history store: {0}")]
    Sql(#[from] sqlx::Error),
}

pub type Result<T> = std::result::Result<T, HistoryError>;

/// A run's row id in the store.
pub type RunId = i64;

/// A run with everything in it, as an import writes it.
pub struct FinishedRun<'a> {
    pub run: &'a RunRecord,
    pub batches: &'a [BatchRecord],
    pub status: RunStatus,
    pub ended: SystemTime,
}

const INSERT_RUN: &str = "INSERT INTO runs (uuid, started_at, commit_sha, branch, host, labels, source) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
/// [`INSERT_RUN`] under an id reserved before (an import's own partition,
/// history::partition).
const INSERT_RUN_AT: &str = "INSERT INTO runs (uuid, started_at, commit_sha, branch, host, labels, source, id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
const INSERT_RUN_LABEL: &str = "INSERT INTO run_labels (run_id, key, value) VALUES ($1, $2, $3)";
const FINISH_RUN: &str = "UPDATE runs SET ended_at = $1, status = $2 WHERE id = $3";
/// Followed by the rows' VALUES; ids reserved first ([`Db::reserve_batch_ids`]).
const INSERT_BATCHES: &str = "INSERT INTO batches \
     (id, run_id, name, phase, status, reason, started_at, duration_ms, attempts, log, \
     peak_memory, cpu_ms, read_bytes, written_bytes, \
     cpu_stall_ms, memory_stall_ms, io_stall_ms, oom_kills, usage_partial, rolled) ";
/// A run's counts grow with each write of its batches (migrations/*/0003):
/// a run whose warden was killed keeps the counts of what was recorded.
const COUNT_RESULTS: &str = "UPDATE runs SET tests_run = tests_run + $1, \
     tests_failed = tests_failed + $2, \
     setup_failed = CASE WHEN setup_failed > $3 THEN setup_failed ELSE $3 END \
     WHERE id = $4";
const INSERT_ATTEMPTS: &str =
    "INSERT INTO attempts (batch_id, number, status, reason, duration_ms) ";
/// Results of SQLite ([`keyed`] rows; PostgreSQL takes [`copy_in`]),
/// followed by the rows' VALUES. A result already stored for its test
/// and run stays (a recording's batch written again).
const INSERT_RESULTS: &str =
    "INSERT INTO results (test_id, run_id, batch_id, status, duration_ms, message) ";

/// A batch's [`Usage`] as the columns of migrations/*/0004 hold it: NULL
/// where unmeasured; all NULL but `oom_kills` = 0 without a usage.
/// `usage_partial` is written with every usage (0 or 1), so NULL there
/// reads back as none recorded.
pub(crate) struct UsageColumns {
    pub peak_memory: Option<i64>,
    pub cpu_ms: Option<i64>,
    pub read_bytes: Option<i64>,
    pub written_bytes: Option<i64>,
    pub cpu_stall_ms: Option<i64>,
    pub memory_stall_ms: Option<i64>,
    pub io_stall_ms: Option<i64>,
    pub oom_kills: i64,
    pub partial: Option<i64>,
}

impl UsageColumns {
    pub fn of(usage: Option<&Usage>) -> UsageColumns {
        let bytes = |b: Option<u64>| b.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let millis = |d: Option<Duration>| d.map(duration_millis);
        UsageColumns {
            peak_memory: bytes(usage.and_then(|u| u.peak_memory)),
            cpu_ms: millis(usage.and_then(|u| u.cpu)),
            read_bytes: bytes(usage.and_then(|u| u.read_bytes)),
            written_bytes: bytes(usage.and_then(|u| u.written_bytes)),
            cpu_stall_ms: millis(usage.and_then(|u| u.cpu_stall)),
            memory_stall_ms: millis(usage.and_then(|u| u.memory_stall)),
            io_stall_ms: millis(usage.and_then(|u| u.io_stall)),
            oom_kills: usage.map_or(0, |u| i64::try_from(u.oom_kills).unwrap_or(i64::MAX)),
            partial: usage.map(|u| i64::from(u.partial)),
        }
    }

    /// The usage back; `None` when none was recorded.
    pub fn usage(self) -> Option<Usage> {
        let bytes = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0));
        let millis = |v: Option<i64>| v.map(from_duration_millis);
        Some(Usage {
            partial: self.partial? != 0,
            peak_memory: bytes(self.peak_memory),
            cpu: millis(self.cpu_ms),
            read_bytes: bytes(self.read_bytes),
            written_bytes: bytes(self.written_bytes),
            cpu_stall: millis(self.cpu_stall_ms),
            memory_stall: millis(self.memory_stall_ms),
            io_stall: millis(self.io_stall_ms),
            oom_kills: u64::try_from(self.oom_kills).unwrap_or(0),
        })
    }
}

/// A batch to write: its record (whose own `tests` are not read) and its results.
#[derive(Clone, Copy)]
pub struct BatchRows<'a> {
    pub batch: &'a BatchRecord,
    pub results: &'a dyn Results,
}

impl<'a> From<&'a BatchRecord> for BatchRows<'a> {
    fn from(batch: &'a BatchRecord) -> Self {
        BatchRows {
            batch,
            results: &batch.tests,
        }
    }
}

/// Inserts a run's row and labels within the transaction `$tx`; evaluates
/// to its id. A macro, like [`with_pool!`], so one text serves both
/// backends' transaction types.
macro_rules! insert_run {
    ($tx:ident, $run:expr) => {
        insert_run!($tx, $run, None)
    };
    ($tx:ident, $run:expr, $at:expr) => {{
        let run: &RunRecord = $run;
        let at: Option<i64> = $at;
        let mut insert = sqlx::query_scalar(if at.is_some() {
            INSERT_RUN_AT
        } else {
            INSERT_RUN
        })
        .bind(&run.uuid)
        .bind(unix_millis(run.started))
        .bind(run.commit.as_deref())
        .bind(run.branch.as_deref())
        .bind(&run.host)
        .bind(run.labels.canonical())
        .bind(run.source.as_str());
        if let Some(at) = at {
            insert = insert.bind(at);
        }
        let id: i64 = insert.fetch_one(&mut *$tx).await?;
        for (key, value) in run.labels.iter() {
            sqlx::query(INSERT_RUN_LABEL)
                .bind(id)
                .bind(key)
                .bind(value)
                .execute(&mut *$tx)
                .await?;
        }
        id
    }};
}

/// Batch rows per multi-row INSERT: 20 columns, under SQLite's 32766
/// bound parameters.
const BATCHES_PER_INSERT: usize = 1000;

/// Inserts the records of `$batches` (a slice of (run id, [`BatchRows`]))
/// under the row ids `$ids` (reserved by the caller, one per batch, in
/// order) and their attempts within `$tx`, without their results: a
/// multi-row INSERT per thousand batches, not a round trip each (an
/// import of 100 runs of 50 suites writes 5,000).
macro_rules! insert_batch_records {
    ($tx:ident, $batches:expr, $ids:expr) => {
        insert_batch_records!($tx, $batches, $ids, 0)
    };
    // `$rolled`: 1 when the write rolls the batches' results up and will
    // not mark them (history::rollup).
    ($tx:ident, $batches:expr, $ids:expr, $rolled:expr) => {{
        let batches: &[(RunId, BatchRows<'_>)] = $batches;
        let ids: &[i64] = $ids;
        let rolled: i64 = $rolled;
        for (chunk, chunk_ids) in batches
            .chunks(BATCHES_PER_INSERT)
            .zip(ids.chunks(BATCHES_PER_INSERT))
        {
            let mut q = QueryBuilder::new(INSERT_BATCHES);
            q.push_values(chunk.iter().zip(chunk_ids), |mut row, ((run, rows), id)| {
                let batch = rows.batch;
                let usage = UsageColumns::of(batch.usage.as_ref());
                row.push_bind(*id)
                    .push_bind(*run)
                    .push_bind(batch.name.as_str())
                    .push_bind(batch.phase.as_str())
                    .push_bind(batch.status.as_str())
                    .push_bind(batch.reason.as_str())
                    .push_bind(unix_millis(batch.started))
                    .push_bind(duration_millis(batch.duration))
                    .push_bind(batch.attempts.len() as i64 + 1)
                    .push_bind(batch.log.as_deref())
                    .push_bind(usage.peak_memory)
                    .push_bind(usage.cpu_ms)
                    .push_bind(usage.read_bytes)
                    .push_bind(usage.written_bytes)
                    .push_bind(usage.cpu_stall_ms)
                    .push_bind(usage.memory_stall_ms)
                    .push_bind(usage.io_stall_ms)
                    .push_bind(usage.oom_kills)
                    .push_bind(usage.partial)
                    .push_bind(rolled);
            });
            q.build().execute(&mut *$tx).await?;
        }
        let attempts: Vec<(i64, i64, &AttemptRecord)> = batches
            .iter()
            .zip(ids)
            .flat_map(|((_, rows), &id)| {
                rows.batch
                    .attempts
                    .iter()
                    .enumerate()
                    .map(move |(n, a)| (id, n as i64 + 1, a))
            })
            .collect();
        for chunk in attempts.chunks(BATCHES_PER_INSERT) {
            let mut q = QueryBuilder::new(INSERT_ATTEMPTS);
            q.push_values(chunk, |mut row, (id, n, a)| {
                row.push_bind(*id)
                    .push_bind(*n)
                    .push_bind(a.status.as_str())
                    .push_bind(a.reason.as_str())
                    .push_bind(duration_millis(a.duration));
            });
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Marks each run of `$runs` (a slice of [`RunWrite`]) with a failed
/// setup step among its batches as such, within `$tx`.
macro_rules! count_setup {
    ($tx:ident, $runs:expr, $ids:expr) => {{
        let runs: &[RunWrite<'_, '_>] = $runs;
        let ids: &[RunId] = $ids;
        for (r, &id) in runs.iter().zip(ids) {
            if r.batches.iter().any(|b| b.batch.is_failed_setup()) {
                sqlx::query(COUNT_RESULTS)
                    .bind(0_i64)
                    .bind(0_i64)
                    .bind(1_i64)
                    .bind(id)
                    .execute(&mut *$tx)
                    .await?;
            }
        }
    }};
}

/// Inserts the runs of `$runs` (a slice of [`RunWrite`]) that are new,
/// finished, within `$tx`; evaluates to every run's id, in order.
macro_rules! insert_new_runs {
    ($tx:ident, $runs:expr) => {
        insert_new_runs!($tx, $runs, None)
    };
    ($tx:ident, $runs:expr, $first:expr) => {{
        let runs: &[RunWrite<'_, '_>] = $runs;
        // The first new run's id when they were reserved (their own
        // partition, history::partition), one after another.
        let first: Option<i64> = $first;
        let mut ids: Vec<RunId> = Vec::with_capacity(runs.len());
        for (n, r) in runs.iter().enumerate() {
            let id = match r.run {
                RunRef::Recording(id) => id,
                RunRef::New(f) => {
                    let id = insert_run!($tx, f.run, first.map(|f| f + n as i64));
                    sqlx::query(FINISH_RUN)
                        .bind(unix_millis(f.ended))
                        .bind(f.status.as_str())
                        .bind(id)
                        .execute(&mut *$tx)
                        .await?;
                    id
                }
            };
            ids.push(id);
        }
        ids
    }};
}

/// Each run's UTC day (of `$runs`, a slice of [`RunWrite`], whose ids are
/// `$run_ids`) for the daily rollups: a new run's from its record, as
/// INSERT_RUN stored it; a recording's from the store.
macro_rules! run_days {
    ($tx:ident, $runs:expr, $run_ids:expr) => {{
        let runs: &[RunWrite<'_, '_>] = $runs;
        let run_ids: &[RunId] = $run_ids;
        let mut days: Vec<i64> = Vec::with_capacity(runs.len());
        for (r, &id) in runs.iter().zip(run_ids) {
            let started = match r.run {
                RunRef::New(f) => unix_millis(f.run.started),
                RunRef::Recording(_) => {
                    sqlx::query_scalar("SELECT started_at FROM runs WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *$tx)
                        .await?
                }
            };
            days.push(started.div_euclid(rollup::DAY_MS));
        }
        days
    }};
}

/// Chunks of rows [`roll_up!`] tallies ahead while the store runs the
/// statement beside it (an own partition's primary key, 0.4 s a million
/// results): at most 8 × 65,536 rows' tallies held at once.
const ROLLUP_AHEAD: usize = 8;

/// Counts a write's results into the daily rollups within `$tx`: from
/// `$written` (the [`keyed`] rows sent, in key order, when every one went
/// in: nothing read back) as increments of the runs' days (`$days`, an
/// expression evaluated only then), else read back by run
/// ([`Rollup::rollup`]); marks the write's batches (`$batch_ids`) counted.
macro_rules! roll_up {
    ($tx:ident, $days:expr, $run_ids:expr, $placed:expr, $written:expr, $batch_ids:expr) => {
        roll_up!($tx, $days, $run_ids, $placed, $written, $batch_ids, async {
            Ok::<(), sqlx::Error>(())
        })
    };
    // `$alongside`: a statement of the write's to run first, while this
    // thread tallies the first rows (history::partition's primary key).
    (
        $tx:ident, $days:expr, $run_ids:expr, $placed:expr, $written:expr, $batch_ids:expr,
        $alongside:expr
    ) => {{
        let run_ids: &[RunId] = $run_ids;
        let placed: &[RunResults<'_, '_>] = $placed;
        let written: Option<&[keyed::Row]> = $written;
        match written {
            Some(rows) => {
                // Evaluated here only: a recording's days are read back.
                let days: Vec<i64> = $days;
                let prepare = rollup::preparer(&*$tx);
                let tally = |chunk: &[keyed::Row]| {
                    prepare(rollup::tallies(chunk.iter().map(|r| {
                        let run = &placed[r.run as usize];
                        let (results, _) = run.batches[r.batch as usize];
                        let i = r.index as usize;
                        (
                            days[r.run as usize],
                            r.test_id,
                            run.run,
                            i64::from(results.status(i).code()),
                            results.duration(i).map(duration_millis),
                        )
                    })))
                };
                // In chunks of rows: a tally is over a hundred bytes, and a
                // million tests' at once cost 300 MiB (bench/many_tests.py).
                // A key split across chunks is added twice, as two writes
                // of one day add up; the batches are marked with the last.
                // Each chunk is tallied while the store adds the one before
                // (the statement is polled first: it is sent, then this
                // thread tallies); while it runs `$alongside`, up to
                // `ROLLUP_AHEAD` chunks are (yielding after each, so that
                // the statement's answer is seen).
                let mut chunks = rows.chunks(rollup::ROWS_PER_TALLY);
                let last = chunks.len();
                let mut ready = std::collections::VecDeque::new();
                let alongside_done = std::sync::atomic::AtomicBool::new(false);
                let (alongside, ()) = tokio::join!(
                    async {
                        let r = $alongside.await;
                        alongside_done.store(true, std::sync::atomic::Ordering::Relaxed);
                        r
                    },
                    async {
                        while !alongside_done.load(std::sync::atomic::Ordering::Relaxed)
                            && ready.len() < ROLLUP_AHEAD
                        {
                            match chunks.next() {
                                Some(chunk) => ready.push_back(tally(chunk)),
                                None => break,
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                );
                alongside?;
                let mut next = ready.pop_front().or_else(|| chunks.next().map(tally));
                let mut n = 0;
                while let Some(tallies) = next.take() {
                    n += 1;
                    let batches: &[i64] = if n == last { $batch_ids } else { &[] };
                    let (done, following) =
                        tokio::join!(Rollup::add_prepared(&mut *$tx, &tallies, batches), async {
                            ready.pop_front().or_else(|| chunks.next().map(tally))
                        });
                    done?;
                    next = following;
                }
                if rows.is_empty() {
                    Rollup::add(&mut *$tx, &[], $batch_ids).await?;
                }
            }
            None => {
                $alongside.await?;
                Rollup::rollup(&mut *$tx, run_ids).await?
            }
        }
    }};
}

/// (name, id) of those of `$names` (sorted, distinct) that `$how` (a
/// [`Lookup`]) finds, on the connection or transaction `$tx`.
macro_rules! lookup {
    ($tx:ident, $how:expr, $names:expr) => {
        'lookup: {
            let names: &[&str] = $names;
            macro_rules! return_found {
                ($found:expr) => {
                    break 'lookup $found
                };
            }
            let mut q = match $how {
                Lookup::Append => {
                    let mut q = QueryBuilder::new("INSERT INTO tests (name) ");
                    q.push_values(names, |mut row, name| {
                        row.push_bind(*name);
                    });
                    q.push(" ON CONFLICT (name) DO NOTHING");
                    let done = q.build().execute(&mut *$tx).await?;
                    let n = i64::try_from(names.len()).unwrap_or(i64::MAX);
                    let mut found: Vec<(String, i64)> = Vec::new();
                    if let (Some(last), Some(first_name)) = (LastId::last_id(&done), names.first())
                        && done.rows_affected() == names.len() as u64
                    {
                        // Every name went in: their ids are the last n, in
                        // order, unless SQLite fell back to random ids (past
                        // the largest id); the first name's id tells.
                        let first = last - (n - 1);
                        let id: Option<i64> =
                            sqlx::query_scalar("SELECT id FROM tests WHERE name = $1")
                                .bind(*first_name)
                                .fetch_optional(&mut *$tx)
                                .await?;
                        if id == Some(first) {
                            found = names
                                .iter()
                                .zip(first..)
                                .map(|(name, id)| ((*name).to_owned(), id))
                                .collect();
                        }
                    }
                    return_found!(found)
                }
                Lookup::Select => {
                    let mut q = QueryBuilder::new("SELECT name, id FROM tests WHERE name IN (");
                    let mut list = q.separated(", ");
                    for name in names {
                        list.push_bind(*name);
                    }
                    q.push(")");
                    q
                }
            };
            let found: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *$tx).await?;
            found
        }
    };
}

/// The id of the last row a statement inserted, where the backend says.
trait LastId {
    fn last_id(&self) -> Option<i64>;
}

impl LastId for sqlx::sqlite::SqliteQueryResult {
    fn last_id(&self) -> Option<i64> {
        Some(self.last_insert_rowid())
    }
}

pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the open pool, whichever backend it is;
/// the body is compiled once per backend.
macro_rules! with_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match &$db.pool {
            $crate::history::db::Pool::Sqlite($p) => $body,
            $crate::history::db::Pool::Postgres($p) => $body,
        }
    };
}
// For code outside this file (the queries); unused until they land.
#[allow(unused_imports)]
pub(crate) use with_pool;

/// An open, migrated history store.
pub struct Db {
    pub pool: Pool,
    location: Location,
    /// An id once seen stays right unless `warden prune` removes the name
    /// meanwhile (only names no result uses, so only a name not yet
    /// written again): an import of many runs looks each name up once, and
    /// one that races a prune fails whole (it is all-or-nothing) and can
    /// be run again.
    test_ids: Mutex<HashMap<String, i64>>,
    /// Whether to fill `test_ids`: not when recording a run, whose names
    /// are looked up once (batch names prefix them), and where a million
    /// names would cost some 80 MB.
    cache_ids: bool,
}

/// Whether opening may create the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Recording: create the file (and its directory) if missing.
    Write,
    /// Queries: a missing SQLite file is "no history yet", not a new empty one.
    Read,
}

impl Db {
    pub async fn open(location: &Location, access: Access) -> Result<Db> {
        let pool = match location {
            Location::None => return Err(HistoryError::Disabled),
            Location::Sqlite(path) => {
                if access == Access::Read && !path.exists() {
                    return Err(HistoryError::Missing(location.to_string()));
                }
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| HistoryError::CreateDir {
                        path: dir.to_owned(),
                        source,
                    })?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    // Readers never block the writer, and several wardens
                    // on one machine can share the file.
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(BUSY_TIMEOUT)
                    // Pages in memory. Writes go in key order (names
                    // sorted, results by test id), so each page is
                    // dirtied about once and a small cache spills little;
                    // queries read pages over and over.
                    .pragma(
                        "cache_size",
                        match access {
                            Access::Write => WRITE_CACHE_KIB,
                            Access::Read => "-65536",
                        },
                    )
                    // A run's results land on every leaf of `results` (it
                    // is keyed by test first), so a commit dirties most of
                    // the table; checkpointing after every such commit
                    // (the default, at 1000 pages) wrote each page twice
                    // and waited on two fsyncs per run. Checkpoint every
                    // 64 MiB of WAL instead, and trim the file back to that.
                    .pragma("wal_autocheckpoint", WAL_PAGES.to_string())
                    .pragma("journal_size_limit", (WAL_PAGES * 4096).to_string())
                    // The ids of new test names come back a chunk at a
                    // time: hand them over whole, not 50 rows per wakeup.
                    .row_buffer_size(ROWS_PER_INSERT);
                let (connections, wait) = match access {
                    // One writer: SQLite serialises writes anyway.
                    Access::Write => (1, BUSY_TIMEOUT),
                    // Readers: WAL lets them run side by side (each
                    // connection has a thread of its own), so the
                    // dashboard's concurrent requests don't queue behind
                    // one connection; opened as needed. A request waits
                    // for a free one rather than failing after 5 s.
                    Access::Read => (READERS, READ_WAIT),
                };
                let pool = SqlitePoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(wait)
                    .connect_with(options)
                    .await
                    .map_err(|source| open_error(location, source))?;
                Pool::Sqlite(pool)
            }
            Location::Postgres(url) => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|source| open_error(location, source))?;
                // One plain connection first: a pool that cannot connect
                // only says it timed out, hiding "connection refused" or
                // "password authentication failed".
                let first =
                    tokio::time::timeout(BUSY_TIMEOUT, PgConnection::connect_with(&options))
                        .await
                        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
                        .map_err(|source| open_error(location, source))?;
                let _ = first.close().await;
                let (connections, wait) = match access {
                    Access::Write => (4, BUSY_TIMEOUT),
                    Access::Read => (READERS, READ_WAIT),
                };
                let pool = PgPoolOptions::new()
                    .max_connections(connections)
                    .acquire_timeout(wait)
                    .connect_lazy_with(options);
                Pool::Postgres(pool)
            }
        };
        let db = Db {
            pool,
            location: location.clone(),
            test_ids: Mutex::new(HashMap::new()),
            cache_ids: true,
        };
        db.migrate().await?;
        rollup::catch_up(db.rollup_store()).await?;
        Ok(db)
    }

    /// The pool as `history::rollup` takes it.
    pub(crate) fn rollup_store(&self) -> rollup::Store<'_> {
        match &self.pool {
            Pool::Sqlite(p) => rollup::Store::Sqlite(p),
            Pool::Postgres(p) => rollup::Store::Postgres(p),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    async fn migrate(&self) -> Result<()> {
        let mut result = self.migrate_once().await;
        if result.is_err() {
            // Several wardens opening a new SQLite file at once race to
            // create the schema (PostgreSQL's migrator takes a lock; SQLite's
            // does not); the loser finds it done on a second look.
            tokio::time::sleep(Duration::from_millis(200)).await;
            result = self.migrate_once().await;
        }
        result.map_err(|source| HistoryError::Migrate {
            location: self.location.to_string(),
            source,
        })
    }

    async fn migrate_once(&self) -> std::result::Result<(), sqlx::migrate::MigrateError> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await,
            Pool::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await,
        }
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }

    /// Records a run as started (no end, no status: "incomplete" until
    /// [`finish_run`](Self::finish_run)).
    pub async fn begin_run(&self, run: &RunRecord) -> Result<RunId> {
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let id = insert_run!(tx, run);
            tx.commit().await?;
            Ok(id)
        })
    }

    pub async fn finish_run(&self, run: RunId, status: RunStatus, ended: SystemTime) -> Result<()> {
        with_pool!(self, p => {
            sqlx::query(FINISH_RUN)
                .bind(unix_millis(ended))
                .bind(status.as_str())
                .bind(run)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Looks each test name up in the store only, without keeping the ids
    /// for later calls: for a writer that sees each name once.
    pub fn without_id_cache(mut self) -> Db {
        self.cache_ids = false;
        self
    }

    /// Records one batch with its attempts and test results, in one
    /// transaction: a warden killed halfway leaves whole batches only.
    pub async fn record_batch(&self, run: RunId, batch: &BatchRecord) -> Result<()> {
        self.record_batches(run, std::slice::from_ref(batch)).await
    }

    /// Records several batches in one transaction.
    pub async fn record_batches(&self, run: RunId, batches: &[BatchRecord]) -> Result<()> {
        let rows: Vec<BatchRows<'_>> = batches.iter().map(BatchRows::from).collect();
        self.record_batch_rows(run, &rows).await
    }

    /// Records several batches in one transaction, their results read
    /// through [`Results`].
    pub async fn record_batch_rows(&self, run: RunId, batches: &[BatchRows<'_>]) -> Result<()> {
        self.write(&[RunWrite {
            run: RunRef::Recording(run),
            batches,
        }])
        .await?;
        Ok(())
    }

    /// Records whole runs (an import), all in one transaction: all or
    /// nothing, and one commit rather than one per run (each run touches
    /// a page of nearly every test, so per-run commits rewrite most of
    /// the table every time).
    pub async fn record_runs(&self, runs: &[FinishedRun<'_>]) -> Result<Vec<RunId>> {
        let batches = batch_rows(runs);
        self.write(&new_runs(runs, &batches)).await
    }

    /// Writes `runs` in one transaction: the new ones' rows, every
    /// batch's record and attempts, and the results; evaluates to the
    /// runs' ids. All recording (`warden run`, `warden import`) comes
    /// through here, one backend's function each.
    async fn write(&self, runs: &[RunWrite<'_, '_>]) -> Result<Vec<RunId>> {
        // Runs created here hold no results yet (see `copy_in::Runs`).
        let kind = if runs.iter().all(|r| matches!(r.run, RunRef::New(_))) {
            Runs::New
        } else {
            Runs::Recording
        };
        match &self.pool {
            Pool::Postgres(p) => write_postgres(p, runs, kind).await,
            Pool::Sqlite(p) => self.write_sqlite(p, runs).await,
        }
    }

    /// SQLite's [`write`](Self::write): the test ids first, in a
    /// transaction of their own ([`test_ids`](Self::test_ids)), then one
    /// that holds the write lock from its start (its batch ids are the
    /// next free ones) and inserts the [`keyed`] rows a thousand at a
    /// time, each run's counts computed here.
    async fn write_sqlite(&self, p: &SqlitePool, runs: &[RunWrite<'_, '_>]) -> Result<Vec<RunId>> {
        let empty: Vec<Vec<(&dyn Results, i64)>> = runs
            .iter()
            .map(|r| r.batches.iter().map(|b| (b.results, 0)).collect())
            .collect();
        let unplaced: Vec<RunResults<'_, '_>> = empty
            .iter()
            .map(|batches| RunResults { run: 0, batches })
            .collect();
        let mut names = keyed::Names::of(&unplaced);
        let test_ids = self.test_ids(&names.sorted).await?;
        // The rows take each result's index into the names, not the
        // names: 16 bytes a name less while they are built (a million).
        names.sorted = Vec::new();
        let (rows, counts) = keyed::rows(&unplaced, &names, &test_ids, keyed::Order::Key);
        drop((names, test_ids, unplaced));
        let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
        let run_ids = insert_new_runs!(tx, runs);
        let records: Vec<(RunId, BatchRows<'_>)> = runs
            .iter()
            .zip(&run_ids)
            .flat_map(|(r, &id)| r.batches.iter().map(move |b| (id, *b)))
            .collect();
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM batches")
            .fetch_one(&mut *tx)
            .await?;
        let batch_ids: Vec<i64> = (last + 1..).take(records.len()).collect();
        insert_batch_records!(tx, &records, &batch_ids);
        count_setup!(tx, runs, &run_ids);
        let placed = placed_results(runs, &run_ids, &batch_ids);
        let placed = run_results(&placed, &run_ids);
        let mut went_in: u64 = 0;
        let insert = |chunk: &[keyed::Row]| {
            let mut q = QueryBuilder::new(INSERT_RESULTS);
            q.push_values(chunk, |mut row, r| {
                let run = &placed[r.run as usize];
                let (results, batch_id) = run.batches[r.batch as usize];
                let i = r.index as usize;
                row.push_bind(r.test_id)
                    .push_bind(run.run)
                    .push_bind(batch_id)
                    .push_bind(i64::from(results.status(i).code()))
                    .push_bind(results.duration(i).map(duration_millis))
                    .push_bind(results.message(i));
            });
            q.push(" ON CONFLICT (test_id, run_id) DO NOTHING");
            q
        };
        // Each INSERT is put together while SQLite's thread runs the one
        // before (the execute is polled first: it hands its statement
        // over, then the next one is built on this thread).
        let mut chunks = rows.chunks(SQLITE_RESULT_ROWS);
        let mut next = chunks.next().map(insert);
        while let Some(mut q) = next.take() {
            let (done, following) = tokio::join!(q.build().execute(&mut *tx), async {
                chunks.next().map(insert)
            });
            went_in += done?.rows_affected();
            next = following;
        }
        for (c, &id) in counts.iter().zip(&run_ids) {
            if *c != keyed::Counts::default() {
                sqlx::query(COUNT_RESULTS)
                    .bind(c.ran)
                    .bind(c.failed)
                    .bind(0_i64)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // The transaction's results are all in: count them into the
        // daily rollups in the same transaction.
        let written = (went_in == rows.len() as u64).then_some(rows.as_slice());
        roll_up!(
            tx,
            run_days!(tx, runs, &run_ids),
            &run_ids,
            &placed,
            written,
            &batch_ids
        );
        tx.commit().await?;
        Ok(run_ids)
    }

    /// The id of each of `names` (sorted, distinct), creating the missing
    /// tests (SQLite; PostgreSQL's are looked up in the write's own
    /// transaction, [`copy_in`]).
    ///
    /// Before the batches' transaction, in a short one of its own, and in
    /// name order: new names go to the end of the name index, page after
    /// page. A chunk of names costs one statement when they are all new
    /// (an INSERT whose ids follow the largest) or all known (a SELECT); a
    /// chunk starts with the statement that did for the chunk before. A
    /// name a concurrent `warden prune` removes before the results go in
    /// fails their transaction on the foreign key (the recorder writes the
    /// batch again; an import fails whole).
    async fn test_ids(&self, names: &[&str]) -> Result<Vec<i64>> {
        // 0 until found (ids start at 1).
        let mut ids: Vec<i64> = vec![0; names.len()];
        if self.cache_ids {
            let cache = self.test_ids.lock().unwrap_or_else(|e| e.into_inner());
            for (id, name) in ids.iter_mut().zip(names) {
                if let Some(&known) = cache.get(*name) {
                    *id = known;
                }
            }
        }
        if ids.iter().all(|&id| id != 0) {
            // All known (or no names): no transaction to take.
            return Ok(ids);
        }
        let Pool::Sqlite(p) = &self.pool else {
            return Err(HistoryError::Sql(sqlx::Error::Protocol(
                "test ids are looked up in the write on PostgreSQL".into(),
            )));
        };
        // One transaction: every page of the name index written once, not
        // once per chunk (SQLite appends each commit's pages to the WAL).
        // A write lock from the start: a deferred transaction that reads
        // first fails to write if another writer committed meanwhile.
        let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
        let mut expect_new = true;
        let mut at = 0;
        while at < names.len() {
            // The next ROWS_PER_INSERT names without an id.
            let mut chunk: Vec<&str> = Vec::with_capacity(ROWS_PER_INSERT);
            let mut end = at;
            while end < names.len() && chunk.len() < ROWS_PER_INSERT {
                if ids[end] == 0 {
                    chunk.push(names[end]);
                }
                end += 1;
            }
            if chunk.is_empty() {
                break;
            }
            let mut found: Vec<(String, i64)> = Vec::with_capacity(chunk.len());
            let tries = if expect_new {
                [Lookup::Append, Lookup::Select, Lookup::Select]
            } else {
                [Lookup::Select, Lookup::Append, Lookup::Select]
            };
            // The names still without an id, sorted as `chunk`.
            let mut missing = chunk.clone();
            for (n, how) in tries.iter().enumerate() {
                if missing.is_empty() {
                    break;
                }
                let got = lookup!(tx, *how, &missing);
                if n == 0 {
                    // All new, or none: start the next chunk the same way.
                    expect_new = (*how != Lookup::Select) == (got.len() * 2 >= missing.len());
                }
                found.extend(got);
                found.sort_unstable();
                if found.len() == chunk.len() {
                    // Each name of the chunk found once (the names are
                    // distinct): none missing, and no search for each
                    // (a million names: 0.1 s or more, bench/many_tests.py).
                    missing.clear();
                } else {
                    missing.retain(|m| {
                        found
                            .binary_search_by(|(name, _)| name.as_str().cmp(m))
                            .is_err()
                    });
                }
            }
            if !missing.is_empty() {
                return Err(HistoryError::Sql(sqlx::Error::RowNotFound));
            }
            // Both in name order: one walk places every id.
            let mut f = 0;
            for n in at..end {
                if ids[n] != 0 {
                    continue;
                }
                while found[f].0 != names[n] {
                    f += 1;
                }
                ids[n] = found[f].1;
            }
            if self.cache_ids {
                let mut cache = self.test_ids.lock().unwrap_or_else(|e| e.into_inner());
                cache.extend(found);
            }
            at = end;
        }
        tx.commit().await?;
        Ok(ids)
    }
}

/// An import into PostgreSQL written group of runs after group, in one
/// transaction, while its later files are still being read (app::import):
/// the store works on one group while warden reads the next. All or
/// nothing, as [`Db::record_runs`]: dropped before [`commit`](Self::commit),
/// it rolls back.
pub struct Import<'a> {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    write: PgWrite<'a>,
}

impl Db {
    /// Begins an [`Import`] of `runs` runs holding about `results`
    /// results (whether it loads a partition of its own,
    /// history::partition). `None` on SQLite, whose import is one
    /// [`record_runs`](Self::record_runs).
    pub async fn begin_import<'a>(
        &self,
        runs: usize,
        results: usize,
    ) -> Result<Option<Import<'a>>> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(None);
        };
        let mut tx = p.begin().await?;
        let write = PgWrite::begin(&mut tx, Runs::New, runs, results, true).await?;
        Ok(Some(Import { tx, write }))
    }
}

impl<'a> Import<'a> {
    /// Writes the next group of runs; evaluates to their ids.
    pub async fn add(&mut self, runs: &[FinishedRun<'a>]) -> Result<Vec<RunId>> {
        let batches = batch_rows(runs);
        self.write
            .add(&mut self.tx, &new_runs(runs, &batches))
            .await
    }

    /// The rollups of every run added, and the commit.
    pub async fn commit(self) -> Result<()> {
        self.write.finish(self.tx).await
    }
}

/// Each finished run's batches as [`BatchRows`].
fn batch_rows<'a>(runs: &[FinishedRun<'a>]) -> Vec<Vec<BatchRows<'a>>> {
    runs.iter()
        .map(|r| r.batches.iter().map(BatchRows::from).collect())
        .collect()
}

/// Finished runs, new to the store, as a write takes them.
fn new_runs<'w, 'a>(
    runs: &'w [FinishedRun<'a>],
    batches: &'w [Vec<BatchRows<'a>>],
) -> Vec<RunWrite<'w, 'a>> {
    runs.iter()
        .zip(batches)
        .map(|(run, batches)| RunWrite {
            run: RunRef::New(run),
            batches,
        })
        .collect()
}

/// One run of a write: inserted by it (an import) or recorded before
/// (`warden run`'s, batch by batch).
#[derive(Clone, Copy)]
enum RunRef<'w, 'a> {
    New(&'w FinishedRun<'a>),
    Recording(RunId),
}

/// A run and the batches a write adds to it.
struct RunWrite<'w, 'a> {
    run: RunRef<'w, 'a>,
    batches: &'w [BatchRows<'a>],
}

/// PostgreSQL's [`Db::write`]: one [`PgWrite`] of all `runs`.
async fn write_postgres(p: &PgPool, runs: &[RunWrite<'_, '_>], kind: Runs) -> Result<Vec<RunId>> {
    let mut tx = p.begin().await?;
    let results: usize = runs
        .iter()
        .flat_map(|r| r.batches.iter())
        .map(|b| b.results.len())
        .sum();
    let mut write = PgWrite::begin(&mut tx, kind, runs.len(), results, false).await?;
    let run_ids = write.add(&mut tx, runs).await?;
    write.finish(tx).await?;
    Ok(run_ids)
}

/// A write into PostgreSQL, in one transaction, of runs added in one go
/// or group after group (an import whose later files are still being
/// read, [`Import`]): batch ids reserved from the sequence in one
/// statement per group, the records in multi-row INSERTs, the results by
/// [`copy_in`] (test ids looked up there, in this transaction), into the
/// write's own partition when it has one (history::partition); the
/// rollups, and the partition's key and attach, when it finishes.
struct PgWrite<'a> {
    kind: Runs,
    own: Option<partition::Partition>,
    run_ids: Vec<RunId>,
    /// Each run's UTC day.
    days: Vec<i64>,
    batch_ids: Vec<i64>,
    /// Each run's batches' results and their batch ids.
    placed: Vec<Vec<(&'a dyn Results, i64)>>,
    /// The rows sent (`run` indexes every run of the write); `None` once
    /// a group's went in only in part (a recording's batch came again).
    rows: Option<Vec<keyed::Row>>,
    /// The test ids found so far, when groups follow.
    names: Option<copy_in::Known<'a>>,
}

impl<'a> PgWrite<'a> {
    /// `runs` and `results`: how many the whole write holds (estimated,
    /// when groups follow: whether it gets a partition of its own).
    async fn begin(
        tx: &mut PgConnection,
        kind: Runs,
        runs: usize,
        results: usize,
        groups: bool,
    ) -> Result<PgWrite<'a>> {
        let own = if kind == Runs::New && partition::wanted(results) {
            Some(partition::reserve(tx, runs).await?)
        } else {
            None
        };
        Ok(PgWrite {
            kind,
            own,
            run_ids: Vec::new(),
            days: Vec::new(),
            batch_ids: Vec::new(),
            placed: Vec::new(),
            rows: Some(Vec::new()),
            names: groups.then(copy_in::Known::default),
        })
    }

    /// Writes `runs`: their records, batches and results.
    async fn add(
        &mut self,
        tx: &mut PgConnection,
        runs: &[RunWrite<'_, 'a>],
    ) -> Result<Vec<RunId>> {
        let first = self.own.as_ref().map(|p| p.run_id(self.run_ids.len()));
        let run_ids = insert_new_runs!(tx, runs, first);
        let records: Vec<(RunId, BatchRows<'_>)> = runs
            .iter()
            .zip(&run_ids)
            .flat_map(|(r, &id)| r.batches.iter().map(move |b| (id, *b)))
            .collect();
        let mut batch_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('batches', 'id')) \
             FROM generate_series(1, $1)",
        )
        .bind(records.len() as i64)
        .fetch_all(&mut *tx)
        .await?;
        // Ids in batch order, as one INSERT each would have given them.
        batch_ids.sort_unstable();
        // A write of new runs rolls all their results up (nothing can
        // conflict): their batches go in marked.
        let rolled = i64::from(self.kind == Runs::New);
        insert_batch_records!(tx, &records, &batch_ids, rolled);
        count_setup!(tx, runs, &run_ids);
        let placed = placed_results(runs, &run_ids, &batch_ids);
        let group = run_results(&placed, &run_ids);
        let written = copy_in::write(
            tx,
            &group,
            self.kind,
            self.own.as_ref(),
            self.names.as_mut(),
        )
        .await?;
        let days = run_days!(tx, runs, &run_ids);
        drop(group);
        let offset = self.run_ids.len() as u32;
        match (written, &mut self.rows) {
            (Some(written), Some(rows)) => {
                rows.extend(written.into_iter().map(|mut r| {
                    r.run += offset;
                    r
                }));
            }
            _ => self.rows = None,
        }
        self.run_ids.extend_from_slice(&run_ids);
        self.days.extend(days);
        self.batch_ids.extend(batch_ids);
        self.placed.extend(placed);
        Ok(run_ids)
    }

    /// The rollups of everything written (an own partition's primary key
    /// built meanwhile), the partition attached, and the commit.
    async fn finish(self, mut tx: sqlx::Transaction<'static, sqlx::Postgres>) -> Result<()> {
        let PgWrite {
            kind,
            own,
            run_ids,
            days,
            batch_ids,
            placed,
            mut rows,
            ..
        } = self;
        // New runs' batches went in marked.
        let marked: &[i64] = if kind == Runs::New { &[] } else { &batch_ids };
        if let Some(rows) = &mut rows
            && !rows.is_sorted_by_key(|r| (r.test_id, r.run))
        {
            // Run order (an own partition's), or groups one after another.
            rows.sort_unstable_by_key(|r| (r.test_id, r.run));
        }
        let placed = run_results(&placed, &run_ids);
        roll_up!(
            tx,
            days,
            &run_ids,
            &placed,
            rows.as_deref(),
            marked,
            partition::build_key(&mut tx, own.as_ref())
        );
        if let Some(own) = &own {
            partition::attach(&mut tx, own).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Each run's [`placed_results`] under its id, as [`keyed`] and
/// [`copy_in`] take them.
fn run_results<'p, 'a>(
    placed: &'p [Vec<(&'a dyn Results, i64)>],
    run_ids: &[RunId],
) -> Vec<RunResults<'p, 'a>> {
    placed
        .iter()
        .zip(run_ids)
        .map(|(batches, &run)| RunResults { run, batches })
        .collect()
}

/// Each run's batches' results with the row id each batch's record got
/// (`batch_ids`: all the write's batches, in order).
fn placed_results<'a>(
    runs: &[RunWrite<'_, 'a>],
    run_ids: &[RunId],
    batch_ids: &[i64],
) -> Vec<Vec<(&'a dyn Results, i64)>> {
    let mut ids = batch_ids.iter().copied();
    runs.iter()
        .zip(run_ids)
        .map(|(r, _)| {
            r.batches
                .iter()
                .map(|b| b.results)
                .zip(ids.by_ref())
                .collect()
        })
        .collect()
}

/// How [`lookup!`] finds test ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    /// SQLite, within the write transaction (no other writer meanwhile):
    /// inserts the names; when all were new, their ids are the last ones,
    /// one more than the largest id before, in order (SQLite's rowid
    /// rule). Cheaper than returning rows; nothing found otherwise.
    Append,
    /// Selects the names that exist.
    Select,
}

fn open_error(location: &Location, source: sqlx::Error) -> HistoryError {
    HistoryError::Open {
        location: location.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::model::{AttemptRecord, Labels, RunSource, TestRecord};
    use crate::phase::Phase;
    use crate::status::{RunStatus, Status, TestStatus};

    fn run_record(uuid: &str) -> RunRecord {
        let mut labels = Labels::default();
        labels.insert("arch".into(), "x86_64".into());
        RunRecord {
            uuid: uuid.into(),
            started: SystemTime::now(),
            commit: Some("abc123".into()),
            branch: None,
            host: "h".into(),
            labels,
            source: RunSource::Run,
        }
    }

    fn batch(name: &str, tests: &[(&str, TestStatus)]) -> BatchRecord {
        BatchRecord {
            name: name.into(),
            phase: Phase::Batch,
            status: Status::Failed,
            reason: "exit code 1".into(),
            started: SystemTime::now(),
            duration: Duration::from_millis(1500),
            log: Some("/tmp/warden-artifacts/net.log".into()),
            attempts: vec![AttemptRecord {
                status: Status::Failed,
                reason: "exit code 1".into(),
                duration: Duration::from_secs(1),
            }],
            tests: tests
                .iter()
                .map(|(n, s)| TestRecord {
                    name: format!("{name}/{n}"),
                    status: s.clone(),
                    duration: Some(Duration::from_millis(7)),
                    message: (*s == TestStatus::Failed).then(|| "boom".into()),
                })
                .collect(),
            usage: None,
        }
    }

    #[test]
    fn usage_columns_round_trip() {
        let u = Usage {
            partial: true,
            peak_memory: Some(u64::from(u32::MAX) + 1),
            cpu: Some(Duration::from_millis(3400)),
            memory_stall: Some(Duration::ZERO),
            oom_kills: 2,
            ..Usage::default()
        };
        assert_eq!(UsageColumns::of(Some(&u)).usage(), Some(u));
        assert_eq!(
            UsageColumns::of(Some(&Usage::default())).usage(),
            Some(Usage::default())
        );
        assert_eq!(UsageColumns::of(None).usage(), None);
    }

    /// Names across chunks: all new, then known and new mixed in one
    /// chunk, each result under its own name's id.
    #[tokio::test]
    async fn ids_of_new_and_known_names_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(dir.path().join("history.db"));
        let db = Db::open(&location, Access::Write)
            .await
            .unwrap()
            .without_id_cache();
        let names = |range: std::ops::Range<usize>| -> Vec<(String, TestStatus)> {
            range
                .map(|i| {
                    let status = if i.is_multiple_of(7) {
                        TestStatus::Failed
                    } else {
                        TestStatus::Passed
                    };
                    (format!("t{i}"), status)
                })
                .collect()
        };
        let record = |tests: Vec<(String, TestStatus)>| {
            let tests: Vec<(&str, TestStatus)> =
                tests.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
            batch("b", &tests)
        };
        let run1 = db.begin_run(&run_record("r1")).await.unwrap();
        db.record_batch(run1, &record(names(0..2500)))
            .await
            .unwrap();
        let run2 = db.begin_run(&run_record("r2")).await.unwrap();
        db.record_batch(run2, &record(names(1200..3700)))
            .await
            .unwrap();
        let Pool::Sqlite(p) = &db.pool else { panic!() };
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tests")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(n, 3700);
        // Every result sits under the right name: failed exactly for i % 7 == 0.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT t.name, r.status FROM results r JOIN tests t ON t.id = r.test_id",
        )
        .fetch_all(p)
        .await
        .unwrap();
        assert_eq!(rows.len(), 5000);
        for (name, status) in rows {
            let i: usize = name.trim_start_matches("b/t").parse().unwrap();
            let want = if i.is_multiple_of(7) { 2 } else { 1 };
            assert_eq!(status, want, "{name}");
        }
    }

    #[tokio::test]
    async fn records_a_run_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(dir.path().join("sub/history.db"));
        assert!(matches!(
            Db::open(&location, Access::Read).await,
            Err(HistoryError::Missing(_))
        ));
        let db = Db::open(&location, Access::Write).await.unwrap();
        let run = db.begin_run(&run_record("r1")).await.unwrap();
        db.record_batch(
            run,
            &batch(
                "net",
                &[("a", TestStatus::Passed), ("b", TestStatus::Failed)],
            ),
        )
        .await
        .unwrap();
        db.record_batch(run, &batch("bpf", &[("a", TestStatus::Flaky)]))
            .await
            .unwrap();
        db.finish_run(run, RunStatus::Failed, SystemTime::now())
            .await
            .unwrap();
        let Pool::Sqlite(p) = &db.pool else { panic!() };
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM results")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(n, 3);
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM tests ORDER BY name")
            .fetch_all(p)
            .await
            .unwrap();
        assert_eq!(names, ["bpf/a", "net/a", "net/b"]);
        let (status, labels): (String, String) =
            sqlx::query_as("SELECT status, labels FROM runs WHERE id = $1")
                .bind(run)
                .fetch_one(p)
                .await
                .unwrap();
        assert_eq!(
            (status.as_str(), labels.as_str()),
            ("failed", "arch=x86_64")
        );
        let attempts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts")
            .fetch_one(p)
            .await
            .unwrap();
        assert_eq!(attempts, 2);
        db.close().await;
        // Reopening runs no migration twice and sees the same data.
        let db = Db::open(&location, Access::Read).await.unwrap();
        let run2 = db.begin_run(&run_record("r2")).await.unwrap();
        assert!(run2 > run);
    }
}
