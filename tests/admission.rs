//! Memory-aware admission in real runs: batches whose expected `memory`
//! would pass `[run] memory-budget` wait, whatever `max-parallel` allows
//! (each batch records when it ran; the spans must never overlap more than
//! the budget fits); a batch over the whole budget runs alone; a batch
//! without `memory` is expected to use its p90 peak in the history; `warden
//! check` shows the budget and each batch's expectation with its source.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{Warden, block_on};
use warden::history::model::{BatchRecord, Labels, RunRecord, RunSource};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status};
use warden::usage::Usage;

const G: u64 = 1 << 30;

/// Three recorded runs (an hour apart, the last an hour ago) in which each
/// of `batches` peaked at its bytes.
fn seed_peaks(db: &Path, batches: &[(&str, u64)]) {
    block_on(async {
        let store = Db::open(&Location::Sqlite(db.to_owned()), Access::Write)
            .await
            .expect("open");
        for n in 1..=3u64 {
            let at = SystemTime::now() - Duration::from_secs(3600 * n);
            let id = store
                .begin_run(&RunRecord {
                    uuid: format!("peaks-{n}-{}", db.display()),
                    started: at,
                    commit: None,
                    branch: None,
                    host: "seed".into(),
                    labels: Labels::default(),
                    source: RunSource::Run,
                })
                .await
                .expect("begin_run");
            for (name, bytes) in batches {
                let b = BatchRecord {
                    name: (*name).into(),
                    phase: Phase::Batch,
                    status: Status::Passed,
                    reason: "exit code 0".into(),
                    started: at,
                    duration: Duration::from_millis(400),
                    log: None,
                    attempts: Vec::new(),
                    tests: Vec::new(),
                    usage: Some(Usage {
                        peak_memory: Some(*bytes),
                        ..Usage::default()
                    }),
                };
                store.record_batch(id, &b).await.expect("record_batch");
            }
            store
                .finish_run(id, RunStatus::Passed, at + Duration::from_secs(60))
                .await
                .expect("finish_run");
        }
        store.close().await;
    });
}

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
    // No budget: the key is shown, but nothing is counted.
    let r = Warden::pgroup()
        .shell("vm", "true", "memory = \"1G\"")
        .check()
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("priority 0, memory 1G\n");
    assert!(!r.stdout.contains("memory budget"), "{}", r.stdout);
    assert!(!r.stdout.contains("(memory"), "{}", r.stdout);
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

#[test]
fn without_memory_the_history_p90_peak_is_expected() {
    let mut w = Warden::pgroup()
        .run_section("max-parallel = 4\nmemory-budget = \"2G\"\nhistory = \"sqlite:history.db\"");
    seed_peaks(
        &w.path("history.db"),
        &[
            ("vm0", G),
            ("vm1", G),
            ("vm2", G),
            ("vm3", G),
            ("light", 8 * G),
        ],
    );
    for i in 0..4 {
        w = recorder(w, &format!("vm{i}"), "0.4", "");
    }
    // Explicit beats the history: 8G peaks, but it says 1M.
    w = recorder(w, "light", "0.4", "memory = \"1M\"");
    let check = Warden::pgroup().config(&w.config_text()).check();
    fs::copy(w.path("history.db"), check.path("history.db")).unwrap();
    let c = check.run();
    c.assert_code(0);
    c.assert_stdout_contains("vm0 (p90 0.40s, memory 1.0G (p90 peak in the history))");
    c.assert_stdout_contains("light (p90 0.40s, memory 1M (explicit))");
    let r = w.run();
    r.assert_code(0);
    let spans = spans(r.dir());
    assert_eq!(spans.len(), 5, "{}", r.context);
    for running in overlaps(&spans) {
        let vms = running.iter().filter(|n| n.starts_with("vm")).count();
        assert!(
            vms <= 2,
            "over the budget by the history's peaks: {spans:?}"
        );
    }
    assert!(
        overlaps(&spans).iter().any(|r| r.len() >= 2),
        "the budget fits two: {spans:?}"
    );
}

/// `retry.when = ["@oom"]`: a batch the OOM killer killed (its first
/// attempt allocates 200M past its 64M limit; a marker file tells the
/// attempts apart) is retried once the other running batch has ended, and
/// the batch waiting in line starts only after the retry: alone.
#[test]
fn an_oom_killed_batch_is_retried_alone_after_the_others() {
    let Some(w) = Warden::cgroup() else { return };
    let w = w.run_section("max-parallel = 2");
    let spans = w.path_str("spans");
    let marker = w.path_str("first-attempt-ran");
    // The pipeline last: its exit (tail's SIGKILL) is the batch's.
    let hog = format!(
        "mkdir -p {spans}; \
         if [ ! -e {marker} ]; then touch {marker}; \
           echo \"start $(date +%s%N)\" >> {spans}/hog-1; echo \"end 0\" >> {spans}/hog-1; \
           head -c 200M /dev/zero | tail > /dev/null; \
         else echo \"start $(date +%s%N)\" >> {spans}/hog-2; sleep 0.2; \
           echo \"end $(date +%s%N)\" >> {spans}/hog-2; fi"
    );
    let w = w.shell(
        "hog",
        &hog,
        "limits = { memory = \"64M\" }\nretry = { attempts = 2, when = [\"@oom\"] }\npriority = 2",
    );
    let w = recorder(w, "slow", "1.5", "priority = 1");
    let w = recorder(w, "later", "0.1", "");
    let r = w.run();
    r.assert_code(0);
    let line = r.finish_line("hog");
    assert!(
        line.trim_start().starts_with("FLAKY"),
        "{line}\n{}",
        r.context
    );
    let note = "warden: hog: attempt 1 of 2 crashed (killed by the OOM killer at its 64M \
                memory limit (peak ";
    assert!(
        r.stdout.contains(note) || r.stderr.contains(note),
        "{}",
        r.context
    );
    let alone = "retrying alone, once the other running batches have ended";
    assert!(
        r.stdout.contains(alone) || r.stderr.contains(alone),
        "{}",
        r.context
    );
    let spans = self::spans(r.dir());
    let get = |name: &str| {
        spans
            .iter()
            .find(|s| s.0 == name)
            .unwrap_or_else(|| panic!("no {name}: {spans:?}\n{}", r.context))
    };
    let (retry, slow) = (get("hog-2"), get("slow"));
    get("hog-1");
    get("later");
    assert!(
        retry.1 >= slow.2,
        "the retry waited for slow to end: {spans:?}"
    );
    // Nothing ran beside the retry. (`later` usually starts after it; if the
    // first attempt took longer than `slow`, `later` took slow's place
    // before the retry asked, and the retry waited for it too.)
    for other in spans.iter().filter(|s| !s.0.starts_with("hog")) {
        assert!(
            other.2 <= retry.1 || retry.2 <= other.1,
            "{} ran beside the retry: {spans:?}",
            other.0
        );
    }
}
