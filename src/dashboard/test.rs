//! One test's page: its results as a strip of cells (one per run, linked
//! to the run, with the commit in the tooltip), a chart of its durations
//! with the rolling p50 and p90, the clusters its failures fall in (as
//! the failures page groups them, linked there), and the results as a
//! table.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Serialize;

use super::error::Error;
use super::html::{self, Nav};
use super::params::Params;
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use super::svg;
use crate::history::classify::Params as Classify;
use crate::history::model::{duration_millis, from_duration_millis};
use crate::history::query::durations::percentile;
use crate::history::query::{
    self, DurationRow, HistoryEntry, HuntSummary, LabelVerdict, TestCluster, rfc3339,
};
use crate::status::TestStatus;

/// Results shown unless `limit` says otherwise (the newest).
const DEFAULT_LIMIT: usize = 200;
/// How many results back the rolling percentiles look.
pub const ROLLING: usize = 10;

/// What the page and `/api/test` show.
#[derive(Debug, Serialize)]
pub struct TestView {
    pub test: String,
    /// Results in the window, before `limit`.
    pub total: usize,
    /// The newest `limit`, oldest first.
    pub results: Vec<HistoryEntry>,
    /// Over the shown results with a duration, skipped ones left out.
    pub durations: Option<DurationRow>,
    /// For each of those, the p50 and p90 of it and the [`ROLLING`] − 1
    /// before it.
    pub rolling: Vec<Rolling>,
    /// The test's verdict under each label set, over all its results in
    /// the window (not only the shown ones).
    pub verdicts: Vec<LabelVerdict>,
    /// The clusters of its failures in the window (before `limit`).
    pub clusters: Vec<TestCluster>,
    /// `warden hunt`s of it (any time, newest first): kept out of every
    /// figure above.
    pub hunts: Vec<HuntSummary>,
}

#[derive(Debug, Serialize)]
pub struct Rolling {
    /// The run's uuid.
    pub run: String,
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    pub duration_ms: i64,
    pub p50_ms: i64,
    pub p90_ms: i64,
}

fn serialize_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

async fn load(d: &Dashboard, p: &Params) -> Result<TestView, Error> {
    let Some(name) = p.name.as_deref() else {
        return Err(Error::BadRequest("name: which test?".into()));
    };
    let h = query::history(d.db(), &p.filter(), name, &Classify::default()).await?;
    let total = h.results.len();
    let clusters = query::test_clusters(&h.results);
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    let mut results = h.results;
    if limit > 0 && results.len() > limit {
        results.drain(..results.len() - limit);
    }
    let rolling = rolling(&results);
    let mut all: Vec<i64> = rolling.iter().map(|r| r.duration_ms).collect();
    all.sort_unstable();
    let durations = match (percentile(&all, 50), percentile(&all, 90), all.last()) {
        (Some(p50), Some(p90), Some(max)) => Some(DurationRow {
            name: h.test.clone(),
            count: all.len() as u64,
            p50: from_duration_millis(p50),
            p90: from_duration_millis(p90),
            max: from_duration_millis(*max),
        }),
        _ => None,
    };
    let hunts = query::hunts(d.db(), &h.test).await?;
    Ok(TestView {
        hunts,
        test: h.test,
        total,
        results,
        durations,
        rolling,
        verdicts: h.verdicts,
        clusters,
    })
}

/// The rolling percentiles of the results with a duration (skipped ones
/// left out), oldest first.
fn rolling(results: &[HistoryEntry]) -> Vec<Rolling> {
    let measured: Vec<(&HistoryEntry, i64)> = results
        .iter()
        .filter(|e| !e.status.is_skipped())
        .filter_map(|e| Some((e, duration_millis(e.duration?))))
        .collect();
    measured
        .iter()
        .enumerate()
        .map(|(i, (e, v))| {
            let mut window: Vec<i64> = measured[(i + 1).saturating_sub(ROLLING)..=i]
                .iter()
                .map(|(_, v)| *v)
                .collect();
            window.sort_unstable();
            Rolling {
                run: e.run.clone(),
                time: e.time,
                duration_ms: *v,
                p50_ms: percentile(&window, 50).unwrap_or(*v),
                p90_ms: percentile(&window, 90).unwrap_or(*v),
            }
        })
        .collect()
}

pub async fn api(State(d): App, RawQuery(q): RawQuery) -> Response {
    api_response(async { load(&d, &Params::parse(q.as_deref())?).await }.await)
}

pub async fn page(State(d): App, RawQuery(q): RawQuery) -> Response {
    page_response(
        async {
            let p = Params::parse(q.as_deref())?;
            let view = load(&d, &p).await?;
            let labels = query::label_values(d.db(), p.filter().since).await?;
            Ok(render(&p, &view, &labels))
        }
        .await,
    )
}

/// The hunts of the test: each with its arms and their verdicts.
fn hunts(hunts: &[HuntSummary]) -> Markup {
    html! {
        @if !hunts.is_empty() {
            h2 { "Hunts" }
            @for h in hunts {
                p.summary {
                    (html::minute(h.started)) " on " (h.host)
                    @if let Some(c) = &h.commit { " · commit " (html::commit(Some(c), 10)) }
                    @if !h.labels.is_empty() { " · " (h.labels) }
                    " · " (h.runs_per_arm) " runs per arm, " (h.parallel) " at once"
                    @if h.until_fail { ", until the first failure" }
                    " · logs in " code { (h.dir) }
                }
                table.hunt {
                    thead { tr {
                        th { "Arm" } th.num { "Runs" } th.num { "Failed" } th.num { "Median" }
                        th { "Verdict" } th { "In words" }
                    } }
                    tbody {
                        @for a in &h.arms {
                            tr {
                                td { code { (a.arm) } }
                                td.num { (a.runs) }
                                td.num { (a.failures) }
                                td.num { (html::duration(a.median_ms.map(from_duration_millis))) }
                                td { (a.verdict) }
                                td { (a.sentence) }
                            }
                        }
                    }
                }
            }
            p.note {
                "warden hunt: each arm ran the test again and again under one condition; an arm is "
                "sensitive when it fails more often than the control (one-sided Fisher exact test, 5%). "
                "Hunts are kept apart from the results: they count in no verdict above."
            }
        }
    }
}

/// What a strip cell's tooltip says about a result.
fn describe(e: &HistoryEntry) -> String {
    let mut s = format!("{} · {}", html::minute(e.time), e.status);
    if let Some(d) = e.duration {
        s.push_str(&format!(" · {}", crate::duration::rounded(d)));
    }
    if let Some(c) = &e.commit {
        s.push_str(&format!(
            " · commit {}",
            c.chars().take(12).collect::<String>()
        ));
    }
    if !e.labels.is_empty() {
        s.push_str(&format!(" · {}", e.labels));
    }
    if let Some(m) = &e.mass_failure {
        s.push_str(&format!(" · mass failure: {}", m.describe()));
    }
    s
}

/// The strip marker's tooltip for a label set's change.
fn change_note(lv: &LabelVerdict) -> String {
    let mut s = format!("{}: {}", lv.verdict, lv.verdict.change_word());
    if let Some(c) = &lv.change {
        s.push_str(&format!(" here ({:.0}% sure)", c.confidence * 100.0));
    }
    if !lv.labels.is_empty() {
        s.push_str(&format!(" · {}", lv.labels));
    }
    s
}

fn render(p: &Params, v: &TestView, labels: &BTreeMap<String, Vec<String>>) -> Markup {
    let count = |s: TestStatus| v.results.iter().filter(|e| e.status == s).count();
    // Where a change of regime begins: the run after it.
    let changes: std::collections::HashMap<&str, String> = v
        .verdicts
        .iter()
        .filter_map(|lv| {
            let c = lv.change.as_ref()?;
            Some((c.after.run.as_str(), change_note(lv)))
        })
        .collect();
    let cells: Vec<svg::Cell> = v
        .results
        .iter()
        .map(|e| svg::Cell {
            status: e.status.clone(),
            href: html::run_href(&e.run),
            title: describe(e),
            change: changes.get(e.run.as_str()).cloned(),
            mass: e.mass_failure.is_some(),
        })
        .collect();
    let by_run: std::collections::HashMap<&str, &Rolling> =
        v.rolling.iter().map(|r| (r.run.as_str(), r)).collect();
    let points: Vec<svg::Point> = v
        .results
        .iter()
        .filter_map(|e| {
            let r = by_run.get(e.run.as_str())?;
            Some(svg::Point {
                time: e.time,
                ms: r.duration_ms,
                status: e.status.clone(),
                title: describe(e),
                p50: r.p50_ms,
                p90: r.p90_ms,
            })
        })
        .collect();
    let mut keep = p.window();
    keep.name = Some(v.test.clone());
    let extra = html! {
        (html::hidden("name", Some(&v.test)))
        (html::hidden("limit", p.limit.map(|n| n.to_string()).as_deref()))
    };
    let body = html! {
        h1.test-name { (v.test) }
        (html::filter_form("/test", p, labels, extra))
        p.summary {
            (v.total) " results " (p.describe())
            @if v.results.len() < v.total {
                " (the latest " (v.results.len()) "; "
                a href=({ let mut all = keep.clone(); all.limit = Some(0); all.href("/test") }) { "all" }
                ")"
            }
            ": " (count(TestStatus::Passed)) " passed, " (count(TestStatus::Failed)) " failed, "
            (count(TestStatus::Flaky)) " flaky, " (count(TestStatus::Skipped(None))) " skipped"
            @if let Some(d) = &v.durations {
                "; p50 " (html::duration(Some(d.p50))) ", p90 " (html::duration(Some(d.p90)))
                ", max " (html::duration(Some(d.max)))
            }
        }
        @if !v.verdicts.is_empty() {
            h2 { "Verdict" }
            table.verdicts {
                thead { tr {
                    th { "Labels" } th { "Verdict" } th.num { "Runs" } th.num { "Failed" }
                    th.num { "Flaky" } th.num { "Rate % (95% CI)" } th { "Change" }
                } }
                tbody {
                    @for lv in &v.verdicts {
                        tr {
                            td { @if lv.labels.is_empty() { "-" } @else { (html::labels(&lv.labels)) } }
                            td { (super::regressed::verdict_badge(lv.verdict)) }
                            td.num { (lv.runs) }
                            td.num { (lv.failures) }
                            td.num { (lv.flaky) }
                            td.num { (html::rate(lv.failure_rate, lv.interval)) }
                            td {
                                @if let Some(c) = &lv.change {
                                    (lv.verdict.change_word()) " between "
                                    a href=(html::run_href(&c.before.run)) { (html::commit(c.before.commit.as_deref(), 10)) }
                                    " and "
                                    a href=(html::run_href(&c.after.run)) { (html::commit(c.after.commit.as_deref(), 10)) }
                                    (format!(" ({:.0}% sure)", c.confidence * 100.0))
                                } @else { "-" }
                            }
                        }
                    }
                }
            }
            p.note {
                "Per label set, over every result in the window: the failing rate of the current "
                "regime (since the last change the Beta-Binomial model found) with its 95% interval. "
                "A bar in the strip marks where a regime begins."
            }
        }
        (hunts(&v.hunts))
        @if v.results.is_empty() {
            p.empty { "No results " (p.describe()) "." }
        } @else {
            h2 { "Results, oldest first" }
            div.strip-box { (svg::strip(&cells)) }
            p.legend {
                span.key.passed {} "passed " span.key.failed {} "failed "
                span.key.flaky {} "flaky (failed, then passed on a retry) " span.key.skipped {} "skipped "
                span.key.mass {} "in a mass failure (counted for no verdict)"
            }
            h2 { "Duration" }
            @if points.is_empty() {
                p.empty { "No durations recorded." }
            } @else {
                div.chart-box { (svg::duration_chart(&points, ROLLING)) }
            }
            (clusters(p, &v.clusters))
            h2 { "Results, newest first" }
            table.results {
                thead { tr {
                    th { "Run started (UTC)" } th { "Status" } th.num { "Duration" } th { "Run status" }
                    th { "Commit" } th { "Branch" } th { "Labels" } th { "Batch" }
                } }
                tbody {
                    @for e in v.results.iter().rev() {
                        tr {
                            td { a href=(html::run_href(&e.run)) { (html::time(e.time)) } }
                            td { (html::test_status(&e.status)) }
                            td.num { (html::duration(e.duration)) }
                            td { (html::run_status(e.run_status)) }
                            td { (html::commit(e.commit.as_deref(), 12)) }
                            td { (e.branch.as_deref().unwrap_or("-")) }
                            td { (html::labels(&e.labels)) }
                            td { (e.batch.as_deref().unwrap_or("-")) }
                        }
                        @if let Some(m) = e.message.as_deref().filter(|_| matches!(e.status, TestStatus::Failed | TestStatus::Flaky)) {
                            tr.message { td colspan="8" { code.message { (m) } } }
                        }
                    }
                }
            }
        }
    };
    html::layout(&v.test, Nav::None, p, body)
}

/// The "Failure clusters" section: each pattern with this test's
/// failures in it, linked to the cluster on the failures page.
fn clusters(p: &Params, clusters: &[TestCluster]) -> Markup {
    html! {
        @if !clusters.is_empty() {
            h2 { "Failure clusters" }
            table.clusters {
                thead { tr { th { "Pattern" } th.num { "Failures" } th { "Last seen" } } }
                tbody {
                    @for c in clusters {
                        tr {
                            td.pattern {
                                a href=(super::failures::cluster_href(p, &c.pattern)) { code { (c.pattern) } }
                            }
                            td.num { (c.failures) }
                            td { (html::time(c.last_seen)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(k: u64, status: TestStatus, ms: Option<u64>) -> HistoryEntry {
        HistoryEntry {
            test: "t".into(),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(k),
            status,
            duration: ms.map(Duration::from_millis),
            commit: None,
            branch: None,
            labels: String::new(),
            run: format!("r{k}"),
            run_status: crate::status::RunStatus::Passed,
            batch: None,
            message: None,
            mass_failure: None,
        }
    }

    #[test]
    fn rolling_percentiles_look_back_ten_measured_results() {
        let mut results: Vec<HistoryEntry> = (1..=12)
            .map(|k| entry(k, TestStatus::Passed, Some(10 * k)))
            .collect();
        // Skipped and unmeasured results are not points.
        results.insert(3, entry(100, TestStatus::Skipped(None), Some(5000)));
        results.insert(5, entry(101, TestStatus::Failed, None));
        let r = rolling(&results);
        assert_eq!(r.len(), 12);
        let got: Vec<(i64, i64, i64)> = r
            .iter()
            .map(|r| (r.duration_ms, r.p50_ms, r.p90_ms))
            .collect();
        assert_eq!(got[0], (10, 10, 10));
        assert_eq!(got[1], (20, 10, 20));
        // 10..=100: p50 the 5th value, p90 the 9th.
        assert_eq!(got[9], (100, 50, 90));
        // 30..=120.
        assert_eq!(got[11], (120, 70, 110));
    }
}
