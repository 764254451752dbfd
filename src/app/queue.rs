//! `warden run --queue`: joining the run key's queue before the batches
//! start (a PostgreSQL history and a run key required, the same batches
//! on every machine), and the summary's line after.

use std::sync::Arc;

use anyhow::{Context, bail};

use crate::cli::RunArgs;
use crate::history::model::RunRecord;
use crate::history::{Access, Db, Location};
use crate::outcome::Outcome;
use crate::phase::Phase;
use crate::plan::Plan;
use crate::queue::store::{self, Runner};
use crate::queue::{Queue, RunKey, fingerprint};
use crate::status::Status;

/// The run key: `--run-key`, else the CI's environment.
pub(super) fn run_key(given: Option<&RunKey>) -> anyhow::Result<RunKey> {
    match given {
        Some(k) => Ok(k.clone()),
        None => Ok(RunKey::from_env(|v| std::env::var(v).ok())?),
    }
}

/// Joins (or makes) the queue of this run's key, in the plan's start
/// order (longest first by the history), and says so.
pub(super) fn join(
    args: &RunArgs,
    plan: &Plan,
    run: Option<&RunRecord>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Arc<Queue>> {
    if !matches!(plan.history, Location::Postgres(_)) {
        bail!(
            "queue mode needs a PostgreSQL history shared by the machines (--history postgres://…, \
             WARDEN_HISTORY or [run] history); this run's is {}",
            plan.history
        );
    }
    if args.partition.is_some() {
        bail!("queue mode and --partition exclude each other: the queue shares out every batch");
    }
    let key = run_key(args.run_key.as_ref())?;
    let Some(run) = run else {
        bail!("queue mode needs the history on");
    };
    if args.queue_lease < std::time::Duration::from_millis(300) {
        bail!("--queue-lease must be at least 300ms");
    }
    let me = Runner {
        host: run.host.clone(),
        pid: std::process::id(),
        uuid: run.uuid.clone(),
    };
    let mut positions = vec![0_i32; plan.batches.len()];
    for (rank, &i) in plan.order.iter().enumerate() {
        positions[i] = i32::try_from(rank).unwrap_or(i32::MAX);
    }
    let batches: Vec<(String, i32)> = plan
        .batches
        .iter()
        .zip(positions)
        .map(|(b, p)| (b.config.name.to_string(), p))
        .collect();
    let print = fingerprint(&plan.batches);
    let (pool, joined) = runtime.block_on(async {
        let db = Db::open(&plan.history, Access::Write)
            .await
            .context("cannot open the queue's store")?;
        let crate::history::db::Pool::Postgres(pool) = &db.pool else {
            bail!("queue mode needs a PostgreSQL history");
        };
        let joined = store::join(pool, &key, &print, &batches, &me)
            .await
            .with_context(|| format!("cannot join queue {key}"))?;
        Ok((pool.clone(), joined))
    })?;
    let how = match (joined.created, &joined.seeded_from) {
        (true, Some(from)) => format!("made it from what did not pass in {from}"),
        (true, None) => "made it".to_owned(),
        (false, _) => "joined".to_owned(),
    };
    out!(
        "warden: queue {key}: {how}, {} {}, lease {}",
        joined.batches,
        if joined.batches == 1 {
            "batch"
        } else {
            "batches"
        },
        crate::duration::exact(args.queue_lease)
    );
    Ok(Queue::new(pool, key.to_string(), me, args.queue_lease))
}

/// The summary's line: what this machine ran of the queue.
pub(super) fn note(q: &Queue, outcomes: &[Outcome]) -> String {
    let ran = outcomes
        .iter()
        .filter(|o| o.phase == Phase::Batch && o.status != Status::NotRun)
        .count();
    let batches = if ran == 1 { "batch" } else { "batches" };
    format!(
        "Queue: {}: this machine ran {ran} {batches}; the whole run: warden report --run-key '{}'",
        q.key(),
        q.key()
    )
}
