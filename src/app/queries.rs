//! The history queries: `warden flaky`, `history`, `regressed`,
//! `failures`, `durations`. Flags → [`Filter`] → a query over the store
//! ([`crate::history::query`]) → a table fitted to [`WIDTH`] columns, or
//! JSON: one pretty-printed array of row objects (the library's row types),
//! cut to `--limit` like the table.
//!
//! No history yet (a SQLite file not created, or `--history none`) is said
//! on stderr and is not an error for the listing commands (exit 0): a fresh
//! CI setup asking "what flakes?" gets "nothing recorded", not a failure.
//! `history TEST` asks about one test and exits 2 then, as for a name that
//! matches no test or several.

use std::time::SystemTime;

use anyhow::bail;
use serde::Serialize;

use super::exit::{EXIT_BAD_INPUT, EXIT_PASSED};
use crate::cli::{
    DurationsArgs, FailuresArgs, FlakyArgs, Format, HistoryArgs, QueryArgs, RegressedArgs,
};
use crate::duration;
use crate::history::classify::{Params, Verdict};
use crate::history::model::valid_label_key;
use crate::history::query::{self, Filter, LabelVerdict, Subject};
use crate::history::{Access, Db, HistoryError};
use crate::report::table::{Column, Table};
use crate::status::TestStatus;
use crate::text::inert;

/// Tables fit a terminal this wide.
const WIDTH: usize = 100;

pub fn flaky(args: FlakyArgs) -> anyhow::Result<u8> {
    let by = by_keys(&args.by)?;
    let q = &args.query;
    let filter = filter(q);
    let params = Params::default();
    let Some(rows) = with_db(q, async |db| query::flaky(db, &filter, &by, &params).await)? else {
        return Ok(EXIT_PASSED);
    };
    if rows.is_empty() && q.format == Format::Table {
        out!("no flaky tests {}", window(q));
        return Ok(EXIT_PASSED);
    }
    let shown = &rows[..shown(rows.len(), q.limit)];
    if q.format == Format::Json {
        return json(shown);
    }
    let mut columns = vec![Column::flex("TEST", 24)];
    columns.extend(by.iter().map(|k| Column::text(&k.to_uppercase(), 16)));
    for title in ["HITS", "RUNS", "FAIL", "FLAKY", "RATE%", "95% CI", "FLIP%"] {
        columns.push(Column::number(title));
    }
    columns.push(Column::text("FIRST", 5));
    columns.push(Column::text("LAST", 5));
    let mut table = Table::new(columns);
    for r in shown {
        let mut cells = vec![r.test.clone()];
        cells.extend(
            by.iter()
                .map(|k| r.labels.get(k).cloned().unwrap_or_default()),
        );
        cells.extend([
            r.hits.to_string(),
            r.runs.to_string(),
            r.failures.to_string(),
            r.flaky.to_string(),
            format!("{:.1}", r.failure_rate * 100.0),
            percent_interval(r.interval),
            format!("{:.1}", r.flip_rate * 100.0),
            day(r.first_seen),
            day(r.last_seen),
        ]);
        table.row(cells);
    }
    out!("{}", table.render(WIDTH).trim_end());
    footer(rows.len(), shown.len());
    out!("HITS = FAIL + FLAKY (failed, then passed on a retry); dates UTC");
    out!(
        "RATE%: failing share of the current regime, with its 95% interval; FLIP%: status changes"
    );
    out!("between results with the same labels (README: \"How a test is classified\")");
    Ok(EXIT_PASSED)
}

pub fn history(args: HistoryArgs) -> anyhow::Result<u8> {
    let q = &args.query;
    let filter = filter(q);
    let params = Params::default();
    let Some(h) = with_db(q, async |db| {
        query::history(db, &filter, &args.test, &params).await
    })?
    else {
        return Ok(EXIT_BAD_INPUT);
    };
    if h.results.is_empty() && q.format == Format::Table {
        out!("no results of {} {}", inert(&h.test), window(q));
        return Ok(EXIT_PASSED);
    }
    // The newest `--limit`, still oldest first.
    let shown = &h.results[h.results.len() - shown(h.results.len(), q.limit)..];
    if q.format == Format::Json {
        return json(shown);
    }
    out!(
        "{}: {} results {}, oldest first",
        inert(&h.test),
        h.results.len(),
        window(q)
    );
    for v in &h.verdicts {
        for line in verdict_lines(v) {
            out!("{line}");
        }
    }
    let hidden = h.results.len() - shown.len();
    if hidden > 0 {
        out!("… {hidden} earlier results not shown (--limit 0 shows all)");
    }
    let strip: Vec<char> = shown
        .iter()
        .map(|e| match &e.mass_failure {
            Some(_) if e.status.is_failure() => 'X',
            _ => mark(&e.status),
        })
        .collect();
    for chunk in strip.chunks(WIDTH) {
        out!("{}", chunk.iter().collect::<String>());
    }
    out!(". passed  F failed  R flaky (failed, then passed on a retry)  s skipped");
    if shown.iter().any(|e| e.mass_failure.is_some()) {
        out!(
            "X failed in a mass failure (more than {} of the run's tests failed, or its setup \
             failed): no run of a mass failure counts for flaky or regressed",
            percent(q.mass_failure)
        );
    }
    out!("");
    let mut table = Table::new(vec![
        Column::text("TIME (UTC)", 16),
        Column::text("STATUS", 7),
        Column::number("DURATION"),
        Column::text("RUN", 11),
        Column::text("COMMIT", 12),
        Column::text("BRANCH", 16),
        Column::flex("LABELS", 16).cut_end(),
    ]);
    for e in shown {
        table.row(vec![
            minute(e.time),
            e.status.to_string(),
            e.duration
                .map(duration::rounded)
                .unwrap_or_else(|| "-".into()),
            e.run_status.to_string(),
            e.commit
                .as_ref()
                .map_or_else(|| "-".into(), |c| c.chars().take(12).collect()),
            e.branch.clone().unwrap_or_else(|| "-".into()),
            e.labels.clone(),
        ]);
        if let Some(m) = &e.mass_failure {
            table.note(format!("mass failure: {}", m.describe()));
        }
        if let Some(m) = &e.message
            && matches!(e.status, TestStatus::Failed | TestStatus::Flaky)
        {
            table.note(m.clone());
        }
    }
    out!("{}", table.render(WIDTH).trim_end());
    Ok(EXIT_PASSED)
}

pub fn regressed(args: RegressedArgs) -> anyhow::Result<u8> {
    let q = &args.query;
    let filter = filter(q);
    let params = Params {
        min_failures: args.min_failures.get(),
        ..Params::default()
    };
    let Some(rows) = with_db(q, async |db| query::regressed(db, &filter, &params).await)? else {
        return Ok(EXIT_PASSED);
    };
    if rows.is_empty() && q.format == Format::Table {
        out!("no regressed tests {}", window(q));
        return Ok(EXIT_PASSED);
    }
    let shown = &rows[..shown(rows.len(), q.limit)];
    if q.format == Format::Json {
        return json(shown);
    }
    let mut table = Table::new(vec![
        Column::flex("TEST", 24),
        Column::text("LABELS", 28),
        Column::text("VERDICT", 9),
        Column::number("FAILS"),
        Column::text("SINCE (UTC)", 11),
        Column::text("FIRST BAD", 10),
        Column::text("LAST GOOD", 10),
        Column::number("SURE"),
    ]);
    for r in shown {
        table.row(vec![
            r.test.clone(),
            if r.labels.is_empty() {
                "-".into()
            } else {
                r.labels.clone()
            },
            r.verdict.to_string(),
            r.failures.to_string(),
            short_minute(r.failing_since.time),
            r.first_bad
                .as_ref()
                .map_or_else(|| "-".into(), |b| commit(&b.commit)),
            r.last_good
                .as_ref()
                .map_or_else(|| "-".into(), |g| commit(&g.commit)),
            r.confidence
                .map_or_else(|| "-".into(), |c| format!("{:.0}%", c * 100.0)),
        ]);
    }
    out!("{}", table.render(WIDTH).trim_end());
    footer(rows.len(), shown.len());
    out!("broken: failing since before the window; regressed: broke inside it, between LAST GOOD");
    out!("and FIRST BAD (SURE: the model's probability of exactly that place)");
    Ok(EXIT_PASSED)
}

/// How many tests a cluster's table row names.
const TESTS_NAMED: usize = 3;

pub fn failures(args: FailuresArgs) -> anyhow::Result<u8> {
    let q = &args.query;
    let filter = filter(q);
    let Some(rows) = with_db(q, async |db| query::failures(db, &filter).await)? else {
        return Ok(EXIT_PASSED);
    };
    if rows.is_empty() && q.format == Format::Table {
        out!("no failures with a message {}", window(q));
        return Ok(EXIT_PASSED);
    }
    let shown = &rows[..shown(rows.len(), q.limit)];
    if q.format == Format::Json {
        return json(shown);
    }
    let mut table = Table::new(vec![
        Column::number("COUNT"),
        Column::number("TESTS"),
        Column::number("RUNS"),
        Column::flex("PATTERN", 24).cut_end(),
        Column::text("FIRST", 5),
        Column::text("LAST", 5),
    ]);
    for r in shown {
        table.row(vec![
            r.failures.to_string(),
            r.tests.len().to_string(),
            r.runs.to_string(),
            r.pattern.clone(),
            day(r.first_seen),
            day(r.last_seen),
        ]);
        if r.example != r.pattern {
            table.note(format!("e.g. {}", r.example));
        }
        let mut tests = r.tests[..r.tests.len().min(TESTS_NAMED)].join(", ");
        if r.tests.len() > TESTS_NAMED {
            tests.push_str(&format!(" and {} more", r.tests.len() - TESTS_NAMED));
        }
        table.note(format!("in {tests}"));
        if !r.labels.is_empty() {
            let labels: Vec<String> = r
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.join(",")))
                .collect();
            table.note(format!("with {}", labels.join(" ")));
        }
    }
    out!("{}", table.render(WIDTH).trim_end());
    footer(rows.len(), shown.len());
    out!("COUNT: failed and flaky results whose message has the PATTERN; dates UTC");
    out!(
        "masked: <N> <HEX> <PATH> <IP>:<PORT> <TID> <DUR> <TIME> <UUID>; <TEST>: the test's own name"
    );
    Ok(EXIT_PASSED)
}

pub fn durations(args: DurationsArgs) -> anyhow::Result<u8> {
    let q = &args.query;
    let filter = filter(q);
    let (subject, what) = if args.batches {
        (Subject::Batches, "batch")
    } else {
        (Subject::Tests, "test")
    };
    let Some(rows) = with_db(q, async |db| query::durations(db, &filter, subject).await)? else {
        return Ok(EXIT_PASSED);
    };
    if rows.is_empty() && q.format == Format::Table {
        out!("no {what} durations {}", window(q));
        return Ok(EXIT_PASSED);
    }
    let shown = &rows[..shown(rows.len(), q.limit)];
    if q.format == Format::Json {
        return json(shown);
    }
    let mut table = Table::new(vec![
        Column::flex(&what.to_uppercase(), 24),
        Column::number("COUNT"),
        Column::number("P50"),
        Column::number("P90"),
        Column::number("MAX"),
    ]);
    for r in shown {
        table.row(vec![
            r.name.clone(),
            r.count.to_string(),
            duration::rounded(r.p50),
            duration::rounded(r.p90),
            duration::rounded(r.max),
        ]);
    }
    out!("{}", table.render(WIDTH).trim_end());
    footer(rows.len(), shown.len());
    Ok(EXIT_PASSED)
}

/// Opens the store for reading and runs `f` on it. `Ok(None)` when there is
/// no history to read (said on stderr).
fn with_db<T>(
    q: &QueryArgs,
    f: impl AsyncFnOnce(&Db) -> query::Result<T>,
) -> anyhow::Result<Option<T>> {
    let location = super::store::history_location(&q.store)?;
    super::store::block_on(async {
        let db = match Db::open(&location, Access::Read).await {
            Ok(db) => db,
            Err(e @ (HistoryError::Missing(_) | HistoryError::Disabled)) => {
                err!("warden: {e}");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let result = f(&db).await;
        db.close().await;
        Ok(Some(result?))
    })?
}

fn filter(q: &QueryArgs) -> Filter {
    Filter {
        mass_failure_share: q.mass_failure,
        ..Filter::last(q.since, q.labels.clone())
    }
}

/// `--by` keys, checked, each once.
fn by_keys(keys: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for k in keys {
        if !valid_label_key(k) {
            bail!("--by: `{k}` is not a label key: use letters, digits, `_`, `-` and `.`");
        }
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    Ok(out)
}

/// How many rows `--limit` lets through.
fn shown(len: usize, limit: usize) -> usize {
    if limit == 0 { len } else { len.min(limit) }
}

fn footer(total: usize, shown: usize) {
    if total > shown {
        out!("… {} more rows (--limit 0 shows all)", total - shown);
    }
}

fn json<T: Serialize>(rows: &[T]) -> anyhow::Result<u8> {
    out!("{}", serde_json::to_string_pretty(rows)?);
    Ok(EXIT_PASSED)
}

/// "in the last 30d", "in the last 12h with arch=x86_64".
fn window(q: &QueryArgs) -> String {
    query::describe_window(&duration::exact(q.since), &q.labels)
}

fn mark(s: &TestStatus) -> char {
    match s {
        TestStatus::Passed => '.',
        TestStatus::Failed | TestStatus::Error(_) => 'F',
        TestStatus::Flaky => 'R',
        TestStatus::Skipped(_) => 's',
    }
}

/// One label set's verdict and its evidence: a line
/// `flaky      arch=x86_64: 8 runs, 2 failed, 1 flaky; failing 38% (14–69%)`
/// and, after a change of regime, a second, indented, saying where.
fn verdict_lines(v: &LabelVerdict) -> Vec<String> {
    let labels = if v.labels.is_empty() {
        "(no labels)"
    } else {
        v.labels.as_str()
    };
    let mut line = format!("{:<9}  {labels}: {} runs", v.verdict.as_str(), v.runs);
    if v.failures > 0 {
        line.push_str(&format!(", {} failed", v.failures));
    }
    if v.flaky > 0 {
        line.push_str(&format!(", {} flaky", v.flaky));
    }
    if v.flaky_commits > 0 {
        line.push_str(&format!(", {} commits passed and failed", v.flaky_commits));
    }
    if v.verdict != Verdict::Healthy {
        line.push_str(&format!(
            "; failing {:.0}% ({}%)",
            v.failure_rate * 100.0,
            percent_interval(v.interval)
        ));
    }
    let mut lines = vec![line];
    if let Some(c) = &v.change {
        let what = v.verdict.change_word();
        lines.push(format!(
            "{:<9}  {what} between {} ({}) and {} ({}), {:.0}% sure; {} runs since",
            "",
            commit(&c.before.commit),
            short_minute(c.before.time),
            commit(&c.after.commit),
            short_minute(c.after.time),
            c.confidence * 100.0,
            v.regime_runs
        ));
    }
    lines
}

/// `12–47`: a 0–1 interval in whole percent.
fn percent_interval((lo, hi): (f64, f64)) -> String {
    format!("{:.0}–{:.0}", lo * 100.0, hi * 100.0)
}

/// `50%`, `12.5%`.
fn percent(share: f64) -> String {
    format!("{}%", (share * 1000.0).round() / 10.0)
}

fn commit(c: &Option<String>) -> String {
    match c {
        Some(c) => c.chars().take(10).collect(),
        None => "-".into(),
    }
}

fn utc(t: SystemTime, format: &str) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format(format)
        .to_string()
}

/// `11-20`.
fn day(t: SystemTime) -> String {
    utc(t, "%m-%d")
}

/// `11-20 10:00`.
fn short_minute(t: SystemTime) -> String {
    utc(t, "%m-%d %H:%M")
}

/// `2026-11-20 10:00`.
fn minute(t: SystemTime) -> String {
    utc(t, "%Y-%m-%d %H:%M")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_keys_are_checked_and_deduplicated() {
        let keys = |k: &[&str]| by_keys(&k.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            keys(&["arch", "compiler", "arch"]).unwrap(),
            ["arch", "compiler"]
        );
        assert!(keys(&["arch", ""]).is_err());
        assert!(keys(&["a b"]).is_err());
    }
}
