//! Writing results into PostgreSQL with `COPY`. The rows leave keyed by
//! test id and sorted by (test id, run) ([`keyed`](super::keyed)): the
//! test names are looked up (and the new ones inserted) in two or three
//! statements for the whole write, then the rows stream in COPY's
//! binary format (no digits to parse, nothing to unescape):
//!
//! - an import's runs ([`Runs::New`]), created in the same transaction,
//!   can hold no result yet: straight into `results`, and each run's
//!   counts (`runs.tests_run`, `tests_failed`, migrations/postgres/0003)
//!   are those of the rows sent;
//! - a recording's run ([`Runs::Recording`]) may hold results already
//!   (its batches are written as they finish, and a batch may come again):
//!   into a temporary staging table, then one INSERT … SELECT that keeps
//!   a result already stored for its test and run (`ON CONFLICT DO
//!   NOTHING`) and counts only the rows that went in.
//!
//! A multi-row INSERT with bound parameters costs the server a parse, a
//! plan and a parameter decode per thousand rows, and warden a round trip
//! each; joining names to ids in SQL cost it a hash join and a sort of
//! every row (bench/ingest.py measures against `psql \copy`).
//!
//! PostgreSQL only; SQLite takes the same [`keyed`](super::keyed) rows in
//! multi-row INSERTs ([`db`](super::db)), where there is no protocol to
//! save.
//!
//! Test names: the write first takes `tests` in ROW EXCLUSIVE mode, held
//! to its commit, so `warden prune` (which deletes unused names under
//! SHARE ROW EXCLUSIVE, history::prune) cannot remove a name between its
//! look-up here and the results that use it (`results` has no foreign
//! keys, migrations/postgres/0007).

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use sqlx::postgres::PgConnection;

pub(super) use super::keyed::RunResults;
use super::keyed::{self, Names, Order, Row};
use super::model::duration_millis;
use super::partition::Partition;

/// Held to the transaction's end: see the module doc.
const LOCK_TESTS: &str = "LOCK TABLE tests IN ROW EXCLUSIVE MODE";

const SELECT_TESTS: &str = "SELECT name, id FROM tests WHERE name = ANY($1)";

/// The names the store lacks, in name order: concurrent writers adding
/// the same names take their index entries in the same order (one waits
/// for the other, neither deadlocks). A name another writer added
/// meanwhile comes back from the next [`SELECT_TESTS`].
const INSERT_TESTS: &str = "INSERT INTO tests (name) \
     SELECT n FROM unnest($1::text[]) AS u (n) ORDER BY n \
     ON CONFLICT (name) DO NOTHING RETURNING name, id";

const COPY_RESULTS: &str = "COPY results \
     (test_id, run_id, batch_id, status, duration_ms, message) FROM STDIN (FORMAT binary)";

/// An import's runs' counts, from the rows it sent.
const COUNT_NEW: &str = "UPDATE runs SET tests_run = runs.tests_run + c.ran, \
     tests_failed = runs.tests_failed + c.failed \
     FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS c (id, ran, failed) \
     WHERE runs.id = c.id";

/// The staging table of a recording, one per transaction: `ON COMMIT
/// DROP` leaves nothing behind on a pooled connection, and a temporary
/// table is neither WAL-logged nor visible to the fleet's other writers.
const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE warden_results_in (\
     test_id BIGINT NOT NULL, run_id BIGINT NOT NULL, batch_id BIGINT NOT NULL, \
     status BIGINT NOT NULL, duration_ms BIGINT, message TEXT) ON COMMIT DROP";

const COPY_STAGING: &str = "COPY warden_results_in \
     (test_id, run_id, batch_id, status, duration_ms, message) FROM STDIN (FORMAT binary)";

/// The staged results, and each run's counts of those that went in: a
/// result already stored for its test and run stays, and neither goes in
/// nor counts. The rows were staged in key order, and a scan of the
/// staging table returns them so (the order only makes each insert land
/// next to the last one in the primary key). Status codes: 1 passed,
/// 2 failed, 3 flaky, 4 skipped (`TestStatus::code`). Answers how many
/// went in: all of them lets the rollups count the rows sent
/// ([`write`]).
const INSERT_STAGED: &str = "WITH written AS (\
     INSERT INTO results (test_id, run_id, batch_id, status, duration_ms, message) \
     SELECT test_id, run_id, batch_id, status, duration_ms, message FROM warden_results_in \
     ON CONFLICT (test_id, run_id) DO NOTHING \
     RETURNING run_id, status), \
     counted AS (SELECT run_id, \
     COUNT(*) FILTER (WHERE status IN (1, 2, 3)) AS ran, \
     COUNT(*) FILTER (WHERE status = 2) AS failed \
     FROM written GROUP BY run_id), \
     updated AS (UPDATE runs SET tests_run = runs.tests_run + counted.ran, \
     tests_failed = runs.tests_failed + counted.failed \
     FROM counted WHERE runs.id = counted.run_id) \
     SELECT COUNT(*) FROM written";

/// Test ids by name, as a write found them.
pub(super) type Known<'a> = HashMap<&'a str, i64, foldhash::fast::RandomState>;

/// Whether the runs written to may already hold results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Runs {
    /// Runs recorded batch by batch (`warden run`).
    Recording,
    /// Runs inserted in the same transaction (`warden import`).
    New,
}

/// Bytes of COPY data per message to the server.
const SEND_BYTES: usize = 1 << 20;

/// Writes the results of `runs` within the caller's transaction `conn`,
/// counting them into their runs. Answers the rows sent ([`keyed`]
/// order) when every one of them went in, for the daily rollups
/// (history::rollup) to count without reading them back; `None` when a
/// recording's batch came again and some were already stored.
///
/// `own`: an import's own partition (history::partition), whose table
/// the rows go into, run after run.
///
/// `known`: the ids of names earlier writes of the same transaction
/// found (an import written group after group), looked up no more and
/// added to.
pub(super) async fn write<'a>(
    conn: &mut PgConnection,
    runs: &[RunResults<'_, 'a>],
    kind: Runs,
    own: Option<&Partition>,
    known: Option<&mut Known<'a>>,
) -> Result<Option<Vec<Row>>, sqlx::Error> {
    if runs
        .iter()
        .all(|r| r.batches.iter().all(|(b, _)| b.is_empty()))
    {
        return Ok(Some(Vec::new()));
    }
    let names = Names::of(runs);
    let ids = match known {
        None => test_ids(conn, &names.sorted).await?,
        Some(known) => {
            let mut ids: Vec<i64> = names
                .sorted
                .iter()
                .map(|n| known.get(n).copied().unwrap_or(0))
                .collect();
            let missing: Vec<&str> = names
                .sorted
                .iter()
                .zip(&ids)
                .filter(|(_, id)| **id == 0)
                .map(|(n, _)| *n)
                .collect();
            if !missing.is_empty() {
                let found = test_ids(conn, &missing).await?;
                let mut found = missing.iter().zip(found);
                for (n, id) in names.sorted.iter().zip(&mut ids) {
                    if *id == 0
                        && let Some((_, f)) = found.next()
                    {
                        *id = f;
                        known.insert(n, f);
                    }
                }
            }
            ids
        }
    };
    let order = if kind == Runs::New && own.is_some() {
        Order::Run
    } else {
        Order::Key
    };
    let (rows, counts) = keyed::rows(runs, &names, &ids, order);
    drop(names);
    match kind {
        Runs::New => {
            match own {
                Some(part) => {
                    // Run after run (`order`): the partition's BRIN index
                    // by run then finds a run in its own pages (its
                    // primary key is built after, whatever the order).
                    // FREEZE: the table is this transaction's, so its rows
                    // go in frozen and visible to all once it commits, and
                    // no later reader or vacuum rewrites their pages.
                    let copy = format!(
                        "COPY {} (test_id, run_id, batch_id, status, duration_ms, message) \
                         FROM STDIN (FORMAT binary, FREEZE)",
                        part.table()
                    );
                    send(conn, &copy, runs, &rows).await?;
                }
                None => send(conn, COPY_RESULTS, runs, &rows).await?,
            }
            let (mut id, mut ran, mut failed) = (Vec::new(), Vec::new(), Vec::new());
            for (r, c) in runs.iter().zip(&counts) {
                id.push(r.run);
                ran.push(c.ran);
                failed.push(c.failed);
            }
            sqlx::query(COUNT_NEW)
                .bind(id)
                .bind(ran)
                .bind(failed)
                .execute(&mut *conn)
                .await?;
        }
        Runs::Recording => {
            sqlx::query(CREATE_STAGING).execute(&mut *conn).await?;
            send(conn, COPY_STAGING, runs, &rows).await?;
            let went_in: i64 = sqlx::query_scalar(INSERT_STAGED)
                .fetch_one(&mut *conn)
                .await?;
            if went_in != rows.len() as i64 {
                return Ok(None);
            }
        }
    }
    Ok(Some(rows))
}

/// The id of each of `names` (sorted, distinct), inserting those the
/// store lacks. A name is stored as [`field`] writes text: a NUL becomes
/// U+FFFD (so two names may be one test).
async fn test_ids(conn: &mut PgConnection, names: &[&str]) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query(LOCK_TESTS).execute(&mut *conn).await?;
    let stored: Vec<Cow<'_, str>> = names.iter().map(|n| stored_text(n)).collect();
    // Each stored name's first position; the rare others (`same`) copy
    // its id at the end.
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(stored.len());
    let mut same: Vec<(usize, usize)> = Vec::new();
    let mut missing: Vec<&str> = Vec::with_capacity(stored.len());
    for (n, name) in stored.iter().enumerate() {
        match position.entry(name) {
            Entry::Occupied(first) => same.push((n, *first.get())),
            Entry::Vacant(e) => {
                e.insert(n);
                missing.push(name);
            }
        }
    }
    let mut ids: Vec<i64> = vec![0; names.len()];
    for statement in [SELECT_TESTS, INSERT_TESTS, SELECT_TESTS] {
        if missing.is_empty() {
            break;
        }
        let found: Vec<(String, i64)> = sqlx::query_as(statement)
            .bind(&missing)
            .fetch_all(&mut *conn)
            .await?;
        for (name, id) in found {
            if let Some(&n) = position.get(name.as_str()) {
                ids[n] = id;
            }
        }
        // Ids start at 1: 0 is "not found yet".
        missing.retain(|m| ids[position[m]] == 0);
    }
    if !missing.is_empty() {
        // Cannot happen while `tests` is held against prune; a store
        // changed some other way fails the write, which rolls back.
        return Err(sqlx::Error::RowNotFound);
    }
    for (n, first) in same {
        ids[n] = ids[first];
    }
    Ok(ids)
}

/// Text as PostgreSQL can hold it: a NUL becomes U+FFFD.
fn stored_text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Streams `rows` with the COPY `statement`.
async fn send(
    conn: &mut PgConnection,
    statement: &str,
    runs: &[RunResults<'_, '_>],
    rows: &[Row],
) -> Result<(), sqlx::Error> {
    let mut copy = conn.copy_in_raw(statement).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(SEND_BYTES + 4096);
    buf.extend_from_slice(BINARY_HEADER);
    for r in rows {
        let run = &runs[r.run as usize];
        let (results, batch_id) = run.batches[r.batch as usize];
        let i = r.index as usize;
        row(
            &mut buf,
            r.test_id,
            run.run,
            batch_id,
            i64::from(results.status(i).code()),
            results.duration(i).map(duration_millis),
            results.message(i),
        );
        if buf.len() >= SEND_BYTES {
            // On an error, dropping `copy` tells the server the COPY
            // failed; the caller's transaction rolls back.
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(BINARY_TRAILER);
    copy.send(buf.as_slice()).await?;
    copy.finish().await?;
    Ok(())
}

/// The start of COPY's binary format: signature, flags (none) and the
/// length of a header extension (none).
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The end of COPY's binary format: a field count of -1.
const BINARY_TRAILER: &[u8] = &(-1_i16).to_be_bytes();

/// Appends one row in COPY's binary format: the number of fields, then
/// each field's length in bytes (-1: NULL) and its bytes; a BIGINT is 8
/// bytes big-endian, TEXT its UTF-8. The server parses no digits and
/// unescapes nothing.
fn row(
    buf: &mut Vec<u8>,
    test: i64,
    run: i64,
    batch: i64,
    status: i64,
    duration_ms: Option<i64>,
    message: Option<&str>,
) {
    buf.extend_from_slice(&6_i16.to_be_bytes());
    for v in [test, run, batch, status] {
        bigint(buf, v);
    }
    match duration_ms {
        Some(ms) => bigint(buf, ms),
        None => buf.extend_from_slice(&(-1_i32).to_be_bytes()),
    }
    match message {
        Some(m) => text(buf, m),
        None => buf.extend_from_slice(&(-1_i32).to_be_bytes()),
    }
}

fn bigint(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&8_i32.to_be_bytes());
    buf.extend_from_slice(&v.to_be_bytes());
}

/// A TEXT field. PostgreSQL text cannot hold NUL, which test output can:
/// it becomes U+FFFD ([`stored_text`]), where a bound parameter would
/// fail the whole write. Longer than 1 GiB (PostgreSQL's limit for a
/// value, far past a message's first line) is cut at a character.
fn text(buf: &mut Vec<u8>, s: &str) {
    let s = stored_text(s);
    let mut end = s.len().min(MAX_TEXT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    // `end` <= MAX_TEXT < i32::MAX.
    buf.extend_from_slice(&(end as i32).to_be_bytes());
    buf.extend_from_slice(&s.as_bytes()[..end]);
}

/// Bytes of the longest text value sent.
const MAX_TEXT: usize = (1 << 30) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_becomes_a_replacement_character() {
        assert_eq!(stored_text("nul\0here"), "nul\u{FFFD}here");
        assert!(matches!(stored_text("plain"), Cow::Borrowed("plain")));
        let mut buf = Vec::new();
        text(&mut buf, "a\0");
        assert_eq!(buf, b"\0\0\0\x04a\xef\xbf\xbd");
    }

    #[test]
    fn a_binary_row_has_six_fields_and_null_markers() {
        let mut buf = Vec::new();
        row(&mut buf, 3, 7, 9, 2, None, Some("m\tx\\N"));
        let mut want: Vec<u8> = vec![0, 6];
        for v in [3_u8, 7, 9, 2] {
            want.extend_from_slice(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, v]);
        }
        want.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        want.extend_from_slice(&[0, 0, 0, 5]);
        want.extend_from_slice(b"m\tx\\N");
        assert_eq!(buf, want);
        assert_eq!(BINARY_HEADER.len(), 19);
    }
}
