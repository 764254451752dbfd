//! `warden import junit`: JUnit files from other runners into the history.

use std::path::PathBuf;

use anyhow::bail;

use super::exit::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PASSED};
use super::store::{block_on, config_labels, history_location};
use crate::cli::ImportJunitArgs;
use crate::history::db::FinishedRun;
use crate::history::import::{self, ImportedRun};
use crate::history::model::{Labels, RunRecord, RunSource};
use crate::history::origin::{self, Origin};
use crate::history::{Access, Db, Location};

/// Reads every file first (a missing or malformed one: exit 2, nothing
/// written), then records each run in the store (one that cannot be
/// opened or written: exit 1 — recording is the whole point here).
pub fn junit(args: ImportJunitArgs) -> anyhow::Result<u8> {
    let location = history_location(&args.store)?;
    if location == Location::None {
        bail!("the history location is `none`: there is nothing to import into");
    }
    let labels = config_labels(&args.store)?.merged(&args.labels.iter().cloned().collect());
    let batch = args.batch.as_ref().map(|b| b.as_str());
    let read = if args.run_per_file {
        import::read_runs(&args.files, args.at, batch)
    } else {
        import::read_files(&args.files).map(|files| vec![ImportedRun::new(files, args.at, batch)])
    };
    let runs: Vec<ImportedRun> = match read {
        Ok(runs) => runs,
        Err(e) => {
            err!("warden: {e}; nothing imported");
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let origin = origin(&args);
    block_on(async {
        let db = match Db::open(&location, Access::Write).await {
            Ok(db) => db,
            Err(e) => {
                err!("warden: cannot import: {e}");
                return EXIT_FAILED;
            }
        };
        let code = record_runs(&db, runs, &origin, &labels).await;
        db.close().await;
        code
    })
}

/// `--commit` and `--branch`, else the CI environment or git.
fn origin(args: &ImportJunitArgs) -> Origin {
    let detected = if args.commit.is_some() && args.branch.is_some() {
        Origin {
            host: origin::host(),
            ..Origin::default()
        }
    } else {
        Origin::detect(std::path::Path::new("."))
    };
    Origin {
        commit: args.commit.clone().or(detected.commit),
        branch: args.branch.clone().or(detected.branch),
        host: detected.host,
    }
}

/// Writes every run in one transaction: an import lands whole or not at all.
async fn record_runs(db: &Db, runs: Vec<ImportedRun>, origin: &Origin, labels: &Labels) -> u8 {
    let records: Vec<RunRecord> = runs
        .iter()
        .map(|run| RunRecord {
            uuid: uuid::Uuid::new_v4().to_string(),
            started: run.started,
            commit: origin.commit.clone(),
            branch: origin.branch.clone(),
            host: origin.host.clone(),
            labels: labels.clone(),
            source: RunSource::Import,
        })
        .collect();
    let finished: Vec<FinishedRun> = runs
        .iter()
        .zip(&records)
        .map(|(run, record)| FinishedRun {
            run: record,
            batches: &run.batches,
            status: run.status(),
            ended: run.ended,
        })
        .collect();
    if let Err(e) = db.record_runs(&finished).await {
        let files: Vec<PathBuf> = runs.iter().flat_map(|r| r.files.iter().cloned()).collect();
        err!(
            "warden: cannot import {} into {}: {e} (nothing was imported)",
            describe(&files),
            db.location()
        );
        return EXIT_FAILED;
    }
    for (run, record) in runs.iter().zip(&records) {
        out!(
            "warden: imported {} from {} as run {} into {}",
            run.counts,
            describe(&run.files),
            record.uuid,
            db.location()
        );
    }
    // The process ends right after: freeing a million test records one
    // by one would only delay its exit.
    drop(finished);
    std::mem::forget(runs);
    EXIT_PASSED
}

/// `a.xml`, or `a.xml and 99 more files`.
fn describe(files: &[PathBuf]) -> String {
    match files {
        [] => "no files".to_owned(),
        [one] => one.display().to_string(),
        [first, rest @ ..] => format!(
            "{} and {} more file{}",
            first.display(),
            rest.len(),
            if rest.len() == 1 { "" } else { "s" }
        ),
    }
}
