//! Scheduling: resource capacities, `threads`, keyed locks and slots hold
//! at every instant of a real run (each batch records when it ran and what
//! it held); a batch that needs a lot is not overtaken forever; every batch
//! gets a fresh scratch directory, removed afterwards unless kept.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::Warden;

/// What one batch recorded: start and end (ns since the epoch) and the
/// variables it saw.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    start: u128,
    end: u128,
    vars: BTreeMap<String, String>,
}

/// A batch that records `VARS` at its start and its end time, sleeping
/// `secs` in between.
fn recorder(dir: &Path, secs: &str) -> String {
    let out = dir.join("spans").display().to_string();
    format!(
        "mkdir -p {out}; f={out}/$WARDEN_BATCH_NAME; \
         echo \"start $(date +%s%N)\" > $f.tmp; env | grep '^WARDEN_SLOT' >> $f.tmp; \
         sleep {secs}; echo \"end $(date +%s%N)\" >> $f.tmp; mv $f.tmp $f"
    )
}

fn batch(w: Warden, name: &str, secs: &str, extra: &str) -> Warden {
    let script = recorder(w.dir(), secs);
    let extra = format!("env = {{ WARDEN_BATCH_NAME = \"{name}\" }}\n{extra}");
    w.shell(name, &script, &extra)
}

fn spans(dir: &Path) -> Vec<Span> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir.join("spans")).expect("spans directory") {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            continue;
        }
        let text = fs::read_to_string(entry.path()).unwrap();
        let mut span = Span {
            name,
            start: 0,
            end: 0,
            vars: BTreeMap::new(),
        };
        for line in text.lines() {
            if let Some(t) = line.strip_prefix("start ") {
                span.start = t.parse().unwrap();
            } else if let Some(t) = line.strip_prefix("end ") {
                span.end = t.parse().unwrap();
            } else if let Some((k, v)) = line.split_once('=') {
                span.vars.insert(k.into(), v.into());
            }
        }
        out.push(span);
    }
    out.sort_by_key(|s| s.start);
    out
}

/// The spans running at each instant any span starts.
fn at_each_start(spans: &[Span]) -> Vec<Vec<&Span>> {
    spans
        .iter()
        .map(|s| {
            spans
                .iter()
                .filter(|o| o.start <= s.start && s.start < o.end)
                .collect()
        })
        .collect()
}

#[test]
fn resource_capacity_threads_and_slots_hold_at_every_instant() {
    let mut w = Warden::pgroup()
        .run_section("max-parallel = 4")
        .config_append("[resources]\nheavy-io = 2\n");
    for i in 0..6 {
        w = batch(w, &format!("io{i}"), "0.3", "needs = { heavy-io = 1 }");
    }
    w = batch(w, "wide", "0.3", "threads = 2");
    for i in 0..3 {
        w = batch(w, &format!("cpu{i}"), "0.2", "");
    }
    let r = w.run();
    r.assert_code(0);
    let spans = spans(r.dir());
    assert_eq!(spans.len(), 10, "{}", r.context);
    for running in at_each_start(&spans) {
        let io: Vec<&&Span> = running
            .iter()
            .filter(|s| s.name.starts_with("io"))
            .collect();
        assert!(io.len() <= 2, "heavy-io over capacity: {running:?}");
        let threads: usize = running
            .iter()
            .map(|s| if s.name == "wide" { 2 } else { 1 })
            .sum();
        assert!(threads <= 4, "max-parallel exceeded: {running:?}");
        let mut slots: Vec<&str> = running
            .iter()
            .map(|s| s.vars["WARDEN_SLOT"].as_str())
            .collect();
        slots.sort();
        let n = slots.len();
        slots.dedup();
        assert_eq!(slots.len(), n, "WARDEN_SLOT shared: {running:?}");
        let mut io_slots: Vec<&str> = io
            .iter()
            .map(|s| s.vars["WARDEN_SLOT_HEAVY_IO"].as_str())
            .collect();
        io_slots.sort();
        io_slots.dedup();
        assert_eq!(
            io_slots.len(),
            io.len(),
            "WARDEN_SLOT_HEAVY_IO shared: {running:?}"
        );
    }
    for s in &spans {
        let slot: u32 = s.vars["WARDEN_SLOT"].parse().unwrap();
        assert!(
            slot < 4,
            "slot {slot} of {s:?}: the smallest free is below max-parallel"
        );
        if s.name.starts_with("io") {
            assert!(
                ["0", "1"].contains(&s.vars["WARDEN_SLOT_HEAVY_IO"].as_str()),
                "{s:?}"
            );
            assert_eq!(
                s.vars["WARDEN_SLOTS_HEAVY_IO"],
                s.vars["WARDEN_SLOT_HEAVY_IO"]
            );
        } else {
            assert!(!s.vars.contains_key("WARDEN_SLOT_HEAVY_IO"), "{s:?}");
        }
    }
    // Capacity 2 for six 0.3 s batches: three rounds at least.
    let io: Vec<&Span> = spans.iter().filter(|s| s.name.starts_with("io")).collect();
    let first = io.iter().map(|s| s.start).min().unwrap();
    let last = io.iter().map(|s| s.end).max().unwrap();
    assert!(
        last - first >= 850_000_000,
        "io batches overlapped more than 2 at a time"
    );
}

#[test]
fn batches_with_the_same_lock_key_never_overlap() {
    let mut w = Warden::pgroup().run_section("max-parallel = 4");
    for i in 0..3 {
        w = batch(
            w,
            &format!("ubuntu{i}"),
            "0.25",
            r#"locks = ["image-cache:ubuntu"]"#,
        );
    }
    w = batch(w, "fedora", "0.25", r#"locks = ["image-cache:fedora"]"#);
    let r = w.run();
    r.assert_code(0);
    let spans = spans(r.dir());
    for running in at_each_start(&spans) {
        let ubuntu = running
            .iter()
            .filter(|s| s.name.starts_with("ubuntu"))
            .count();
        assert!(ubuntu <= 1, "lock held twice: {running:?}");
    }
    // A different key does not wait: fedora ran beside the first ubuntu.
    let fedora = spans.iter().find(|s| s.name == "fedora").unwrap();
    let ubuntu0 = spans.iter().find(|s| s.name == "ubuntu0").unwrap();
    assert!(fedora.start < ubuntu0.end, "{spans:?}");
}

#[test]
fn a_batch_that_needs_everything_is_not_overtaken_forever() {
    // Two threads. After `first` starts, `big` (both threads) waits for it;
    // the small batches after `big` must not keep taking the free thread.
    let mut w = Warden::pgroup().run_section("max-parallel = 2");
    w = batch(w, "first", "0.4", "");
    w = batch(w, "big", "0.2", "threads = 2");
    for i in 0..6 {
        w = batch(w, &format!("small{i}"), "0.3", "");
    }
    let r = w.run();
    r.assert_code(0);
    let spans = spans(r.dir());
    let big = spans.iter().find(|s| s.name == "big").unwrap();
    for s in spans.iter().filter(|s| s.name.starts_with("small")) {
        assert!(
            s.start >= big.end,
            "{} started before big ended: {spans:?}",
            s.name
        );
    }
    for running in at_each_start(&spans) {
        if running.iter().any(|s| s.name == "big") {
            assert_eq!(running.len(), 1, "big shares its two threads: {running:?}");
        }
    }
}

#[test]
fn every_batch_gets_a_fresh_scratch_directory_removed_afterwards() {
    let w = Warden::pgroup().run_section("scratch-root = \"scratch\"");
    let seen = w.path_str("seen");
    let script = |name: &str, exit: u8| {
        format!(
            "echo \"$TMPDIR $WARDEN_SCRATCH\" > {seen}.{name}; ls -A \"$TMPDIR\" | wc -l >> {seen}.{name}; \
             touch \"$TMPDIR/left-behind\"; exit {exit}"
        )
    };
    let r = w
        .shell("ok", &script("ok", 0), "")
        .shell("bad", &script("bad", 1), "")
        .run();
    r.assert_code(1);
    let root = r.path("scratch");
    for name in ["ok", "bad"] {
        let text = fs::read_to_string(r.path(&format!("seen.{name}"))).unwrap();
        let mut lines = text.lines();
        let (tmpdir, scratch) = lines.next().unwrap().split_once(' ').unwrap();
        assert_eq!(tmpdir, scratch);
        let dir = Path::new(tmpdir);
        assert_eq!(dir.parent(), Some(root.as_path()), "{text}");
        assert!(
            dir.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("warden-"),
            "{text}"
        );
        assert_eq!(lines.next().unwrap().trim(), "0", "not empty at start");
        assert!(!dir.exists(), "{tmpdir} was left behind\n{}", r.context);
    }
    assert!(
        !r.stdout.contains("scratch directory kept"),
        "{}",
        r.context
    );
}

#[test]
fn keep_scratch_on_failure_keeps_and_names_the_failing_batch_directory() {
    let w =
        Warden::pgroup().run_section("scratch-root = \"scratch\"\nkeep-scratch = \"on-failure\"");
    let script = |exit: u8| format!("touch \"$WARDEN_SCRATCH/evidence\"; exit {exit}");
    let r = w
        .shell("ok", &script(0), "")
        .shell("bad", &script(1), "")
        .run();
    r.assert_code(1);
    let kept: Vec<_> = fs::read_dir(r.path("scratch"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 1, "only the failing batch's: {kept:?}");
    assert!(kept[0].join("evidence").exists());
    r.assert_stdout_contains(&format!("scratch directory kept: {}", kept[0].display()));
    let junit = fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    assert!(junit.contains("scratch directory kept"), "{junit}");
}

#[test]
fn a_scratch_root_too_long_for_unix_sockets_gets_a_warning() {
    let w = Warden::pgroup();
    let long = "d".repeat(90);
    let r = w
        .run_section(&format!("scratch-root = \"{long}\""))
        .shell("ok", "true", "")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("warden: warning: scratch root ");
    r.assert_stderr_contains("108-byte sun_path limit");

    let r = Warden::pgroup()
        .run_section("scratch-root = \"s\"")
        .shell("ok", "true", "")
        .run();
    r.assert_code(0);
    assert!(!r.stderr.contains("sun_path"), "{}", r.context);
}
