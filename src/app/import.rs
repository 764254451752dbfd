//! `warden import junit`: JUnit files from other runners into the history.

use std::path::PathBuf;
use std::sync::OnceLock;

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
    if args.run_per_file && args.files.len() > 1 && matches!(location, Location::Postgres(_)) {
        return junit_in_groups(&args, &location, &labels);
    }
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

/// Files per group of [`junit_in_groups`]: an eighth of them (16
/// measured the same).
const GROUPS: usize = 8;

/// `--run-per-file` into PostgreSQL: the files read in [`GROUPS`] groups
/// on a thread of their own, each group written (history::db::Import)
/// while the next is read; one transaction, as [`record_runs`]. The store
/// is opened while the first group is read: that group's results, scaled
/// by the files' sizes, estimate the import's (whether it loads a
/// partition of its own, history::partition). A file that cannot be read: exit 2 and
/// nothing imported, as when every file is read first.
fn junit_in_groups(
    args: &ImportJunitArgs,
    location: &Location,
    labels: &Labels,
) -> anyhow::Result<u8> {
    let per_group = args.files.len().div_ceil(GROUPS);
    let groups: Vec<&[PathBuf]> = args.files.chunks(per_group).collect();
    let batch = args.batch.as_ref().map(|b| b.as_str());
    let origin = origin(args);
    // Filled group after group by the reading thread, read here as they
    // come: each group's runs stay where they are until the commit.
    let read: Vec<OnceLock<Result<Vec<ImportedRun>, import::ImportError>>> =
        groups.iter().map(|_| OnceLock::new()).collect();
    let records: Vec<OnceLock<Vec<RunRecord>>> = groups.iter().map(|_| OnceLock::new()).collect();
    let finished: Vec<OnceLock<Vec<FinishedRun<'_>>>> =
        groups.iter().map(|_| OnceLock::new()).collect();
    let (done, arrived) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let code = std::thread::scope(|scope| {
        scope.spawn(|| {
            for (k, files) in groups.iter().enumerate() {
                let result = import::read_runs(files, args.at, batch);
                let failed = result.is_err();
                let _ = read[k].set(result);
                if done.send(k).is_err() || failed {
                    break;
                }
            }
            drop(done);
        });
        block_on(async {
            // Dropped when this ends, early or not: the reading thread
            // then stops at its next group.
            let mut arrived = arrived;
            let mut runs_of = async |k: usize| -> Result<&[ImportedRun], u8> {
                // The reader sends each group's index in order; a closed
                // channel is a reader that stopped (it panicked).
                while read[k].get().is_none() {
                    if arrived.recv().await.is_none() {
                        break;
                    }
                }
                match read[k].get() {
                    Some(Ok(runs)) => Ok(runs.as_slice()),
                    Some(Err(e)) => {
                        err!("warden: {e}; nothing imported");
                        Err(EXIT_BAD_INPUT)
                    }
                    None => {
                        err!("warden: the files could not be read; nothing imported");
                        Err(EXIT_BAD_INPUT)
                    }
                }
            };
            // The store is opened (and migrated) while the first group is
            // read; a file that cannot be read still writes nothing.
            let (first, db) = tokio::join!(runs_of(0), Db::open(location, Access::Write));
            let first = match first {
                Ok(runs) => runs,
                Err(code) => {
                    if let Ok(db) = db {
                        db.close().await;
                    }
                    return code;
                }
            };
            let db = match db {
                Ok(db) => db,
                Err(e) => {
                    err!("warden: cannot import: {e}");
                    return EXIT_FAILED;
                }
            };
            let bytes = |files: &[PathBuf]| -> u64 {
                files
                    .iter()
                    .filter_map(|f| std::fs::metadata(f).ok())
                    .map(|m| m.len())
                    .sum()
            };
            let first_results: usize = first
                .iter()
                .flat_map(|r| &r.batches)
                .map(|b| b.tests.len())
                .sum();
            let estimate = (first_results as f64 * bytes(&args.files) as f64
                / bytes(groups[0]).max(1) as f64) as usize;
            let code = async {
                let Some(mut import) = db.begin_import(args.files.len(), estimate).await? else {
                    return Ok::<u8, anyhow::Error>(EXIT_FAILED);
                };
                for k in 0..groups.len() {
                    let runs = match runs_of(k).await {
                        Ok(runs) => runs,
                        // `import` rolls back.
                        Err(code) => return Ok(code),
                    };
                    let records = records[k].get_or_init(|| run_records(runs, &origin, labels));
                    let finished = finished[k].get_or_init(|| finished_runs(runs, records));
                    import.add(finished).await?;
                }
                import.commit().await?;
                Ok(EXIT_PASSED)
            }
            .await;
            let code = match code {
                Ok(code) => code,
                Err(e) => {
                    err!(
                        "warden: cannot import {} into {}: {e} (nothing was imported)",
                        describe(&args.files),
                        db.location()
                    );
                    EXIT_FAILED
                }
            };
            if code == EXIT_PASSED {
                for (read, records) in read.iter().zip(&records) {
                    if let (Some(Ok(runs)), Some(records)) = (read.get(), records.get()) {
                        imported(&db, runs, records);
                    }
                }
            }
            db.close().await;
            code
        })
    });
    // The process ends right after: freeing a million test records one
    // by one would only delay its exit (as `record_runs` does).
    std::mem::forget(finished);
    std::mem::forget(records);
    std::mem::forget(read);
    code
}

/// Each run's record: a new uuid, the origin and labels given.
fn run_records(runs: &[ImportedRun], origin: &Origin, labels: &Labels) -> Vec<RunRecord> {
    runs.iter()
        .map(|run| RunRecord {
            uuid: uuid::Uuid::new_v4().to_string(),
            started: run.started,
            commit: origin.commit.clone(),
            branch: origin.branch.clone(),
            host: origin.host.clone(),
            labels: labels.clone(),
            source: RunSource::Import,
        })
        .collect()
}

fn finished_runs<'a>(runs: &'a [ImportedRun], records: &'a [RunRecord]) -> Vec<FinishedRun<'a>> {
    runs.iter()
        .zip(records)
        .map(|(run, record)| FinishedRun {
            run: record,
            batches: &run.batches,
            status: run.status(),
            ended: run.ended,
        })
        .collect()
}

/// What an import wrote: a line per run.
fn imported(db: &Db, runs: &[ImportedRun], records: &[RunRecord]) {
    for (run, record) in runs.iter().zip(records) {
        out!(
            "warden: imported {} from {} as run {} into {}",
            run.counts,
            describe(&run.files),
            record.uuid,
            db.location()
        );
    }
}

/// Writes every run in one transaction: an import lands whole or not at all.
async fn record_runs(db: &Db, runs: Vec<ImportedRun>, origin: &Origin, labels: &Labels) -> u8 {
    let records = run_records(&runs, origin, labels);
    let finished = finished_runs(&runs, &records);
    if let Err(e) = db.record_runs(&finished).await {
        let files: Vec<PathBuf> = runs.iter().flat_map(|r| r.files.iter().cloned()).collect();
        err!(
            "warden: cannot import {} into {}: {e} (nothing was imported)",
            describe(&files),
            db.location()
        );
        return EXIT_FAILED;
    }
    imported(db, &runs, &records);
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
