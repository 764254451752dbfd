//! `<artifacts>/trace.json`: the run's timeline in the trace-event format
//! (what Perfetto and chrome://tracing load): valid JSON, a named track per
//! slot and one for the steps, a slice per attempt on its slot's track,
//! tests nested inside their batch's slice; written for a stopped run too.

mod common;

use std::collections::BTreeMap;

use common::Warden;
use serde_json::Value;

fn trace(dir: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("trace.json")).expect("trace.json");
    let doc: Value = serde_json::from_str(&text).expect("trace.json is JSON");
    let events = doc["traceEvents"].as_array().expect("traceEvents").clone();
    for e in &events {
        assert_eq!(e["pid"], 1, "{e}");
        assert!(e["tid"].is_u64(), "{e}");
        let ph = e["ph"].as_str().expect("ph");
        assert!(ph == "X" || ph == "M", "{e}");
        if ph == "X" {
            assert!(e["ts"].is_u64() && e["dur"].is_u64(), "{e}");
            assert!(e["name"].is_string(), "{e}");
        }
    }
    events
}

/// The names of the tracks, by tid.
fn tracks(events: &[Value]) -> BTreeMap<u64, String> {
    events
        .iter()
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            (
                e["tid"].as_u64().unwrap(),
                e["args"]["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn slices<'a>(events: &'a [Value], cat: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["ph"] == "X" && e["cat"] == cat)
        .collect()
}

fn span(e: &Value) -> (u64, u64) {
    let ts = e["ts"].as_u64().unwrap();
    (ts, ts + e["dur"].as_u64().unwrap())
}

#[test]
fn tracks_per_slot_with_attempts_and_tests_nested() {
    let tap = "echo 'TAP version 13'; echo 1..3; for i in 1 2 3; do sleep 0.1; echo \"ok $i - t$i\"; done";
    let r = Warden::new()
        .run_section("max-parallel = 2")
        .shell("a", "sleep 0.3", "")
        .shell("b", "sleep 0.3", "")
        .shell("tap", tap, "format = \"tap\"")
        .shell(
            "retried",
            "[ \"$WARDEN_ATTEMPT\" = 2 ] || exit 1",
            "retry = { attempts = 2 }",
        )
        .config_append("[[setup]]\nname = \"build\"\nshell = \"true\"\n")
        .config_append("[[post]]\nname = \"cleanup\"\nshell = \"true\"\n")
        .run();
    r.assert_code(0);
    let events = trace(&r.artifacts());

    let process: Vec<&Value> = events
        .iter()
        .filter(|e| e["name"] == "process_name")
        .collect();
    assert_eq!(process.len(), 1);
    assert_eq!(process[0]["args"]["name"], "warden");
    let tracks = tracks(&events);
    assert_eq!(
        tracks.values().map(String::as_str).collect::<Vec<_>>(),
        ["setup and post steps", "slot 0", "slot 1"]
    );

    let batches = slices(&events, "batch");
    let names: Vec<&str> = batches
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for unit in ["build", "a", "b", "tap", "cleanup"] {
        assert_eq!(
            names.iter().filter(|n| **n == unit).count(),
            1,
            "{unit}: {names:?}"
        );
    }
    for step in batches
        .iter()
        .filter(|e| e["name"] == "build" || e["name"] == "cleanup")
    {
        assert_eq!(
            tracks[&step["tid"].as_u64().unwrap()],
            "setup and post steps"
        );
    }
    for e in batches
        .iter()
        .filter(|e| e["name"] != "build" && e["name"] != "cleanup")
    {
        assert!(
            tracks[&e["tid"].as_u64().unwrap()].starts_with("slot "),
            "{e}"
        );
        assert!(e["args"]["reason"].is_string(), "{e}");
    }
    // One slice per attempt, with its status and number.
    let retried: Vec<(i64, &str)> = batches
        .iter()
        .filter(|e| e["name"] == "retried")
        .map(|e| {
            (
                e["args"]["attempt"].as_i64().unwrap(),
                e["args"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(retried, [(1, "failed"), (2, "flaky")]);

    // No two slices of one track overlap: one batch at a time per slot.
    let mut by_track: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for e in &batches {
        by_track
            .entry(e["tid"].as_u64().unwrap())
            .or_default()
            .push(span(e));
    }
    for spans in by_track.values_mut() {
        spans.sort();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "overlap on one track: {pair:?}");
        }
    }
    // a and b ran side by side, on two slots.
    let a = batches.iter().find(|e| e["name"] == "a").unwrap();
    let b = batches.iter().find(|e| e["name"] == "b").unwrap();
    assert_ne!(a["tid"], b["tid"]);
    assert!(span(a).1 - span(a).0 >= 300_000, "{a}");

    // The tests, in order, inside their batch's slice, on its track.
    let tap_slice = batches.iter().find(|e| e["name"] == "tap").unwrap();
    let (start, end) = span(tap_slice);
    let tests = slices(&events, "test");
    let names: Vec<&str> = tests.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names
            .iter()
            .zip(["t1", "t2", "t3"])
            .all(|(n, t)| n.contains(t)),
        "{names:?}"
    );
    let mut at = start;
    for t in &tests {
        assert_eq!(t["tid"], tap_slice["tid"]);
        assert_eq!(t["args"]["batch"], "tap");
        assert_eq!(t["args"]["status"], "passed");
        let (s, e) = span(t);
        assert!(s >= at && e <= end, "nested in [{start}, {end}]: {t}");
        at = e;
    }
    // The first took its 100 ms.
    assert!(
        span(tests[0]).1 - span(tests[0]).0 >= 90_000,
        "{}",
        tests[0]
    );
}

/// A run stopped by SIGTERM still writes its timeline, with the
/// interrupted batch's slice.
#[test]
fn a_stopped_run_writes_its_trace() {
    let w = Warden::new();
    let started = w.path_str("started");
    let w = w.shell("long", &format!("touch {started}; sleep 30"), "");
    let running = w.spawn();
    assert!(
        common::wait_until(std::time::Duration::from_secs(20), || {
            std::path::Path::new(&started).exists()
        }),
        "the batch never started"
    );
    running.signal(libc::SIGTERM);
    let r = running.wait();
    assert_eq!(r.code, Some(143), "{}", r.context);
    let events = trace(&r.artifacts());
    let long = slices(&events, "batch");
    assert_eq!(long.len(), 1);
    assert_eq!(long[0]["name"], "long");
    assert_eq!(long[0]["args"]["status"], "interrupted");
}
