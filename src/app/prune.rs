//! `warden prune`: what is older than `--older-than` leaves the store
//! (history::prune), and what went is said as a table or as JSON.

use serde::Serialize;

use super::exit::EXIT_PASSED;
use crate::cli::{Format, PruneArgs};
use crate::duration;
use crate::history::prune::{self, Prune, Pruned};
use crate::history::{Access, Db, HistoryError, Location};

/// The JSON `warden prune --format json` prints: the counts, and what was asked.
#[derive(Serialize)]
struct Report<'a> {
    location: String,
    older_than: String,
    keep_summaries: bool,
    #[serde(flatten)]
    pruned: &'a Pruned,
}

pub fn prune(args: PruneArgs) -> anyhow::Result<u8> {
    let location = super::store::history_location(&args.store)?;
    // Nothing recorded yet is nothing to prune, not a new empty store.
    let missing = match &location {
        Location::None => Some(HistoryError::Disabled),
        Location::Sqlite(path) if !path.exists() => {
            Some(HistoryError::Missing(location.to_string()))
        }
        _ => None,
    };
    if let Some(e) = missing {
        err!("warden: {e}");
        return Ok(EXIT_PASSED);
    }
    let how = Prune::older_than(args.older_than, args.keep_summaries);
    let pruned = super::store::block_on(async {
        let db = Db::open(&location, Access::Write).await?;
        let pruned = prune::prune(&db, &how).await;
        db.close().await;
        pruned
    })??;
    let older_than = duration::exact(args.older_than);
    if args.format == Format::Json {
        let report = Report {
            location: location.to_string(),
            older_than,
            keep_summaries: args.keep_summaries,
            pruned: &pruned,
        };
        out!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(EXIT_PASSED);
    }
    let cutoff = chrono::DateTime::<chrono::Utc>::from(how.cutoff).format("%Y-%m-%d %H:%M UTC");
    out!("Pruned {location}: what started before {cutoff} (older than {older_than})");
    for line in lines(&pruned) {
        out!("{line}");
    }
    Ok(EXIT_PASSED)
}

/// The counts, one table row each, then the time taken.
fn lines(p: &Pruned) -> Vec<String> {
    let mut rows = vec![("runs", p.runs)];
    if p.summarized_runs > 0 {
        rows.push(("runs kept as summaries", p.summarized_runs));
    }
    rows.extend([
        ("batches", p.batches),
        ("attempts", p.attempts),
        ("results", p.results),
        ("run labels", p.run_labels),
        ("test names", p.tests),
        ("hunts", p.hunts),
    ]);
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|(what, n)| format!("  {what:<24}{n:>12}"))
        .collect();
    out.push(format!(
        "  {:<24}{:>12}",
        "time",
        duration::rounded(p.elapsed)
    ));
    out
}
