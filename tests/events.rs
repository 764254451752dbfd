//! `warden run --events`: the JSON Lines stream of a real run, every line
//! validated against `docs/events.schema.json` (passing, failing, retried,
//! timed-out and TAP batches); `--events -` leaves only JSON on standard
//! output; lines are there while the run goes on, and a SIGKILLed warden
//! leaves only whole lines (and no `trace.json`). And
//! `WARDEN_ATTEMPT`/`WARDEN_ATTEMPTS` across a retried batch.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Warden;
use serde_json::{Value, json};

/// Three tests: one passes, one fails (12 ms, its message), one is skipped.
const TAP: &str = "printf 'TAP version 14\\n1..3\\nok 1 - first\\nnot ok 2 - second\\n  ---\\n  \
                   message: \"expected 1, got 2\"\\n  duration_ms: 12\\n  ...\\n\
                   ok 3 - third # SKIP no network\\n'";

fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("the schema file"))
        .expect("the schema is JSON")
}

/// Every line parsed, validated against the schema, and each field
/// documented there (the schema allows more, for later additions; warden
/// itself must write none it does not document).
fn validated(text: &str) -> Vec<Value> {
    let schema = schema();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid JSON Schema");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "whole lines only:\n{text}"
    );
    let known = [
        "run_started",
        "batch_started",
        "test_result",
        "test_finished",
        "batch_finished",
        "run_finished",
    ];
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
            if let Err(e) = validator.validate(&v) {
                panic!("against the schema: {e}\n{line}");
            }
            let event = v["event"].as_str().expect("event");
            assert!(known.contains(&event), "an event of the schema: {line}");
            let documented: BTreeSet<&str> = schema["$defs"][event]["properties"]
                .as_object()
                .expect("documented")
                .keys()
                .map(String::as_str)
                .chain(["version", "event", "time"])
                .collect();
            for key in v.as_object().expect("an object").keys() {
                assert!(
                    documented.contains(key.as_str()),
                    "{key} undocumented: {line}"
                );
            }
            v
        })
        .collect()
}

fn of<'a>(lines: &'a [Value], event: &str, batch: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|l| l["event"] == event && l["batch"] == batch)
        .collect()
}

#[test]
fn a_real_runs_stream_matches_its_schema() {
    let w = Warden::new()
        .run_section("max-parallel = 3")
        .shell("pass", "true", "")
        .shell("fail", "echo broken; exit 3", "")
        .shell(
            "retried",
            "[ \"$WARDEN_ATTEMPT\" = 2 ]",
            "retry = { attempts = 3 }",
        )
        .shell("slow", "sleep 30", "timeout = \"1s\"\ngrace = \"200ms\"")
        .shell("tap", TAP, "format = \"tap\"")
        .config_append("[[setup]]\nname = \"build\"\nshell = \"true\"\n")
        .arg("--events")
        .arg("events.jsonl");
    let events = w.path("events.jsonl");
    let r = w.run();
    r.assert_code(1);
    let lines = validated(&std::fs::read_to_string(&events).expect("events file"));

    let first = &lines[0];
    assert_eq!(first["event"], "run_started");
    assert_eq!(first["max_parallel"], 3);
    let planned: Vec<&str> = first["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["build", "pass", "fail", "retried", "slow", "tap"]);
    assert!(first["run"].is_string(), "recorded in the history");

    let last = lines.last().unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(last["status"], "failed");
    assert_eq!(last["exit_code"], 1);
    assert_eq!(last["batches"]["total"], 5);
    assert_eq!(last["batches"]["timed_out"], 1);
    assert_eq!(last["tests"]["total"], 3);

    let build = of(&lines, "batch_started", "build");
    assert_eq!(build[0]["phase"], "setup");
    assert_eq!(build[0]["slot"], Value::Null);

    let fail = of(&lines, "batch_finished", "fail");
    assert_eq!(fail.len(), 1);
    assert_eq!(fail[0]["status"], "failed");
    assert_eq!(fail[0]["exit_code"], 3);
    assert_eq!(fail[0]["final"], true);
    assert!(
        fail[0]["log"].as_str().unwrap().ends_with("logs/fail.log"),
        "{}",
        fail[0]
    );

    // Two attempts, each started and finished, in order.
    let retried: Vec<(String, i64, Option<bool>)> = lines
        .iter()
        .filter(|l| l["batch"] == "retried")
        .map(|l| {
            (
                l["event"].as_str().unwrap().to_owned(),
                l["attempt"].as_i64().unwrap(),
                l["final"].as_bool(),
            )
        })
        .collect();
    assert_eq!(
        retried,
        [
            ("batch_started".into(), 1, None),
            ("batch_finished".into(), 1, Some(false)),
            ("batch_started".into(), 2, None),
            ("batch_finished".into(), 2, Some(true)),
        ]
    );
    let ends = of(&lines, "batch_finished", "retried");
    assert_eq!(ends[0]["status"], "failed");
    assert!(
        ends[0]["log"]
            .as_str()
            .unwrap()
            .ends_with("retried.attempt-1.log")
    );
    assert_eq!(ends[1]["status"], "flaky");
    assert_eq!(of(&lines, "batch_started", "retried")[1]["attempts"], 3);

    let slow = of(&lines, "batch_finished", "slow");
    assert_eq!(slow[0]["status"], "timed-out");
    assert!(slow[0]["duration_ms"].as_u64().unwrap() >= 1000);

    // The TAP batch's tests as they came (attempt 1), their final
    // results, then its end.
    let tap: Vec<&Value> = lines.iter().filter(|l| l["batch"] == "tap").collect();
    let events: Vec<&str> = tap.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "batch_started",
            "test_result",
            "test_result",
            "test_result",
            "test_finished",
            "test_finished",
            "test_finished",
            "batch_finished"
        ]
    );
    let live: Vec<(&str, &Value)> = tap[1..4]
        .iter()
        .map(|l| (l["status"].as_str().unwrap(), &l["attempt"]))
        .collect();
    assert_eq!(
        live,
        [
            ("passed", &json!(1)),
            ("failed", &json!(1)),
            ("skipped", &json!(1))
        ]
    );
    assert_eq!(tap[2]["message"], "expected 1, got 2");
    let tap: Vec<&Value> = tap
        .into_iter()
        .filter(|l| l["event"] != "test_result")
        .collect();
    let statuses: Vec<&str> = tap[1..4]
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["passed", "failed", "skipped"]);
    assert!(
        tap[2]["name"].as_str().unwrap().contains("second"),
        "{}",
        tap[2]
    );
    assert_eq!(tap[2]["message"], "expected 1, got 2");
    assert_eq!(tap[2]["duration_ms"], 12);
    assert_eq!(tap[3]["message"], "no network");
    assert_eq!(tap[4]["status"], "failed");
}

/// `--events -`: standard output is the stream, nothing else; the human
/// output goes to standard error.
#[test]
fn events_on_standard_output_leave_it_json_only() {
    let r = Warden::new()
        .shell("a", "echo hello", "")
        .shell("b", "exit 1", "")
        .arg("--events")
        .arg("-")
        .arg("--verbose")
        .run();
    r.assert_code(1);
    let lines = validated(&r.stdout);
    assert_eq!(lines[0]["event"], "run_started");
    assert_eq!(lines.last().unwrap()["event"], "run_finished");
    assert_eq!(lines.len(), 1 + 2 + 2 + 1, "{}", r.stdout);
    // The summary, and --verbose's echo of a batch's output.
    r.assert_stderr_contains("Success: 1/2");
    r.assert_stderr_contains("[a] hello");
}

/// Lines are in the file while the run goes on, a test's result as soon
/// as its batch printed it; a SIGKILLed warden leaves a file of whole
/// lines, each valid.
#[test]
fn lines_come_as_it_happens_and_a_killed_warden_leaves_whole_ones() {
    // Process groups: a SIGKILLed warden's run cgroup would be left behind.
    let w = Warden::pgroup().watchdog(Duration::from_secs(60));
    let stop = w.path("stop");
    // TAP: its first tests' results are out while the batch waits (a
    // result is whole once the next result line shows that no diagnostics
    // follow it).
    let held = format!(
        "echo 1..4; echo 'ok 1 - first'; echo 'not ok 2 - early'; echo 'ok 3 - third'; \
         while [ ! -e {} ]; do sleep 0.05; done; echo 'ok 4 - never'",
        stop.display()
    );
    let w = w
        .run_section("max-parallel = 2")
        .shell("quick", "echo done", "")
        .shell("held", &held, "format = \"tap\"")
        .arg("--events")
        .arg("events.jsonl");
    let events = w.path("events.jsonl");
    // An earlier run's timeline, which this run must not leave looking
    // like its own.
    let trace = w.path("warden-artifacts/trace.json");
    std::fs::create_dir_all(trace.parent().unwrap()).unwrap();
    std::fs::write(&trace, "{}").unwrap();
    let mark = w.mark().to_owned();
    let running = w.spawn();
    let limit = Instant::now() + Duration::from_secs(20);
    let has = |text: &str, event: &str, batch: &str| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|l| l["event"] == event && l["batch"] == batch)
    };
    let before_end = loop {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        if has(&text, "batch_finished", "quick")
            && has(&text, "batch_started", "held")
            && text.contains("\"early\"")
        {
            // Only whole lines so far: up to the last newline.
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            break text[..whole].to_owned();
        }
        assert!(Instant::now() < limit, "quick's end never showed:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Still running: held waits for its file.
    let lines = validated(&before_end);
    assert_eq!(of(&lines, "batch_finished", "quick").len(), 1);
    assert_eq!(of(&lines, "batch_started", "held").len(), 1);
    assert!(!lines.iter().any(|l| l["event"] == "run_finished"));
    // Both tests it printed, live, in order, as that attempt saw them;
    // no final results yet.
    let live = of(&lines, "test_result", "held");
    let seen: Vec<(&str, &str)> = live
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [("first", "passed"), ("early", "failed")],
        "{before_end}"
    );
    assert!(live.iter().all(|l| l["attempt"] == 1));
    assert!(of(&lines, "test_finished", "held").is_empty());

    running.signal(libc::SIGKILL);
    std::fs::write(&stop, "").unwrap();
    let gone = Instant::now() + Duration::from_secs(10);
    while !common::marked_processes(&mark).is_empty() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = running.wait();
    assert_eq!(r.signal, Some(libc::SIGKILL));
    let after = std::fs::read_to_string(&events).unwrap();
    let lines = validated(&after);
    assert!(lines.len() >= 4, "{after}");
    assert!(!lines.iter().any(|l| l["event"] == "run_finished"));
    assert!(!trace.exists(), "no timeline from a killed run");
}

/// Each attempt sees its number and the most it may have.
#[test]
fn attempt_variables_count_the_retries() {
    let w = Warden::new();
    let seen = w.path_str("seen");
    let r = w
        .shell(
            "twice",
            &format!(
                "echo \"$WARDEN_ATTEMPT/$WARDEN_ATTEMPTS\" >> {seen}; [ \"$WARDEN_ATTEMPT\" -ge 2 ]"
            ),
            "retry = { attempts = 3 }",
        )
        .shell(
            "once",
            &format!("echo \"once $WARDEN_ATTEMPT/$WARDEN_ATTEMPTS\" >> {seen}.once"),
            "",
        )
        .run();
    r.assert_code(0);
    assert_eq!(std::fs::read_to_string(&seen).unwrap(), "1/3\n2/3\n");
    assert_eq!(
        std::fs::read_to_string(format!("{seen}.once")).unwrap(),
        "once 1/1\n"
    );
}

/// The schema is not a rubber stamp: a missing field, a status it does
/// not know, a time not in UTC and a wrong version are all refused.
#[test]
fn the_schema_refuses_what_is_wrong() {
    let schema = schema();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid JSON Schema");
    let good = serde_json::json!({
        "version": 1, "event": "test_finished", "time": "2026-01-02T03:04:05.678Z",
        "batch": "unit", "name": "a/b", "path": ["a", "b"], "status": "failed",
        "duration_ms": 12, "message": "expected 1, got 2"
    });
    assert!(validator.is_valid(&good));
    let wrong = |key: &str, value: Value| {
        let mut v = good.clone();
        match value {
            Value::Null if key == "message" => {
                v.as_object_mut().unwrap().remove(key);
            }
            value => v[key] = value,
        }
        assert!(!validator.is_valid(&v), "{key} accepted: {v}");
    };
    wrong("message", Value::Null);
    wrong("status", "broken".into());
    wrong("time", "2026-01-02T03:04:05+01:00".into());
    wrong("time", "yesterday".into());
    wrong("version", 2.into());
    wrong("duration_ms", (-1).into());
}
