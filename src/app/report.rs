//! `warden report --run-key KEY`: a queue-mode run's whole result, from the
//! store (queue::report rebuilds the outcomes; the JUnit and summary code
//! are a run's own): the JUnit file, the summary, what is still running or
//! was never claimed, and the exit code (1 when a batch failed or is not
//! done).

use anyhow::{Context, bail};

use super::exit::{EXIT_FAILED, EXIT_PASSED};
use crate::cli::ReportArgs;
use crate::history::{Access, Db, Location};
use crate::queue::report;
use crate::report::{JunitWriter, Summary};
use crate::verdict;

pub fn report(args: ReportArgs) -> anyhow::Result<u8> {
    let location = super::store::history_location(&args.store)?;
    if !matches!(location, Location::Postgres(_)) {
        bail!(
            "warden report reads a queue-mode run, which lives in a PostgreSQL history; this one is {location}"
        );
    }
    let key = super::queue::run_key(args.run_key.as_ref())?;
    let loaded = super::store::block_on(async {
        let db = Db::open(&location, Access::Read).await?;
        let crate::history::db::Pool::Postgres(pool) = &db.pool else {
            bail!("not a PostgreSQL history");
        };
        let loaded = report::load(pool, &key).await;
        db.close().await;
        Ok(loaded?)
    })??;
    let Some(run) = loaded else {
        bail!("no queue has run key {key} in {location}");
    };
    if let Some(path) = &args.junit {
        let mut junit = JunitWriter::new(path.clone());
        junit
            .record_many(run.outcomes.iter())
            .with_context(|| format!("cannot write JUnit {}", path.display()))?;
    }
    let mut summary = Summary::new(&run.outcomes);
    let machines: Vec<String> = run
        .runners
        .iter()
        .map(|(host, pid)| format!("{host} (pid {pid})"))
        .collect();
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    summary.add_note(format!(
        "Queue: {key}: {}, {}: {}",
        plural(run.outcomes.len(), "batch", "batches"),
        plural(machines.len(), "machine", "machines"),
        machines.join(", ")
    ));
    if !run.missing.is_empty() {
        summary.add_note(format!(
            "Incomplete: {} of {} batches have no result yet:",
            run.missing.len(),
            run.outcomes.len()
        ));
        for line in &run.missing {
            summary.add_note(format!("  {line}"));
        }
    }
    let text = summary.render_text();
    out!("{}", text.trim_end());
    if let Some(path) = &args.junit {
        out!("JUnit: {}", path.display());
    }
    if let Some(path) = &args.summary {
        std::fs::write(path, &text)
            .with_context(|| format!("cannot write the summary {}", path.display()))?;
    }
    let failed = !run.missing.is_empty()
        || run
            .outcomes
            .iter()
            .any(|o| verdict::fails_run(o, crate::config::FlakyPolicy::Pass));
    Ok(if failed { EXIT_FAILED } else { EXIT_PASSED })
}
