//! Runs and batches stay apart: concurrent wardens, `max-parallel`, choosing
//! batches by name, each batch's environment and working directory, where
//! the artifacts go.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Kind, Warden, parse_junit, q, wait_until};

both_containments! {
    fn concurrent_wardens_do_not_touch_each_other(w) {
        // Run A: everything that makes warden signal processes (timeout with
        // SIGTERM, SIGKILL after grace, leak kills, a setsid daemon).
        let bg = w.path_str("bg.pid");
        let daemon = w.path_str("daemon.pid");
        let a = w
            .defaults("timeout = \"1s\"\ngrace = \"500ms\"\ndrain = \"300ms\"")
            .fixture("hang", "hang.sh", &[], "")
            .fixture("stubborn", "ignore_term.sh", &[], "")
            .fixture("bg", "leak_bg.sh", &[&bg], "")
            .fixture("daemon", "daemon.py", &[&daemon], "")
            .arg("--max-parallel")
            .arg("4");
        // Run B: one quiet batch that needs 3 s, started at the same time.
        let b = Warden::with(a.containment())
            .shell("quiet", "echo started; sleep 3; echo survived", "timeout = \"30s\"");
        let b = b.spawn();
        let a = a.spawn();
        let a = a.wait();
        let b = b.wait();

        a.assert_code(1);
        assert!(a.elapsed < b.elapsed, "run A must end while B runs\nA: {}\nB: {}", a.context, b.context);
        assert_eq!(a.case("hang").ty.as_deref(), Some("timed-out"), "{}", a.context);
        assert_eq!(a.case("stubborn").ty.as_deref(), Some("timed-out"), "{}", a.context);
        assert_eq!(a.warn_lines("bg").len(), 1, "{}", a.context);
        assert_eq!(a.warn_lines("daemon").len(), 1, "{}", a.context);
        a.assert_pids_gone("bg.pid");
        a.assert_pids_gone("daemon.pid");

        b.assert_code(0);
        assert!(b.elapsed >= Duration::from_secs(3), "{}", b.context);
        assert_eq!(b.log_text("quiet"), "started\nsurvived\n");
        assert!(b.warn_lines("quiet").is_empty(), "{}", b.context);
        let case = b.case("quiet");
        case.assert_status(Kind::Success, None);
        assert_eq!(case.system_err, None);
    }
}

both_containments! {
    fn batch_environment_and_cookie(w) {
        let r = w
            .shell(
                "envtest",
                "echo \"K=$K\"; echo \"BATCH=$WARDEN_BATCH\"; echo \"RUN=$WARDEN_RUN\"; echo \"INHERITED=$FROM_WARDEN\"",
                "env = { K = \"v with spaces\" }",
            )
            .shell(
                "other",
                "echo \"K=${K-unset}\"; echo \"BATCH=$WARDEN_BATCH\"; echo \"RUN=$WARDEN_RUN\"",
                "",
            )
            .env("FROM_WARDEN", "yes")
            .run();
        r.assert_code(0);
        let log = r.log_text("envtest");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines[0], "K=v with spaces");
        assert_eq!(lines[1], "BATCH=envtest");
        assert!(lines[2].len() > "RUN=".len(), "WARDEN_RUN is set: {log}");
        assert_eq!(lines[3], "INHERITED=yes");
        // env is per batch; the run id is the same for every batch of a run.
        assert_eq!(
            r.log_text("other"),
            format!("K=unset\nBATCH=other\n{}\n", lines[2])
        );
    }
}

#[test]
fn max_parallel_one_runs_batches_one_at_a_time() {
    let r = Warden::pgroup()
        .shell("a", "sleep 0.3", "")
        .shell("b", "sleep 0.3", "")
        .shell("c", "sleep 0.3", "")
        .args(["--max-parallel", "1"])
        .run();
    r.assert_code(0);
    assert!(
        r.elapsed >= Duration::from_millis(900),
        "3 × 0.3 s one at a time took {:?}\n{}",
        r.elapsed,
        r.context
    );
    assert_eq!(
        r.summary_line(),
        "Success: 3/3, Failed: 0, Timed out: 0, Leaked: 0"
    );
    // One at a time: every START comes after the previous batch's PASS.
    let events: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("START") || l.trim_start().starts_with("PASS"))
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        events,
        ["START", "PASS", "START", "PASS", "START", "PASS"],
        "{}",
        r.context
    );
}

#[test]
fn max_parallel_from_config_and_overridden_on_command_line() {
    let config_only = Warden::pgroup()
        .run_section("max-parallel = 1")
        .shell("a", "sleep 0.3", "")
        .shell("b", "sleep 0.3", "")
        .shell("c", "sleep 0.3", "")
        .run();
    config_only.assert_code(0);
    assert!(
        config_only.elapsed >= Duration::from_millis(900),
        "{}",
        config_only.context
    );

    let overridden = Warden::pgroup()
        .run_section("max-parallel = 1")
        .shell("a", "sleep 0.3", "")
        .shell("b", "sleep 0.3", "")
        .shell("c", "sleep 0.3", "")
        .args(["--max-parallel", "3"])
        .run();
    overridden.assert_code(0);
    assert!(
        overridden.elapsed < Duration::from_millis(850),
        "3 at once should overlap: {:?}\n{}",
        overridden.elapsed,
        overridden.context
    );
}

#[test]
fn named_batches_run_alone() {
    let w = Warden::pgroup();
    let touch = |name: &str| format!("touch {}", q(&w.path_str(&format!("{name}.ran"))));
    let (ta, tb, tc) = (touch("a"), touch("b"), touch("c"));
    let w = w
        .shell("a", &ta, "")
        .shell("b", &tb, "")
        .shell("c", &tc, "")
        .args(["c", "a"]);
    let r = w.run();
    r.assert_code(0);
    assert!(r.path("a.ran").exists(), "{}", r.context);
    assert!(!r.path("b.ran").exists(), "b must not run\n{}", r.context);
    assert!(r.path("c.ran").exists(), "{}", r.context);
    let mut names: Vec<String> = r.junit().into_iter().map(|c| c.name).collect();
    names.sort();
    assert_eq!(names, ["a", "c"]);
    assert!(!r.artifacts().join("logs/b.log").exists(), "{}", r.context);
    assert_eq!(
        r.summary_line(),
        "Success: 2/2, Failed: 0, Timed out: 0, Leaked: 0"
    );
}

#[test]
fn unknown_batch_name_is_bad_input_and_runs_nothing() {
    let w = Warden::pgroup();
    let ran = w.path_str("a.ran");
    let r = w
        .shell("a", &format!("touch {}", q(&ran)), "")
        .shell("b", "true", "")
        .args(["a", "nope"])
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("nope");
    r.assert_stderr_contains("no batch named \"nope\"");
    assert!(!r.path("a.ran").exists(), "nothing may run\n{}", r.context);
    assert!(!r.artifacts().exists(), "{}", r.context);
}

#[test]
fn paths_in_config_are_relative_to_its_directory() {
    let w = Warden::pgroup().config_at("sub/warden.toml");
    std::fs::create_dir_all(w.path("sub/inner")).unwrap();
    let r = w
        .run_section("artifacts = \"out\"")
        .shell("here", "pwd", "")
        .shell("inner", "pwd", "cwd = \"inner\"")
        .run();
    r.assert_code(0);
    let root = r.dir().canonicalize().unwrap();
    let out = r.path("sub/out");
    let log = |name: &str| std::fs::read_to_string(out.join("logs").join(format!("{name}.log")));
    assert_eq!(
        log("here").unwrap().trim_end(),
        root.join("sub").to_str().unwrap(),
        "{}",
        r.context
    );
    assert_eq!(
        log("inner").unwrap().trim_end(),
        root.join("sub/inner").to_str().unwrap(),
        "{}",
        r.context
    );
    let cases = r.junit_at(&out.join("junit.xml"));
    assert_eq!(cases.len(), 2);
    assert!(!r.artifacts().exists(), "{}", r.context);
}

#[test]
fn junit_in_config_is_relative_to_its_directory() {
    let r = Warden::pgroup()
        .config_at("sub/warden.toml")
        .run_section("junit = \"reports/j.xml\"")
        .fixture("ok", "pass.sh", &[], "")
        .run();
    r.assert_code(0);
    // No artifacts key: the built-in default is relative to the current directory.
    assert!(r.artifacts().join("logs/ok.log").exists(), "{}", r.context);
    let cases = r.junit_at(&r.path("sub/reports/j.xml"));
    assert_eq!(cases.len(), 1);
    assert!(!r.artifacts().join("junit.xml").exists(), "{}", r.context);
}

#[test]
fn command_line_paths_are_relative_to_the_current_directory() {
    let r = Warden::pgroup()
        .config_at("sub/warden.toml")
        .run_section("artifacts = \"out\"\njunit = \"out/j.xml\"")
        .fixture("ok", "pass.sh", &[], "")
        .args(["--artifacts", "cli-out", "--junit", "reports/report.xml"])
        .run();
    r.assert_code(0);
    assert!(r.path("cli-out/logs/ok.log").exists(), "{}", r.context);
    assert_eq!(r.junit_at(&r.path("reports/report.xml")).len(), 1);
    assert!(!r.path("sub/out").exists(), "{}", r.context);
}

#[test]
fn missing_program_is_a_failure_and_others_still_run() {
    let r = Warden::pgroup()
        .batch("name = \"missing\"\ncommand = [\"/nonexistent/program\"]")
        .fixture("ok", "pass.sh", &[], "")
        .run();
    r.assert_code(1);
    let case = r.case("missing");
    assert_eq!(case.kind, Kind::Failure, "{case:#?}");
    assert!(case.message().contains("/nonexistent/program"), "{case:#?}");
    r.case("ok").assert_status(Kind::Success, None);
}

#[test]
fn sigkilled_warden_takes_its_direct_children_along_and_leaves_valid_junit() {
    // A single-process batch: PDEATHSIG = SIGKILL must end it with warden.
    let w = Warden::pgroup()
        .fixture("ok", "pass.sh", &[], "")
        .batch("name = \"sleeper\"\ncommand = [\"sleep\", \"1000\"]");
    let junit = w.path("warden-artifacts/junit.xml");
    let sleeper_log = w.path("warden-artifacts/logs/sleeper.log");
    let mark = w.mark().to_string();
    let running = w.spawn();
    let ready = wait_until(Duration::from_secs(10), || {
        let xml = std::fs::read_to_string(&junit).unwrap_or_default();
        sleeper_log.exists() && parse_junit(&xml).is_ok_and(|c| c.iter().any(|c| c.name == "ok"))
    });
    running.signal(libc::SIGKILL);
    // In a PID namespace the sleeper dies one step later (warden's death
    // kills the namespace's init, whose death kills the namespace): give
    // the kernel a moment before `wait` looks.
    wait_until(Duration::from_secs(2), || {
        common::marked_processes(&mark).is_empty()
    });
    // `wait` fails the test if the sleeper (or anything else) survived.
    let r = running.wait();
    assert!(
        ready,
        "never saw `ok` finished and `sleeper` started\n{}",
        r.context
    );
    assert_eq!(r.signal, Some(libc::SIGKILL));
    let cases = r.junit();
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0].name, "ok");
}

#[test]
fn missing_cwd_is_named_in_the_reason() {
    let r = Warden::pgroup()
        .batch("name = \"nocwd\"\ncommand = [\"true\"]\ncwd = \"does-not-exist\"")
        .run();
    r.assert_code(1);
    let case = r.case("nocwd");
    assert_eq!(case.kind, Kind::Failure, "{case:#?}");
    assert!(case.message().contains("does-not-exist"), "{case:#?}");
}
