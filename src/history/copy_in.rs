//! Writing results into PostgreSQL with `COPY`: the rows stream into a
//! temporary staging table in PostgreSQL's text format, then three
//! set-based statements move them: the new test names into `tests`, the
//! results into `results` (joined to their test ids), and each run's
//! counts (`runs.tests_run`, `tests_failed`, migrations/postgres/0003)
//! from the rows that went in. A multi-row INSERT with bound parameters
//! costs the server a parse, a plan and a parameter decode per thousand
//! rows, and warden a round trip each: some 55,000 results/s. COPY is
//! the server's bulk-load path (bench/ingest.py measures both against
//! `psql \copy`).
//!
//! PostgreSQL only; SQLite keeps its prepared multi-row INSERTs
//! ([`db`](super::db)), where there is no protocol to save.
//!
//! Same rules as the INSERT path: a name twice in one run keeps its
//! first result (dropped here, before the rows leave, see
//! [`repeated`]); a result already in the store for its test and run
//! stays (`ON CONFLICT DO NOTHING`), and only the rows that went in are
//! counted.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::ops::Range;

use sqlx::postgres::PgConnection;

use super::model::duration_millis;
use super::results::Results;

/// The staging table, one per transaction: `ON COMMIT DROP` leaves
/// nothing behind on a pooled connection, and a temporary table is
/// neither WAL-logged nor visible to the fleet's other writers.
const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE warden_results_in (\
     run_id BIGINT NOT NULL, batch_id BIGINT NOT NULL, name TEXT NOT NULL, \
     status BIGINT NOT NULL, duration_ms BIGINT, message TEXT) ON COMMIT DROP";

const COPY_STAGING: &str = "COPY warden_results_in \
     (run_id, batch_id, name, status, duration_ms, message) FROM STDIN";

/// The planner knows nothing of a temporary table's rows until analysed
/// (autovacuum never sees it): a sample, so the joins below are hashed.
const ANALYZE_STAGING: &str = "ANALYZE warden_results_in";

/// The names the store lacks, in name order: concurrent writers adding
/// the same names take their index entries in the same order (one waits
/// for the other, neither deadlocks), and known names burn no id.
const INSERT_NEW_TESTS: &str = "INSERT INTO tests (name) \
     SELECT DISTINCT s.name FROM warden_results_in s \
     WHERE NOT EXISTS (SELECT 1 FROM tests t WHERE t.name = s.name) \
     ORDER BY s.name ON CONFLICT (name) DO NOTHING";

/// The results, and each run's counts of those that went in, for runs
/// that may hold results already (a recording writes a run's batches as
/// they finish): a result already stored for its test and run stays,
/// and neither goes in nor counts. In test-id order: each insert lands
/// next to the last one in the primary key. Status codes: 1 passed,
/// 2 failed, 3 flaky, 4 skipped (`TestStatus::code`).
macro_rules! insert_results {
    ($conflict:literal) => {
        concat!(
            "WITH written AS (\
             INSERT INTO results (test_id, run_id, batch_id, status, duration_ms, message) \
             SELECT t.id, s.run_id, s.batch_id, s.status, s.duration_ms, s.message \
             FROM warden_results_in s JOIN tests t ON t.name = s.name \
             ORDER BY t.id, s.run_id ",
            $conflict,
            " RETURNING run_id, status), \
             counted AS (SELECT run_id, \
             COUNT(*) FILTER (WHERE status IN (1, 2, 3)) AS ran, \
             COUNT(*) FILTER (WHERE status = 2) AS failed \
             FROM written GROUP BY run_id) \
             UPDATE runs SET tests_run = runs.tests_run + counted.ran, \
             tests_failed = runs.tests_failed + counted.failed \
             FROM counted WHERE runs.id = counted.run_id"
        )
    };
}
const INSERT_RESULTS: &str = insert_results!("ON CONFLICT (test_id, run_id) DO NOTHING");

/// The same for runs created in the caller's transaction (an import),
/// which can hold no result yet: a plain insert, a third cheaper than
/// one that looks for a conflict first.
const INSERT_RESULTS_OF_NEW_RUNS: &str = insert_results!("");

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

/// The results of some batches of one run, each batch with its row id.
pub(super) struct RunResults<'a> {
    pub run: i64,
    pub batches: &'a [(&'a dyn Results, i64)],
}

/// Writes the results of `runs` within the caller's transaction `conn`,
/// counting them into their runs.
pub(super) async fn write(
    conn: &mut PgConnection,
    runs: &[RunResults<'_>],
    kind: Runs,
) -> Result<(), sqlx::Error> {
    if runs
        .iter()
        .all(|r| r.batches.iter().all(|(b, _)| b.is_empty()))
    {
        return Ok(());
    }
    sqlx::query(CREATE_STAGING).execute(&mut *conn).await?;
    let mut copy = conn.copy_in_raw(COPY_STAGING).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(SEND_BYTES + 4096);
    for r in runs {
        // (batch, index within it) of each result of the run, in order.
        let numbered: Vec<(usize, usize)> = r
            .batches
            .iter()
            .enumerate()
            .flat_map(|(k, (b, _))| (0..b.len()).map(move |i| (k, i)))
            .collect();
        let name = |n: usize| {
            let (k, i) = numbered[n];
            r.batches[k].0.name(i)
        };
        let skip = repeated(0..numbered.len(), name);
        for (n, &(k, i)) in numbered.iter().enumerate() {
            if skip.contains(&n) {
                continue;
            }
            let (results, batch_id) = r.batches[k];
            row(
                &mut buf,
                r.run,
                batch_id,
                results.name(i),
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
    }
    if !buf.is_empty() {
        copy.send(buf.as_slice()).await?;
    }
    copy.finish().await?;
    sqlx::query(ANALYZE_STAGING).execute(&mut *conn).await?;
    sqlx::query(INSERT_NEW_TESTS).execute(&mut *conn).await?;
    let insert = match kind {
        Runs::Recording => INSERT_RESULTS,
        Runs::New => INSERT_RESULTS_OF_NEW_RUNS,
    };
    sqlx::query(insert).execute(&mut *conn).await?;
    Ok(())
}

/// The numbers among `range` whose name (`name(n)`) came before at a
/// lower number: the results a run does not keep. Names are hashed
/// first (no copies; the usual answer is none) and only those whose hash
/// repeats are compared whole.
fn repeated<'n>(range: Range<usize>, name: impl Fn(usize) -> &'n str) -> HashSet<usize> {
    let state = std::collections::hash_map::RandomState::new();
    let mut seen: HashSet<u64> = HashSet::with_capacity(range.len());
    let mut again: HashSet<u64> = HashSet::new();
    for n in range.clone() {
        let h = state.hash_one(name(n));
        if !seen.insert(h) {
            again.insert(h);
        }
    }
    drop(seen);
    let mut skip = HashSet::new();
    if again.is_empty() {
        return skip;
    }
    let mut first: HashSet<&str> = HashSet::new();
    for n in range {
        let name = name(n);
        if again.contains(&state.hash_one(name)) && !first.insert(name) {
            skip.insert(n);
        }
    }
    skip
}

/// Appends one row of COPY text: tab-separated fields, `\N` for NULL,
/// a newline at the end.
fn row(
    buf: &mut Vec<u8>,
    run: i64,
    batch: i64,
    name: &str,
    status: i64,
    duration_ms: Option<i64>,
    message: Option<&str>,
) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(buf, "{run}\t{batch}\t");
    field(buf, name);
    let _ = write!(buf, "\t{status}\t");
    match duration_ms {
        Some(ms) => {
            let _ = write!(buf, "{ms}");
        }
        None => buf.extend_from_slice(b"\\N"),
    }
    buf.push(b'\t');
    match message {
        Some(m) => field(buf, m),
        None => buf.extend_from_slice(b"\\N"),
    }
    buf.push(b'\n');
}

/// A text value in COPY's text format: backslash, tab, newline and
/// carriage return escaped (so a value `\N` is the two characters, not
/// NULL). PostgreSQL text cannot hold NUL, which test output can: it
/// becomes U+FFFD, where a bound parameter would fail the whole write.
fn field(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (at, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            0 => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        buf.extend_from_slice(&bytes[plain..at]);
        buf.extend_from_slice(escaped);
        plain = at + 1;
    }
    buf.extend_from_slice(&bytes[plain..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        let mut buf = Vec::new();
        field(&mut buf, s);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn copy_text_escapes_what_the_format_reads() {
        assert_eq!(text("plain ünïcode"), "plain ünïcode");
        assert_eq!(text("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(text("\\N"), "\\\\N");
        assert_eq!(text("'\"\\"), "'\"\\\\");
        assert_eq!(text("nul\0here"), "nul\u{FFFD}here");
    }

    #[test]
    fn a_row_has_six_fields_and_null_markers() {
        let mut buf = Vec::new();
        row(&mut buf, 7, 9, "b/t\tx", 2, None, Some("m"));
        row(&mut buf, 7, 9, "b/u", 1, Some(15), None);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "7\t9\tb/t\\tx\t2\t\\N\tm\n7\t9\tb/u\t1\t15\t\\N\n"
        );
    }

    #[test]
    fn the_first_of_a_repeated_name_stays() {
        let names = ["a", "b", "a", "c", "b", "a"];
        let mut skip: Vec<usize> = repeated(0..names.len(), |n| names[n]).into_iter().collect();
        skip.sort_unstable();
        assert_eq!(skip, [2, 4, 5]);
        assert!(repeated(0..3, |n| ["x", "y", "z"][n]).is_empty());
    }
}
