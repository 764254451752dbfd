//! One request to the receiver: encoded as the protocol says (protobuf
//! or OTLP JSON), gzipped when asked, POSTed with a small blocking client
//! (`ureq`, rustls for https), and retried as the OTLP specification asks:
//! on 429, 502, 503, 504 and on connection errors and timeouts, with
//! exponential backoff and jitter, after the receiver's `Retry-After` when
//! it gives one, never past the [`Budget`]'s deadline. A success may still
//! report rejected spans (a partial success).

use std::hash::{BuildHasher as _, Hasher as _};
use std::io::Write as _;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::target::{Compression, Protocol, Target};

/// How much of a receiver's error answer is quoted.
const QUOTED: usize = 200;

/// The first retry's backoff, doubled at each retry up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// The receiver, and the HTTP(S) client that sends it requests.
pub struct Client {
    target: Target,
    agent: ureq::Agent,
}

/// The time a request has, which the caller may shorten while it runs.
pub trait Budget {
    /// The moment the request must be done by, as of now.
    fn deadline(&self) -> Instant;
    /// Waits `pause` before a retry; `false` (at once, or as soon as the
    /// deadline comes nearer) when that would end past the deadline.
    fn pause(&self, pause: Duration) -> bool;
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

impl Client {
    /// A client for `target`; `Err` when its TLS files cannot be used.
    pub fn new(target: Target) -> Result<Client, String> {
        let tls = super::tls::config(&target.tls)?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            // An error status is an answer to read, not a transport error.
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        Ok(Client { target, agent })
    }

    /// Where the requests go.
    pub fn url(&self) -> &str {
        &self.target.url
    }

    /// Sends one request, retrying what may be retried (when `retry`)
    /// within `budget`: `Ok` with the spans the receiver rejected and its
    /// message, if any.
    pub fn deliver(
        &self,
        request: &ExportTraceServiceRequest,
        retry: bool,
        budget: &dyn Budget,
    ) -> Result<Option<(i64, String)>, String> {
        let body = encode(request, self.target.protocol, self.target.compression)?;
        let mut tries = 0u32;
        loop {
            let left = budget.deadline().saturating_duration_since(Instant::now());
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
                // Never sooner than asked, nor than the backoff (a
                // `Retry-After: 0` must not make a busy loop of it).
                Retry::After(pause) => pause.max(backoff(tries)),
            };
            if !budget.pause(pause) {
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

    /// A fixed deadline; pauses slept.
    struct Until(Instant);

    impl Budget for Until {
        fn deadline(&self) -> Instant {
            self.0
        }
        fn pause(&self, pause: Duration) -> bool {
            if Instant::now() + pause >= self.0 {
                return false;
            }
            std::thread::sleep(pause);
            true
        }
    }

    fn client(url: String) -> Client {
        Client::new(Target {
            url,
            headers: Vec::new(),
            protocol: Protocol::Protobuf,
            compression: Compression::None,
            timeout: Duration::from_secs(10),
            tls: Default::default(),
        })
        .unwrap()
    }

    /// A refused connection is retried until the budget ends (and not
    /// at all when told not to); the budget bounds the whole.
    #[test]
    fn connection_errors_are_retried_within_the_budget() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = client(format!("http://{closed}/v1/traces"));
        let request = ExportTraceServiceRequest::default();
        let began = Instant::now();
        let budget = Until(began + Duration::from_millis(1500));
        let e = client.deliver(&request, true, &budget).unwrap_err();
        assert!(began.elapsed() < Duration::from_millis(1600), "{e}");
        let tries: u32 = e
            .rsplit_once("(after ")
            .and_then(|(_, n)| n.strip_suffix(" tries)"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{e}"));
        assert!(tries >= 3, "{e}");
        assert!(e.contains("Connection refused"), "{e}");

        let e = client.deliver(&request, false, &budget).unwrap_err();
        assert!(!e.contains("tries"), "one try: {e}");
        let spent = Until(Instant::now());
        assert_eq!(
            client.deliver(&request, true, &spent).unwrap_err(),
            "out of time"
        );
    }

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
}
