//! Memory-aware admission in real runs: batches whose expected `memory`
//! would pass `[run] memory-budget` wait, whatever `max-parallel` allows
//! (each batch records when it ran; the spans must never overlap more than
//! the budget fits); a batch over the whole budget runs alone; `warden
//! check` shows the budget and each batch's expectation with its source.

mod common;

use std::fs;
use std::path::Path;

use common::Warden;

/// A batch that appends `start <ns>` and `end <ns>` lines (one file per
/// batch), sleeping `secs` in between.
fn recorder(w: Warden, name: &str, secs: &str, extra: &str) -> Warden {
    let dir = w.path_str("spans");
    let script = format!(
        "mkdir -p {dir}; f={dir}/{name}; echo \"start $(date +%s%N)\" >> $f; \
         sleep {secs}; echo \"end $(date +%s%N)\" >> $f"
    );
    w.shell(name, &script, extra)
}

/// (name, start, end) of every batch, by start.
fn spans(dir: &Path) -> Vec<(String, u128, u128)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir.join("spans")).expect("spans directory") {
        let entry = entry.unwrap();
        let text = fs::read_to_string(entry.path()).unwrap();
        let time = |what: &str| -> u128 {
            text.lines()
                .find_map(|l| l.strip_prefix(what))
                .unwrap_or_else(|| panic!("no {what}in {text:?}"))
                .trim()
                .parse()
                .unwrap()
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, time("start "), time("end ")));
    }
    out.sort_by_key(|s| s.1);
    out
}

/// The names running at each instant a batch starts.
fn overlaps(spans: &[(String, u128, u128)]) -> Vec<Vec<&str>> {
    spans
        .iter()
        .map(|(_, start, _)| {
            spans
                .iter()
                .filter(|(_, s, e)| s <= start && start < e)
                .map(|(n, _, _)| n.as_str())
                .collect()
        })
        .collect()
}

#[test]
fn never_more_batches_than_the_budget_fits() {
    // max-parallel 4 would run 4 at once; 2G fits two batches of 1G.
    let mut w = Warden::pgroup().run_section("max-parallel = 4\nmemory-budget = \"2G\"");
    for i in 0..6 {
        w = recorder(w, &format!("vm{i}"), "0.4", "memory = \"1G\"");
    }
    let r = w.run();
    r.assert_code(0);
    let spans = spans(r.dir());
    assert_eq!(spans.len(), 6, "{}", r.context);
    let most = overlaps(&spans).iter().map(Vec::len).max().unwrap();
    assert_eq!(
        most, 2,
        "at most 2 (the budget), and 2 do run at once: {spans:?}"
    );
}

#[test]
fn a_batch_over_the_whole_budget_runs_alone() {
    let mut w = Warden::pgroup().run_section("max-parallel = 4\nmemory-budget = \"2G\"");
    w = recorder(w, "a", "0.3", "memory = \"1G\"");
    w = recorder(w, "huge", "0.3", "memory = \"3G\"");
    w = recorder(w, "b", "0.3", "memory = \"1G\"");
    w = recorder(w, "uncounted", "0.3", "");
    let r = w.run();
    r.assert_code(0);
    r.assert_stderr_contains(
        "warden: warning: batch \"huge\" expects 3.0G of memory (its `memory`), more than the \
         whole memory budget (2.0G): it will run alone, once nothing else runs",
    );
    let spans = spans(r.dir());
    assert_eq!(spans.len(), 4, "{}", r.context);
    let huge = spans.iter().find(|s| s.0 == "huge").unwrap();
    for other in spans.iter().filter(|s| s.0 != "huge") {
        assert!(
            other.2 <= huge.1 || huge.2 <= other.1,
            "{} overlapped the batch over the budget: {spans:?}",
            other.0
        );
    }
}

#[test]
fn check_shows_the_budget_and_each_expectation() {
    let r = Warden::pgroup()
        .run_section("memory-budget = \"2G\"")
        .shell("vm", "true", "memory = \"1536M\"")
        .shell("plain", "true", "")
        .shell("huge", "true", "memory = \"3G\"")
        .check()
        .arg("--history")
        .arg("none")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("memory budget: 2G ([run] memory-budget)");
    r.assert_stdout_contains("vm (memory 1536M (explicit))");
    r.assert_stdout_contains("plain (memory not counted (no expectation))");
    r.assert_stdout_contains("huge (memory 3G (explicit), over the budget: runs alone)");
    r.assert_stderr_contains("batch \"huge\" expects 3.0G of memory");
    // No budget: nothing about memory.
    let r = Warden::pgroup()
        .shell("vm", "true", "memory = \"1G\"")
        .check()
        .run();
    r.assert_code(0);
    assert!(!r.stdout.contains("memory"), "{}", r.stdout);
}

#[test]
fn auto_is_measured_at_the_start() {
    let r = Warden::pgroup()
        .run_section("memory-budget = \"auto\"")
        .shell("vm", "true", "memory = \"1G\"")
        .check()
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("memory budget: ");
    r.assert_stdout_contains(" margin)");
    r.assert_stdout_contains("(auto: ");
}
