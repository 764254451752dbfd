//! Two runs compared (`/compare?a=RUN&b=RUN`, each a uuid or a run
//! number): what newly failed, what was fixed and what got slower from A
//! to B, per batch and per test ([`query::compare`] says exactly what
//! each means). Reached from the runs list ("vs previous", or the A and
//! B choices).

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};

use super::error::Error;
use super::html::{self, Nav};
use super::params::Params;
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use crate::history::query::compare::{SLOWER_BY, SLOWER_FACTOR};
use crate::history::query::{self, Changes, Comparison, RunSummary};

/// Rows per list unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 200;

async fn find(d: &Dashboard, which: &str, key: Option<&str>) -> Result<RunSummary, Error> {
    let Some(key) = key else {
        return Err(Error::BadRequest(format!(
            "{which}: which run? (a uuid or a run number)"
        )));
    };
    query::run_summary(d.db(), key)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no run {key} in the history")))
}

async fn load(d: &Dashboard, p: &Params) -> Result<Comparison, Error> {
    let a = find(d, "a", p.a.as_deref()).await?;
    let b = find(d, "b", p.b.as_deref()).await?;
    let a_batches = query::run_batches(d.db(), a.number).await?;
    let b_batches = query::run_batches(d.db(), b.number).await?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    Ok(query::compare(d.db(), a, b, &a_batches, &b_batches, limit).await?)
}

pub async fn api(State(d): App, RawQuery(q): RawQuery) -> Response {
    api_response(async { load(&d, &Params::parse(q.as_deref())?).await }.await)
}

pub async fn page(State(d): App, RawQuery(q): RawQuery) -> Response {
    page_response(
        async {
            let p = Params::parse(q.as_deref())?;
            let c = load(&d, &p).await?;
            Ok(render(&p, &c))
        }
        .await,
    )
}

fn run_cell(r: &RunSummary) -> Markup {
    html! {
        a href=(html::run_href(&r.uuid)) { "#" (r.number) } " "
        (html::run_status(r.status)) " · " (html::time(r.started))
        " · " (r.passed) " passed, " (r.failed) " failed, " (r.flaky) " flaky"
        @if !r.labels.is_empty() { " · " (html::labels(&r.labels)) }
        @if let Some(c) = &r.commit { " · commit " (html::commit(Some(c), 10)) }
    }
}

/// One list: its heading, count and rows.
fn list(p: &Params, id: &str, title: &str, c: &Changes, tests: bool) -> Markup {
    let status = |s: Option<&str>| s.unwrap_or("-").to_owned();
    html! {
        section class={ "changes " (id) } id=(id) {
            h3 { (title) " " span.count { "(" (c.total) ")" } }
            @if c.items.is_empty() {
                p.empty { "None." }
            } @else {
                table {
                    thead { tr {
                        th { @if tests { "Test" } @else { "Batch" } }
                        @if tests { th { "Batch" } }
                        th { "A" } th { "B" } th.num { "A took" } th.num { "B took" }
                    } }
                    tbody {
                        @for x in &c.items {
                            tr {
                                td.name {
                                    @if tests { a href=(html::test_href(p, &x.name)) { (x.name) } }
                                    @else { (x.name) }
                                }
                                @if tests { td { (x.batch.as_deref().unwrap_or("-")) } }
                                td { (status(x.before.as_deref())) }
                                td { (x.after) }
                                td.num { (html::duration(x.before_duration)) }
                                td.num { (html::duration(x.after_duration)) }
                            }
                        }
                    }
                }
                @if (c.items.len() as u64) < c.total {
                    p.more { "+" (c.total - c.items.len() as u64) " more" }
                }
            }
        }
    }
}

fn render(p: &Params, c: &Comparison) -> Markup {
    let mut swapped = p.clone();
    std::mem::swap(&mut swapped.a, &mut swapped.b);
    let body = html! {
        h1 { "Run #" (c.a.number) " → run #" (c.b.number) }
        dl.facts {
            dt { "A (before)" } dd { (run_cell(&c.a)) }
            dt { "B (after)" } dd { (run_cell(&c.b)) }
        }
        p { a href=(swapped.href("/compare")) { "swap A and B" } }
        h2 { "Batches" }
        (list(p, "batches-newly-failed", "Newly failed", &c.batches.newly_failed, false))
        (list(p, "batches-fixed", "Fixed", &c.batches.fixed, false))
        (list(p, "batches-slower", "Slower", &c.batches.slower, false))
        h2 { "Tests" }
        (list(p, "tests-newly-failed", "Newly failed", &c.tests.newly_failed, true))
        (list(p, "tests-fixed", "Fixed", &c.tests.fixed, true))
        (list(p, "tests-slower", "Slower", &c.tests.slower, true))
        p.note {
            "Newly failed: failed in B, not in A (passed, flaky or not there). Fixed: failed in A, "
            "passed or flaky in B. Slower: B took at least " (SLOWER_FACTOR) " times as long as A and at least "
            (SLOWER_BY.as_secs()) " s more. Batches and tests are matched by name."
        }
    };
    html::layout(
        &format!("Run #{} → #{}", c.a.number, c.b.number),
        Nav::Runs,
        p,
        body,
    )
}
