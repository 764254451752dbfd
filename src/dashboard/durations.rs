//! The durations page: the slowest tests and batches of the window with
//! their p50, p90 and maximum, and their trend: the p50 of the window
//! before (as long as this one, just before it) and the change. The
//! numbers are `warden durations`' ([`query::durations_until`]: the
//! tests' from the daily rollups when no label filters). The window
//! before is read only for the rows shown, unless they are sorted by it,
//! so the page costs about what that command costs. Sortable by any
//! column.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Serialize;

use super::error::Error;
use super::html::{self, Nav};
use super::params::{Dir, Params};
use super::response::{api_response, page_response};
use super::state::{App, Dashboard};
use crate::history::query::{self, DurationRow, Filter, Subject};

/// Rows per table unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;

/// The sortable columns: (parameter, header, numeric, default direction).
const COLUMNS: &[(&str, &str, bool, Dir)] = &[
    ("name", "Name", false, Dir::Asc),
    ("count", "Results", true, Dir::Desc),
    ("p50", "p50", true, Dir::Desc),
    ("p90", "p90", true, Dir::Desc),
    ("max", "Max", true, Dir::Desc),
    ("before", "p50 before", true, Dir::Desc),
    ("change", "Change", true, Dir::Desc),
];

/// A test's or batch's durations in the window and the p50 of the one
/// before.
#[derive(Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub now: DurationRow,
    /// The p50 in the window before (`null`: not measured then).
    #[serde(
        rename = "previous_p50_ms",
        serialize_with = "crate::history::query::serialize_opt_ms"
    )]
    pub before: Option<Duration>,
    /// p50 now / p50 before (`null` without a before).
    pub change: Option<f64>,
}

/// One table: its first rows in the asked order, and how many in all.
#[derive(Debug, Serialize)]
pub struct Table {
    pub total: usize,
    pub rows: Vec<Row>,
}

#[derive(Debug, Serialize)]
pub struct DurationsView {
    pub tests: Table,
    pub batches: Table,
}

/// The window just before `filter`'s, as long as `window`: its filter
/// and end.
fn before(filter: &Filter, window: Duration) -> (Filter, std::time::SystemTime) {
    let mut earlier = filter.clone();
    earlier.since = filter
        .since
        .checked_sub(window)
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    (earlier, filter.since)
}

async fn load(d: &Dashboard, p: &Params) -> Result<DurationsView, Error> {
    let filter = p.filter();
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    let (tests, batches) = tokio::join!(
        subject_table(d, p, &filter, Subject::Tests, limit),
        subject_table(d, p, &filter, Subject::Batches, limit),
    );
    Ok(DurationsView {
        tests: tests?,
        batches: batches?,
    })
}

/// Whether the rows are sorted by the window before (its p50, or the
/// change): then every row's p50 before is needed to know which are shown.
fn by_trend(p: &Params) -> bool {
    matches!(p.sort.as_deref(), Some("before" | "change"))
}

/// One table: the window's rows, and the p50 of the window before.
/// Sorted by a column of this window and limited, the rows shown are
/// known first and only theirs are read in the window before (the page
/// then costs one window, not two: at 10M results the window before was
/// half of it); sorted by the trend, or unlimited, every row's is read.
async fn subject_table(
    d: &Dashboard,
    p: &Params,
    filter: &Filter,
    subject: Subject,
    limit: usize,
) -> Result<Table, Error> {
    let db = d.db();
    let (earlier, end) = before(filter, p.since);
    if by_trend(p) || limit == 0 {
        let (now, then) = tokio::join!(
            query::durations(db, filter, subject),
            query::durations_until(db, &earlier, subject, Some(end), None),
        );
        let mut rows = rows(now?);
        let total = rows.len();
        with_before(&mut rows, then?);
        sort(&mut rows, p)?;
        if limit > 0 {
            rows.truncate(limit);
        }
        return Ok(Table { total, rows });
    }
    let mut rows = rows(query::durations(db, filter, subject).await?);
    let total = rows.len();
    sort(&mut rows, p)?;
    rows.truncate(limit);
    let shown: Vec<String> = rows.iter().map(|r| r.now.name.clone()).collect();
    let then = query::durations_until(db, &earlier, subject, Some(end), Some(&shown)).await?;
    with_before(&mut rows, then);
    Ok(Table { total, rows })
}

fn rows(now: Vec<DurationRow>) -> Vec<Row> {
    now.into_iter()
        .map(|now| Row {
            now,
            before: None,
            change: None,
        })
        .collect()
}

/// Each row's p50 before, from `then`, and the change.
fn with_before(rows: &mut [Row], then: Vec<DurationRow>) {
    let before: HashMap<String, Duration> = then.into_iter().map(|r| (r.name, r.p50)).collect();
    for r in rows {
        let b = before.get(&r.now.name).copied();
        r.change = b
            .filter(|b| !b.is_zero())
            .map(|b| r.now.p50.as_secs_f64() / b.as_secs_f64());
        r.before = b;
    }
}

/// Sorts by `p.sort` in `p.dir`; without `sort`, the library's order
/// (slowest p90 first) stays. Rows without a value sort last either way.
fn sort(rows: &mut [Row], p: &Params) -> Result<(), Error> {
    let Some(key) = p.sort.as_deref() else {
        if p.dir == Some(Dir::Asc) {
            rows.reverse();
        }
        return Ok(());
    };
    let Some(&(_, _, _, default)) = COLUMNS.iter().find(|c| c.0 == key) else {
        return Err(Error::BadRequest(format!("sort: no column `{key}`")));
    };
    let dir = p.dir.unwrap_or(default);
    let order = |o: Ordering| if dir == Dir::Desc { o.reverse() } else { o };
    let opt = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => order(a.total_cmp(&b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    rows.sort_by(|a, b| match key {
        "name" => order(a.now.name.cmp(&b.now.name)),
        "count" => order(a.now.count.cmp(&b.now.count)),
        "p50" => order(a.now.p50.cmp(&b.now.p50)),
        "p90" => order(a.now.p90.cmp(&b.now.p90)),
        "max" => order(a.now.max.cmp(&b.now.max)),
        "before" => opt(secs(a.before), secs(b.before)),
        _ => opt(a.change, b.change),
    });
    Ok(())
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

/// `+25%`, `−10%`, `±0%`: the p50's change.
fn change(r: &Row) -> Markup {
    match r.change {
        None => html! { span.muted title="not measured in the window before" { "new" } },
        Some(c) => {
            let pct = (c - 1.0) * 100.0;
            let class = if c >= 1.5 {
                "slower"
            } else if c <= 1.0 / 1.5 {
                "faster"
            } else {
                "steady"
            };
            let text = if pct.abs() < 0.5 {
                "±0%".to_owned()
            } else if pct > 0.0 {
                format!("+{pct:.0}%")
            } else {
                format!("−{:.0}%", -pct)
            };
            html! { span class={ "change " (class) } { (text) } }
        }
    }
}

fn table_html(p: &Params, kind: &str, t: &Table, test_links: bool) -> Markup {
    html! {
        p.summary {
            (t.total) " " (kind) " " (p.describe())
            @if t.rows.len() < t.total { ", the first " (t.rows.len()) " shown" }
        }
        @if t.rows.is_empty() {
            p.empty { "No durations " (p.describe()) "." }
        } @else {
            table class={ "durations " (kind) } {
                thead { tr {
                    @for (key, title, numeric, default) in COLUMNS {
                        (html::sort_header(p, "/durations", key, title, *numeric, *default))
                    }
                } }
                tbody {
                    @for r in &t.rows {
                        tr {
                            td.name {
                                @if test_links { a href=(html::test_href(p, &r.now.name)) { (r.now.name) } }
                                @else { (r.now.name) }
                            }
                            td.num { (r.now.count) }
                            td.num { (html::duration(Some(r.now.p50))) }
                            td.num { (html::duration(Some(r.now.p90))) }
                            td.num { (html::duration(Some(r.now.max))) }
                            td.num { (html::duration(r.before)) }
                            td.num { (change(r)) }
                        }
                    }
                }
            }
        }
    }
}

fn render(p: &Params, v: &DurationsView, labels: &BTreeMap<String, Vec<String>>) -> Markup {
    let extra = html! {
        (html::hidden("sort", p.sort.as_deref()))
        (html::hidden("dir", p.dir.map(Dir::as_str)))
        (html::hidden("limit", p.limit.map(|n| n.to_string()).as_deref()))
    };
    let body = html! {
        h1 { "Durations" }
        (html::filter_form("/durations", p, labels, extra))
        @if p.sort.is_some() {
            p { a href=({ let mut d = p.clone(); d.sort = None; d.dir = None; d.href("/durations") }) { "slowest p90 first" } }
        }
        h2 { "Slowest tests" }
        (table_html(p, "tests", &v.tests, true))
        h2 { "Slowest batches" }
        (table_html(p, "batches", &v.batches, false))
        p.note {
            "p50, p90: nearest-rank percentiles of the results' durations in the window (skipped "
            "results left out; for tests without label filters, from the daily rollups, within "
            "1/128 of the value). p50 before: the same over the window just before this one, as "
            "long as it. Change: p50 now against p50 before; 1.5 times or more is marked slower."
        }
    };
    html::layout("Durations", Nav::Durations, p, body)
}
