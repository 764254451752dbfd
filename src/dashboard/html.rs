//! The parts every page shares: the layout, the filter form, how times,
//! durations and statuses look.
//!
//! Everything is a [`maud`] template: an interpolated value `(x)` is
//! HTML-escaped (text and attribute values alike), so a test named
//! `<img src=x onerror=alert(1)>` shows as that text. Nothing in the
//! dashboard uses `PreEscaped`; keep it that way. Controls and bidi
//! overrides, which HTML escaping lets through, are made inert on the whole
//! page ([`markup_response`]).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::params::{Dir, Params, label_pair};
use crate::history::query::rfc3339;
use crate::status::{RunStatus, Status, TestStatus};
use crate::text::inert_lines;

/// Which page is open, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Runs,
    Flaky,
    Regressed,
    Failures,
    Durations,
    None,
}

/// A whole page: `title`, the navigation (its links keep the window and
/// label filters of `p`), and `body`.
pub fn layout(title: &str, nav: Nav, p: &Params, body: Markup) -> Markup {
    let w = p.window();
    let item = |which: Nav, path: &str, text: &str| {
        html! {
            a href=(w.href(path)) aria-current=[(nav == which).then_some("page")] { (text) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · warden" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                header {
                    nav {
                        span.brand { "warden" }
                        (item(Nav::Runs, "/runs", "Runs"))
                        (item(Nav::Flaky, "/flaky", "Flaky tests"))
                        (item(Nav::Regressed, "/regressed", "Regressions"))
                        (item(Nav::Failures, "/failures", "Failures"))
                        (item(Nav::Durations, "/durations", "Durations"))
                    }
                    form.search method="get" action="/search" role="search" {
                        input type="search" name="q" placeholder="find a test"
                            aria-label="find a test by a part of its name"
                            maxlength=(crate::history::query::search::MAX_QUERY)
                            value=[p.q.as_deref()];
                        button type="submit" { "Search" }
                    }
                }
                main { (body) }
                footer { "warden serve: a read-only view of the history store" }
            }
        }
    }
}

/// The page as a response. maud escaped the markup; what it lets through,
/// control characters and bidi overrides in test names and output, is
/// made inert here, once for the whole page: the templates themselves
/// hold none, and links carry names percent-encoded, so only untrusted
/// text changes (a name in a form field shows escaped too). Line breaks
/// and tabs stay: in `<pre>` they are layout.
pub fn markup_response(markup: Markup) -> Response {
    let page = markup.into_string();
    let page = match inert_lines(&page) {
        std::borrow::Cow::Borrowed(_) => page,
        std::borrow::Cow::Owned(escaped) => escaped,
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    let title = status.canonical_reason().unwrap_or("error");
    layout(
        title,
        Nav::None,
        &Params::default(),
        html! {
            h1 { (status.as_u16()) " " (title) }
            p.error { (message) }
        },
    )
}

/// The window choices offered besides the one in use.
const WINDOWS: &[&str] = &["1d", "7d", "30d", "90d", "365d"];

/// A GET form back to `action`: the window, one choice per label key
/// (`labels`: keys and their values), and `extra` fields.
pub fn filter_form(
    action: &str,
    p: &Params,
    labels: &BTreeMap<String, Vec<String>>,
    extra: Markup,
) -> Markup {
    let mut windows: Vec<&str> = WINDOWS.to_vec();
    if !windows.contains(&p.since_text.as_str()) {
        windows.push(&p.since_text);
    }
    // Keys filtered on but not seen in the window still show their choice.
    let mut keys: BTreeMap<&str, Vec<&str>> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect();
    for l in &p.labels {
        let values = keys.entry(&l.key).or_default();
        if !values.contains(&l.value.as_str()) {
            values.push(&l.value);
        }
    }
    html! {
        form.filters method="get" action=(action) {
            label {
                "window "
                select name="since" {
                    @for w in &windows {
                        option value=(w) selected[*w == p.since_text] { "last " (w) }
                    }
                }
            }
            @for (key, values) in &keys {
                label {
                    (key) " "
                    @let current = p.label(key);
                    @let name = label_pair(key, "").0;
                    select name=(name) {
                        option value="" { "any" }
                        @for v in values {
                            @let (_, value) = label_pair(key, v);
                            option value=(value) selected[current == Some(*v)] { (v) }
                        }
                    }
                }
            }
            (extra)
            button type="submit" { "Apply" }
        }
    }
}

/// A hidden form field, when there is a value to keep.
pub fn hidden(name: &str, value: Option<&str>) -> Markup {
    html! {
        @if let Some(v) = value {
            input type="hidden" name=(name) value=(v);
        }
    }
}

/// `2026-11-20 10:00:07 UTC`, with the exact time for machines.
pub fn time(t: SystemTime) -> Markup {
    html! { time datetime=(rfc3339(t)) { (second(t)) } }
}

/// `2026-11-20 10:00:07 UTC`.
pub fn second(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

/// `2026-11-20 10:00`, UTC.
pub fn minute(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub fn duration(d: Option<Duration>) -> String {
    d.map(crate::duration::rounded)
        .unwrap_or_else(|| "-".into())
}

/// A status word, coloured by what kind of end it is: `class` is one of
/// `passed`, `flaky`, `skipped`, `incomplete`, `failed` (the stylesheet's).
fn status(word: &str, class: &'static str) -> Markup {
    html! { span class={ "status " (class) } { (word) } }
}

pub fn test_status(s: &TestStatus) -> Markup {
    let class = match s {
        TestStatus::Passed => "passed",
        TestStatus::Flaky => "flaky",
        TestStatus::Skipped(_) => "skipped",
        TestStatus::Failed | TestStatus::Error(_) => "failed",
    };
    status(s.as_str(), class)
}

pub fn batch_status(s: Status) -> Markup {
    let class = match s {
        Status::Passed => "passed",
        Status::Flaky => "flaky",
        Status::NotRun => "skipped",
        Status::Failed
        | Status::Crashed
        | Status::TimedOut
        | Status::Leaked
        | Status::Aborted
        | Status::Deadline
        | Status::Interrupted => "failed",
    };
    status(s.as_str(), class)
}

pub fn run_status(s: RunStatus) -> Markup {
    let class = match s {
        RunStatus::Passed => "passed",
        RunStatus::Incomplete => "incomplete",
        RunStatus::Failed | RunStatus::Deadline | RunStatus::Interrupted => "failed",
    };
    status(s.as_str(), class)
}

/// The first `n` characters of a commit, or `-`.
pub fn commit(c: Option<&str>, n: usize) -> Markup {
    match c {
        Some(c) => html! { code title=(c) { (c.chars().take(n).collect::<String>()) } },
        None => html! { "-" },
    }
}

/// `12.5%`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// The link to a test's page, keeping the window and label filters.
pub fn test_href(p: &Params, test: &str) -> String {
    let mut w = p.window();
    w.name = Some(test.to_owned());
    w.href("/test")
}

/// The link to a run's page.
pub fn run_href(uuid: &str) -> String {
    format!("/runs/{}", super::params::path_segment(uuid))
}

/// Labels as small tags.
pub fn labels(text: &str) -> Markup {
    html! {
        @if text.is_empty() {
            "-"
        } @else {
            @for l in text.split(' ') {
                span.label { (l) }
                " "
            }
        }
    }
}

/// A failure rate (0–1) as `25.0` with its 95% interval in small type,
/// ` (10–49)`, in percent.
pub fn rate(rate: f64, (lo, hi): (f64, f64)) -> Markup {
    html! {
        (format!("{:.1}", rate * 100.0))
        small { (format!(" ({:.0}–{:.0})", lo * 100.0, hi * 100.0)) }
    }
}

/// A header cell of a table that sorts: a link that sorts by `key`
/// (`default` way first, the other way on a second click), marked `↕`
/// while another column sorts, `▲`/`▼` and `aria-sort` while this one
/// does. `path` is the page's.
pub fn sort_header(
    p: &Params,
    path: &str,
    key: &str,
    title: &str,
    numeric: bool,
    default: Dir,
) -> Markup {
    let current = p.sort.as_deref() == Some(key);
    let dir = if current {
        p.dir.unwrap_or(default)
    } else {
        default
    };
    let mut next = p.clone();
    next.sort = Some(key.to_owned());
    next.dir = Some(if current { dir.flip() } else { default });
    let (arrow, hint) = match (current, dir) {
        (false, _) => (" ↕", "sort by this column"),
        (true, Dir::Asc) => (" ▲", "sorted ascending: click for descending"),
        (true, Dir::Desc) => (" ▼", "sorted descending: click for ascending"),
    };
    html! {
        th class=[numeric.then_some("num")]
            aria-sort=[current.then_some(if dir == Dir::Asc { "ascending" } else { "descending" })] {
            a.sort href=(next.href(path)) data-sort=(key) title=(hint) {
                (title)
                @if current { (arrow) } @else { span.sort-hint aria-hidden="true" { (arrow) } }
            }
        }
    }
}
