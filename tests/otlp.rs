//! `--otlp-endpoint`: the run as an OpenTelemetry trace over OTLP/HTTP,
//! received here by a tiny HTTP server on loopback that decodes every
//! request with the official protobuf definitions (opentelemetry-proto's
//! `ExportTraceServiceRequest`); `TRACEPARENT` in every batch; a receiver
//! that is down, failing or silent is a warning, never the run's failure.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Warden, fixture, q};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message as _;

/// How the receiver answers.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Status(u16),
    /// Reads the request and never answers.
    Silent,
}

struct Request {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// An OTLP/HTTP receiver on 127.0.0.1, for one test; stops when dropped.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (got2, stop2) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let got = got2.clone();
                std::thread::spawn(move || serve(conn, &got, answer));
            }
        });
        Receiver { addr, got, stop }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received, after checking each request is an OTLP/HTTP
    /// protobuf export to `/v1/traces` from the `warden` service.
    fn spans(&self) -> Vec<Span> {
        let got = self.got.lock().unwrap();
        assert!(!got.is_empty(), "no request received");
        let mut spans = Vec::new();
        for r in got.iter() {
            assert_eq!(r.path, "/v1/traces");
            assert_eq!(
                r.headers.get("content-type").map(String::as_str),
                Some("application/x-protobuf")
            );
            let request = ExportTraceServiceRequest::decode(r.body.as_slice())
                .expect("an ExportTraceServiceRequest");
            for rs in request.resource_spans {
                let resource = rs.resource.expect("a resource");
                let service = resource
                    .attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| value(kv.value.as_ref()));
                assert_eq!(service.as_deref(), Some("warden"));
                for ss in rs.scope_spans {
                    spans.extend(ss.spans);
                }
            }
        }
        spans
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
fn serve(conn: TcpStream, got: &Mutex<Vec<Request>>, answer: Answer) {
    let mut writer = conn.try_clone().expect("clone");
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
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        got.lock().unwrap().push(Request {
            path,
            headers,
            body,
        });
        let reply = match answer {
            Answer::Ok => "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\
                           Content-Length: 0\r\n\r\n"
                .to_owned(),
            Answer::Status(code) => {
                format!("HTTP/1.1 {code} Oops\r\nContent-Length: 9\r\n\r\nno quota!")
            }
            Answer::Silent => {
                // Until the client gives up and closes.
                let _ = std::io::copy(&mut reader, &mut std::io::sink());
                return;
            }
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
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
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &format!("http://{closed}")])
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains(&format!(
        "warden: OTLP export to http://{closed}/v1/traces failed: "
    ));
    assert!(r.elapsed < Duration::from_secs(5), "{}", r.context);
    let exit = std::fs::read_to_string(r.artifacts().join("exit-code")).unwrap();
    assert_eq!(exit.trim(), "0");
}

#[test]
fn an_error_answer_is_a_warning_with_its_text() {
    let receiver = Receiver::start(Answer::Status(503));
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--otlp-endpoint", &receiver.base()])
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains(&format!(
        "warden: OTLP export to {}/v1/traces failed: HTTP 503 Service Unavailable: no quota!",
        receiver.base()
    ));
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
    assert!(receiver.spans().len() == 2, "the request did arrive");
}

#[test]
fn https_is_refused_at_the_start() {
    let r = Warden::pgroup()
        .shell("ok", "echo \"${TRACEPARENT:-none}\" > tp", "")
        .args(["--otlp-endpoint", "https://collector.invalid"])
        .arg("--history=none")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains(
        "warden: OTLP export to https://collector.invalid/v1/traces failed: https is not supported",
    );
    // No export, so no trace context handed to the batches either.
    assert_eq!(
        std::fs::read_to_string(r.path("tp")).unwrap().trim(),
        "none"
    );
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
