//! `--otlp-endpoint`: the run as an OpenTelemetry trace over OTLP/HTTP,
//! received here by a tiny HTTP(S) server on loopback that decodes every
//! request with the official protobuf definitions (opentelemetry-proto's
//! `ExportTraceServiceRequest`), gunzipped and JSON too; `TRACEPARENT` in
//! every batch; each batch's spans sent as it finishes; retries; a
//! receiver that is down, failing, untrusted or silent is a warning, never
//! the run's failure.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Warden, fixture, q};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message as _;

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Status(u16),
    /// The first `times` requests get `code` (with `Retry-After` when
    /// given), the rest 200.
    Fail {
        code: u16,
        times: usize,
        retry_after: Option<u32>,
    },
    /// 200 with a partial success: this many spans rejected.
    Partial(i64),
    /// Reads the request and never answers.
    Silent,
}

struct Request {
    path: String,
    headers: HashMap<String, String>,
    /// As sent (maybe gzipped).
    raw: Vec<u8>,
    /// When it had arrived whole.
    at: Instant,
    /// Answered 200.
    ok: bool,
}

impl Request {
    /// The body, gunzipped when it says it is gzipped.
    fn body(&self) -> Vec<u8> {
        match self.headers.get("content-encoding").map(String::as_str) {
            Some("gzip") => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(self.raw.as_slice())
                    .read_to_end(&mut out)
                    .expect("a gzip body");
                out
            }
            None => self.raw.clone(),
            Some(other) => panic!("unexpected Content-Encoding {other}"),
        }
    }

    /// The export request, from protobuf or OTLP JSON as the content type
    /// says; the JSON also checked against the OTLP/JSON rules.
    fn decode(&self) -> ExportTraceServiceRequest {
        let body = self.body();
        match self.headers.get("content-type").map(String::as_str) {
            Some("application/x-protobuf") => ExportTraceServiceRequest::decode(body.as_slice())
                .expect("an ExportTraceServiceRequest"),
            Some("application/json") => {
                check_otlp_json(&body);
                serde_json::from_slice(&body).expect("an ExportTraceServiceRequest in JSON")
            }
            other => panic!("unexpected Content-Type {other:?}"),
        }
    }
}

/// OTLP/JSON as the specification has it: lowerCamelCase names, trace and
/// span ids as hex (not base64), enums as integers, 64-bit integers as
/// decimal strings.
fn check_otlp_json(body: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    let hex = |v: &serde_json::Value, len: usize| {
        let s = v.as_str().unwrap_or_else(|| panic!("a string: {v}"));
        assert!(
            s.is_empty() || (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())),
            "{s}"
        );
    };
    let rs = &v["resourceSpans"][0];
    assert!(rs["resource"]["attributes"].is_array(), "{v}");
    let spans = rs["scopeSpans"][0]["spans"].as_array().expect("spans");
    assert!(!spans.is_empty());
    for span in spans {
        hex(&span["traceId"], 32);
        hex(&span["spanId"], 16);
        hex(&span["parentSpanId"], 16);
        assert!(span["kind"].is_u64(), "{span}");
        let start = span["startTimeUnixNano"].as_str().expect("a string");
        assert!(start.parse::<u64>().is_ok(), "{start}");
        for kv in span["attributes"].as_array().expect("attributes") {
            let value = kv["value"].as_object().expect("an AnyValue");
            if let Some(i) = value.get("intValue") {
                assert!(i.as_str().is_some_and(|i| i.parse::<i64>().is_ok()), "{i}");
            } else {
                assert!(value["stringValue"].is_string(), "{kv}");
            }
        }
        if let Some(code) = span.get("status").and_then(|s| s.get("code")) {
            assert!(code.is_u64(), "{span}");
        }
    }
}

/// An OTLP/HTTP receiver on 127.0.0.1, for one test; stops when dropped.
struct Receiver {
    addr: SocketAddr,
    tls: bool,
    got: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        Receiver::serving(answer, None)
    }

    /// Over https, with `config`'s certificate.
    fn https(answer: Answer, config: Arc<rustls::ServerConfig>) -> Receiver {
        Receiver::serving(answer, Some(config))
    }

    fn serving(answer: Answer, tls: Option<Arc<rustls::ServerConfig>>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (got2, stop2) = (got.clone(), stop.clone());
        let https = tls.is_some();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let got = got2.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => serve(conn, &got, answer),
                    Some(config) => {
                        let Ok(server) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(server, conn), &got, answer);
                    }
                });
            }
        });
        Receiver {
            addr,
            tls: https,
            got,
            stop,
        }
    }

    fn base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    fn requests(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// Every span received in a request answered 200, after checking each
    /// request is an OTLP/HTTP export to `/v1/traces` from the `warden`
    /// service.
    fn spans(&self) -> Vec<Span> {
        self.spans_at().into_iter().map(|(s, _)| s).collect()
    }

    /// The spans and when each arrived.
    fn spans_at(&self) -> Vec<(Span, Instant)> {
        let got = self.got.lock().unwrap();
        assert!(!got.is_empty(), "no request received");
        let mut spans = Vec::new();
        for r in got.iter().filter(|r| r.ok) {
            assert_eq!(r.path, "/v1/traces");
            for rs in r.decode().resource_spans {
                let resource = rs.resource.expect("a resource");
                let service = resource
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| value(kv.value.as_ref()));
                assert_eq!(service.as_deref(), Some("warden"));
                for ss in rs.scope_spans {
                    spans.extend(ss.spans.into_iter().map(|s| (s, r.at)));
                }
            }
        }
        spans
    }

    /// The names of the spans received so far.
    fn names(&self) -> Vec<String> {
        if self.requests() == 0 {
            return Vec::new();
        }
        self.spans().into_iter().map(|s| s.name).collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// HTTP/1.1 requests on one connection, each with a Content-Length body.
fn serve(conn: impl Read + Write, got: &Mutex<Vec<Request>>, answer: Answer) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .expect("a Content-Length");
        let mut raw = vec![0; len];
        if reader.read_exact(&mut raw).is_err() {
            return;
        }
        let json = headers.get("content-type").map(String::as_str) == Some("application/json");
        let mut got = got.lock().unwrap();
        let nth = got.len();
        let code = match answer {
            Answer::Ok | Answer::Partial(_) => 200,
            Answer::Status(code) => code,
            Answer::Fail { code, times, .. } if nth < times => code,
            Answer::Fail { .. } => 200,
            Answer::Silent => 0,
        };
        got.push(Request {
            path,
            headers,
            raw,
            at: Instant::now(),
            ok: code == 200,
        });
        drop(got);
        let reply = match answer {
            Answer::Silent => {
                // Until the client gives up and closes.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                return;
            }
            Answer::Partial(rejected) if json => {
                let body = format!(
                    r#"{{"partialSuccess":{{"rejectedSpans":"{rejected}","errorMessage":"spans too old"}}}}"#
                );
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
            Answer::Partial(rejected) => {
                let body = ExportTraceServiceResponse {
                    partial_success: Some(ExportTracePartialSuccess {
                        rejected_spans: rejected,
                        error_message: "spans too old".into(),
                    }),
                }
                .encode_to_vec();
                let mut reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                     Content-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                reply.extend(body);
                reply
            }
            _ if code == 200 => "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                                 Content-Length: 0\r\n\r\n"
                .as_bytes()
                .to_vec(),
            Answer::Fail {
                retry_after: Some(secs),
                ..
            } => format!(
                "HTTP/1.1 {code} Oops\r\nRetry-After: {secs}\r\nContent-Length: 9\r\n\r\nno quota!"
            )
            .into_bytes(),
            _ => format!("HTTP/1.1 {code} Oops\r\nContent-Length: 9\r\n\r\nno quota!").into_bytes(),
        };
        let conn = reader.get_mut();
        if conn.write_all(&reply).and_then(|()| conn.flush()).is_err() {
            return;
        }
    }
}

/// A CA, and a server certificate it signed for 127.0.0.1, as rustls
/// serves it; optionally asking for a client certificate the CA signed.
struct Pki {
    ca_pem: String,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "warden test CA");
        let issuer =
            rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        Pki {
            ca_pem: issuer.pem(),
            issuer,
        }
    }

    /// A certificate for `names` and its key, as PEM.
    fn issue(&self, names: &[&str]) -> (rcgen::Certificate, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert, key)
    }

    fn server(&self, client_auth: bool) -> Arc<rustls::ServerConfig> {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        // ring, as warden's own client has it (aws-lc-rs, which rustls
        // now prefers for its post-quantum key exchange, needs cmake).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (cert, key) = self.issue(&["127.0.0.1", "localhost"]);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.issuer.der().clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            builder
                .with_single_cert(vec![cert.der().clone()], key)
                .unwrap(),
        )
    }
}

fn value(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> Option<String> {
    match v?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| value(kv.value.as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn code(span: &Span) -> i32 {
    span.status.as_ref().map_or(0, |s| s.code)
}

/// A run of one passing batch, `ok`, exporting to `endpoint`, without a
/// history: what most of the exporter's tests need; each adds its own.
fn one_batch_to(endpoint: &str) -> Warden {
    Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", endpoint])
        .arg("--history=none")
}

#[test]
fn the_run_is_one_trace_of_run_attempt_and_test_spans() {
    let receiver = Receiver::start(Answer::Ok);
    let w = Warden::pgroup();
    let go = fixture("go_json.sh");
    let counter = w.path_str("n");
    let r = w
        .shell(
            "db",
            &format!("echo \"$TRACEPARENT\" > tp-db; sh {}", q(&go)),
            "format = \"go-json\"",
        )
        .shell("ok", "echo \"$TRACEPARENT\" > tp-ok", "")
        .shell(
            "flaky",
            &format!(
                "echo \"$TRACEPARENT\" >> tp-flaky; n=$(cat {counter} 2>/dev/null || echo 0); \
                 n=$((n+1)); echo $n > {counter}; [ $n -ge 2 ]"
            ),
            "retry = { attempts = 2 }",
        )
        .args([
            "--otlp-endpoint",
            &receiver.base(),
            "--label",
            "arch=x86_64",
        ])
        .run();
    r.assert_code(1);
    let spans = receiver.spans();

    // One trace; one root: the run.
    let trace = spans[0].trace_id.clone();
    assert_eq!(trace.len(), 16);
    assert!(spans.iter().all(|s| s.trace_id == trace), "one trace id");
    let roots: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .collect();
    assert_eq!(roots.len(), 1, "one root span");
    let run = roots[0];
    assert_eq!(run.name, "RUN warden.toml");
    assert_eq!(run.kind, SpanKind::Server as i32);
    assert_eq!(
        attr(run, "cicd.pipeline.name").as_deref(),
        Some("warden.toml")
    );
    assert_eq!(
        attr(run, "cicd.pipeline.result").as_deref(),
        Some("failure")
    );
    assert!(attr(run, "cicd.pipeline.run.id").is_some_and(|id| id.len() == 36));
    assert_eq!(attr(run, "warden.label.arch").as_deref(), Some("x86_64"));
    assert_eq!(attr(run, "warden.exit_code").as_deref(), Some("1"));
    assert_eq!(code(run), StatusCode::Error as i32);
    r.assert_stdout_contains(&format!(
        "Trace: {} ({} spans) sent to {}/v1/traces",
        hex(&trace),
        spans.len(),
        receiver.base()
    ));

    // The attempts: children of the run, one span each.
    let attempts: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == run.span_id)
        .collect();
    let names: Vec<&str> = attempts.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(attempts.len(), 4, "{names:?}");
    let one = |name: &str, attempt: &str| -> &Span {
        attempts
            .iter()
            .find(|s| s.name == name && attr(s, "warden.attempt").as_deref() == Some(attempt))
            .unwrap_or_else(|| panic!("no span for {name} attempt {attempt}: {names:?}"))
    };
    let (db, ok) = (one("db", "1"), one("ok", "1"));
    let (flaky1, flaky2) = (one("flaky", "1"), one("flaky", "2"));
    for (span, result, status) in [
        (db, "failure", StatusCode::Error),
        (ok, "success", StatusCode::Unset),
        (flaky1, "failure", StatusCode::Error),
        (flaky2, "success", StatusCode::Unset),
    ] {
        assert_eq!(span.kind, SpanKind::Internal as i32);
        assert_eq!(
            attr(span, "cicd.pipeline.task.run.result").as_deref(),
            Some(result),
            "{}",
            span.name
        );
        assert_eq!(code(span), status as i32, "{}", span.name);
        assert_eq!(
            attr(span, "cicd.pipeline.task.name"),
            Some(span.name.clone())
        );
        assert_eq!(attr(span, "test.suite.name"), Some(span.name.clone()));
        assert!(attr(span, "warden.slot").is_some(), "{}", span.name);
        assert!(attr(span, "warden.reason").is_some(), "{}", span.name);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert!(span.start_time_unix_nano >= run.start_time_unix_nano);
        assert!(span.end_time_unix_nano <= run.end_time_unix_nano);
    }
    assert_eq!(
        attr(db, "test.suite.run.status").as_deref(),
        Some("failure")
    );
    assert_eq!(attr(db, "error.type").as_deref(), Some("failed"));
    assert_eq!(
        attr(ok, "test.suite.run.status").as_deref(),
        Some("success")
    );
    assert_eq!(
        attr(flaky1, "cicd.pipeline.task.run.id").as_deref(),
        Some("flaky.attempt-1")
    );
    assert!(flaky1.end_time_unix_nano <= flaky2.start_time_unix_nano);

    // The tests: children of their attempt, laid from its start.
    let tests: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == db.span_id)
        .collect();
    assert_eq!(tests.len(), 2);
    let connect = tests
        .iter()
        .find(|s| s.name == "example.com/db/TestConnect")
        .expect("TestConnect");
    let query = tests
        .iter()
        .find(|s| s.name == "example.com/db/TestQuery")
        .expect("TestQuery");
    assert_eq!(
        attr(connect, "test.case.name").as_deref(),
        Some("example.com/db/TestConnect")
    );
    assert_eq!(
        attr(connect, "test.case.result.status").as_deref(),
        Some("pass")
    );
    assert_eq!(code(connect), StatusCode::Unset as i32);
    assert_eq!(
        attr(query, "test.case.result.status").as_deref(),
        Some("fail")
    );
    assert_eq!(code(query), StatusCode::Error as i32);
    assert_eq!(
        connect.end_time_unix_nano - connect.start_time_unix_nano,
        10_000_000
    );
    assert_eq!(
        query.end_time_unix_nano - query.start_time_unix_nano,
        20_000_000
    );
    assert!(connect.start_time_unix_nano >= db.start_time_unix_nano);
    // Ids are unique across the trace.
    let mut ids: Vec<&Vec<u8>> = spans.iter().map(|s| &s.span_id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), spans.len());

    // Each batch attempt saw TRACEPARENT naming the run's trace and its
    // own span.
    let traceparent = |span: &Span| format!("00-{}-{}-01", hex(&trace), hex(&span.span_id));
    let read = |f: &str| std::fs::read_to_string(r.path(f)).unwrap();
    assert_eq!(read("tp-ok").trim(), traceparent(ok));
    assert_eq!(read("tp-db").trim(), traceparent(db));
    assert_eq!(
        read("tp-flaky"),
        format!("{}\n{}\n", traceparent(flaky1), traceparent(flaky2))
    );
}

#[test]
fn an_incoming_traceparent_makes_the_run_its_child() {
    let receiver = Receiver::start(Answer::Ok);
    let w = Warden::pgroup();
    let r = w
        .shell("ok", "echo \"$TRACEPARENT\" > tp", "")
        .env(
            "TRACEPARENT",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        // The generic variable: `/v1/traces` is appended.
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &format!("{}/", receiver.base()),
        )
        .arg("--history=none")
        .run();
    r.assert_code(0);
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2);
    let run = spans
        .iter()
        .find(|s| s.name.starts_with("RUN "))
        .expect("run span");
    assert_eq!(hex(&run.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&run.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(
        attr(run, "cicd.pipeline.result").as_deref(),
        Some("success")
    );
    assert_eq!(code(run), StatusCode::Unset as i32);
    let ok = spans.iter().find(|s| s.name == "ok").expect("ok span");
    assert_eq!(ok.parent_span_id, run.span_id);
    let seen = std::fs::read_to_string(r.path("tp")).unwrap();
    assert_eq!(
        seen.trim(),
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            hex(&ok.span_id)
        )
    );
}

#[test]
fn a_closed_port_is_a_warning_not_a_failure() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // Connection errors are retried, within the budget: here what the
    // deadline leaves (4 s less its second of margin).
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &format!("http://{closed}")])
        .args(["--history=none", "--deadline=4s"])
        .run();
    r.assert_code(0);
    r.assert_stderr_contains(&format!(
        "warden: OTLP export to http://{closed}/v1/traces failed: "
    ));
    r.assert_stderr_contains("(2 of 2 spans not sent)");
    assert!(r.elapsed < Duration::from_millis(4500), "{}", r.context);
    let exit = std::fs::read_to_string(r.artifacts().join("exit-code")).unwrap();
    assert_eq!(exit.trim(), "0");
}

/// An error answer that will not mend (4xx but 429) is not retried.
#[test]
fn an_error_answer_is_a_warning_with_its_text() {
    let receiver = Receiver::start(Answer::Status(400));
    let r = one_batch_to(&receiver.base()).run();
    r.assert_code(0);
    r.assert_stderr_contains(&format!(
        "warden: OTLP export to {}/v1/traces failed: HTTP 400 Bad Request: no quota! (2 of 2 spans not sent)",
        receiver.base()
    ));
    // The unit's request and the run span's, each tried once.
    assert_eq!(receiver.requests(), 2);
    assert!(r.elapsed < Duration::from_secs(5), "{}", r.context);
}

/// 503 twice: retried with backoff, and everything arrives in the end.
#[test]
fn a_transient_error_is_retried() {
    let receiver = Receiver::start(Answer::Fail {
        code: 503,
        times: 2,
        retry_after: None,
    });
    let r = one_batch_to(&receiver.base()).run();
    r.assert_code(0);
    r.assert_stdout_contains("(2 spans) sent to ");
    assert!(!r.stderr.contains("OTLP"), "{}", r.context);
    assert_eq!(receiver.requests(), 4);
    assert_eq!(receiver.spans().len(), 2);
}

/// 429 with `Retry-After: 1`: the retry waits that second; a
/// `Retry-After` past the budget ends the export at once.
#[test]
fn retry_after_is_honoured_within_the_budget() {
    let receiver = Receiver::start(Answer::Fail {
        code: 429,
        times: 1,
        retry_after: Some(1),
    });
    let r = one_batch_to(&receiver.base()).run();
    r.assert_code(0);
    r.assert_stdout_contains("(2 spans) sent to ");
    let got = receiver.got.lock().unwrap();
    let first = got[0].at;
    let retried = got[1..]
        .iter()
        .find(|q| q.raw == got[0].raw)
        .expect("the same request again");
    assert!(retried.at - first >= Duration::from_secs(1));
    drop(got);

    let receiver = Receiver::start(Answer::Fail {
        code: 503,
        times: 100,
        retry_after: Some(30),
    });
    let r = one_batch_to(&receiver.base()).run();
    r.assert_code(0);
    r.assert_stderr_contains(
        "failed: HTTP 503 Service Unavailable: no quota! (it asked for a retry after 30 s, \
         past the export's budget)",
    );
    assert!(r.elapsed < Duration::from_secs(5), "{}", r.context);
}

/// A partial success is a warning with the count and the receiver's words.
#[test]
fn rejected_spans_are_a_warning() {
    let receiver = Receiver::start(Answer::Partial(1));
    let r = one_batch_to(&receiver.base()).run();
    r.assert_code(0);
    r.assert_stderr_contains(&format!(
        "warden: OTLP export to {}/v1/traces partly failed: the receiver rejected 2 spans: spans too old",
        receiver.base()
    ));
    assert!(!r.stdout.contains("Trace: "), "{}", r.context);
}

/// `http/json` and gzip: the OTLP JSON encoding, gzipped, and a partial
/// success answered in JSON read back.
#[test]
fn json_and_gzip() {
    let receiver = Receiver::start(Answer::Partial(3));
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.base())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
        .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("the receiver rejected 6 spans: spans too old");
    {
        let got = receiver.got.lock().unwrap();
        for q in got.iter() {
            assert_eq!(q.headers["content-type"], "application/json");
            assert_eq!(q.headers["content-encoding"], "gzip");
            assert!(q.body().len() > q.raw.len(), "compressed");
        }
    }
    let spans = receiver.spans();
    assert_eq!(spans.len(), 2);
    let run = spans.iter().find(|s| s.name.starts_with("RUN ")).unwrap();
    let ok = spans.iter().find(|s| s.name == "ok").unwrap();
    assert_eq!(ok.parent_span_id, run.span_id);
    assert_eq!(ok.trace_id.len(), 16);
    assert_eq!(
        attr(ok, "cicd.pipeline.task.run.result").as_deref(),
        Some("success")
    );
    assert_eq!(attr(ok, "warden.attempt").as_deref(), Some("1"));
}

/// grpc is refused with a warning (no export, so no trace context); an
/// unknown protocol is a warning naming the allowed ones, and the default.
#[test]
fn grpc_and_unknown_protocols() {
    let r = Warden::pgroup()
        .shell("ok", "echo \"${TRACEPARENT:-none}\" > tp", "")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains(
        "warden: OTLP export to http://127.0.0.1:4317/v1/traces failed: \
         OTEL_EXPORTER_OTLP_PROTOCOL=grpc: warden speaks only OTLP/HTTP",
    );
    assert_eq!(
        std::fs::read_to_string(r.path("tp")).unwrap().trim(),
        "none"
    );

    let receiver = Receiver::start(Answer::Ok);
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/xml")
        .env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd")
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=\"http/xml\" is not one of http/protobuf, \
         http/json, grpc: sending http/protobuf",
    );
    r.assert_stderr_contains("is not one of gzip, none");
    assert_eq!(receiver.spans().len(), 2);
}

/// A receiver that takes the request and never answers holds the run no
/// longer than the export's budget: here what the run deadline leaves.
#[test]
fn a_silent_receiver_delays_the_run_no_more_than_the_budget() {
    let receiver = Receiver::start(Answer::Silent);
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .args(["--history=none", "--deadline=4s"])
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("warden: OTLP export to ");
    // The deadline (4s) less its second of margin bounds the wait.
    assert!(r.elapsed < Duration::from_millis(4500), "{}", r.context);
    // The unit's request, and the run span's beside it (on a second
    // connection: the first still waits for its answer).
    assert_eq!(receiver.requests(), 2, "the requests did arrive");
}

/// `OTEL_EXPORTER_OTLP_TIMEOUT`: each request waits that long, and a
/// timeout is retried within the budget.
#[test]
fn the_timeout_is_per_request() {
    let receiver = Receiver::start(Answer::Silent);
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
        .args(["--history=none", "--deadline=4s"])
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("failed: ");
    r.assert_stderr_contains("tries)");
    assert!(r.elapsed < Duration::from_millis(4500), "{}", r.context);
    assert!(receiver.requests() >= 4, "{}", receiver.requests());
}

/// https, trusting the receiver's CA through OTEL_EXPORTER_OTLP_CERTIFICATE.
#[test]
fn https_with_a_trusted_ca() {
    let pki = Pki::new();
    let receiver = Receiver::https(Answer::Ok, pki.server(false));
    let w = Warden::pgroup();
    let ca = w.path_str("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let r = w
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca)
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains(&format!("(2 spans) sent to {}/v1/traces", receiver.base()));
    assert_eq!(receiver.spans().len(), 2);
}

/// A certificate warden does not trust: a warning, at once (not retried),
/// and the run's exit code unchanged; a CA file that cannot be read: a
/// warning at the start, and no export.
#[test]
fn an_untrusted_certificate_is_a_warning() {
    let pki = Pki::new();
    let receiver = Receiver::https(Answer::Ok, pki.server(false));
    let r = Warden::pgroup()
        .shell("bad", "false", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .arg("--history=none")
        .run();
    r.assert_code(1);
    r.assert_stderr_contains(&format!(
        "warden: OTLP export to {}/v1/traces failed: ",
        receiver.base()
    ));
    r.assert_stderr_contains("UnknownIssuer");
    assert!(r.elapsed < Duration::from_secs(5), "{}", r.context);
    assert_eq!(receiver.requests(), 0);

    let r = Warden::pgroup()
        .shell("ok", "echo \"${TRACEPARENT:-none}\" > tp", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem")
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("failed: cannot read /nonexistent/ca.pem: ");
    assert_eq!(
        std::fs::read_to_string(r.path("tp")).unwrap().trim(),
        "none"
    );
}

/// Mutual TLS: the client certificate and key of
/// OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE / _CLIENT_KEY; without them the
/// receiver refuses warden.
#[test]
fn https_with_a_client_certificate() {
    let pki = Pki::new();
    let receiver = Receiver::https(Answer::Ok, pki.server(true));
    let w = Warden::pgroup();
    let (cert, key) = pki.issue(&["warden"]);
    let (ca, client, client_key) = (
        w.path_str("ca.pem"),
        w.path_str("client.pem"),
        w.path_str("client-key.pem"),
    );
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    std::fs::write(&client, cert.pem()).unwrap();
    std::fs::write(&client_key, key.serialize_pem()).unwrap();
    let r = w
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca)
        .env("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", &client)
        .env("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", &client_key)
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("(2 spans) sent to ");
    assert_eq!(receiver.spans().len(), 2);

    let w = Warden::pgroup();
    let ca = w.path_str("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let r = w
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca)
        .args(["--history=none", "--deadline=4s"])
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("failed: ");
}

/// Each unit's spans go as it finishes: the receiver has the first
/// batch's while the second still runs (it waits for a file the test
/// makes only once they arrived), and the run span after the verdict.
#[test]
fn spans_are_sent_as_batches_finish() {
    let receiver = Receiver::start(Answer::Ok);
    let w = Warden::pgroup();
    let go = w.path_str("go");
    let running = w
        .shell("first", "true", "")
        .shell(
            "second",
            &format!("while [ ! -e {} ]; do sleep 0.05; done", q(&go)),
            "",
        )
        .args(["--otlp-endpoint", &receiver.base()])
        .args(["--history=none", "--max-parallel=2"])
        .spawn();
    assert!(
        common::wait_until(Duration::from_secs(20), || receiver
            .names()
            .contains(&"first".to_owned())),
        "the first batch's span while the run goes on"
    );
    assert_eq!(receiver.names(), ["first"]);
    std::fs::write(&go, "").unwrap();
    let r = running.wait();
    r.assert_code(0);
    let spans = receiver.spans_at();
    let at = |name: &str| {
        spans
            .iter()
            .find(|(s, _)| s.name.starts_with(name))
            .unwrap()
            .1
    };
    assert!(at("first") < at("second"));
    assert!(at("first") < at("RUN "));
    r.assert_stdout_contains("(3 spans) sent to ");
}

/// A warden killed mid-run still leaves its finished batches' spans at
/// the receiver (children of a run span that never came).
#[test]
fn a_killed_warden_leaves_the_finished_batches_spans() {
    let receiver = Receiver::start(Answer::Ok);
    // Process groups: a SIGKILLed warden's run cgroup would be left behind.
    let w = Warden::pgroup();
    let go = w.path_str("go");
    let mark = w.mark().to_owned();
    let running = w
        .shell("first", "true", "")
        .shell(
            "second",
            &format!("while [ ! -e {} ]; do sleep 0.05; done", q(&go)),
            "",
        )
        .args(["--otlp-endpoint", &receiver.base()])
        .args(["--history=none", "--max-parallel=2"])
        .spawn();
    assert!(common::wait_until(Duration::from_secs(20), || receiver
        .names()
        .contains(&"first".to_owned())));
    running.signal(libc::SIGKILL);
    // The batch outlives warden (no cgroup to kill it): let it end.
    std::fs::write(&go, "").unwrap();
    let gone = Instant::now() + Duration::from_secs(10);
    while !common::marked_processes(&mark).is_empty() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = running.wait();
    assert_eq!(r.signal, Some(libc::SIGKILL));
    assert!(
        !r.artifacts().join("exit-code").exists(),
        "killed: {}",
        r.context
    );
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "first");
    assert_eq!(spans[0].parent_span_id.len(), 8);
}

/// Interrupted: the spans still go, the stopped batch as a cancellation.
#[test]
fn an_interrupted_run_is_still_exported() {
    let receiver = Receiver::start(Answer::Ok);
    let w = Warden::pgroup();
    let started = w.path_str("started");
    let running = w
        .shell("slow", &format!("touch {started}; sleep 30"), "")
        .args(["--otlp-endpoint", &receiver.base()])
        .arg("--history=none")
        .spawn();
    assert!(common::wait_until(Duration::from_secs(20), || {
        std::path::Path::new(&started).exists()
    }));
    running.signal(libc::SIGINT);
    let r = running.wait();
    r.assert_code(130);
    let spans = receiver.spans();
    let run = spans.iter().find(|s| s.name.starts_with("RUN ")).unwrap();
    assert_eq!(
        attr(run, "cicd.pipeline.result").as_deref(),
        Some("cancellation")
    );
    let slow = spans.iter().find(|s| s.name == "slow").unwrap();
    assert_eq!(
        attr(slow, "cicd.pipeline.task.run.result").as_deref(),
        Some("cancellation")
    );
    assert_eq!(code(slow), StatusCode::Error as i32);
}
