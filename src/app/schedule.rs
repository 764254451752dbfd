//! Before the batches start (and for `warden check`): the expected
//! durations from the history, this shard's batches, the start order and
//! the predicted makespan; with `[run] memory-budget`, the budget
//! (`auto` is measured here, at the run's start) and each batch's expected
//! memory (its `memory`, else its p90 peak in the same history read).
//!
//! The durations are the p90s of the last 30 days of every run in the
//! history, whatever its labels: a label filter would let shards that
//! carry their shard number as a label see different histories. The read
//! is bounded: a store that does not answer costs a few seconds and a
//! warning, and the batches start by priority and config order.
//!
//! `--partition duration` is stricter, because every shard must split the
//! batches alike: it reads the history as of one instant all shards share
//! (the tested commit's time: the runs recorded while the shards start are
//! left out), and a store that cannot be read stops the shard (exit 2)
//! rather than let it fall back to `hash` while the others did not.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;

use crate::config::MemoryBudget;
use crate::history::origin::{Origin, commit_time};
use crate::history::query::{self, Filter};
use crate::history::{Access, Db, HistoryError, Location};
use crate::plan::{Plan, Sharded};
use crate::scheduler::memory::{Budget, Source};
use crate::scheduler::order::{Estimate, Expected};
use crate::scheduler::partition::{Partition, Strategy};
use crate::scheduler::predict::{Prediction, predict};
use crate::{duration, size};

/// How far back the durations go.
const WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// How long reading the durations may hold the run's start.
const WAIT: Duration = Duration::from_secs(3);
/// The same for `--partition duration`, which fails without them.
const PARTITION_WAIT: Duration = Duration::from_secs(15);

pub(super) struct Schedule {
    pub expected: Expected,
    pub prediction: Option<Prediction>,
    pub sharded: Option<(Partition, Sharded)>,
    /// Whence the durations, for `check`.
    pub source: String,
    /// Lines for stderr: the history could not be read, a partition's fallback.
    pub warnings: Vec<String>,
}

/// Reads the durations, applies `partition` and orders `plan`. Must run
/// before the child reaper starts (`duration` asks git for the commit time).
pub(super) fn schedule(
    plan: &mut Plan,
    partition: Option<Partition>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Schedule> {
    let by_duration = partition.filter(|p| p.strategy == Strategy::Duration);
    let mut warnings = Vec::new();
    let as_of = match by_duration {
        Some(p) if plan.history != Location::None && !plan.batches.is_empty() => {
            Some(snapshot(p, &mut warnings))
        }
        _ => None,
    };
    let wait = if by_duration.is_some() {
        PARTITION_WAIT
    } else {
        WAIT
    };
    let mut failed = false;
    let memory_names: Option<Vec<String>> = plan.memory.configured.is_some().then(|| {
        plan.batches
            .iter()
            .map(|b| b.config.name.to_string())
            .collect()
    });
    let read = async {
        if plan.batches.is_empty() {
            return Ok(None);
        }
        read_p90(&plan.history, as_of, wait, memory_names.as_deref()).await
    };
    let (p90, memory_p90) = match runtime.block_on(read) {
        Ok(Some(read)) => (Some(read.durations), read.memory),
        Ok(None) => (None, HashMap::new()),
        Err(e) => {
            failed = true;
            if let Some(p) = by_duration {
                bail!(
                    "--partition {p}: cannot read the durations: {e}; nothing ran, as this shard \
                     might have split the batches differently from the others (hash:K/N needs no history)"
                );
            }
            warnings.push(format!(
                "warden: warning: cannot read batch durations: {e}; batches start by priority, then in config order"
            ));
            (None, HashMap::new())
        }
    };
    let expected = Expected::new(
        p90.as_ref().unwrap_or(&HashMap::new()),
        plan.batches.iter().map(|b| b.config.name.as_str()),
    );
    let source = match (&plan.history, &p90) {
        (Location::None, _) => "none".to_owned(),
        (l, None) if failed => format!("{l}: could not be read"),
        (l, None) if plan.batches.is_empty() => format!("{l}: not read (no batches)"),
        (l, None) => format!("{l}: no history yet"),
        (l, Some(_)) => {
            let when = match as_of {
                Some(t) => format!("the 30 days before {}", query::rfc3339(t)),
                None => "the last 30 days".to_owned(),
            };
            format!(
                "{l}: p90 of {} of {} batches over {when}",
                expected.known(),
                plan.batches.len()
            )
        }
    };
    let sharded = partition.map(|p| (p, plan.partition(&p, &expected)));
    match &sharded {
        Some((p, s)) if p.strategy == Strategy::Duration && s.strategy == Strategy::Hash => {
            warnings.push(format!(
                "warden: --partition {p}: no durations in the history yet; sharding by hash"
            ));
        }
        Some(_) => {}
        None => plan.order_by(&expected),
    }
    memory(plan, &memory_p90, &mut warnings);
    Ok(Schedule {
        prediction: prediction(plan, &expected),
        expected,
        sharded,
        source,
        warnings,
    })
}

/// Measures an `auto` budget and sets each batch's expected memory; warns
/// of a batch over the whole budget (it will run alone).
fn memory(plan: &mut Plan, p90: &HashMap<String, u64>, warnings: &mut Vec<String>) {
    if plan.memory.configured == Some(MemoryBudget::Auto) {
        match Budget::auto() {
            Ok(b) => plan.memory.budget = Some(b),
            Err(e) => warnings.push(format!(
                "warden: warning: memory-budget = \"auto\": {e}; memory is not counted"
            )),
        }
    }
    let Some(budget) = plan.memory.budget else {
        return;
    };
    plan.expect_memory(p90);
    for b in &plan.batches {
        let e = plan.memory_expectation(b);
        if e.bytes > budget.bytes {
            warnings.push(format!(
                "warden: warning: batch \"{}\" expects {} of memory ({}), more than the whole \
                 memory budget ({}): it will run alone, once nothing else runs",
                b.config.name,
                size::human(e.bytes),
                source_word(e.source),
                size::human(budget.bytes),
            ));
        }
    }
}

fn source_word(s: Source) -> &'static str {
    match s {
        Source::Explicit => "its `memory`",
        Source::History => "its p90 peak in the history",
        Source::None => "none",
    }
}

/// The plan's batches, in its order, on their expected durations.
fn prediction(plan: &Plan, expected: &Expected) -> Option<Prediction> {
    let estimates: Vec<Estimate> = plan
        .batches
        .iter()
        .map(|b| expected.get(b.config.name.as_str()))
        .collect();
    let demands = plan.batches.iter().map(|b| plan.demand(b)).collect();
    predict(&plan.capacity(), demands, plan.order.clone(), &estimates)
}

/// The instant every shard reads the history as of: the tested commit's
/// time (shared by all jobs of a CI run, and by re-runs of one), else the
/// start of the UTC day.
fn snapshot(p: Partition, warnings: &mut Vec<String>) -> SystemTime {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let origin = Origin::detect(&cwd);
    if let Some(t) = commit_time(&cwd, origin.commit.as_deref()) {
        return t;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    warnings.push(format!(
        "warden: --partition {p}: git does not know the commit's time: durations as of 00:00 UTC \
         today (shards that start on different days may split differently)"
    ));
    UNIX_EPOCH + Duration::from_secs(now - now % 86_400)
}

/// What the history says of the batches.
struct Read {
    /// p90 durations, by batch name.
    durations: HashMap<String, Duration>,
    /// p90 peak memory of the batches asked for, by name.
    memory: HashMap<String, u64>,
}

/// The p90 durations of the batches in the history and, for `memory`'s
/// names, their p90 peak memory; `None` when there is no history (`none`,
/// or nothing recorded yet).
async fn read_p90(
    location: &Location,
    as_of: Option<SystemTime>,
    wait: Duration,
    memory: Option<&[String]>,
) -> Result<Option<Read>, String> {
    if *location == Location::None {
        return Ok(None);
    }
    let read = async {
        let db = match Db::open(location, Access::Read).await {
            Ok(db) => db,
            Err(HistoryError::Missing(_)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        // Anchored at `as_of` too: shards starting a minute apart must not
        // see a different window.
        let until = as_of.unwrap_or_else(SystemTime::now);
        let filter = Filter {
            since: until.checked_sub(WINDOW).unwrap_or(UNIX_EPOCH),
            labels: Vec::new(),
            mass_failure_share: query::mass::DEFAULT_SHARE,
        };
        let p90 = match as_of {
            Some(t) => query::batch_p90_as_of(&db, &filter, t).await,
            None => query::batch_p90(&db, &filter).await,
        };
        let peaks = match memory {
            Some(names) if p90.is_ok() => query::peak_memory_p90(&db, names).await,
            _ => Ok(HashMap::new()),
        };
        db.close().await;
        let durations = p90.map_err(|e| e.to_string())?;
        let memory = peaks.map_err(|e| e.to_string())?;
        Ok(Some(Read { durations, memory }))
    };
    match tokio::time::timeout(wait, read).await {
        Ok(read) => read,
        Err(_) => Err(format!(
            "{location} did not answer within {}",
            duration::exact(wait)
        )),
    }
}

/// `--partition hash:2/4: 3 of 10 batches (assignment 1a2b3c4d)`.
pub(super) fn shard_line(p: &Partition, s: &Sharded) -> String {
    let by = match (p.strategy, s.strategy) {
        (Strategy::Duration, Strategy::Hash) => ", by hash",
        _ => "",
    };
    format!(
        "--partition {p}: {} of {} batches{by} (assignment {}; every shard must show the same)",
        s.kept.len(),
        s.total,
        s.fingerprint
    )
}

/// The start order with what each batch is expected to take, for `check`.
pub(super) fn order_lines(plan: &Plan, expected: &Expected) -> Vec<String> {
    plan.order
        .iter()
        .enumerate()
        .filter_map(|(n, &i)| {
            let c = &plan.batches.get(i)?.config;
            let mut line = format!("  {}. {}", n + 1, c.name);
            let mut what = Vec::new();
            if c.scheduling.priority != 0 {
                what.push(format!("priority {}", c.scheduling.priority));
            }
            match expected.get(c.name.as_str()) {
                Estimate::Known(d) => what.push(format!("p90 {}", duration::rounded(d))),
                Estimate::Median(d) => {
                    what.push(format!("no history: the median, {}", duration::rounded(d)))
                }
                Estimate::Unknown => {}
            }
            if let Some(budget) = plan.memory.budget {
                let e = plan.memory_expectation(plan.batches.get(i)?);
                what.push(e.describe());
                if e.bytes > budget.bytes {
                    what.push("over the budget: runs alone".to_owned());
                }
            }
            if !what.is_empty() {
                let _ = write!(line, " ({})", what.join(", "));
            }
            Some(line)
        })
        .collect()
}

/// `predicted makespan: 4m 2s (lower bound 3m 55s)`, for `check`.
pub(super) fn prediction_line(p: Option<&Prediction>) -> String {
    match p {
        Some(p) => format!(
            "predicted makespan: {} (lower bound {}{})",
            duration::rounded(p.makespan),
            duration::rounded(p.lower_bound),
            match p.guessed {
                0 => String::new(),
                n => format!(
                    "; {n} of {} batches without history at the median",
                    p.batches
                ),
            }
        ),
        None => "predicted makespan: unknown (no durations in the history)".to_owned(),
    }
}
