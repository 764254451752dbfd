//! The queue's SQL (migrations/postgres/0008): joining a run key's queue
//! (creating it, or seeding it from an earlier attempt), claiming under a
//! lease, renewing, finishing, releasing, and reading it back for
//! `warden report`. PostgreSQL only (`FOR UPDATE SKIP LOCKED`, leases on
//! the server's clock `now()`, so the machines' clocks never matter):
//! queue mode refuses a SQLite store before any of this runs.

use std::time::Duration;

use sqlx::postgres::PgPool;

use super::QueueError;
use super::key::RunKey;

/// This machine's run, as the queue names its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runner {
    pub host: String,
    pub pid: u32,
    /// Its run's uuid in the history's `runs`.
    pub uuid: String,
}

/// What joining found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// This machine made the queue.
    pub created: bool,
    /// The earlier attempt it was seeded from (made by this machine or another).
    pub seeded_from: Option<String>,
    /// Batches in the queue.
    pub batches: i64,
}

/// What a claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// A batch, now this runner's until its lease expires; `lost_by`: the
    /// runner (host, pid) whose lease on it expired, when this is a re-run.
    Batch {
        name: String,
        lost_by: Option<(String, i64)>,
    },
    /// Nothing to claim now, but batches are still running elsewhere (a
    /// lease may yet expire).
    Wait,
    /// Every batch is done.
    Empty,
}

/// Joins `key`'s queue: creates it when this machine is the first, from
/// `batches` (name, position) — or, for an attempt after the first, from
/// the latest earlier attempt's queue: only its batches that did not pass
/// (failed, unfinished, never claimed). Refuses a queue made from other
/// batches (`fingerprint`). Records `me` as one of the key's runs.
pub async fn join(
    pool: &PgPool,
    key: &RunKey,
    fingerprint: &str,
    batches: &[(String, i32)],
    me: &Runner,
) -> Result<Joined, QueueError> {
    let run_key = key.to_string();
    let mut tx = pool.begin().await?;
    let earlier: Option<(String, String)> = sqlx::query_as(
        "SELECT run_key, fingerprint FROM queues WHERE base = $1 AND attempt < $2 \
         ORDER BY attempt DESC LIMIT 1",
    )
    .bind(&key.base)
    .bind(key.attempt as i32)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((earlier_key, theirs)) = &earlier
        && theirs != fingerprint
    {
        return Err(QueueError::Fingerprint {
            key: earlier_key.clone(),
            ours: fingerprint.to_owned(),
            theirs: theirs.clone(),
        });
    }
    let seeded_from = earlier.map(|(k, _)| k);
    let created = sqlx::query(
        "INSERT INTO queues (run_key, base, attempt, fingerprint, seeded_from) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_key) DO NOTHING",
    )
    .bind(&run_key)
    .bind(&key.base)
    .bind(key.attempt as i32)
    .bind(fingerprint)
    .bind(seeded_from.as_deref())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if created {
        match &seeded_from {
            Some(from) => {
                // Success as `Status::is_success` says it.
                sqlx::query(
                    "INSERT INTO queue_batches (run_key, name, position) \
                     SELECT $1, name, position FROM queue_batches \
                     WHERE run_key = $2 AND NOT (state = 'done' AND status IN ('passed', 'flaky'))",
                )
                .bind(&run_key)
                .bind(from)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                let names: Vec<&str> = batches.iter().map(|(n, _)| n.as_str()).collect();
                let positions: Vec<i32> = batches.iter().map(|(_, p)| *p).collect();
                sqlx::query(
                    "INSERT INTO queue_batches (run_key, name, position) \
                     SELECT $1, n, p FROM UNNEST($2::text[], $3::int[]) AS u (n, p)",
                )
                .bind(&run_key)
                .bind(&names)
                .bind(&positions)
                .execute(&mut *tx)
                .await?;
            }
        }
    } else {
        // Made by another machine, committed before our insert returned.
        let (theirs, from): (String, Option<String>) =
            sqlx::query_as("SELECT fingerprint, seeded_from FROM queues WHERE run_key = $1")
                .bind(&run_key)
                .fetch_one(&mut *tx)
                .await?;
        if theirs != fingerprint {
            return Err(QueueError::Fingerprint {
                key: run_key,
                ours: fingerprint.to_owned(),
                theirs,
            });
        }
        let _ = from;
    }
    let (seeded_from, batches): (Option<String>, i64) = sqlx::query_as(
        "SELECT q.seeded_from, (SELECT COUNT(*) FROM queue_batches b WHERE b.run_key = q.run_key) \
         FROM queues q WHERE q.run_key = $1",
    )
    .bind(&run_key)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO queue_runs (run_key, run_uuid, host, pid) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&run_key)
    .bind(&me.uuid)
    .bind(&me.host)
    .bind(i64::from(me.pid))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Joined {
        created,
        seeded_from,
        batches,
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Claims the first batch in queue order that nobody holds: pending, or
/// running under a lease that expired (its runner stopped renewing).
/// Rows other machines are claiming at this instant are skipped, not
/// waited for.
pub async fn claim(
    pool: &PgPool,
    key: &str,
    me: &Runner,
    lease: Duration,
) -> Result<Claimed, QueueError> {
    let row: Option<(String, String, Option<String>, Option<i64>)> = sqlx::query_as(
        "WITH c AS (SELECT name, state AS was FROM queue_batches \
             WHERE run_key = $1 AND (state = 'pending' OR (state = 'running' AND lease_until < now())) \
             ORDER BY position LIMIT 1 FOR UPDATE SKIP LOCKED) \
         UPDATE queue_batches q SET state = 'running', host = $2, pid = $3, runner = $4, \
             lease_until = now() + $5 * interval '1 millisecond', claims = q.claims + 1, \
             lost_host = CASE WHEN q.state = 'running' THEN q.host ELSE q.lost_host END, \
             lost_pid = CASE WHEN q.state = 'running' THEN q.pid ELSE q.lost_pid END \
         FROM c WHERE q.run_key = $1 AND q.name = c.name \
         RETURNING q.name, c.was, q.lost_host, q.lost_pid",
    )
    .bind(key)
    .bind(&me.host)
    .bind(i64::from(me.pid))
    .bind(&me.uuid)
    .bind(millis(lease))
    .fetch_optional(pool)
    .await?;
    if let Some((name, _was, lost_host, lost_pid)) = row {
        return Ok(Claimed::Batch {
            name,
            lost_by: lost_host.zip(lost_pid),
        });
    }
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM queue_batches WHERE run_key = $1 AND state <> 'done'",
    )
    .bind(key)
    .fetch_one(pool)
    .await?;
    Ok(if open == 0 {
        Claimed::Empty
    } else {
        Claimed::Wait
    })
}

/// Extends the leases of every batch `me` holds; returns their names
/// (one missing from them is no longer ours).
pub async fn renew(
    pool: &PgPool,
    key: &str,
    me: &Runner,
    lease: Duration,
) -> Result<Vec<String>, QueueError> {
    Ok(sqlx::query_scalar(
        "UPDATE queue_batches SET lease_until = now() + $3 * interval '1 millisecond' \
         WHERE run_key = $1 AND runner = $2 AND state = 'running' RETURNING name",
    )
    .bind(key)
    .bind(&me.uuid)
    .bind(millis(lease))
    .fetch_all(pool)
    .await?)
}

/// Marks `name` done with its result, if `me` still holds it; `false`:
/// its lease was lost (another machine may have it now), nothing written.
pub async fn finish(
    pool: &PgPool,
    key: &str,
    me: &Runner,
    name: &str,
    status: &str,
    reason: &str,
    duration: Duration,
) -> Result<bool, QueueError> {
    Ok(sqlx::query(
        "UPDATE queue_batches SET state = 'done', status = $4, reason = $5, duration_ms = $6, \
         lease_until = NULL WHERE run_key = $1 AND runner = $2 AND name = $3 AND state = 'running'",
    )
    .bind(key)
    .bind(&me.uuid)
    .bind(name)
    .bind(status)
    .bind(reason)
    .bind(millis(duration))
    .execute(pool)
    .await?
    .rows_affected()
        == 1)
}

/// Gives `name` back to the queue at once (claimed, then not run: this
/// machine is stopping), if `me` still holds it.
pub async fn release(pool: &PgPool, key: &str, me: &Runner, name: &str) -> Result<(), QueueError> {
    sqlx::query(
        "UPDATE queue_batches SET state = 'pending', runner = NULL, host = NULL, pid = NULL, \
         lease_until = NULL, claims = claims - 1 \
         WHERE run_key = $1 AND runner = $2 AND name = $3 AND state = 'running'",
    )
    .bind(key)
    .bind(&me.uuid)
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

/// One batch of a run as `warden report` reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// The queue it is in (`BASE#N`).
    pub run_key: String,
    pub name: String,
    pub position: i32,
    pub state: String,
    pub claims: i32,
    pub host: Option<String>,
    pub pid: Option<i64>,
    pub runner: Option<String>,
    pub lost_host: Option<String>,
    pub lost_pid: Option<i64>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub duration_ms: Option<i64>,
    /// Milliseconds until its lease expires (negative: expired).
    pub lease_left_ms: Option<i64>,
}

/// Every batch of `key` with the attempts before it folded in: per name,
/// the row of the latest attempt that has it (an attempt holds only what
/// had not passed before), in queue order. `None`: no such queue.
pub async fn rows(pool: &PgPool, key: &RunKey) -> Result<Option<Vec<Row>>, QueueError> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT attempt FROM queues WHERE run_key = $1")
        .bind(key.to_string())
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT DISTINCT ON (b.name) b.run_key, b.name, b.position, b.state, b.claims, b.host, \
             b.pid, b.runner, b.lost_host, b.lost_pid, b.status, b.reason, b.duration_ms, \
             (EXTRACT(EPOCH FROM (b.lease_until - now())) * 1000)::BIGINT AS lease_left_ms \
         FROM queue_batches b JOIN queues q ON q.run_key = b.run_key \
         WHERE q.base = $1 AND q.attempt <= $2 \
         ORDER BY b.name, q.attempt DESC",
    )
    .bind(&key.base)
    .bind(key.attempt as i32)
    .fetch_all(pool)
    .await?;
    let mut rows = rows;
    rows.sort_by_key(|r| r.position);
    Ok(Some(rows))
}
