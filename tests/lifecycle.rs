//! The run as a whole: the deadline watchdog, stop requests (SIGTERM,
//! SIGINT twice), setup and post steps, the exit-code file, and `warden
//! reap` after a SIGKILLed warden.

mod common;

use std::fs;
use std::time::Duration;

use common::{Kind, Warden, q, wait_until};

/// A batch that ignores SIGTERM (and so does its child) until SIGKILL.
const STUBBORN: &str = "trap '' TERM; sleep 1000 & wait; sleep 1000";

/// A post step that records what it was told about the run.
fn post_recorder(w: Warden) -> Warden {
    let out = w.path_str("post-saw");
    w.config_append(&format!(
        "[[post]]\nname = \"record\"\nshell = {}\n",
        q(&format!(
            "echo \"$WARDEN_RUN_STATUS $(cat \"$WARDEN_SHARED_DIR/vm-id\" 2>/dev/null)\" > {out}"
        ))
    ))
}

#[test]
fn deadline_stops_hung_batches_runs_post_and_reports() {
    let w = Warden::pgroup()
        .run_section("deadline = \"4s\"\nreserve = \"2s\"\nmax-parallel = 2")
        .shell("hung", "echo started; sleep 1000", "grace = \"30s\"")
        .shell("stubborn", STUBBORN, "grace = \"30s\"")
        .shell("queued", "echo never", "");
    let w = post_recorder(w);
    let r = w.run();
    r.assert_code(1);
    // Fires at 2s; the grace is clipped to a third of the 2s left; the post
    // step and the reports follow. Generous bounds for a loaded machine.
    assert!(
        r.elapsed >= Duration::from_millis(1900),
        "stopped too early\n{}",
        r.context
    );
    assert!(
        r.elapsed < Duration::from_secs(6),
        "deadline − reserve + clipped grace exceeded\n{}",
        r.context
    );
    r.assert_stdout_contains(
        "warden: the run did not finish before its 4s deadline (reserve 2s): stopping 2 running batches",
    );
    r.assert_stdout_contains("warden: hung: exited within grace");
    // The grace is clipped to a third of the ~2s left when the watchdog
    // fires (666ms on time; a few ms less on a loaded machine).
    let clipped = r
        .stdout
        .lines()
        .find(|l| l.starts_with("warden: stubborn: did not exit within 66"))
        .unwrap_or_else(|| panic!("no clipped-grace line\n{}", r.context));
    assert!(
        clipped.ends_with("ms grace: killed 2 processes"),
        "{clipped}\n{}",
        r.context
    );
    for name in ["hung", "stubborn"] {
        let case = r.case(name);
        case.assert_status(Kind::Error, Some("deadline"));
        assert!(
            case.message().starts_with(
                "stopped by the run watchdog: the run did not finish before its 4s deadline (reserve 2s); had been running "
            ),
            "{case:#?}"
        );
    }
    let queued = r.case("queued");
    queued.assert_status(Kind::Skipped, Some("not-run"));
    assert!(
        queued
            .message()
            .contains("not started: the run did not finish"),
        "{queued:#?}"
    );
    r.case("record").assert_status(Kind::Success, None);
    assert_eq!(
        fs::read_to_string(r.path("post-saw")).unwrap().trim(),
        "deadline"
    );
    assert_eq!(
        fs::read_to_string(r.artifacts().join("exit-code")).unwrap(),
        "1\n"
    );
    assert!(
        r.summary_line().contains("Deadline: 2, Not run: 1"),
        "{}",
        r.context
    );
}

#[test]
fn sigterm_mid_run_interrupts_runs_post_and_exits_143() {
    let w = Warden::pgroup()
        .run_section("max-parallel = 1")
        .shell(
            "cleans-up",
            "trap 'echo cleaning; sleep 0.3; echo cleaned; exit 1' TERM; echo started; sleep 1000 & wait",
            "",
        )
        .shell("queued", "echo never", "");
    let w = post_recorder(w);
    let log = w.path("warden-artifacts/logs/cleans-up.log");
    let running = w.spawn();
    let started = wait_until(Duration::from_secs(10), || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("started"))
    });
    running.signal(libc::SIGTERM);
    let r = running.wait();
    assert!(started, "batch never started\n{}", r.context);
    r.assert_code(143);
    let case = r.case("cleans-up");
    case.assert_status(Kind::Error, Some("interrupted"));
    assert!(
        case.message()
            .starts_with("interrupted: warden got SIGTERM"),
        "{case:#?}"
    );
    assert!(r.log_text("cleans-up").contains("cleaned"), "{}", r.context);
    r.case("queued")
        .assert_status(Kind::Skipped, Some("not-run"));
    assert_eq!(
        fs::read_to_string(r.path("post-saw")).unwrap().trim(),
        "interrupted"
    );
    assert_eq!(
        fs::read_to_string(r.artifacts().join("exit-code")).unwrap(),
        "143\n"
    );
}

/// Says when it is ready and when it gets SIGTERM, and carries on regardless.
const SAYS_TERM: &str = "trap 'echo got-term' TERM; echo ready; while :; do sleep 1 & wait; done";

#[test]
fn second_sigint_kills_at_once_and_skips_post() {
    let w = Warden::pgroup().shell("stubborn", SAYS_TERM, "grace = \"60s\"");
    let w = post_recorder(w);
    let log = w.path("warden-artifacts/logs/stubborn.log");
    let said = |what: &str| fs::read_to_string(&log).is_ok_and(|t| t.contains(what));
    let running = w.spawn();
    let ready = wait_until(Duration::from_secs(10), || said("ready"));
    running.signal(libc::SIGINT);
    // The first request reached the batch (as SIGTERM) before the second is sent.
    let termed = wait_until(Duration::from_secs(10), || said("got-term"));
    running.signal(libc::SIGINT);
    let r = running.wait();
    assert!(
        ready && termed,
        "batch never ready or never got SIGTERM\n{}",
        r.context
    );
    r.assert_code(130);
    assert!(
        r.elapsed < Duration::from_secs(20),
        "the 60s grace was not cut short\n{}",
        r.context
    );
    let case = r.case("stubborn");
    case.assert_status(Kind::Error, Some("interrupted"));
    assert!(case.message().contains("told again to stop"), "{case:#?}");
    let post = r.case("record");
    post.assert_status(Kind::Skipped, Some("not-run"));
    assert!(!r.path("post-saw").exists(), "post step ran\n{}", r.context);
}

#[test]
fn failing_setup_step_means_no_batch_runs_but_post_does() {
    let marker = "batch-ran";
    let w = Warden::pgroup()
        .config_append(
            "[[setup]]\nname = \"boot\"\nshell = \"echo vm-7 > $WARDEN_SHARED_DIR/vm-id; exit 4\"\n",
        )
        .shell("work", &format!("touch {marker}"), "");
    let w = post_recorder(w);
    let r = w.run();
    r.assert_code(1);
    let boot = r.case("boot");
    boot.assert_status(Kind::Failure, Some("failed"));
    let work = r.case("work");
    work.assert_status(Kind::Skipped, Some("not-run"));
    assert_eq!(work.message(), "setup step boot failed");
    assert!(!r.path(marker).exists(), "the batch ran\n{}", r.context);
    // The post step saw the run fail and the state setup left for it.
    assert_eq!(
        fs::read_to_string(r.path("post-saw")).unwrap().trim(),
        "failed vm-7"
    );
    let xml = fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    for suite in ["<testsuite name=\"setup\"", "<testsuite name=\"post\""] {
        assert!(xml.contains(suite), "{suite} missing\n{xml}");
    }
    r.assert_stdout_contains("setup step boot");
}

#[test]
fn hanging_post_step_is_bounded_by_its_timeout_and_not_required() {
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .config_append(
            "[[post]]\nname = \"hangs\"\nshell = \"sleep 1000\"\ntimeout = \"1s\"\ngrace = \"500ms\"\n",
        )
        .run();
    // Not required: a passing run stays passing.
    r.assert_code(0);
    r.case("hangs")
        .assert_status(Kind::Error, Some("timed-out"));
    assert!(r.elapsed < Duration::from_secs(10), "{}", r.context);
}

#[test]
fn required_post_step_failure_fails_the_run() {
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .config_append("[[post]]\nname = \"upload\"\nshell = \"exit 2\"\nrequired = true\n")
        .run();
    r.assert_code(1);
    r.case("upload")
        .assert_status(Kind::Failure, Some("failed"));
}

#[test]
fn every_unit_gets_the_run_directories() {
    let r = Warden::pgroup()
        .config_append(
            "[[setup]]\nname = \"s\"\nshell = \"echo from-setup > $WARDEN_SHARED_DIR/state\"\n",
        )
        .shell(
            "b",
            "cat $WARDEN_SHARED_DIR/state; test -d \"$WARDEN_ARTIFACTS/logs\" && echo artifacts-ok",
            "",
        )
        .run();
    r.assert_code(0);
    let log = r.log_text("b");
    assert!(
        log.contains("from-setup") && log.contains("artifacts-ok"),
        "{log}\n{}",
        r.context
    );
}

#[test]
fn reserve_not_shorter_than_deadline_is_rejected() {
    let r = Warden::pgroup()
        .shell("touches", "touch ran", "")
        .args(["--deadline", "1m", "--reserve", "1m"])
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("the reserve (1m) must be shorter than the deadline (1m)");
    assert!(!r.path("ran").exists());

    let r = Warden::pgroup()
        .run_section("deadline = \"5m\"\nreserve = \"10m\"")
        .shell("touches", "touch ran", "")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("warden.toml:");
    r.assert_stderr_contains(
        "key `reserve`: the reserve (10m) must be shorter than the deadline (5m)",
    );
    assert!(!r.path("ran").exists());
}

#[test]
fn job_timeout_minutes_sets_the_deadline() {
    let r = Warden::pgroup()
        .shell("b", "true", "")
        .check()
        .env("JOB_TIMEOUT_MINUTES", "20")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains(
        "deadline: 20m (reserve 5m, from JOB_TIMEOUT_MINUTES): the watchdog fires after 15m",
    );
    let r = Warden::pgroup()
        .shell("b", "true", "")
        .check()
        .env("JOB_TIMEOUT_MINUTES", "20")
        .env("WARDEN_DEADLINE", "8m")
        .run();
    r.assert_stdout_contains("deadline: 8m (reserve 2m, from --deadline / WARDEN_DEADLINE)");
}

/// The pids a batch wrote to `file`, one per line.
fn pids(path: &std::path::Path) -> Vec<i32> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
    })
}

/// A batch that leaves a `setsid` escapee (recording its pid) and hangs.
fn with_escapee(w: Warden, name: &str, pid_file: &str) -> Warden {
    let script = format!(
        "setsid sh -c 'read -r p _ < /proc/self/stat; echo $p > {pid_file}; exec sleep 1000' </dev/null >/dev/null 2>&1 & sleep 1000"
    );
    w.shell(name, &script, "")
}

fn reap_after_sigkill(dead: Warden) {
    // Without a PID namespace per batch (which would take the escapee down
    // with the killed warden's init): the fallback this reap exists for.
    let dead = dead.env("WARDEN_PID_NAMESPACE", "off");
    let dead_pids = dead.path("dead.pid");
    let dead = with_escapee(dead, "doomed", &dead_pids.display().to_string());
    let live = Warden::pgroup().env("WARDEN_PID_NAMESPACE", "off");
    let live_pids = live.path("live.pid");
    let live = with_escapee(live, "survivor", &live_pids.display().to_string()).shell(
        "finishes",
        "sleep 2; echo finished",
        "",
    );
    let dead = dead.spawn();
    let live = live.spawn();
    assert!(
        wait_until(Duration::from_secs(10), || !pids(&dead_pids).is_empty()
            && !pids(&live_pids).is_empty()),
        "escapees never started"
    );
    dead.signal(libc::SIGKILL);
    let dead_escapee = pids(&dead_pids)[0];
    let live_escapee = pids(&live_pids)[0];
    // warden's direct child dies with it (PDEATHSIG); the escapee does not.
    assert!(
        alive(dead_escapee),
        "the escapee should outlive a SIGKILLed warden"
    );

    let reap = Warden::pgroup().no_config().subcommand("reap").run();
    reap.assert_code(0);
    assert!(
        wait_until(Duration::from_secs(5), || !alive(dead_escapee)),
        "warden reap left the dead run's escapee {dead_escapee}\n{}",
        reap.context
    );
    assert!(
        alive(live_escapee),
        "warden reap touched a live run's process\n{}",
        reap.context
    );
    // Other tests' wardens reap dead runs too when they start; whoever does
    // it, the dead run's cgroups go.
    let dead_pid = dead.pid();
    assert!(
        wait_until(Duration::from_secs(10), || common::leftover_cgroups(
            dead_pid
        )
        .is_empty()),
        "the dead run's cgroups stayed\n{}",
        reap.context
    );
    assert!(
        !reap.stdout.contains(&format!("process {live_escapee} ")),
        "a live run's process was listed\n{}",
        reap.context
    );
    // The dead run: nothing of it is left (the harness checks processes and cgroups).
    let dead = dead.wait();
    assert_eq!(dead.signal, Some(libc::SIGKILL));
    // The live run was undisturbed: its batches are still there to stop.
    live.signal(libc::SIGTERM);
    let live = live.wait();
    live.assert_code(143);
    live.case("survivor")
        .assert_status(Kind::Error, Some("interrupted"));
}

#[test]
fn reap_after_sigkill_pgroup() {
    reap_after_sigkill(Warden::pgroup());
}

#[test]
fn reap_after_sigkill_cgroup() {
    let Some(w) = Warden::cgroup() else { return };
    reap_after_sigkill(w);
}

#[test]
fn reap_dry_run_lists_and_kills_nothing() {
    let r = Warden::pgroup()
        .no_config()
        .subcommand("reap")
        .arg("--dry-run")
        .run();
    r.assert_code(0);
    assert!(
        r.stdout.contains("no leftovers") || r.stdout.contains("would reap"),
        "{}",
        r.context
    );
    assert!(!r.stdout.contains("warden: reaping"), "{}", r.context);
}

#[test]
fn stop_during_setup_skips_the_rest_and_still_runs_post() {
    let w = Warden::pgroup()
        .config_append("[[setup]]\nname = \"boot\"\nshell = \"echo booting; sleep 1000\"\n")
        .config_append("[[setup]]\nname = \"second\"\ncommand = [\"true\"]\n")
        .shell("work", "touch ran", "");
    let w = post_recorder(w);
    let log = w.path("warden-artifacts/logs/boot.log");
    let running = w.spawn();
    let booting = wait_until(Duration::from_secs(10), || {
        fs::read_to_string(&log).is_ok_and(|t| t.contains("booting"))
    });
    running.signal(libc::SIGTERM);
    let r = running.wait();
    assert!(booting, "{}", r.context);
    r.assert_code(143);
    r.case("boot")
        .assert_status(Kind::Error, Some("interrupted"));
    for name in ["second", "work"] {
        let case = r.case(name);
        case.assert_status(Kind::Skipped, Some("not-run"));
        assert_eq!(
            case.message(),
            "not started: warden got SIGTERM",
            "{case:#?}"
        );
    }
    assert!(!r.path("ran").exists(), "{}", r.context);
    assert_eq!(
        fs::read_to_string(r.path("post-saw")).unwrap().trim(),
        "interrupted"
    );
}

#[test]
fn deadline_during_post_steps_fails_nothing() {
    // The batch passes at once; the deadline fires while the post step runs
    // (post steps are not stopped by it), and the run still passes.
    let r = Warden::pgroup()
        .run_section("deadline = \"3s\"\nreserve = \"2s\"")
        .shell("quick", "true", "")
        .config_append("[[post]]\nname = \"slow-upload\"\nshell = \"sleep 1.5; echo uploaded\"\n")
        .run();
    r.assert_code(0);
    r.case("slow-upload").assert_status(Kind::Success, None);
    assert!(
        r.log_text("slow-upload").contains("uploaded"),
        "{}",
        r.context
    );
}
