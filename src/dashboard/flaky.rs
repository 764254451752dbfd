//! The flaky tests page: `warden flaky`'s numbers, sortable by any column
//! (links in the headers, `?sort=flip&dir=desc`), filtered by window and
//! label values, optionally one row per test and label values (`by`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};

use super::error::Error;
use super::html::{self, Nav};
use super::params::{Dir, Params};
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use crate::history::classify::Params as Classify;
use crate::history::query::{self, FlakyRow};

/// Rows shown unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 200;

/// The sortable columns: (parameter, header, default direction).
const COLUMNS: &[(&str, &str, Dir)] = &[
    ("hits", "Hits", Dir::Desc),
    ("runs", "Runs", Dir::Desc),
    ("fail", "Fail", Dir::Desc),
    ("flaky", "Flaky", Dir::Desc),
    ("rate", "Rate % (95% CI)", Dir::Desc),
    ("flip", "Flip %", Dir::Desc),
    ("first", "First seen", Dir::Desc),
    ("last", "Last seen", Dir::Desc),
];

/// What the page and `/api/flaky` show: the rows in the asked order, cut
/// to the limit, and how many there were in all.
struct Flaky {
    rows: Vec<FlakyRow>,
    total: usize,
}

async fn load(d: &Dashboard, p: &Params) -> Result<Flaky, Error> {
    let mut rows = query::flaky(d.db(), &p.filter(), &p.by, &Classify::default()).await?;
    sort(&mut rows, p)?;
    let total = rows.len();
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if limit > 0 {
        rows.truncate(limit);
    }
    Ok(Flaky { rows, total })
}

/// Sorts by `p.sort` (a column, `test`, or a `by` key) in `p.dir`; without
/// `sort`, the library's order (impact) stays. Ties keep that order.
fn sort(rows: &mut [FlakyRow], p: &Params) -> Result<(), Error> {
    let Some(key) = p.sort.as_deref() else {
        if p.dir == Some(Dir::Asc) {
            rows.reverse();
        }
        return Ok(());
    };
    let by_label = p.by.iter().any(|k| k == key);
    let cmp: fn(&FlakyRow, &FlakyRow) -> Ordering = match key {
        "test" => |a, b| a.test.cmp(&b.test),
        "hits" => |a, b| a.hits.cmp(&b.hits),
        "runs" => |a, b| a.runs.cmp(&b.runs),
        "fail" => |a, b| a.failures.cmp(&b.failures),
        "flaky" => |a, b| a.flaky.cmp(&b.flaky),
        "rate" => |a, b| a.failure_rate.total_cmp(&b.failure_rate),
        "flip" => |a, b| a.flip_rate.total_cmp(&b.flip_rate),
        "first" => |a, b| a.first_seen.cmp(&b.first_seen),
        "last" => |a, b| a.last_seen.cmp(&b.last_seen),
        _ if by_label => |_, _| Ordering::Equal,
        _ => return Err(Error::BadRequest(format!("sort: no column `{key}`"))),
    };
    let dir = p.dir.unwrap_or(default_dir(key));
    let order = |o: Ordering| if dir == Dir::Desc { o.reverse() } else { o };
    if by_label {
        rows.sort_by(|a, b| order(a.labels.get(key).cmp(&b.labels.get(key))));
    } else {
        rows.sort_by(|a, b| order(cmp(a, b)));
    }
    Ok(())
}

fn default_dir(key: &str) -> Dir {
    COLUMNS
        .iter()
        .find(|c| c.0 == key)
        .map_or(Dir::Asc, |c| c.2)
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
            let flaky = load(&d, &p).await?;
            let labels = query::label_values(d.db(), p.filter().since).await?;
            Ok(render(&p, &flaky, &labels))
        }
        .await,
    )
}

/// A header cell whose link sorts by `key`: descending first for numbers,
/// the other way on a second click.
fn header(p: &Params, key: &str, title: &str, numeric: bool) -> Markup {
    html::sort_header(p, "/flaky", key, title, numeric, default_dir(key))
}

fn render(p: &Params, f: &Flaky, labels: &BTreeMap<String, Vec<String>>) -> Markup {
    let all_keys = labels.keys().cloned().collect::<Vec<_>>().join(",");
    let by = p.by.join(",");
    let extra = html! {
        label {
            "one row per "
            select name="by" {
                option value="" { "test" }
                @for k in labels.keys() {
                    option value=(k) selected[by == *k] { "test and " (k) }
                }
                @if labels.len() > 1 {
                    option value=(all_keys) selected[by == all_keys] { "test and all labels" }
                }
                @if !by.is_empty() && by != all_keys && !labels.contains_key(&by) {
                    option value=(by) selected { "test and " (by) }
                }
            }
        }
        (html::hidden("sort", p.sort.as_deref()))
        (html::hidden("dir", p.dir.map(Dir::as_str)))
        (html::hidden("limit", p.limit.map(|n| n.to_string()).as_deref()))
    };
    let body = html! {
        h1 { "Flaky tests" }
        (html::filter_form("/flaky", p, labels, extra))
        p.summary {
            (f.total) " flaky tests " (p.describe())
            @if f.rows.len() < f.total {
                " (the first " (f.rows.len()) "; "
                a href=({ let mut all = p.clone(); all.limit = Some(0); all.href("/flaky") }) { "all" }
                ")"
            }
            @if p.sort.is_some() {
                " · "
                a href=({ let mut d = p.clone(); d.sort = None; d.dir = None; d.href("/flaky") }) { "impact order" }
            }
        }
        @if f.rows.is_empty() {
            p.empty { "No flaky tests " (p.describe()) "." }
        } @else {
            table.flaky {
                thead { tr {
                    (header(p, "test", "Test", false))
                    @for k in &p.by { (header(p, k, k, false)) }
                    @for (key, title, _) in COLUMNS { (header(p, key, title, true)) }
                } }
                tbody {
                    @for r in &f.rows {
                        tr {
                            td.test {
                                a href=({
                                    // A row of some label values links to the
                                    // test under those values.
                                    let mut w = p.window();
                                    for (k, v) in r.labels.iter().filter(|(_, v)| *v != "-") {
                                        if let Ok(l) = format!("{k}={v}").parse() {
                                            w.labels.retain(|x: &crate::history::model::Label| x.key != *k);
                                            w.labels.push(l);
                                        }
                                    }
                                    html::test_href(&w, &r.test)
                                }) { (r.test) }
                            }
                            @for k in &p.by { td { (r.labels.get(k).map(String::as_str).unwrap_or("-")) } }
                            td.num { (r.hits) }
                            td.num { (r.runs) }
                            td.num { (r.failures) }
                            td.num { (r.flaky) }
                            td.num { (html::rate(r.failure_rate, r.interval)) }
                            td.num { (format!("{:.1}", r.flip_rate * 100.0)) }
                            td.num { (html::time(r.first_seen)) }
                            td.num { (html::time(r.last_seen)) }
                        }
                    }
                }
            }
            p.note {
                "Hits = failures + flaky runs (failed, then passed on a retry). "
                "Rate % = failing share of the current regime (change points found by the "
                "Beta-Binomial model), with its 95% interval. Flip % = status changes between "
                "results with the same labels, in commit order. Tests failing consistently are "
                "on the regressions page, not here. Times UTC."
            }
        }
    };
    html::layout("Flaky tests", Nav::Flaky, p, body)
}
