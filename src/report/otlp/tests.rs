use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::report::test_support::{outcome, scenario, test};

fn reporter() -> Otlp {
    Otlp::with(
        None,
        TraceContext::start(None),
        RunInfo {
            pipeline: "warden.toml".into(),
            run_id: "r1".into(),
            labels: Labels::default(),
        },
    )
}

fn attr(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let kv = span.attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

/// Every unit of the reporters' scenario: a span per attempt under the
/// run, its tests under the attempt, each status in the conventions' words.
#[test]
fn the_scenario_as_spans() {
    let mut otlp = reporter();
    let outcomes = scenario();
    for o in &outcomes {
        otlp.on_event(&Event::Finished(Box::new(o.clone())));
    }
    let run = otlp.trace.span_id.to_vec();
    let attempts: Vec<&Span> = otlp
        .spans
        .iter()
        .filter(|s| s.parent_span_id == run)
        .collect();
    let retried: usize = outcomes.iter().map(|o| o.retried.len()).sum();
    assert_eq!(attempts.len(), outcomes.len() + retried);
    let result = |name: &str| {
        let span = attempts.iter().rev().find(|s| s.name == name).unwrap();
        attr(span, "cicd.pipeline.task.run.result").unwrap()
    };
    assert_eq!(result("build"), "success");
    assert_eq!(result("net"), "failure");
    assert_eq!(result("plain"), "timeout");
    assert_eq!(result("retried"), "success");
    assert_eq!(result("skipped"), "skip");
    // A setup step is no test suite.
    let build = attempts.iter().find(|s| s.name == "build").unwrap();
    assert_eq!(attr(build, "test.suite.name"), None);
    assert_eq!(attr(build, "warden.phase").as_deref(), Some("setup"));
    // net: its earlier attempt's two failed tests, then all ten.
    let net: Vec<&&Span> = attempts.iter().filter(|s| s.name == "net").collect();
    assert_eq!(net.len(), 2);
    let under = |span: &Span| {
        otlp.spans
            .iter()
            .filter(|s| s.parent_span_id == span.span_id)
            .count()
    };
    assert_eq!(under(net[0]), 2);
    assert_eq!(under(net[1]), 10);
    let skip = otlp.spans.iter().find(|s| s.name == "skip").unwrap();
    assert_eq!(
        attr(skip, "test.case.result.status").as_deref(),
        Some("skipped")
    );
    let cut = otlp.spans.iter().find(|s| s.name == "cut").unwrap();
    assert_eq!(attr(cut, "error.type").as_deref(), Some("timed-out"));
    // The run span, once the verdict is known.
    let span = otlp.run_span(RunStatus::Deadline, 1);
    assert_eq!(
        attr(&span, "cicd.pipeline.result").as_deref(),
        Some("timeout")
    );
    assert_eq!(attr(&span, "error.type").as_deref(), Some("deadline"));
    assert!(span.parent_span_id.is_empty());
}

/// Tests laid end to end while they fit their attempt; from its start
/// when they overrun it (they ran in parallel).
#[test]
fn tests_are_laid_out_from_the_attempt_start() {
    for (batch_ms, end_to_end) in [(1000, true), (10, false)] {
        let mut otlp = reporter();
        let mut o = outcome("u", Status::Passed, "ok");
        o.duration = Duration::from_millis(batch_ms);
        o.tests = vec![
            test(&["a"], TestStatus::Passed, None, ""),
            test(&["b"], TestStatus::Passed, None, ""),
        ];
        otlp.on_event(&Event::Finished(Box::new(o.clone())));
        let b = otlp.spans.iter().find(|s| s.name == "b").unwrap();
        let offset = b.start_time_unix_nano - nanos(o.started);
        assert_eq!(offset, if end_to_end { 7_000_000 } else { 0 });
        assert_eq!(b.end_time_unix_nano - b.start_time_unix_nano, 7_000_000);
    }
}

/// Started events give each attempt's start and slot; without one for
/// every attempt, the starts are counted back from the last.
#[test]
fn attempts_start_when_their_programs_did() {
    let mut otlp = reporter();
    let mut o = outcome("u", Status::Flaky, "passed on attempt 2");
    o.retried = scenario()[1].retried.clone();
    o.started = SystemTime::now();
    let first = Instant::now() - Duration::from_secs(5);
    otlp.on_event(&Event::Started {
        name: o.name.clone(),
        at: first,
        slot: Some(3),
        attempt: 1,
        attempts: 2,
    });
    otlp.on_event(&Event::Started {
        name: o.name.clone(),
        at: Instant::now(),
        slot: Some(4),
        attempt: 2,
        attempts: 2,
    });
    otlp.on_event(&Event::Finished(Box::new(o.clone())));
    let spans: Vec<&Span> = otlp.spans.iter().filter(|s| s.name == "u").collect();
    let ago = nanos(SystemTime::now()) - spans[0].start_time_unix_nano;
    assert!((4_900_000_000..6_000_000_000).contains(&ago), "{ago}");
    assert_eq!(attr(spans[0], "warden.slot").as_deref(), Some("3"));
    assert_eq!(attr(spans[1], "warden.slot").as_deref(), Some("4"));

    // No Started events: attempt 1 ends where attempt 2 starts.
    let mut otlp = reporter();
    otlp.on_event(&Event::Finished(Box::new(o.clone())));
    let spans: Vec<&Span> = otlp.spans.iter().filter(|s| s.name == "u").collect();
    assert_eq!(spans[0].end_time_unix_nano, spans[1].start_time_unix_nano);
    assert_eq!(attr(spans[0], "warden.slot"), None);
}

/// Past the cap, test spans are counted on the run span instead, passing
/// and failing ones apart; requests hold at most a thousand spans.
#[test]
fn test_spans_are_capped_and_requests_chunked() {
    let mut otlp = reporter();
    let mut o = outcome("big", Status::Failed, "1 failed");
    o.tests = (0..MAX_TEST_SPANS + 5)
        .map(|i| test(&[&format!("t{i}")], TestStatus::Passed, None, ""))
        .collect();
    o.tests
        .push(test(&["bad"], TestStatus::Failed, Some("no"), ""));
    otlp.on_event(&Event::Finished(Box::new(o)));
    assert_eq!(otlp.left_out, 5);
    assert!(otlp.spans.iter().any(|s| s.name == "bad"));
    let run = otlp.run_span(RunStatus::Failed, 1);
    assert_eq!(
        attr(&run, "warden.test_spans_left_out").as_deref(),
        Some("5")
    );
    let n = otlp.spans.len();
    let spans = std::mem::take(&mut otlp.spans);
    let requests = otlp.requests(spans);
    assert_eq!(requests.len(), n.div_ceil(SPANS_PER_REQUEST));
    let spans: usize = requests
        .iter()
        .map(|(r, count)| {
            assert_eq!(r.resource_spans[0].scope_spans[0].spans.len(), *count);
            count
        })
        .sum();
    assert_eq!(spans, n);
}

#[test]
fn log_paths_become_file_urls() {
    assert_eq!(
        file_url(Path::new("/a b/%x/net.attempt-1.log")),
        "file:///a%20b/%25x/net.attempt-1.log"
    );
}
