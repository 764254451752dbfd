//! The regressions page: `warden regressed`, with links to the test and
//! to the runs around the break.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};

use super::error::Error;
use super::html::{self, Nav};
use super::params::Params;
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use crate::history::classify::{Params as Classify, Verdict};
use crate::history::query::{self, Regression, RunRef};

const DEFAULT_MIN_FAILURES: usize = 3;

async fn load(d: &Dashboard, p: &Params) -> Result<Vec<Regression>, Error> {
    let min = p.min_failures.unwrap_or(DEFAULT_MIN_FAILURES);
    let params = Classify {
        min_failures: min,
        ..Classify::default()
    };
    let mut rows = query::regressed(d.db(), &p.filter(), &params).await?;
    if let Some(limit) = p.limit.filter(|n| *n > 0) {
        rows.truncate(limit);
    }
    Ok(rows)
}

pub async fn api(State(d): App, RawQuery(q): RawQuery) -> Response {
    api_response(async { load(&d, &Params::parse(q.as_deref())?).await }.await)
}

pub async fn page(State(d): App, RawQuery(q): RawQuery) -> Response {
    page_response(
        async {
            let p = Params::parse(q.as_deref())?;
            let rows = load(&d, &p).await?;
            let labels = query::label_values(d.db(), p.filter().since).await?;
            Ok(render(&p, &rows, &labels))
        }
        .await,
    )
}

fn run_link(r: &RunRef) -> Markup {
    html! {
        a href=(html::run_href(&r.run)) { (html::time(r.time)) }
        " "
        (html::commit(r.commit.as_deref(), 10))
    }
}

/// `broken` / `regressed`, styled as a badge.
pub fn verdict_badge(v: Verdict) -> Markup {
    html! { span class=(format!("badge {v}")) { (v) } }
}

fn render(p: &Params, rows: &[Regression], labels: &BTreeMap<String, Vec<String>>) -> Markup {
    let min = p.min_failures.unwrap_or(DEFAULT_MIN_FAILURES);
    let extra = html! {
        label {
            "failing results at least "
            input type="number" name="min_failures" min="1" value=(min);
        }
    };
    let body = html! {
        h1 { "Regressions" }
        (html::filter_form("/regressed", p, labels, extra))
        p.summary {
            (rows.len()) " tests " (p.describe())
            " failing consistently under one label set (" (min) " or more results): "
            strong { "regressed" } " inside the window, or " strong { "broken" } " since before it"
        }
        @if rows.is_empty() {
            p.empty { "No regressed tests " (p.describe()) "." }
        } @else {
            table.regressed {
                thead { tr {
                    th { "Test" } th { "Labels" } th { "Verdict" } th.num { "Failures" }
                    th { "First bad (UTC)" } th { "Last good (UTC)" } th.num { "Sure" }
                } }
                tbody {
                    @for r in rows {
                        tr {
                            td.test {
                                a href=({
                                    // The test under the labels that regressed.
                                    let mut w = p.window();
                                    for l in r.labels.split(' ').filter_map(|l| l.parse::<crate::history::model::Label>().ok()) {
                                        w.labels.retain(|x| x.key != l.key);
                                        w.labels.push(l);
                                    }
                                    html::test_href(&w, &r.test)
                                }) { (r.test) }
                            }
                            td { (html::labels(&r.labels)) }
                            td { (verdict_badge(r.verdict)) }
                            td.num { (r.failures) }
                            td {
                                @match &r.first_bad {
                                    Some(b) => (run_link(b)),
                                    None => { "before the window (failing since " (run_link(&r.failing_since)) ")" }
                                }
                            }
                            td { @if let Some(g) = &r.last_good { (run_link(g)) } @else { "-" } }
                            td.num { @if let Some(c) = r.confidence { (format!("{:.0}%", c * 100.0)) } @else { "-" } }
                        }
                    }
                }
            }
        }
    };
    html::layout("Regressions", Nav::Regressed, p, body)
}
