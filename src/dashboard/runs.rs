//! The runs page (latest first, with pass rates and their trend), one
//! run's page (batches with what each used, failing tests, log excerpts),
//! a batch's log, and the label values the filters offer.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Serialize;

use super::error::Error;
use super::html::{self, Nav};
use super::logs;
use super::params::{Params, path_segment};
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use super::svg;
use crate::history::model::RunSource;
use crate::history::query::{
    self, BatchSummary, FailingTest, MassFailure, RunFailures, RunSummary,
};
use crate::status::Status;
use crate::usage::Usage;

/// Runs a page lists unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;
/// Runs in a row's pass-rate trend.
const TREND: usize = 20;

/// Names of failed batches and tests a runs-list row shows.
const FIRST_FAILED: usize = 3;

/// A row of the runs list: the run, and what failed in it.
#[derive(Debug, Serialize)]
pub struct RunRow {
    #[serde(flatten)]
    pub run: RunSummary,
    /// The first [`FIRST_FAILED`] failed batches and tests, and how many
    /// batches failed.
    pub failures: RunFailures,
}

async fn list(d: &Dashboard, p: &Params) -> Result<Vec<RunRow>, Error> {
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    let runs = query::runs(d.db(), &p.filter(), limit).await?;
    let numbers: Vec<i64> = runs.iter().map(|r| r.number).collect();
    let mut failures = query::run_failures(d.db(), &numbers, FIRST_FAILED).await?;
    Ok(runs
        .into_iter()
        .map(|run| RunRow {
            failures: failures.remove(&run.number).unwrap_or_default(),
            run,
        })
        .collect())
}

pub async fn list_api(State(d): App, RawQuery(q): RawQuery) -> Response {
    api_response(async { list(&d, &Params::parse(q.as_deref())?).await }.await)
}

pub async fn list_page(State(d): App, RawQuery(q): RawQuery) -> Response {
    page_response(
        async {
            let p = Params::parse(q.as_deref())?;
            let runs = list(&d, &p).await?;
            let labels = query::label_values(d.db(), p.filter().since).await?;
            Ok(list_html(&p, &runs, &labels))
        }
        .await,
    )
}

/// Each listed run's predecessor: the next older listed run with the
/// same labels, what "compare with previous" compares it with.
fn previous(runs: &[RunRow]) -> Vec<Option<&str>> {
    let mut out = vec![None; runs.len()];
    let mut last: HashMap<&str, &str> = HashMap::new();
    for (i, r) in runs.iter().enumerate().rev() {
        out[i] = last.get(r.run.labels.as_str()).copied();
        last.insert(r.run.labels.as_str(), r.run.uuid.as_str());
    }
    out
}

/// Up to [`FIRST_FAILED`] names, linked by `href` when given, and
/// "+N more" for the rest of `total`.
fn names(names: &[String], total: u64, href: impl Fn(&str) -> Option<String>) -> Markup {
    let more = total.saturating_sub(names.len() as u64);
    html! {
        @for (i, n) in names.iter().enumerate() {
            @if i > 0 { ", " }
            @if let Some(h) = href(n) { a href=(h) { (n) } } @else { (n) }
        }
        @if more > 0 { " " span.more { "+" (more) " more" } }
    }
}

/// What failed in a run, in brief: the first failed batches and tests.
fn what_failed(p: &Params, r: &RunRow) -> Markup {
    let f = &r.failures;
    html! {
        @if f.failed_batches == 0 && r.run.failed == 0 {
            @if r.run.flaky > 0 { span.muted { (r.run.flaky) " flaky" } } @else { "-" }
        }
        @if f.failed_batches > 0 {
            div.failed-batches {
                (f.failed_batches) @if f.failed_batches == 1 { " batch: " } @else { " batches: " }
                (names(&f.batches, f.failed_batches, |_| None))
            }
        }
        @if r.run.failed > 0 {
            div.failed-tests {
                (r.run.failed) @if r.run.failed == 1 { " test: " } @else { " tests: " }
                (names(&f.tests, r.run.failed, |t| Some(html::test_href(p, t))))
            }
        }
    }
}

/// Each run's pass-rate trend: the rates of up to [`TREND`] listed runs
/// with the same labels, ending with its own, oldest first.
fn trends(runs: &[RunRow]) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::new(); runs.len()];
    let mut by_labels: HashMap<&str, Vec<f64>> = HashMap::new();
    // Oldest first, so each run sees the ones before it.
    for (i, r) in runs.iter().enumerate().rev() {
        let seen = by_labels.entry(r.run.labels.as_str()).or_default();
        if let Some(rate) = r.run.pass_rate {
            seen.push(rate);
        }
        out[i] = seen[seen.len().saturating_sub(TREND)..].to_vec();
    }
    out
}

/// The link to the comparison of run `a` (before) with `b`.
pub fn compare_href(a: &str, b: &str) -> String {
    let p = Params {
        a: Some(a.to_owned()),
        b: Some(b.to_owned()),
        ..Params::default()
    };
    p.href("/compare")
}

fn list_html(p: &Params, runs: &[RunRow], labels: &BTreeMap<String, Vec<String>>) -> Markup {
    let trends = trends(runs);
    let previous = previous(runs);
    let body = html! {
        h1 { "Runs" }
        (html::filter_form("/runs", p, labels, html::hidden("limit", p.limit.map(|n| n.to_string()).as_deref())))
        p.summary {
            (runs.len()) " runs " (p.describe()) ", latest first"
            @if runs.len() == p.limit.unwrap_or(DEFAULT_LIMIT) && !runs.is_empty() {
                " (the latest " (runs.len()) "; "
                a href=({ let mut all = p.clone(); all.limit = Some(0); all.href("/runs") }) { "all" }
                ")"
            }
        }
        @if runs.is_empty() {
            p.empty { "No runs " (p.describe()) "." }
        } @else {
            form.compare method="get" action="/compare" {
            table.runs {
                thead { tr {
                    th.num { "Run" } th { "Started" } th { "Status" } th { "What failed" }
                    th.num { "Duration" } th.num { "Pass rate" } th { "Trend (same labels)" }
                    th.num { "Passed" } th.num { "Failed" } th.num { "Flaky" } th.num { "Skipped" }
                    th { "Labels" } th { "Commit" } th { "Branch" } th { "Host" }
                    th { "Compare" }
                } }
                tbody {
                    @for ((r, trend), prev) in runs.iter().zip(&trends).zip(&previous) {
                        @let run = &r.run;
                        tr {
                            td.num.number { a href=(html::run_href(&run.uuid)) { "#" (run.number) } }
                            td { a href=(html::run_href(&run.uuid)) { (html::time(run.started)) } }
                            td { (html::run_status(run.status)) @if let Some(m) = &run.mass_failure { " " (mass_badge(m)) } }
                            td.what-failed { (what_failed(p, r)) }
                            td.num { (html::duration(run.duration)) }
                            td.num { (run.pass_rate.map(html::percent).unwrap_or_else(|| "-".into())) }
                            td { (svg::sparkline(trend, &format!("pass rate of the last {} runs with these labels", trend.len()))) }
                            td.num { (run.passed) }
                            td.num { (run.failed) }
                            td.num { (run.flaky) }
                            td.num { (run.skipped) }
                            td { (html::labels(&run.labels)) }
                            td { (html::commit(run.commit.as_deref(), 10)) }
                            td { (run.branch.as_deref().unwrap_or("-")) }
                            td { (run.host) }
                            td.compare {
                                label title="compare from this run" { input type="radio" name="a" value=(run.uuid); " A" }
                                " "
                                label title="compare to this run" { input type="radio" name="b" value=(run.uuid); " B" }
                                @if let Some(prev) = prev {
                                    " · " a.vs-previous href=(compare_href(prev, &run.uuid)) title="compare with the previous run with these labels" { "vs previous" }
                                }
                            }
                        }
                    }
                }
            }
            p { button type="submit" { "Compare A with B" } }
            }
        }
    };
    html::layout("Runs", Nav::Runs, p, body)
}

/// The "mass failure" badge, its counts in the title: the run's results
/// count for no flaky or regressed statistic.
fn mass_badge(m: &MassFailure) -> Markup {
    html! {
        span.status.mass title=(format!("{}: left out of flaky and regressed", m.describe())) { "mass failure" }
    }
}

/// A batch of a run page, with what the page can show of its log.
#[derive(Debug, Serialize)]
pub struct BatchView {
    #[serde(flatten)]
    pub batch: BatchSummary,
    /// The log route, when the log is on this machine.
    pub log_url: Option<String>,
    /// The log's last lines, for batches that did not simply pass.
    pub log_excerpt: Option<String>,
}

/// A run page's data.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub run: RunSummary,
    pub batches: Vec<BatchView>,
    pub failing: Vec<FailingTest>,
}

/// The run `key` names (its uuid, else `#12` or `12` for run number 12).
async fn one(d: &Dashboard, key: &str) -> Result<RunView, Error> {
    let not_found = || Error::NotFound(format!("no run {key} in the history"));
    let uuid = query::run_summary(d.db(), key)
        .await?
        .ok_or_else(not_found)?
        .uuid;
    let Some(detail) = query::run(d.db(), &uuid).await? else {
        return Err(not_found());
    };
    let failing_batches: Vec<i64> = detail.failing.iter().filter_map(|t| t.batch).collect();
    let batches = detail
        .batches
        .into_iter()
        .map(|b| {
            let file = logs::open(b.log.as_deref(), &detail.run.host, &d.host);
            let log_url = file.as_ref().map(|_| log_href(&detail.run.uuid, &b.name));
            let interesting = b.status != Status::Passed || failing_batches.contains(&b.id);
            let log_excerpt = file
                .filter(|_| interesting)
                .and_then(|f| logs::tail(f, logs::EXCERPT_BYTES, logs::EXCERPT_LINES))
                .map(|(text, _)| text);
            BatchView {
                batch: b,
                log_url,
                log_excerpt,
            }
        })
        .collect();
    Ok(RunView {
        run: detail.run,
        batches,
        failing: detail.failing,
    })
}

pub async fn run_api(State(d): App, Path(uuid): Path<String>) -> Response {
    api_response(one(&d, &uuid).await)
}

pub async fn run_page(State(d): App, Path(uuid): Path<String>) -> Response {
    page_response(one(&d, &uuid).await.map(|v| run_html(&v)))
}

fn run_html(v: &RunView) -> Markup {
    let r = &v.run;
    let p = Params::default();
    let batch_name: HashMap<i64, &str> = v
        .batches
        .iter()
        .map(|b| (b.batch.id, b.batch.name.as_str()))
        .collect();
    let body = html! {
        h1 { "Run #" (r.number) " " code { (r.uuid) } }
        dl.facts {
            dt { "Status" } dd {
                (html::run_status(r.status))
                @if let Some(m) = &r.mass_failure { " " (mass_badge(m)) " " (m.describe()) }
            }
            dt { "Started" } dd { (html::time(r.started)) }
            dt { "Duration" } dd { (html::duration(r.duration)) }
            dt { "Results" } dd {
                (r.passed) " passed, " (r.failed) " failed, " (r.flaky) " flaky, " (r.skipped) " skipped"
                @if let Some(rate) = r.pass_rate { " (pass rate " (html::percent(rate)) ")" }
            }
            dt { "Labels" } dd { (html::labels(&r.labels)) }
            dt { "Commit" } dd { (r.commit.as_deref().unwrap_or("-")) }
            dt { "Branch" } dd { (r.branch.as_deref().unwrap_or("-")) }
            dt { "Host" } dd { (r.host) }
            dt { "Recorded by" } dd { (match r.source { RunSource::Import => "warden import", RunSource::Run => "warden run" }) }
        }
        h2 { "Batches" }
        table.batches {
            thead { tr {
                th { "Batch" } th { "Phase" } th { "Status" } th { "Reason" }
                th.num { "Duration" } th.num { "Attempts" }
                th.num { "Peak memory" } th.num { "CPU" } th.num { "Read" } th.num { "Written" }
                th { "Stalled" }
                th { "Log" }
            } }
            tbody {
                @for b in &v.batches {
                    tr {
                        td { (b.batch.name) }
                        td { (b.batch.phase) }
                        td { (html::batch_status(b.batch.status)) }
                        td { (b.batch.reason) }
                        td.num { (html::duration(Some(b.batch.duration))) }
                        td.num { (b.batch.attempts) }
                        (usage_cells(b.batch.usage.as_ref()))
                        td {
                            @if let Some(url) = &b.log_url {
                                a href=(url) { "log" }
                            } @else if b.batch.log.is_some() {
                                span.muted title="not on this machine, or not a log file warden wrote" { "not here" }
                            } @else {
                                "-"
                            }
                        }
                    }
                }
            }
        }
        h2 { "Failing tests" }
        @if v.failing.is_empty() {
            p.empty { "None." }
        } @else {
            table.failing {
                thead { tr { th { "Test" } th { "Status" } th { "Batch" } th.num { "Duration" } th { "Message" } } }
                tbody {
                    @for t in &v.failing {
                        tr {
                            td { a href=(html::test_href(&p, &t.test)) { (t.test) } }
                            td { (html::test_status(&t.status)) }
                            td { (t.batch.and_then(|id| batch_name.get(&id).copied()).unwrap_or("-")) }
                            td.num { (html::duration(t.duration)) }
                            td { @if let Some(m) = &t.message { code.message { (m) } } }
                        }
                    }
                }
            }
        }
        @let excerpts: Vec<&BatchView> = v.batches.iter().filter(|b| b.log_excerpt.is_some()).collect();
        @if !excerpts.is_empty() {
            h2 { "Log excerpts" }
            @for b in excerpts {
                section.excerpt {
                    h3 {
                        (b.batch.name) " "
                        @if let Some(url) = &b.log_url { a href=(url) { "(whole log)" } }
                    }
                    pre { (b.log_excerpt.as_deref().unwrap_or_default()) }
                }
            }
        }
    };
    html::layout(&format!("Run {}", r.uuid), Nav::Runs, &p, body)
}

/// What a batch used, as the run page's cells: peak memory (marked
/// `partial` when from `wait4`'s rusage, with its OOM kills), CPU, bytes
/// read and written, and the time stalled on CPU, memory and I/O; a cell
/// is empty where that was not measured (or nothing was recorded).
fn usage_cells(u: Option<&Usage>) -> Markup {
    let size = |b: Option<u64>| b.map(crate::size::human).unwrap_or_default();
    let time = |d: Option<Duration>| d.map(crate::duration::rounded).unwrap_or_default();
    let peak = u.and_then(|u| u.peak_memory);
    let stalls: Vec<String> = u
        .map(|u| {
            [
                ("cpu", u.cpu_stall),
                ("memory", u.memory_stall),
                ("io", u.io_stall),
            ]
            .into_iter()
            .filter_map(|(what, d)| d.map(|d| format!("{what} {}", crate::duration::rounded(d))))
            .collect()
        })
        .unwrap_or_default();
    html! {
        td.num {
            (size(peak))
            @if let Some(u) = u {
                @if u.partial {
                    " " span.partial title="from wait4's rusage, not the batch's cgroup: the largest process's peak; processes not waited for are missing" { "partial" }
                }
                @if u.oom_kills > 0 {
                    " " span.status.oom title="processes of this batch the OOM killer killed" {
                        (u.oom_kills) @if u.oom_kills == 1 { " OOM kill" } @else { " OOM kills" }
                    }
                }
            }
        }
        td.num { (time(u.and_then(|u| u.cpu))) }
        td.num { (size(u.and_then(|u| u.read_bytes))) }
        td.num { (size(u.and_then(|u| u.written_bytes))) }
        td { (stalls.join(", ")) }
    }
}

/// The log route of batch `batch` of run `uuid`: both names
/// percent-encoded, so a batch named `a/b` or `<x>` is one path segment.
pub fn log_href(uuid: &str, batch: &str) -> String {
    format!("{}/log/{}", html::run_href(uuid), path_segment(batch))
}

/// A batch's log as plain text: its last [`logs::FILE_BYTES`], only for a
/// batch the store lists under this run (by name; of several batches of
/// that name, the last to start that has a log here) and whose log is on
/// this machine.
pub async fn log_file(State(d): App, Path((uuid, batch)): Path<(String, String)>) -> Response {
    let result = async {
        let Some(detail) = query::run(d.db(), &uuid).await? else {
            return Err(Error::NotFound(format!("no run {uuid} in the history")));
        };
        let no_log = || {
            Error::NotFound(format!(
                "no log of batch {batch} of run {uuid} on this machine"
            ))
        };
        let file = detail
            .batches
            .iter()
            .rev()
            .filter(|b| b.name == batch)
            .find_map(|b| logs::open(b.log.as_deref(), &detail.run.host, &d.host))
            .ok_or_else(no_log)?;
        let (text, cut) = logs::tail(file, logs::FILE_BYTES, usize::MAX).ok_or_else(no_log)?;
        Ok(if cut {
            format!(
                "[… earlier output cut: the last {} KiB of the log follow]\n{text}",
                logs::FILE_BYTES / 1024
            )
        } else {
            text
        })
    }
    .await;
    match result {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
        Err(e) => e.respond(false),
    }
}

/// `{key: [values]}` of the runs in the window.
pub async fn labels_api(State(d): App, RawQuery(q): RawQuery) -> Response {
    api_response(
        async {
            let p = Params::parse(q.as_deref())?;
            Ok(query::label_values(d.db(), p.filter().since).await?)
        }
        .await,
    )
}
