//! A large import's partition of `results` (PostgreSQL,
//! migrations/postgres/0012): its runs' ids reserved as one range, its
//! rows loaded into a table of its own without a primary key, the key
//! built once over them, and the table attached as the partition of that
//! range just before the import commits.
//!
//! Why: a row copied into an indexed table costs the server an index
//! insert per row; the same million rows into a bare table and a key
//! built after them took 0.45 s + 0.3 s against 1.5 s (bench/ingest.py).
//! Recorded runs and small imports write into the partition of their
//! range, which the insert of each run creates when missing (0012's
//! trigger): a partition per small import would leave a lookup by test
//! one probe per partition more each time.
//!
//! The range: the next id of the runs' sequence plus [`GAP`], and the
//! sequence set past the range. The gap keeps the range clear of the ids
//! other writers take meanwhile (between the `nextval` and the `setval`)
//! and of the partition such an id creates (10,000 ids, 0012); imports
//! take their ranges one at a time ([`RESERVE_LOCK`]). An import that
//! rolls back leaves its range unused.
//!
//! The partition's BRIN index by run and its index of failing results are
//! made before the rows go in (a few bytes per 32 pages, and one entry in
//! fifty); the rows go in run after run, so that BRIN index finds a run
//! in its pages only.

use sqlx::postgres::PgConnection;

/// An import with this many results or more loads a partition of its own.
pub(super) const OWN_PARTITION_RESULTS: usize = 100_000;

/// Run ids left unused below an import's range.
const GAP: i64 = 1_000_000;

/// Held to the import's commit: two imports reserving at once would take
/// overlapping ranges.
const RESERVE_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('warden.results_import'))";

/// The reserved range's first id: `nextval` + [`GAP`], the sequence left
/// at its last.
const RESERVE: &str = "WITH v AS (SELECT nextval(pg_get_serial_sequence('runs', 'id')) + $2 AS first) \
     SELECT first, setval(pg_get_serial_sequence('runs', 'id'), first + $1 - 1) FROM v";

/// 0012's trigger leaves this transaction's runs alone: their partition
/// is this one.
const OWN: &str = "SET LOCAL warden.own_partition = 'on'";

/// A range of run ids and the table that holds their results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Partition {
    /// The first run id.
    pub first: i64,
    /// One past the last run id.
    pub end: i64,
}

impl Partition {
    /// The table's name, as 0012 names partitions: `results_` and the
    /// first id.
    pub fn table(&self) -> String {
        format!("results_{}", self.first)
    }

    /// The run id of the `n`th run of the import.
    pub fn run_id(&self, n: usize) -> i64 {
        self.first + n as i64
    }
}

/// Whether an import of `results` loads a partition of its own.
pub(super) fn wanted(results: usize) -> bool {
    results >= OWN_PARTITION_RESULTS
}

/// Reserves the ids of `runs` runs and creates their table, within the
/// import's transaction `conn`.
pub(super) async fn reserve(
    conn: &mut PgConnection,
    runs: usize,
) -> Result<Partition, sqlx::Error> {
    sqlx::query(RESERVE_LOCK).execute(&mut *conn).await?;
    let runs = i64::try_from(runs.max(1)).unwrap_or(i64::MAX);
    let (first, _): (i64, i64) = sqlx::query_as(RESERVE)
        .bind(runs)
        .bind(GAP)
        .fetch_one(&mut *conn)
        .await?;
    let part = Partition {
        first,
        end: first + runs,
    };
    sqlx::query(OWN).execute(&mut *conn).await?;
    let table = part.table();
    // The CHECK spares the attach a scan of the rows: it proves them in
    // range.
    let create = format!(
        "CREATE TABLE {table} (LIKE results, \
         CHECK (run_id >= {first} AND run_id < {end})); \
         CREATE INDEX {table}_run ON {table} USING brin (run_id) \
         WITH (pages_per_range = 32, autosummarize = on); \
         CREATE INDEX {table}_failing ON {table} (test_id) WHERE status IN (2, 3)",
        first = part.first,
        end = part.end,
    );
    // Only integers go into the text.
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut *conn)
        .await?;
    Ok(part)
}

/// Builds the primary key of `part` (nothing without one): after its
/// rows, before [`attach`].
pub(super) async fn build_key(
    conn: &mut PgConnection,
    part: Option<&Partition>,
) -> Result<(), sqlx::Error> {
    let Some(part) = part else {
        return Ok(());
    };
    let table = part.table();
    // The sort of the key's entries in memory (the default 64 MB spills
    // past about a million results).
    let key = format!(
        "SET LOCAL maintenance_work_mem = '256MB'; \
         ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY (test_id, run_id)"
    );
    // Only an integer goes into the text.
    sqlx::raw_sql(sqlx::AssertSqlSafe(key))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Attaches the partition, the last step of the import before its
/// commit: the attach holds `results` in SHARE UPDATE EXCLUSIVE mode to
/// the commit (recording goes on; another partition's attach waits).
pub(super) async fn attach(conn: &mut PgConnection, part: &Partition) -> Result<(), sqlx::Error> {
    let table = part.table();
    let attach = format!(
        "ALTER TABLE results ATTACH PARTITION {table} FOR VALUES FROM ({first}) TO ({end}); \
         INSERT INTO results_parts (lo, hi, name) VALUES ({first}, {end}, '{table}')",
        first = part.first,
        end = part.end,
    );
    // Only integers go into the text.
    sqlx::raw_sql(sqlx::AssertSqlSafe(attach))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_named_by_its_first_run() {
        let p = Partition {
            first: 1_000_042,
            end: 1_000_142,
        };
        assert_eq!(p.table(), "results_1000042");
        assert_eq!(p.run_id(0), 1_000_042);
        assert_eq!(p.run_id(99), 1_000_141);
        assert!(wanted(OWN_PARTITION_RESULTS));
        assert!(!wanted(OWN_PARTITION_RESULTS - 1));
    }
}
