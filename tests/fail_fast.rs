//! Fail fast (`--max-fail N[:terminate]`, `--fail-fast`, `[run] max-fail`):
//! after N failed batches no new batch starts, the rest are `not-run` with
//! the reason (terminal, summary, JUnit), running ones finish or, with
//! `terminate`, are stopped as a deadline stops them; post steps run; the
//! exit code is the failure's.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Kind, Warden, named, q};

/// A post step that writes the run status it was given to `post-ran`.
fn with_post(w: Warden) -> Warden {
    let marker = w.path_str("post-ran");
    w.config_append(&format!(
        "[[post]]\nname = \"cleanup\"\nshell = {}\n",
        q(&format!("echo \"$WARDEN_RUN_STATUS\" > {marker}"))
    ))
}

/// Each batch appends its name to `started` when it starts.
fn batch(w: Warden, name: &str, script: &str) -> Warden {
    batch_with(w, name, script, "")
}

fn batch_with(w: Warden, name: &str, script: &str, extra: &str) -> Warden {
    let log = w.path_str("started");
    w.shell(name, &format!("echo {name} >> {log}; {script}"), extra)
}

fn started(w: &common::Run) -> Vec<String> {
    std::fs::read_to_string(w.path("started"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

const REASON_2: &str = "not started: max-fail 2 reached (2 batches failed)";

#[test]
fn one_at_a_time_stops_starting_after_n_failed_batches() {
    let mut w = Warden::pgroup()
        .run_section("max-parallel = 1")
        .run_section("history = \"none\"")
        .arg("--max-fail")
        .arg("2");
    let once = w.path_str("failed-once");
    // A batch that passed on its retry (flaky) does not count.
    let flaky = format!("[ -e {once} ] || {{ touch {once}; exit 1; }}");
    for (name, script, extra) in [
        ("a", "exit 1", ""),
        ("b", flaky.as_str(), "retry = { attempts = 2 }"),
        ("c", "exit 3", ""),
        ("d", "true", ""),
        ("e", "exit 1", ""),
    ] {
        w = batch_with(w, name, script, extra);
    }
    let r = with_post(w).run();
    r.assert_code(1);
    assert_eq!(started(&r), ["a", "b", "b", "c"], "{}", r.context);
    let cases = r.junit();
    named(&cases, "a").assert_status(Kind::Failure, Some("failed"));
    named(&cases, "b").assert_status(Kind::Success, None);
    r.assert_stdout_contains("Success: 1/5");
    named(&cases, "c").assert_status(Kind::Failure, Some("failed"));
    for name in ["d", "e"] {
        let c = named(&cases, name);
        c.assert_status(Kind::Skipped, Some("not-run"));
        assert_eq!(c.message(), REASON_2);
        assert!(
            r.stdout
                .contains(&format!("not-run {name} (0.00s): {REASON_2}")),
            "summary names {name}\n{}",
            r.context
        );
    }
    r.assert_stdout_contains(
        "warden: max-fail 2 reached (2 batches failed): no new batch starts\n",
    );
    r.assert_stdout_contains("Max-fail: 2 batches failed (max-fail 2): 2 batches not started\n");
    assert_eq!(
        std::fs::read_to_string(r.path("post-ran")).unwrap(),
        "failed\n"
    );
}

/// Batches running when the limit is reached finish normally (and their
/// failures are counted); the waiting ones never start.
#[test]
fn running_batches_finish_when_several_run_at_once() {
    let w = Warden::pgroup()
        .run_section("max-parallel = 3")
        .run_section("history = \"none\"")
        .arg("--fail-fast");
    let slow_done = w.path_str("slow-done");
    let w = batch(w, "fast", "exit 1");
    let w = batch(w, "slow", &format!("sleep 1; touch {slow_done}"));
    let w = batch(w, "slow-fail", "sleep 1; exit 2");
    let w = batch(w, "waiting-1", "true");
    let w = batch(w, "waiting-2", "true");
    let r = with_post(w).run();
    r.assert_code(1);
    let mut ran = started(&r);
    ran.sort();
    assert_eq!(ran, ["fast", "slow", "slow-fail"], "{}", r.context);
    assert!(r.path("slow-done").exists(), "slow finished\n{}", r.context);
    let cases = r.junit();
    named(&cases, "slow").assert_status(Kind::Success, None);
    named(&cases, "slow-fail").assert_status(Kind::Failure, Some("failed"));
    for name in ["waiting-1", "waiting-2"] {
        let c = named(&cases, name);
        c.assert_status(Kind::Skipped, Some("not-run"));
        assert_eq!(
            c.message(),
            "not started: max-fail 1 reached (1 batch failed)"
        );
    }
    r.assert_stdout_contains(
        "warden: max-fail 1 reached (1 batch failed): no new batch starts; 2 running batches finish",
    );
    r.assert_stdout_contains("Max-fail: 2 batches failed (max-fail 1): 2 batches not started\n");
    assert!(r.path("post-ran").exists(), "{}", r.context);
}

/// `terminate` (here from the config key) stops the running batches the
/// way a deadline stop does: SIGTERM, grace, SIGKILL, nothing left behind
/// (the harness fails the test on any process of the run still alive).
#[test]
fn terminate_stops_running_batches_and_leaves_no_process() {
    let w = Warden::pgroup()
        .run_section("max-parallel = 2")
        .run_section("history = \"none\"")
        .run_section("max-fail = \"1:terminate\"")
        .defaults("grace = \"2s\"");
    let pids = w.path_str("pids");
    // The shell and a child that ignores SIGTERM: only SIGKILL ends it.
    let w = batch(
        w,
        "slow",
        &format!("(trap '' TERM; sleep 60) & echo $! > {pids}; sleep 60"),
    );
    let w = batch(w, "fast", "sleep 0.3; exit 1");
    let w = batch(w, "never", "true");
    let r = with_post(w).watchdog(Duration::from_secs(30)).run();
    r.assert_code(1);
    assert!(
        r.elapsed < Duration::from_secs(20),
        "stopped, not waited for: {:?}\n{}",
        r.elapsed,
        r.context
    );
    let cases = r.junit();
    let slow = named(&cases, "slow");
    slow.assert_status(Kind::Error, Some("interrupted"));
    assert!(
        slow.message()
            .starts_with("stopped: max-fail 1 reached (1 batch failed); had been running"),
        "{}",
        r.context
    );
    named(&cases, "never").assert_status(Kind::Skipped, Some("not-run"));
    assert!(!started(&r).contains(&"never".to_owned()));
    r.assert_stdout_contains(
        "warden: max-fail 1 reached (1 batch failed): stopping 1 running batch",
    );
    r.assert_stdout_contains(
        "Max-fail: 1 batch failed (max-fail 1:terminate): 1 batch not started, running ones stopped",
    );
    assert_eq!(
        std::fs::read_to_string(r.path("post-ran")).unwrap(),
        "failed\n"
    );
    r.assert_pids_gone("pids");
}

/// The flag overrides the config key; `warden check` shows the limit.
#[test]
fn the_flag_overrides_the_config_key() {
    let w = Warden::pgroup()
        .run_section("max-parallel = 1")
        .run_section("history = \"none\"")
        .run_section("max-fail = 5")
        .arg("--max-fail=1");
    let w = batch(w, "a", "exit 1");
    let w = batch(w, "b", "true");
    let r = w.run();
    r.assert_code(1);
    assert_eq!(started(&r), ["a"], "{}", r.context);

    let w = Warden::pgroup().run_section("max-fail = \"3:terminate\"");
    let r = batch(w, "a", "true").check().run();
    r.assert_code(0);
    r.assert_stdout_contains("max-fail: 3:terminate\n");

    // Without failures, nothing changes.
    let w = Warden::pgroup()
        .run_section("history = \"none\"")
        .run_section("max-fail = 1");
    let r = batch(batch(w, "a", "true"), "b", "true").run();
    r.assert_code(0);
    assert!(!r.stdout.contains("Max-fail"), "{}", r.context);
}

#[test]
fn bad_values_are_config_errors_with_their_place() {
    for (value, needle) in [
        ("0", "found \"0\""),
        ("-2", "found \"-2\""),
        ("\"2:kill\"", "found \"2:kill\""),
        ("\"many\"", "found \"many\""),
        ("true", "found boolean"),
    ] {
        let w = Warden::pgroup()
            .run_section(&format!("max-fail = {value}"))
            .shell("a", "true", "");
        let r = w.run();
        r.assert_code(2);
        r.assert_stderr_contains("warden: warden.toml:2:12: ");
        r.assert_stderr_contains("max-fail");
        r.assert_stderr_contains("expected N or");
        r.assert_stderr_contains(needle);
        assert!(!r.artifacts().exists(), "{}", r.context);
    }
    for flag in ["--max-fail=0", "--max-fail=1:stop"] {
        let r = Warden::pgroup().shell("a", "true", "").arg(flag).run();
        r.assert_code(2);
        r.assert_stderr_contains("--max-fail");
        r.assert_stderr_contains("expected N or N:terminate");
    }
    let r = Warden::pgroup()
        .shell("a", "true", "")
        .args(["--fail-fast", "--max-fail", "2"])
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("cannot be used with");
}

/// Queue mode: the limit is the machine's. It claims nothing more once
/// reached; what it did not claim stays in the queue for the others.
#[test]
fn in_queue_mode_a_machine_stops_claiming() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let marks = tempfile::tempdir().expect("tempdir");
    let ran = marks.path().join("ran");
    let machine = |extra: &[&str]| {
        let mut w = Warden::pgroup().run_section("max-parallel = 1").args([
            "--queue",
            "--run-key",
            "ff",
            "--history",
            &url,
        ]);
        for v in [
            "WARDEN_RUN_KEY",
            "GITHUB_RUN_ID",
            "BUILDKITE_BUILD_ID",
            "CI_PIPELINE_ID",
        ] {
            w = w.env(v, "");
        }
        for name in ["a", "b", "c"] {
            w = w.shell(
                name,
                &format!("echo {name} >> {}; exit 1", ran.display()),
                "",
            );
        }
        w.args(extra.iter().copied())
    };
    let r = machine(&["--fail-fast"]).run();
    r.assert_code(1);
    r.assert_stdout_contains("warden: max-fail 1 reached (1 batch failed): no new batch starts");
    let first = std::fs::read_to_string(&ran).unwrap();
    assert_eq!(first.lines().count(), 1, "{}", r.context);
    // Another machine without a limit takes the other two.
    let r = machine(&[]).run();
    r.assert_code(1);
    let all = std::fs::read_to_string(&ran).unwrap();
    let mut names: Vec<&str> = all.lines().collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "{}", r.context);
}
