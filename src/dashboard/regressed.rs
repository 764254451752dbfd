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
use crate::history::query::{self, Regression, RunRef};

const DEFAULT_MIN_FAILURES: usize = 3;

async fn load(d: &Dashboard, p: &Params) -> Result<Vec<Regression>, Error> {
    let min = p.min_failures.unwrap_or(DEFAULT_MIN_FAILURES);
    let mut rows = query::regressed(d.db(), &p.filter(), min).await?;
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

fn render(p: &Params, rows: &[Regression], labels: &BTreeMap<String, Vec<String>>) -> Markup {
    let min = p.min_failures.unwrap_or(DEFAULT_MIN_FAILURES);
    let extra = html! {
        label {
            "failures in a row "
            input type="number" name="min_failures" min="1" value=(min);
        }
    };
    let body = html! {
        h1 { "Regressions" }
        (html::filter_form("/regressed", p, labels, extra))
        p.summary {
            (rows.len()) " tests " (p.describe())
            " whose last " (min) " or more results under one label set failed, after a pass"
        }
        @if rows.is_empty() {
            p.empty { "No regressed tests " (p.describe()) "." }
        } @else {
            table.regressed {
                thead { tr {
                    th { "Test" } th { "Labels" } th.num { "Failures" }
                    th { "First failure (UTC)" } th { "Last pass (UTC)" }
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
                            td.num { (r.failures) }
                            td { (run_link(&r.first_failure)) }
                            td { (run_link(&r.last_pass)) }
                        }
                    }
                }
            }
        }
    };
    html::layout("Regressions", Nav::Regressed, p, body)
}
