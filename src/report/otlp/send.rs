//! Sending the spans as the run goes: each finished unit's requests are
//! queued ([`Exporter::send`], never blocking the run: a full queue drops
//! them, counted) and POSTed by a worker thread of its own, so a warden
//! killed later still leaves what finished at the receiver; the run span
//! goes last ([`Exporter::finish`]), and what is still queued then gets
//! one time budget, after which [`Export::wait`] says how it all went.
//!
//! Each request is retried, as the OTLP specification asks, on 429, 502,
//! 503, 504 and on connection errors and timeouts, with exponential
//! backoff and jitter, after the receiver's `Retry-After` when it gives
//! one, within [`RETRY_BUDGET`] (and never past the end-of-run budget);
//! once a request has given up, the next ones get one try each until one
//! gets through, so a receiver that is down does not fill the queue.
//!
//! A small blocking client (`ureq`) on plain threads rather than an async
//! one on the run's runtime: a worker can be left behind if the receiver
//! never answers, where a task would hold the runtime's shutdown.

use std::collections::VecDeque;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::target::{Compression, Protocol, Target};

/// How much of a receiver's error answer is quoted.
const QUOTED: usize = 200;

/// Requests waiting to be sent (each of at most a thousand spans); past
/// that a unit's spans are dropped rather than the run held up.
const QUEUE: usize = 64;

/// How long one request may be tried, retries included.
const RETRY_BUDGET: Duration = Duration::from_secs(10);

/// The first retry's backoff, doubled at each retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// The exporter of a run, from its start.
pub struct Exporter {
    shared: Arc<Shared>,
}

/// The export after the run span was queued: [`wait`](Export::wait) for
/// how it went.
pub struct Export {
    shared: Arc<Shared>,
    until: Instant,
}

/// How the export went.
#[derive(Debug)]
pub struct Report {
    /// Every span the run offered.
    pub spans: usize,
    /// All of them reached the receiver and none was rejected.
    pub complete: bool,
    /// What went wrong, each a sentence after "OTLP export to <url>".
    pub warnings: Vec<String>,
}

/// A request and its span count.
struct Job {
    request: ExportTraceServiceRequest,
    spans: usize,
}

struct Shared {
    target: Target,
    agent: ureq::Agent,
    state: Mutex<State>,
    /// Rung at every change of `state`.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// The run span is queued: nothing more comes.
    closed: bool,
    /// The end-of-run budget, once the run is over.
    until: Option<Instant>,
    /// Requests on their way.
    busy: usize,
    /// A request gave up: the next get one try each until one goes through.
    down: bool,
    tally: Tally,
}

#[derive(Default)]
struct Tally {
    offered: usize,
    sent: usize,
    first_error: Option<String>,
    dropped: usize,
    rejected: i64,
    rejection: Option<String>,
}

/// Whether and when a failed request may be tried again.
enum Retry {
    No,
    Backoff,
    After(Duration),
}

struct Failure {
    why: String,
    retry: Retry,
}

impl Exporter {
    /// Starts the worker for `target`; `Err` when its TLS files cannot be
    /// used or the thread cannot be started.
    pub fn start(target: Target) -> Result<Exporter, String> {
        let tls = super::tls::config(&target.tls)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // An error status is an answer to read, not a transport error.
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        let shared = Arc::new(Shared {
            target,
            agent,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        spawn_worker(&shared).map_err(|e| format!("cannot start its thread: {e}"))?;
        Ok(Exporter { shared })
    }

    /// Queues `request` (`spans` spans) without waiting: when the queue
    /// is full it is dropped, and counted.
    pub fn send(&self, request: ExportTraceServiceRequest, spans: usize) {
        let mut state = self.shared.lock();
        state.tally.offered += spans;
        if state.queue.len() >= QUEUE {
            state.tally.dropped += spans;
            return;
        }
        state.queue.push_back(Job { request, spans });
        self.shared.wake.notify_all();
    }

    /// The run is over: `last` (the run span's requests) goes first, and
    /// everything still queued must be sent `within` from now. A worker
    /// busy with an earlier request gets a second one beside it, so that
    /// a slow receiver does not keep the run span waiting.
    pub fn finish(self, last: Vec<(ExportTraceServiceRequest, usize)>, within: Duration) -> Export {
        let until = Instant::now() + within;
        let mut state = self.shared.lock();
        for (request, spans) in last.into_iter().rev() {
            state.tally.offered += spans;
            state.queue.push_front(Job { request, spans });
        }
        state.closed = true;
        state.until = Some(until);
        let busy = state.busy > 0;
        drop(state);
        self.shared.wake.notify_all();
        if busy && let Err(e) = spawn_worker(&self.shared) {
            // The one worker carries on alone.
            let mut state = self.shared.lock();
            state
                .tally
                .first_error
                .get_or_insert(format!("cannot start a second thread: {e}"));
        }
        Export {
            shared: self.shared,
            until,
        }
    }
}

impl Export {
    /// Where it goes.
    pub fn url(&self) -> &str {
        &self.shared.target.url
    }

    /// Waits, at most until the budget is spent, for every queued request
    /// to be sent or given up (a worker still waiting for an answer is
    /// left to the process's end), and tells how it went.
    pub fn wait(self) -> Report {
        // The workers' own timeouts end them by `until`; a moment more for
        // them to say so.
        let end = self.until + Duration::from_millis(200);
        let mut state = self.shared.lock();
        while !(state.queue.is_empty() && state.busy == 0) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.tally.report()
    }
}

impl Tally {
    fn report(&self) -> Report {
        let unsent = self.offered - self.sent - self.dropped;
        let mut warnings = Vec::new();
        if unsent > 0 {
            let why = self.first_error.as_deref().unwrap_or("no answer in time");
            warnings.push(format!(
                "failed: {why} ({unsent} of {} spans not sent)",
                self.offered
            ));
        }
        if self.dropped > 0 {
            warnings.push(format!(
                "dropped {} of {} spans: its queue was full (the receiver is slower than the run)",
                self.dropped, self.offered
            ));
        }
        if self.rejected > 0 {
            warnings.push(format!(
                "partly failed: the receiver rejected {} spans: {}",
                self.rejected,
                self.rejection.as_deref().unwrap_or_default()
            ));
        }
        Report {
            spans: self.offered,
            complete: warnings.is_empty(),
            warnings,
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>) -> std::io::Result<()> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || shared.work())
        .map(drop)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked left the counts as they were: still true.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends what is queued until the run is over and the queue empty.
    fn work(&self) {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                state.busy += 1;
                let retry = !state.down;
                let mut until = Instant::now() + RETRY_BUDGET;
                if let Some(end) = state.until {
                    until = until.min(end);
                }
                drop(state);
                let result = self.deliver(&job.request, until, retry);
                state = self.lock();
                state.busy -= 1;
                match result {
                    Ok(rejected) => {
                        state.down = false;
                        state.tally.sent += job.spans;
                        if let Some((count, message)) = rejected {
                            state.tally.rejected += count;
                            state.tally.rejection.get_or_insert(message);
                        }
                    }
                    Err(why) => {
                        state.down = true;
                        state.tally.first_error.get_or_insert(why);
                    }
                }
                self.wake.notify_all();
            } else if state.closed {
                return;
            } else {
                state = self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    /// `until`, or the end-of-run budget when that comes first.
    fn deadline(&self, until: Instant) -> Instant {
        self.lock().until.map_or(until, |end| end.min(until))
    }

    /// Sends one request, retrying what may be retried (when `retry`)
    /// until `until`: `Ok` with the spans the receiver rejected, if any.
    fn deliver(
        &self,
        request: &ExportTraceServiceRequest,
        until: Instant,
        retry: bool,
    ) -> Result<Option<(i64, String)>, String> {
        let body = encode(request, self.target.protocol, self.target.compression)?;
        let mut tries = 0u32;
        loop {
            let left = self
                .deadline(until)
                .saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(after("out of time".into(), tries));
            }
            tries += 1;
            let failure = match self.post(&body, left.min(self.target.timeout)) {
                Ok(rejected) => return Ok(rejected),
                Err(failure) => failure,
            };
            let pause = match failure.retry {
                Retry::No => return Err(after(failure.why, tries)),
                _ if !retry => return Err(after(failure.why, tries)),
                Retry::Backoff => backoff(tries),
                Retry::After(pause) => pause,
            };
            if !self.pause(pause, until) {
                let why = match failure.retry {
                    Retry::After(p) => format!(
                        "{} (it asked for a retry after {} s, past the export's budget)",
                        failure.why,
                        p.as_secs()
                    ),
                    _ => failure.why,
                };
                return Err(after(why, tries));
            }
        }
    }

    /// Waits `pause` before a retry; `false` (at once) when that would
    /// end past the deadline, which the run's end may bring nearer.
    fn pause(&self, pause: Duration, until: Instant) -> bool {
        let wake = Instant::now() + pause;
        let mut state = self.lock();
        loop {
            let deadline = state.until.map_or(until, |end| end.min(until));
            if wake >= deadline {
                return false;
            }
            let left = wake.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// One POST of `body`, answered within `within`.
    fn post(&self, body: &[u8], within: Duration) -> Result<Option<(i64, String)>, Failure> {
        let target = &self.target;
        let mut post = self
            .agent
            .post(&target.url)
            .config()
            .timeout_global(Some(within))
            .build()
            .header("Content-Type", target.protocol.content_type());
        if target.compression == Compression::Gzip {
            post = post.header("Content-Encoding", "gzip");
        }
        for (k, v) in &target.headers {
            post = post.header(k.as_str(), v.as_str());
        }
        let mut answer = post.send(body).map_err(|e| Failure {
            retry: if transient(&e) {
                Retry::Backoff
            } else {
                Retry::No
            },
            why: e.to_string(),
        })?;
        let status = answer.status();
        let retry_after = answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let json = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let text = answer
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap_or_default();
        if !status.is_success() {
            let quoted: String = String::from_utf8_lossy(&text)
                .chars()
                .take(QUOTED)
                .collect();
            let quoted = quoted.trim();
            let why = if quoted.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {quoted}")
            };
            let retry = match (status.as_u16(), retry_after) {
                (429 | 502 | 503 | 504, Some(pause)) => Retry::After(pause),
                (429 | 502 | 503 | 504, None) => Retry::Backoff,
                _ => Retry::No,
            };
            return Err(Failure { why, retry });
        }
        // A success may still say that some spans were dropped.
        Ok(partial_success(&text, json))
    }
}

/// The request's body as the protocol and compression say.
fn encode(
    request: &ExportTraceServiceRequest,
    protocol: Protocol,
    compression: Compression,
) -> Result<Vec<u8>, String> {
    let body = match protocol {
        Protocol::Protobuf => request.encode_to_vec(),
        Protocol::Json => {
            serde_json::to_vec(request).map_err(|e| format!("cannot encode as JSON: {e}"))?
        }
    };
    match compression {
        Compression::None => Ok(body),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            gz.write_all(&body)
                .and_then(|()| gz.finish())
                .map_err(|e| format!("cannot gzip: {e}"))
        }
    }
}

/// The rejected spans and the receiver's message, from a success's body
/// (`ExportTraceServiceResponse`, protobuf or JSON).
fn partial_success(body: &[u8], json: bool) -> Option<(i64, String)> {
    let (rejected, message) = if json {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let p = v.get("partialSuccess")?;
        // proto3 JSON writes 64-bit integers as strings; numbers are taken too.
        let rejected = match p.get("rejectedSpans")? {
            serde_json::Value::String(s) => s.parse().ok()?,
            n => n.as_i64()?,
        };
        let message = p.get("errorMessage").and_then(|m| m.as_str());
        (rejected, message.unwrap_or_default().to_owned())
    } else {
        let p = ExportTraceServiceResponse::decode(body)
            .ok()?
            .partial_success?;
        (p.rejected_spans, p.error_message)
    };
    (rejected > 0).then_some((rejected, message))
}

/// Whether a transport error may pass: the connection failed, was cut or
/// timed out (a TLS or URL error will not mend: rustls's handshake errors
/// come as I/O errors of kind `InvalidData`).
fn transient(e: &ureq::Error) -> bool {
    if let ureq::Error::Io(io) = e {
        return io.kind() != std::io::ErrorKind::InvalidData;
    }
    matches!(
        e,
        ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled
    )
}

/// The pause before retry number `tries`: doubling from [`FIRST_BACKOFF`]
/// up to [`MAX_BACKOFF`], then anywhere from half of it to all of it, so
/// that many runners do not retry in step.
fn backoff(tries: u32) -> Duration {
    let full = FIRST_BACKOFF
        .saturating_mul(1 << tries.saturating_sub(1).min(8))
        .min(MAX_BACKOFF);
    // A fresh random key per RandomState: randomness without a crate.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    full.mul_f64(fraction)
}

fn after(why: String, tries: u32) -> String {
    if tries > 1 {
        format!("{why} (after {tries} tries)")
    } else {
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        for tries in 1..20 {
            let full = FIRST_BACKOFF * 2u32.pow(tries.min(9) - 1);
            let full = full.min(MAX_BACKOFF);
            let b = backoff(tries);
            assert!(b >= full / 2 && b <= full, "{tries}: {b:?}");
        }
    }

    #[test]
    fn partial_success_in_both_encodings() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
        let proto = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        assert_eq!(
            partial_success(&proto, false),
            Some((3, "too old".to_owned()))
        );
        assert_eq!(partial_success(b"", false), None);
        let json = br#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"x"}}"#;
        assert_eq!(partial_success(json, true), Some((2, "x".to_owned())));
        let json = br#"{"partialSuccess":{"rejectedSpans":4}}"#;
        assert_eq!(partial_success(json, true), Some((4, String::new())));
        assert_eq!(partial_success(b"{}", true), None);
    }

    /// A receiver that never answers: the run is never held up, the
    /// queue's overflow is dropped and counted, and waiting ends with the
    /// budget.
    #[test]
    fn a_full_queue_drops_and_counts() {
        // Never accepted: the kernel completes the connections, and the
        // requests wait for answers that never come.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = Target {
            url: format!("http://{}/v1/traces", listener.local_addr().unwrap()),
            headers: Vec::new(),
            protocol: Protocol::Protobuf,
            compression: Compression::None,
            timeout: Duration::from_secs(10),
            tls: Default::default(),
        };
        let exporter = Exporter::start(target).unwrap();
        exporter.send(ExportTraceServiceRequest::default(), 2);
        let began = Instant::now();
        while exporter.shared.lock().busy == 0 {
            assert!(began.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        let sending = Instant::now();
        for _ in 0..QUEUE + 5 {
            exporter.send(ExportTraceServiceRequest::default(), 2);
        }
        assert!(sending.elapsed() < Duration::from_millis(100));
        let waiting = Instant::now();
        let report = exporter
            .finish(
                vec![(ExportTraceServiceRequest::default(), 1)],
                Duration::from_millis(300),
            )
            .wait();
        assert!(waiting.elapsed() < Duration::from_secs(2));
        assert_eq!(report.spans, 2 * (QUEUE + 6) + 1);
        assert!(!report.complete);
        assert!(
            report.warnings[1].starts_with("dropped 10 of 141 spans: its queue was full"),
            "{:?}",
            report.warnings
        );
        assert!(
            report.warnings[0].ends_with("(131 of 141 spans not sent)"),
            "{:?}",
            report.warnings
        );
        drop(listener);
    }

    #[test]
    fn the_report_counts_what_was_not_sent() {
        let tally = Tally {
            offered: 10,
            sent: 4,
            first_error: Some("HTTP 400".into()),
            dropped: 2,
            rejected: 1,
            rejection: Some("bad span".into()),
        };
        let r = tally.report();
        assert!(!r.complete);
        assert_eq!(
            r.warnings,
            [
                "failed: HTTP 400 (4 of 10 spans not sent)",
                "dropped 2 of 10 spans: its queue was full (the receiver is slower than the run)",
                "partly failed: the receiver rejected 1 spans: bad span",
            ]
        );
        let r = Tally {
            offered: 3,
            sent: 3,
            ..Default::default()
        }
        .report();
        assert!(r.complete && r.warnings.is_empty());
    }
}
