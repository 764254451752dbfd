//! Sending the spans: OTLP/HTTP, protobuf-encoded requests POSTed on a
//! thread of their own, all within one time budget, so the run goes on
//! (records its history, writes its reports) while they travel, and a
//! receiver that is down or slow costs it at most the budget.
//!
//! A small blocking client (`ureq`) on a plain thread rather than an
//! async one on the run's runtime: the export is a handful of requests at
//! the very end, and the thread can be left behind if the receiver never
//! answers, where a task would hold the runtime's shutdown.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::target::Target;

/// How much of a receiver's error answer is quoted.
const QUOTED: usize = 200;

/// The export on its way: [`wait`](Export::wait) for how it went.
pub struct Export {
    url: String,
    spans: usize,
    until: Instant,
    done: mpsc::Receiver<Result<(), String>>,
}

impl Export {
    /// Starts sending `requests` (`spans` in all) to `target`, giving up
    /// `within` from now.
    pub fn start(
        target: Target,
        requests: Vec<ExportTraceServiceRequest>,
        spans: usize,
        within: Duration,
    ) -> Export {
        let until = Instant::now() + within;
        let (tx, done) = mpsc::channel();
        let url = target.url.clone();
        let started = std::thread::Builder::new()
            .name("otlp-export".into())
            .spawn(move || {
                let _ = tx.send(send_all(&target, &requests, until));
            });
        if let Err(e) = started {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(Err(format!("cannot start its thread: {e}")));
            return Export {
                url,
                spans,
                until,
                done: rx,
            };
        }
        Export {
            url,
            spans,
            until,
            done,
        }
    }

    /// Where it goes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many spans it carries.
    pub fn spans(&self) -> usize {
        self.spans
    }

    /// Waits, at most until the budget is spent, for the export's end:
    /// `Err` says why it failed (a receiver that did not answer in time
    /// too; its thread is then left to the process's end).
    pub fn wait(self) -> Result<(), String> {
        // The thread's own timeouts end it by `until`; a moment more for it
        // to say so.
        let left =
            self.until.saturating_duration_since(Instant::now()) + Duration::from_millis(200);
        match self.done.recv_timeout(left) {
            Ok(result) => result,
            Err(_) => Err("no answer in time".into()),
        }
    }
}

/// Sends each request in turn; the first failure ends the export.
fn send_all(
    target: &Target,
    requests: &[ExportTraceServiceRequest],
    until: Instant,
) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // An error status is an answer to read, not a transport error.
        .http_status_as_error(false)
        .build()
        .into();
    let total = requests.len();
    for (i, request) in requests.iter().enumerate() {
        let left = until.saturating_duration_since(Instant::now());
        let sent = |why: String| {
            if i == 0 {
                why
            } else {
                format!("{why} (after {i} of {total} requests were sent)")
            }
        };
        if left.is_zero() {
            return Err(sent("out of time".into()));
        }
        send_one(&agent, target, request, left).map_err(sent)?;
    }
    Ok(())
}

fn send_one(
    agent: &ureq::Agent,
    target: &Target,
    request: &ExportTraceServiceRequest,
    within: Duration,
) -> Result<(), String> {
    let body = request.encode_to_vec();
    let mut post = agent
        .post(&target.url)
        .config()
        .timeout_global(Some(within))
        .build()
        .header("Content-Type", "application/x-protobuf");
    for (k, v) in &target.headers {
        post = post.header(k.as_str(), v.as_str());
    }
    let mut answer = post.send(&body).map_err(|e| e.to_string())?;
    let status = answer.status();
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
        return Err(if quoted.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {quoted}")
        });
    }
    // A success may still say that some spans were dropped.
    if let Ok(response) = ExportTraceServiceResponse::decode(text.as_slice())
        && let Some(partial) = response.partial_success
        && partial.rejected_spans > 0
    {
        return Err(format!(
            "the receiver rejected {} spans: {}",
            partial.rejected_spans, partial.error_message
        ));
    }
    Ok(())
}
