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

use super::location::Location;
use super::model::{BatchRecord, RunRecord, TestRecord, millis, unix_millis};

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

/// Rows per multi-row INSERT: far below both backends' bound-parameter
/// limits (SQLite 32766, PostgreSQL 65535) with six columns.
const ROWS_PER_INSERT: usize = 1000;

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
    pub status: &'a str,
    pub ended: SystemTime,
}

const INSERT_RUN: &str = "INSERT INTO runs (uuid, started_at, commit_sha, branch, host, labels, source) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
const INSERT_RUN_LABEL: &str = "INSERT INTO run_labels (run_id, key, value) VALUES ($1, $2, $3)";
const FINISH_RUN: &str = "UPDATE runs SET ended_at = $1, status = $2 WHERE id = $3";
const INSERT_BATCH: &str = "INSERT INTO batches \
     (run_id, name, phase, status, reason, started_at, duration_ms, attempts, log) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
const INSERT_ATTEMPT: &str = "INSERT INTO attempts (batch_id, number, status, reason, duration_ms) \
     VALUES ($1, $2, $3, $4, $5)";

fn test_names(batches: &[BatchRecord]) -> impl Iterator<Item = &str> {
    batches
        .iter()
        .flat_map(|b| b.tests.iter().map(|t| t.name.as_str()))
}

/// Inserts a run's row and labels within the transaction `$tx`; evaluates
/// to its id. A macro, like [`with_pool!`], so one text serves both
/// backends' transaction types.
macro_rules! insert_run {
    ($tx:ident, $run:expr) => {{
        let run: &RunRecord = $run;
        let id: i64 = sqlx::query_scalar(INSERT_RUN)
            .bind(&run.uuid)
            .bind(unix_millis(run.started))
            .bind(run.commit.as_deref())
            .bind(run.branch.as_deref())
            .bind(&run.host)
            .bind(run.labels.canonical())
            .bind(run.source.as_str())
            .fetch_one(&mut *$tx)
            .await?;
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

/// Inserts batches, their attempts and results within `$tx`; `$ids` are
/// the test ids of their results, in order.
macro_rules! insert_batches {
    ($tx:ident, $run:expr, $batches:expr, $ids:expr) => {{
        let run: RunId = $run;
        let batches: &[BatchRecord] = $batches;
        let ids: &[i64] = $ids;
        let mut rows: Vec<(i64, i64, &TestRecord)> = Vec::with_capacity(ids.len());
        for batch in batches {
            let batch_id: i64 = sqlx::query_scalar(INSERT_BATCH)
                .bind(run)
                .bind(&batch.name)
                .bind(batch.phase)
                .bind(&batch.status)
                .bind(&batch.reason)
                .bind(unix_millis(batch.started))
                .bind(millis(batch.duration))
                .bind(batch.attempts.len() as i64 + 1)
                .bind(batch.log.as_deref())
                .fetch_one(&mut *$tx)
                .await?;
            for (n, a) in batch.attempts.iter().enumerate() {
                sqlx::query(INSERT_ATTEMPT)
                    .bind(batch_id)
                    .bind(n as i64 + 1)
                    .bind(&a.status)
                    .bind(&a.reason)
                    .bind(millis(a.duration))
                    .execute(&mut *$tx)
                    .await?;
            }
            rows.extend(
                batch
                    .tests
                    .iter()
                    .zip(&ids[rows.len()..])
                    .map(|(t, &id)| (id, batch_id, t)),
            );
        }
        // In key order: each insert then lands next to the last one's
        // page instead of anywhere in the table. A stable sort, so a
        // name listed twice still keeps its first result.
        rows.sort_by_key(|&(test_id, _, _)| test_id);
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::new(
                "INSERT INTO results \
                 (test_id, run_id, batch_id, status, duration_ms, message) ",
            );
            q.push_values(chunk, |mut row, &(test_id, batch_id, t)| {
                row.push_bind(test_id)
                    .push_bind(run)
                    .push_bind(batch_id)
                    .push_bind(t.status.code())
                    .push_bind(t.duration.map(millis))
                    .push_bind(t.message.clone());
            });
            // A name twice in one run (a JUnit file listing a test twice)
            // keeps its first result; importers merge first.
            q.push(" ON CONFLICT (test_id, run_id) DO NOTHING");
            q.build().execute(&mut *$tx).await?;
        }
    }};
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
    /// Test names are never deleted, so an id once seen stays right: an
    /// import of many runs looks each name up once.
    test_ids: Mutex<HashMap<String, i64>>,
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
                    .pragma("cache_size", "-65536")
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
        };
        db.migrate().await?;
        Ok(db)
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

    pub async fn finish_run(&self, run: RunId, status: &str, ended: SystemTime) -> Result<()> {
        with_pool!(self, p => {
            sqlx::query(FINISH_RUN)
                .bind(unix_millis(ended))
                .bind(status)
                .bind(run)
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Records one batch with its attempts and test results, in one
    /// transaction: a warden killed halfway leaves whole batches only.
    pub async fn record_batch(&self, run: RunId, batch: &BatchRecord) -> Result<()> {
        self.record_batches(run, std::slice::from_ref(batch)).await
    }

    /// Records several batches in one transaction.
    pub async fn record_batches(&self, run: RunId, batches: &[BatchRecord]) -> Result<()> {
        let names: Vec<&str> = test_names(batches).collect();
        let ids = self.test_ids(&names).await?;
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            insert_batches!(tx, run, batches, &ids);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records whole runs (an import), all in one transaction: all or
    /// nothing, and one commit rather than one per run (each run touches
    /// a page of nearly every test, so per-run commits rewrite most of
    /// the table every time).
    pub async fn record_runs(&self, runs: &[FinishedRun<'_>]) -> Result<Vec<RunId>> {
        let names: Vec<&str> = runs.iter().flat_map(|r| test_names(r.batches)).collect();
        let ids = self.test_ids(&names).await?;
        with_pool!(self, p => {
            let mut tx = p.begin().await?;
            let mut done = Vec::with_capacity(runs.len());
            let mut offset = 0;
            for r in runs {
                let id = insert_run!(tx, r.run);
                let n = test_names(r.batches).count();
                insert_batches!(tx, id, r.batches, &ids[offset..offset + n]);
                offset += n;
                sqlx::query(FINISH_RUN)
                    .bind(unix_millis(r.ended))
                    .bind(r.status)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                done.push(id);
            }
            tx.commit().await?;
            Ok(done)
        })
    }

    /// The ids of `names`, in their order, creating the missing ones.
    /// Outside the batch's transaction and in sorted order, so concurrent
    /// writers inserting the same new names neither deadlock nor hold
    /// locks for long.
    async fn test_ids(&self, names: &[&str]) -> Result<Vec<i64>> {
        let mut ids = vec![0; names.len()];
        // The names not seen before, with where they go, by name.
        let mut missing: Vec<(&str, usize)> = Vec::new();
        {
            let cache = self.test_ids.lock().unwrap_or_else(|e| e.into_inner());
            for (i, name) in names.iter().enumerate() {
                match cache.get(*name) {
                    Some(&id) => ids[i] = id,
                    None => missing.push((name, i)),
                }
            }
        }
        if missing.is_empty() {
            return Ok(ids);
        }
        missing.sort_unstable();
        let mut unique: Vec<&str> = missing.iter().map(|&(name, _)| name).collect();
        unique.dedup();
        // Byte order on both backends, as Rust sorts: the ids come back
        // in `unique`'s order, without their names.
        let order = match self.pool {
            Pool::Sqlite(_) => ") ORDER BY name",
            Pool::Postgres(_) => ") ORDER BY name COLLATE \"C\"",
        };
        let mut found: Vec<i64> = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(ROWS_PER_INSERT) {
            let chunk_ids: Vec<i64> = with_pool!(self, p => {
                let mut q = QueryBuilder::new("INSERT INTO tests (name) ");
                q.push_values(chunk, |mut row, name| {
                    row.push_bind(*name);
                });
                q.push(" ON CONFLICT (name) DO NOTHING");
                q.build().execute(p).await?;
                let mut q = QueryBuilder::new("SELECT id FROM tests WHERE name IN (");
                let mut list = q.separated(", ");
                for name in chunk {
                    list.push_bind(*name);
                }
                q.push(order);
                q.build_query_scalar().fetch_all(p).await?
            });
            if chunk_ids.len() != chunk.len() {
                // Test names are never deleted: this would be a store
                // changed under us.
                return Err(HistoryError::Sql(sqlx::Error::RowNotFound));
            }
            let mut cache = self.test_ids.lock().unwrap_or_else(|e| e.into_inner());
            for (name, &id) in chunk.iter().zip(&chunk_ids) {
                cache.insert((*name).to_owned(), id);
            }
            found.extend(chunk_ids);
        }
        // Both sorted by name: one walk places every id.
        let mut u = 0;
        for (name, i) in missing {
            while unique[u] != name {
                u += 1;
            }
            ids[i] = found[u];
        }
        Ok(ids)
    }
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
    use crate::history::model::{AttemptRecord, Labels, ResultStatus, RunSource};

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

    fn batch(name: &str, tests: &[(&str, ResultStatus)]) -> BatchRecord {
        BatchRecord {
            name: name.into(),
            phase: "batch",
            status: "failed".into(),
            reason: "exit code 1".into(),
            started: SystemTime::now(),
            duration: Duration::from_millis(1500),
            log: Some("/tmp/warden-artifacts/net.log".into()),
            attempts: vec![AttemptRecord {
                status: "failed".into(),
                reason: "exit code 1".into(),
                duration: Duration::from_secs(1),
            }],
            tests: tests
                .iter()
                .map(|(n, s)| TestRecord {
                    name: format!("{name}/{n}"),
                    status: *s,
                    duration: Some(Duration::from_millis(7)),
                    message: (*s == ResultStatus::Failed).then(|| "boom".into()),
                })
                .collect(),
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
                &[("a", ResultStatus::Passed), ("b", ResultStatus::Failed)],
            ),
        )
        .await
        .unwrap();
        db.record_batch(run, &batch("bpf", &[("a", ResultStatus::Flaky)]))
            .await
            .unwrap();
        db.finish_run(run, "failed", SystemTime::now())
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
