//! The live export: each finished unit's requests are queued
//! ([`Exporter::send`], never blocking the run: a full queue drops them,
//! counted) and sent ([`super::send`]) by a worker thread of its own, so a
//! warden killed later still leaves what finished at the receiver; the run
//! span comes at the end ([`Exporter::finish`]), ahead of what is still
//! queued, which then gets one time budget, after which [`Export::wait`]
//! says how it all went.
//!
//! Each request may take [`RETRY_BUDGET`], retries included, and never
//! goes past the end-of-run budget; once one has given up, the next get
//! one try each until one gets through, so that a receiver that is down
//! does not hold every later request for the whole budget.
//!
//! Plain threads rather than tasks on the run's runtime: a worker can be
//! left behind if the receiver never answers, where a task would hold the
//! runtime's shutdown.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use super::send::{Budget, Client};
use super::target::Target;

/// Requests waiting to be sent (each of at most a thousand spans); past
/// that a unit's spans are dropped rather than the run held up.
const QUEUE: usize = 64;

/// How long one request may be tried, retries included.
const RETRY_BUDGET: Duration = Duration::from_secs(10);

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
    client: Client,
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

impl Exporter {
    /// Starts the worker for `target`; `Err` when its TLS files cannot be
    /// used or the thread cannot be started.
    pub fn start(target: Target) -> Result<Exporter, String> {
        let shared = Arc::new(Shared {
            client: Client::new(target)?,
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
    /// everything still queued must be sent `within` from now. When
    /// earlier requests are on their way or queued, a second worker sends
    /// beside the first, so that a slow receiver does not keep the run span
    /// waiting behind them.
    pub fn finish(self, last: Vec<(ExportTraceServiceRequest, usize)>, within: Duration) -> Export {
        let until = Instant::now() + within;
        let mut state = self.shared.lock();
        let earlier = state.busy + state.queue.len() > 0;
        for (request, spans) in last.into_iter().rev() {
            state.tally.offered += spans;
            state.queue.push_front(Job { request, spans });
        }
        state.closed = true;
        state.until = Some(until);
        drop(state);
        self.shared.wake.notify_all();
        if earlier && let Err(e) = spawn_worker(&self.shared) {
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
        self.shared.client.url()
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
                let budget = JobBudget {
                    shared: self,
                    until,
                };
                let result = self.client.deliver(&job.request, retry, &budget);
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
}

/// A request's time: its own [`RETRY_BUDGET`], or the end-of-run budget
/// when that comes first (it may come while the request is on its way).
struct JobBudget<'a> {
    shared: &'a Shared,
    until: Instant,
}

impl Budget for JobBudget<'_> {
    fn deadline(&self) -> Instant {
        let end = self.shared.lock().until;
        end.map_or(self.until, |end| end.min(self.until))
    }

    fn pause(&self, pause: Duration) -> bool {
        let wake = Instant::now() + pause;
        let mut state = self.shared.lock();
        loop {
            let deadline = state.until.map_or(self.until, |end| end.min(self.until));
            if wake >= deadline {
                return false;
            }
            let left = wake.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::otlp::target::{Compression, Protocol};

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
