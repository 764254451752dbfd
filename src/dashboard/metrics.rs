//! `/metrics`: the history in the Prometheus text format (0.0.4), for a
//! Prometheus server (or anything that scrapes it) to keep and graph.
//!
//! What Prometheus users expect, and why it is shaped this way
//! (README, "Prometheus"):
//!
//! - **Counters are cumulative** over the whole store
//!   ([`query::totals`]): `rate()` and `increase()` give runs or failures
//!   per hour over any range, across restarts of `warden serve`. A
//!   `warden prune` lowers them, which Prometheus reads as a counter
//!   reset. **Gauges say what holds now**: flaky, broken and regressed
//!   tests in the dashboard's window (30 days, `since`), classified as
//!   `/flaky` and `/regressed` classify them ([`query::verdicts`]), and
//!   runs with no end yet.
//! - **Bounded cardinality.** Series are labelled by the run's label set
//!   (each `[run] labels` / `--label` key a Prometheus label), batch name
//!   and status, never by test, run or commit; a test gets series only
//!   when named (`warden serve --metrics-test NAME`).
//! - **A crate does the format** (`prometheus-client`'s Prometheus text
//!   encoder: names, `_total`, `_bucket`/`le`, escaping of label values
//!   that come from the code under test). The numbers are read from the
//!   store on every scrape, so they are handed to it as a [`Collector`]
//!   of constant values rather than kept in its metric types.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text::{CONTENT_TYPE, encode};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use super::error::Error;
use super::params::Params;
use super::state::{App, Dashboard};
use crate::history::classify::Params as Classify;
use crate::history::query::{self, DURATION_BUCKETS_MS, Totals, VerdictCounts};
use crate::status::Status;

/// Label names of warden's own; a run label key spelled like one (or like
/// a label Prometheus adds to every series) is prefixed `label_`.
const RESERVED: &[&str] = &[
    "batch", "status", "verdict", "test", "le", "quantile", "job", "instance",
];

/// A series' labels: (name, value), in order.
type Labels = Vec<(String, String)>;

pub async fn metrics(State(d): App, RawQuery(q): RawQuery) -> Response {
    let text = |status: StatusCode, body: String| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    };
    let snapshot = match load(&d, q.as_deref()).await {
        Ok(s) => s,
        Err(e) => return text(e.status(), format!("{e}\n")),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut body = String::new();
    match encode(&mut body, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        // A value the encoder cannot write (none of ours should be).
        Err(_) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n".into(),
        ),
    }
}

/// The numbers of one scrape: the counters over the whole store, the
/// gauges over `q`'s window (`/flaky`'s parameters; default 30 days).
async fn load(d: &Dashboard, q: Option<&str>) -> Result<Snapshot, Error> {
    let p = Params::parse(q)?;
    let totals = query::totals(d.db(), &d.metrics_tests).await?;
    let verdicts = query::verdicts(d.db(), &p.filter(), &Classify::default()).await?;
    Ok(snapshot(&totals, &verdicts, p.since.as_secs()))
}

/// A run label key as a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`,
/// not one of warden's own nor reserved (`__…`).
fn label_name(key: &str) -> String {
    let name: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if RESERVED.contains(&name.as_str())
        || name.starts_with("__")
        || name.starts_with(|c: char| c.is_ascii_digit())
        || name.is_empty()
    {
        format!("label_{name}")
    } else {
        name
    }
}

/// The Prometheus labels of each label set; two keys that come out as
/// the same name keep the first.
fn prometheus_labels(totals: &Totals) -> BTreeMap<&str, Labels> {
    totals
        .label_sets
        .iter()
        .map(|(text, labels)| {
            let mut out: Labels = Vec::with_capacity(labels.len());
            for (k, v) in labels {
                let name = label_name(k);
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, v.clone()));
                }
            }
            (text.as_str(), out)
        })
        .collect()
}

/// A metric's value in one series.
#[derive(Debug)]
enum Value {
    Counter(u64),
    Gauge(i64),
    /// Seconds summed, count, and per bucket (upper bound in seconds,
    /// count in it: not cumulative).
    Histogram(f64, u64, Vec<(f64, u64)>),
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    series: Vec<(Labels, Value)>,
}

/// One scrape's numbers, as the encoder asks for them.
#[derive(Debug)]
struct Snapshot(Vec<Family>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let mut metric = encoder.encode_descriptor(f.name, f.help, f.unit.as_ref(), f.kind)?;
            for (labels, value) in &f.series {
                let series = metric.encode_family(labels)?;
                match value {
                    Value::Counter(n) => ConstCounter::new(*n).encode(series)?,
                    Value::Gauge(n) => ConstGauge::new(*n).encode(series)?,
                    Value::Histogram(sum, count, buckets) => {
                        let mut series = series;
                        series.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `labels` followed by warden's own.
fn with(labels: Option<&Labels>, own: &[(&str, &str)]) -> Labels {
    let mut out = labels.cloned().unwrap_or_default();
    out.extend(own.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    out
}

fn snapshot(totals: &Totals, verdicts: &VerdictCounts, window_secs: u64) -> Snapshot {
    let sets = prometheus_labels(totals);
    let labels_of = |text: &str| sets.get(text);
    let family = |name, help, unit, kind| Family {
        name,
        help,
        unit,
        kind,
        series: Vec::new(),
    };

    let mut runs = family(
        "warden_runs",
        "Runs that ended, by label set and status.",
        None,
        MetricType::Counter,
    );
    let mut incomplete = family(
        "warden_runs_incomplete",
        "Runs with no end recorded: running now, or their warden died.",
        None,
        MetricType::Gauge,
    );
    let mut last = family(
        "warden_last_run_timestamp",
        "Start of the latest run of each label set, Unix time.",
        Some(Unit::Seconds),
        MetricType::Gauge,
    );
    let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &totals.runs {
        let labels = labels_of(&r.labels);
        let started = crate::history::model::unix_millis(r.last_started).div_euclid(1000);
        let l = latest.entry(&r.labels).or_insert(started);
        *l = (*l).max(started);
        if r.status == crate::status::RunStatus::Incomplete {
            incomplete
                .series
                .push((with(labels, &[]), Value::Gauge(r.runs as i64)));
        } else {
            runs.series.push((
                with(labels, &[("status", r.status.as_str())]),
                Value::Counter(r.runs),
            ));
        }
    }
    for (text, started) in latest {
        last.series
            .push((with(labels_of(text), &[]), Value::Gauge(started)));
    }

    let mut batches = family(
        "warden_batches",
        "Batches, setup and post steps (not imported suites), by label set, name and status.",
        None,
        MetricType::Counter,
    );
    let mut durations = family(
        "warden_batch_duration",
        "Durations of the batches that ran (all but not-run), by label set and name.",
        Some(Unit::Seconds),
        MetricType::Histogram,
    );
    let mut histograms: BTreeMap<(&str, &str), (u64, u64, Vec<u64>)> = BTreeMap::new();
    for b in &totals.batches {
        batches.series.push((
            with(
                labels_of(&b.labels),
                &[("batch", &b.batch), ("status", b.status.as_str())],
            ),
            Value::Counter(b.batches),
        ));
        if b.status == Status::NotRun {
            continue;
        }
        let h = histograms
            .entry((&b.labels, &b.batch))
            .or_insert_with(|| (0, 0, vec![0; b.buckets.len()]));
        h.0 += b.duration_ms;
        h.1 += b.batches;
        for (sum, n) in h.2.iter_mut().zip(&b.buckets) {
            *sum += n;
        }
    }
    for ((text, batch), (ms, count, buckets)) in histograms {
        let bounds = DURATION_BUCKETS_MS
            .iter()
            .map(|ms| *ms as f64 / 1000.0)
            .chain([f64::INFINITY]);
        durations.series.push((
            with(labels_of(text), &[("batch", batch)]),
            Value::Histogram(ms as f64 / 1000.0, count, bounds.zip(buckets).collect()),
        ));
    }

    let mut results = family(
        "warden_test_results",
        "Test results by status (every test, every run).",
        None,
        MetricType::Counter,
    );
    for (st, n) in &totals.results {
        results
            .series
            .push((with(None, &[("status", st.as_str())]), Value::Counter(*n)));
    }
    let mut named = family(
        "warden_named_test_results",
        "Results of the tests named by --metrics-test, by label set and status.",
        None,
        MetricType::Counter,
    );
    for t in &totals.tests {
        named.series.push((
            with(
                labels_of(&t.labels),
                &[("test", &t.test), ("status", t.status.as_str())],
            ),
            Value::Counter(t.results),
        ));
    }

    let mut tests = family(
        "warden_tests",
        "Tests classified flaky, broken or regressed in the window, by label set \
         (a test counts once per label set), as /flaky and /regressed classify them.",
        None,
        MetricType::Gauge,
    );
    for text in &verdicts.label_sets {
        for v in query::verdicts::COUNTED {
            tests.series.push((
                with(labels_of(text), &[("verdict", v.as_str())]),
                Value::Gauge(verdicts.get(text, v) as i64),
            ));
        }
    }
    let mut window = family(
        "warden_window",
        "The window warden_tests classifies, in seconds.",
        Some(Unit::Seconds),
        MetricType::Gauge,
    );
    window.series.push((
        Vec::new(),
        Value::Gauge(i64::try_from(window_secs).unwrap_or(i64::MAX)),
    ));

    Snapshot(vec![
        runs, incomplete, last, batches, durations, results, named, tests, window,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_are_valid_and_never_warden_s_own() {
        assert_eq!(label_name("arch"), "arch");
        assert_eq!(label_name("build-type"), "build_type");
        assert_eq!(label_name("os.version"), "os_version");
        assert_eq!(label_name("status"), "label_status");
        assert_eq!(label_name("job"), "label_job");
        assert_eq!(label_name("__name__"), "label___name__");
        assert_eq!(label_name("9p"), "label_9p");
    }
}
