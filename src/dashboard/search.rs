//! The search page: tests whose names contain the text typed in the
//! header's search box (`/search?q=`), each linked to its page; at most
//! `limit` of them (default [`DEFAULT_LIMIT`], never more than
//! [`MAX_LIMIT`]) with how many more there are.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};

use super::error::Error;
use super::html::{self, Nav};
use super::params::Params;
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use crate::history::query::{self, TestMatches};

/// Names listed unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// The most names one answer lists (`limit=0` too).
const MAX_LIMIT: usize = 1000;

async fn load(d: &Dashboard, p: &Params) -> Result<TestMatches, Error> {
    let limit = match p.limit.unwrap_or(DEFAULT_LIMIT) {
        0 => MAX_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    Ok(query::search_tests(d.db(), p.q.as_deref().unwrap_or(""), limit).await?)
}

pub async fn api(State(d): App, RawQuery(q): RawQuery) -> Response {
    api_response(async { load(&d, &Params::parse(q.as_deref())?).await }.await)
}

pub async fn page(State(d): App, RawQuery(q): RawQuery) -> Response {
    page_response(
        async {
            let p = Params::parse(q.as_deref())?;
            let found = load(&d, &p).await?;
            Ok(render(&p, &found))
        }
        .await,
    )
}

fn render(p: &Params, f: &TestMatches) -> Markup {
    let more = f.total.saturating_sub(f.tests.len() as u64);
    let body = html! {
        h1 { "Find a test" }
        @if f.query.is_empty() {
            p.empty { "Type a part of a test's name in the search box above (letters in any case)." }
        } @else {
            p.summary {
                (f.total) @if f.total == 1 { " test whose name contains “" } @else { " tests whose names contain “" }
                span.query { (f.query) } "” (letters in any case)"
            }
            @if f.tests.is_empty() {
                p.empty { "No test's name contains it." }
            } @else {
                ul.search-results {
                    @for t in &f.tests {
                        li { a href=(html::test_href(p, t)) { (t) } }
                    }
                }
                @if more > 0 {
                    p.more {
                        (more) " more: type more of the name"
                        @if f.tests.len() < MAX_LIMIT {
                            ", or "
                            a href=({ let mut all = p.clone(); all.limit = Some(MAX_LIMIT); all.href("/search") }) {
                                "list up to " (MAX_LIMIT)
                            }
                        }
                        "."
                    }
                }
            }
        }
    };
    html::layout("Find a test", Nav::None, p, body)
}
