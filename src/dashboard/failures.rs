//! The failures page: `warden failures`, the window's failures grouped by
//! cause (their messages with the variable parts masked), each cluster
//! with an example message, its tests (linked to their pages) and label
//! values. `pattern` shows one cluster: a test's page links here so.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};

use super::error::Error;
use super::html::{self, Nav};
use super::params::Params;
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use crate::history::query::{self, ClusterRow};

/// Clusters shown unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// Tests named under a cluster; the rest are counted.
const TESTS_NAMED: usize = 10;

/// What the page and `/api/failures` show: the clusters (all, or the one
/// of `pattern`), cut to the limit, and how many there were in all.
struct Failures {
    rows: Vec<ClusterRow>,
    total: usize,
    failures: u64,
}

async fn load(d: &Dashboard, p: &Params) -> Result<Failures, Error> {
    let mut rows = query::failures(d.db(), &p.filter()).await?;
    if let Some(pattern) = &p.pattern {
        rows.retain(|r| r.pattern == *pattern);
    }
    let total = rows.len();
    let failures = rows.iter().map(|r| r.failures).sum();
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit > 0 {
        rows.truncate(limit);
    }
    Ok(Failures {
        rows,
        total,
        failures,
    })
}

pub async fn api(State(d): App, RawQuery(q): RawQuery) -> Response {
    api_response(
        async {
            let p = Params::parse(q.as_deref())?;
            Ok(load(&d, &p).await?.rows)
        }
        .await,
    )
}

pub async fn page(State(d): App, RawQuery(q): RawQuery) -> Response {
    page_response(
        async {
            let p = Params::parse(q.as_deref())?;
            let f = load(&d, &p).await?;
            let labels = query::label_values(d.db(), p.filter().since).await?;
            Ok(render(&p, &f, &labels))
        }
        .await,
    )
}

/// The link to one cluster on this page, keeping the window and labels.
pub fn cluster_href(p: &Params, pattern: &str) -> String {
    let mut w = p.window();
    w.pattern = Some(pattern.to_owned());
    w.href("/failures")
}

fn render(p: &Params, f: &Failures, labels: &BTreeMap<String, Vec<String>>) -> Markup {
    let extra = html! {
        (html::hidden("pattern", p.pattern.as_deref()))
        (html::hidden("limit", p.limit.map(|n| n.to_string()).as_deref()))
    };
    let body = html! {
        h1 { "Failures by cause" }
        (html::filter_form("/failures", p, labels, extra))
        p.summary {
            (f.failures) " failures in " (f.total) " clusters " (p.describe())
            @if f.rows.len() < f.total {
                " (the first " (f.rows.len()) "; "
                a href=({ let mut all = p.clone(); all.limit = Some(0); all.href("/failures") }) { "all" }
                ")"
            }
            @if p.pattern.is_some() {
                " · "
                a href=({ let mut all = p.clone(); all.pattern = None; all.href("/failures") }) { "every cluster" }
            }
        }
        @if f.rows.is_empty() {
            p.empty { "No failures with a message " (p.describe()) "." }
        } @else {
            table.failures {
                thead { tr {
                    th.num { "Failures" } th.num { "Flaky" } th.num { "Tests" } th.num { "Runs" }
                    th { "Pattern" } th { "First seen" } th { "Last seen" }
                } }
                tbody {
                    @for r in &f.rows {
                        tr.cluster {
                            td.num { (r.failures) }
                            td.num { (r.flaky) }
                            td.num { (r.tests.len()) }
                            td.num { (r.runs) }
                            td.pattern { a href=(cluster_href(p, &r.pattern)) { code { (r.pattern) } } }
                            td { (html::time(r.first_seen)) }
                            td { (html::time(r.last_seen)) }
                        }
                        tr.message {
                            td colspan="7" {
                                @if r.example != r.pattern {
                                    "latest: " code.message { (r.example) } br;
                                }
                                "in "
                                @for (i, t) in r.tests.iter().take(TESTS_NAMED).enumerate() {
                                    @if i > 0 { ", " }
                                    a.test href=(html::test_href(p, t)) { (t) }
                                }
                                @if r.tests.len() > TESTS_NAMED {
                                    " and " (r.tests.len() - TESTS_NAMED) " more"
                                }
                                @for (k, values) in &r.labels {
                                    " "
                                    @for v in values { span.label { (k) "=" (v) } " " }
                                }
                            }
                        }
                    }
                }
            }
            p.note {
                "Failed and flaky results with a message, grouped by the message with its variable parts masked: "
                code { "<N>" } " numbers, " code { "<HEX>" } ", " code { "<PATH>" } " temporary paths, "
                code { "<IP>:<PORT>" } ", " code { "<TID>" } " thread ids, " code { "<DUR>" } " durations, "
                code { "<TIME>" } ", " code { "<UUID>" } ", " code { "<TEST>" } " the test's own name. Times UTC."
            }
        }
    };
    html::layout("Failures", Nav::Failures, p, body)
}
