//! `warden run --rerun-failed FROM`: FROM (an artifacts directory, a JUnit
//! file, or a run uuid in the history) → what did not pass there
//! (`rerun_failed`) → the plan narrowed to it, before anything runs.

use std::path::Path;

use anyhow::{Context, bail};

use crate::history::{Access, Db, HistoryError, Location};
use crate::plan::Plan;
use crate::rerun_failed::{Failed, select};

/// Narrows `plan` to what did not pass in `from`; returns the line that
/// says what reruns, or `None` when nothing failed there (nothing to run).
pub(super) fn narrow(plan: &mut Plan, from: &str) -> anyhow::Result<Option<String>> {
    let failed = failed_in(from, &plan.history)?;
    if failed.batches.is_empty() {
        return Ok(None);
    }
    let selection = select(plan, &failed);
    if selection.kept.is_empty() {
        bail!(
            "--rerun-failed {from}: none of the batches that did not pass there is a batch of \
             this run (not in the config, or not selected): {}",
            selection.missing.join(", ")
        );
    }
    let mut line = format!(
        "warden: rerunning what did not pass in {from}: {}",
        selection.describe()
    );
    if !selection.missing.is_empty() {
        line.push_str(&format!(
            "; not in this run: {}",
            selection.missing.join(", ")
        ));
    }
    Ok(Some(line))
}

/// A directory: its `junit.xml`; a file: that report; else a run uuid in
/// the history.
fn failed_in(from: &str, history: &Location) -> anyhow::Result<Failed> {
    let path = Path::new(from);
    if path.is_dir() {
        let junit = path.join("junit.xml");
        return Ok(Failed::from_junit(&junit)?);
    }
    if path.is_file() {
        return Ok(Failed::from_junit(path)?);
    }
    if uuid::Uuid::parse_str(from).is_err() {
        bail!(
            "--rerun-failed {from}: no such directory or file, and not a run uuid \
             (give an artifacts directory, its junit.xml, or a run's uuid in the history)"
        );
    }
    let run = super::store::block_on(async {
        let db = match Db::open(history, Access::Read).await {
            Ok(db) => db,
            Err(e @ (HistoryError::Missing(_) | HistoryError::Disabled)) => {
                return Err(anyhow::anyhow!("--rerun-failed {from}: {e}"));
            }
            Err(e) => return Err(e.into()),
        };
        let run = crate::history::query::run(&db, from).await;
        db.close().await;
        run.with_context(|| format!("--rerun-failed {from}: cannot read the history {history}"))
    })??;
    match run {
        Some(run) => Ok(Failed::from_run(&run)),
        None => bail!("--rerun-failed {from}: no run with this uuid in the history {history}"),
    }
}
