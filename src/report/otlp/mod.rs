//! The run as an OpenTelemetry trace, sent over OTLP/HTTP
//! (`--otlp-endpoint`, `OTEL_EXPORTER_OTLP_ENDPOINT`): a span for the run
//! (the root, or a child of the `TRACEPARENT` warden was started with), a
//! span per attempt of each unit under it, and a span per test under its
//! attempt, named and attributed per the CI/CD and test semantic
//! conventions ([`semconv`]).
//!
//! A reporter like the others: it turns each finished unit into spans as
//! the events come and queues them at once for sending ([`export`]), and
//! [`Otlp::export`] adds the run span once the verdict is known (its id
//! was fixed at the start, so the children sent before it name it) while
//! the run finishes its other work. The attempt spans' ids are the ones
//! each attempt's `TRACEPARENT` named ([`TraceContext::attempt_span`]), so
//! what the tests traced of themselves hangs under the right attempt.
//!
//! Tests have no start times, only durations (where the format gives
//! them): they are laid end to end from their attempt's start, in the
//! order they finished; when that overruns the attempt (tests that ran in
//! parallel), each starts at the attempt's start instead.

pub mod export;
pub mod semconv;
pub mod send;
pub mod target;
pub mod tls;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, SpanFlags, Status as SpanStatus, span::SpanKind,
    status::StatusCode,
};

use crate::config::BatchName;
use crate::event::{Event, Reporter};
use crate::history::model::Labels;
use crate::outcome::Outcome;
use crate::parsers::TestResult;
use crate::phase::Phase;
use crate::status::{RunStatus, Status, TestStatus};
use crate::trace_context::TraceContext;
pub use export::{Export, Exporter, Report};
use semconv::{int, text};
pub use target::{Resolved, Target};

/// Test spans kept per run, passing and failing ones counted apart (so a
/// huge run's failures are never crowded out by its passes); past that
/// they are counted on the run span (`warden.test_spans_left_out`).
const MAX_TEST_SPANS: usize = 10_000;

/// Spans per request: a receiver's request size limit (the Collector's
/// default is 4 MiB over gRPC; OTLP/HTTP ones vary) stays far away.
const SPANS_PER_REQUEST: usize = 1_000;

/// What the run span says of the run besides its result.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `cicd.pipeline.name`: the config file, as given.
    pub pipeline: String,
    /// `cicd.pipeline.run.id`: the history's run uuid when recorded.
    pub run_id: String,
    pub labels: Labels,
}

pub struct Otlp {
    /// Where the spans go; `None` keeps them in `spans` (the unit tests).
    exporter: Option<Exporter>,
    trace: TraceContext,
    run: RunInfo,
    began: SystemTime,
    /// A moment on both clocks: `Started` events carry monotonic times.
    clock: (Instant, SystemTime),
    /// Each running unit's attempts' starts and slots, until it finishes.
    starts: HashMap<BatchName, Vec<(SystemTime, Option<u32>)>>,
    spans: Vec<Span>,
    passing_tests: usize,
    failing_tests: usize,
    left_out: u64,
}

impl Otlp {
    /// A run beginning now, in `trace`, its spans sent to `target`; `Err`
    /// when the export cannot start (see [`Exporter::start`]).
    pub fn new(target: Target, trace: TraceContext, run: RunInfo) -> Result<Otlp, String> {
        let exporter = Exporter::start(target)?;
        Ok(Otlp::with(Some(exporter), trace, run))
    }

    fn with(exporter: Option<Exporter>, trace: TraceContext, run: RunInfo) -> Otlp {
        let now = SystemTime::now();
        Otlp {
            exporter,
            trace,
            run,
            began: now,
            clock: (Instant::now(), now),
            starts: HashMap::new(),
            spans: Vec::new(),
            passing_tests: 0,
            failing_tests: 0,
            left_out: 0,
        }
    }

    /// The run is over with `status` and `exit_code`: queues the run span,
    /// and what is still queued is sent within `within` (see
    /// [`Export::wait`]); `None` without an exporter.
    pub fn export(mut self, status: RunStatus, exit_code: u8, within: Duration) -> Option<Export> {
        let run = self.run_span(status, exit_code);
        self.spans.push(run);
        let spans = std::mem::take(&mut self.spans);
        let requests = self.requests(spans);
        Some(self.exporter?.finish(requests, within))
    }

    /// Queues the spans made so far.
    fn flush(&mut self) {
        let Some(exporter) = &self.exporter else {
            return;
        };
        if self.spans.is_empty() {
            return;
        }
        let spans = std::mem::take(&mut self.spans);
        for (request, count) in self.requests(spans) {
            exporter.send(request, count);
        }
    }

    /// The trace's id, as traces are looked up (hex).
    pub fn trace_id(&self) -> String {
        crate::trace_context::hex(&self.trace.trace_id)
    }

    fn run_span(&self, status: RunStatus, exit_code: u8) -> Span {
        let result = semconv::pipeline_result(status);
        let mut attributes = vec![
            text(semconv::PIPELINE_NAME, &self.run.pipeline),
            text(semconv::PIPELINE_RUN_ID, &self.run.run_id),
            text(semconv::PIPELINE_ACTION, "RUN"),
            text(semconv::PIPELINE_RESULT, result),
            text("warden.status", status.as_str()),
            int("warden.exit_code", i64::from(exit_code)),
        ];
        if status != RunStatus::Passed {
            attributes.push(text(semconv::ERROR_TYPE, status.as_str()));
        }
        for (k, v) in self.run.labels.iter() {
            attributes.push(text(&format!("warden.label.{k}"), v));
        }
        if self.left_out > 0 {
            attributes.push(int(
                "warden.test_spans_left_out",
                i64::try_from(self.left_out).unwrap_or(i64::MAX),
            ));
        }
        let (parent, remote) = match self.trace.parent {
            Some(p) => (p.to_vec(), true),
            None => (Vec::new(), false),
        };
        Span {
            trace_id: self.trace.trace_id.to_vec(),
            span_id: self.trace.span_id.to_vec(),
            parent_span_id: parent,
            flags: flags(remote),
            name: format!("RUN {}", self.run.pipeline),
            kind: SpanKind::Server as i32,
            start_time_unix_nano: nanos(self.began),
            end_time_unix_nano: nanos(SystemTime::now().max(self.began)),
            attributes,
            status: Some(span_status(
                status != RunStatus::Passed,
                &format!("run {}", status.as_str()),
            )),
            ..Default::default()
        }
    }

    /// A finished unit: a span per attempt, and its tests under them.
    fn finished(&mut self, o: &Outcome) {
        let started = self.starts.remove(&o.name).unwrap_or_default();
        let attempts = o.retried.len() + 1;
        // Where each attempt began: as its `Started` event said when every
        // attempt had one (a program that could not be started has none),
        // else counted back from the last attempt's start.
        let mut begins = vec![o.started; attempts];
        if started.len() == attempts {
            for (b, (at, _)) in begins.iter_mut().zip(&started) {
                *b = *at;
            }
        } else {
            for k in (0..attempts - 1).rev() {
                begins[k] = begins[k + 1]
                    .checked_sub(o.retried[k].duration)
                    .unwrap_or(begins[k + 1]);
            }
        }
        let slot = |k: usize| started.get(k).or(started.last()).and_then(|s| s.1);
        for (k, earlier) in o.retried.iter().enumerate() {
            let attempt = k + 1;
            let span = self.attempt_span(
                o,
                Try {
                    attempt,
                    status: earlier.status,
                    reason: &earlier.reason,
                    log: &earlier.log,
                    begin: begins[k],
                    duration: earlier.duration,
                    slot: slot(k),
                },
            );
            let parent = span.span_id.clone();
            self.spans.push(span);
            // Of an earlier attempt only its failed tests are known.
            let failed: Vec<TestResult> = earlier
                .failed_tests
                .iter()
                .map(|(name, message)| TestResult {
                    path: vec![name.clone()],
                    status: TestStatus::Failed,
                    duration: None,
                    output: Default::default(),
                    message: Some(message.clone()),
                })
                .collect();
            self.test_spans(o, attempt, &parent, begins[k], earlier.duration, &failed);
        }
        let span = self.attempt_span(
            o,
            Try {
                attempt: attempts,
                status: o.status,
                reason: &o.reason,
                log: &o.log,
                begin: begins[attempts - 1],
                duration: o.duration,
                slot: slot(attempts - 1),
            },
        );
        let parent = span.span_id.clone();
        self.spans.push(span);
        self.test_spans(
            o,
            attempts,
            &parent,
            begins[attempts - 1],
            o.duration,
            &o.tests,
        );
    }

    fn attempt_span(&self, o: &Outcome, t: Try<'_>) -> Span {
        let name = o.name.as_str();
        let result = semconv::task_result(t.status);
        let mut attributes = vec![
            text(semconv::TASK_NAME, name),
            text(
                semconv::TASK_RUN_ID,
                format!("{name}.attempt-{}", t.attempt),
            ),
            text(semconv::TASK_RUN_URL, file_url(t.log)),
            text(semconv::TASK_RUN_RESULT, result),
            text("warden.status", t.status.as_str()),
            text("warden.reason", t.reason),
            text("warden.phase", o.phase.as_str()),
            int("warden.attempt", count(t.attempt)),
        ];
        if !matches!(result, "success" | "skip") {
            attributes.push(text(semconv::ERROR_TYPE, t.status.as_str()));
        }
        if o.phase == Phase::Batch {
            attributes.push(text(semconv::TASK_TYPE, "test"));
            attributes.push(text(semconv::SUITE_NAME, name));
            attributes.push(text(
                semconv::SUITE_RUN_STATUS,
                semconv::suite_status(t.status),
            ));
        }
        if let Some(slot) = t.slot {
            attributes.push(int("warden.slot", i64::from(slot)));
        }
        if let Some(kind) = &o.kind {
            attributes.push(text("warden.kind", kind));
        }
        if let Some(why) = &o.quarantined {
            attributes.push(text("warden.quarantined", why));
        }
        let failed = !t.status.is_success() && t.status != Status::NotRun;
        Span {
            trace_id: self.trace.trace_id.to_vec(),
            span_id: self
                .trace
                .attempt_span(name, attempt_u32(t.attempt))
                .to_vec(),
            parent_span_id: self.trace.span_id.to_vec(),
            flags: flags(false),
            name: name.to_owned(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: nanos(t.begin),
            end_time_unix_nano: nanos(t.begin + t.duration),
            attributes,
            status: Some(span_status(failed, t.reason)),
            ..Default::default()
        }
    }

    /// The spans of an attempt's tests (see the module's note on timing).
    fn test_spans(
        &mut self,
        o: &Outcome,
        attempt: usize,
        parent: &[u8],
        begin: SystemTime,
        duration: Duration,
        tests: &[TestResult],
    ) {
        let total: Duration = tests.iter().filter_map(|t| t.duration).sum();
        let end_to_end = total <= duration;
        let mut cursor = begin;
        for (i, t) in tests.iter().enumerate() {
            let took = t.duration.unwrap_or_default();
            let start = if end_to_end { cursor } else { begin };
            cursor += took;
            let failing = t.status.is_failure();
            let kept = if failing {
                &mut self.failing_tests
            } else {
                &mut self.passing_tests
            };
            if *kept >= MAX_TEST_SPANS {
                self.left_out += 1;
                continue;
            }
            *kept += 1;
            let name = t.name();
            let mut attributes = vec![
                text(semconv::CASE_NAME, &name),
                text(semconv::CASE_RESULT_STATUS, semconv::case_status(&t.status)),
                text(semconv::SUITE_NAME, o.name.as_str()),
                text("warden.status", t.status.as_str()),
            ];
            if let TestStatus::Error(kind) = &t.status {
                attributes.push(text(semconv::ERROR_TYPE, kind));
            } else if failing {
                attributes.push(text(semconv::ERROR_TYPE, "failed"));
            }
            let id = self
                .trace
                .test_span(o.name.as_str(), attempt_u32(attempt), i);
            self.spans.push(Span {
                trace_id: self.trace.trace_id.to_vec(),
                span_id: id.to_vec(),
                parent_span_id: parent.to_vec(),
                flags: flags(false),
                name,
                kind: SpanKind::Internal as i32,
                start_time_unix_nano: nanos(start),
                end_time_unix_nano: nanos(start + took),
                attributes,
                status: Some(span_status(
                    failing,
                    t.message.as_deref().unwrap_or_default(),
                )),
                ..Default::default()
            });
        }
    }

    /// The spans as requests, each with the resource and scope, and its
    /// span count.
    fn requests(&self, spans: Vec<Span>) -> Vec<(ExportTraceServiceRequest, usize)> {
        let resource = Resource {
            attributes: vec![
                text(semconv::SERVICE_NAME, "warden"),
                text(semconv::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
            ],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "warden".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let mut requests = Vec::new();
        let mut spans = spans.into_iter().peekable();
        while spans.peek().is_some() {
            let chunk: Vec<Span> = spans.by_ref().take(SPANS_PER_REQUEST).collect();
            let count = chunk.len();
            let request = ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(resource.clone()),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(scope.clone()),
                        spans: chunk,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            requests.push((request, count));
        }
        requests
    }
}

/// One attempt of a unit, as its span tells it.
struct Try<'a> {
    attempt: usize,
    status: Status,
    reason: &'a str,
    log: &'a Path,
    begin: SystemTime,
    duration: Duration,
    slot: Option<u32>,
}

impl Reporter for Otlp {
    fn on_event(&mut self, event: &Event) {
        match event {
            Event::Started { name, at, slot, .. } => {
                let (instant, wall) = self.clock;
                let when = match at.checked_duration_since(instant) {
                    Some(after) => wall + after,
                    None => wall
                        .checked_sub(instant.duration_since(*at))
                        .unwrap_or(wall),
                };
                self.starts
                    .entry(name.clone())
                    .or_default()
                    .push((when, *slot));
            }
            Event::Finished(outcome) => {
                self.finished(outcome);
                self.flush();
            }
            // Its spans come from the unit's Finished (its `retried`).
            Event::Retrying(_) | Event::TestResult { .. } | Event::Note(_) => {}
        }
    }
}

/// Sampled, and whether the parent is remote (known either way).
fn flags(remote_parent: bool) -> u32 {
    let mut flags = 0x01 | SpanFlags::ContextHasIsRemoteMask as u32;
    if remote_parent {
        flags |= SpanFlags::ContextIsRemoteMask as u32;
    }
    flags
}

/// `ERROR` with the reason for what failed; otherwise unset, as the
/// conventions advise for what went as expected.
fn span_status(failed: bool, reason: &str) -> SpanStatus {
    if failed {
        SpanStatus {
            code: StatusCode::Error as i32,
            message: reason.to_owned(),
        }
    } else {
        SpanStatus::default()
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn attempt_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// `file://` and the path, bytes outside the URL path's safe set
/// percent-encoded.
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[cfg(test)]
mod tests;
