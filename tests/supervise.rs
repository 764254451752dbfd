//! How warden supervises misbehaving batches: statuses, reasons, JUnit shape,
//! timing and cleanup, each on both containment paths (cgroup and pgroup).

#[macro_use]
mod common;

use std::time::Duration;

use common::{Kind, Run};
use regex::Regex;

/// Asserts `elapsed` is within `[min, max)`.
#[track_caller]
fn assert_elapsed(r: &Run, min: Duration, max: Duration) {
    assert!(
        r.elapsed >= min && r.elapsed < max,
        "elapsed {:?}, expected in [{min:?}, {max:?})\n{}",
        r.elapsed,
        r.context
    );
}

#[track_caller]
fn assert_matches(re: &str, text: &str, context: &str) -> Vec<String> {
    let re = Regex::new(re).expect("regex");
    let caps = re
        .captures(text)
        .unwrap_or_else(|| panic!("{text:?} does not match /{re}/\n{context}"));
    caps.iter()
        .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
        .collect()
}

fn read_pids(r: &Run, file: &str) -> Vec<String> {
    std::fs::read_to_string(r.path(file))
        .expect("pid file")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

const SECOND: Duration = Duration::from_secs(1);

both_containments! {
    fn passes(w) {
        let r = w.fixture("ok", "pass.sh", &[], "").run();
        r.assert_code(0);
        assert_matches(r"^    PASS \[ *\d+\.\d{3}s\] ok$", &r.finish_line("ok"), &r.context);
        assert_eq!(r.summary_line(), "Success: 1/1, Failed: 0, Timed out: 0, Leaked: 0");
        assert!(r.warn_lines("ok").is_empty(), "{}", r.context);
        assert_eq!(r.log_text("ok"), "pass: stdout line\npass: stderr line\n");
        let case = r.case("ok");
        case.assert_status(Kind::Success, None);
        assert_eq!(case.classname, "warden");
        assert_eq!(case.out(), "pass: stdout line\npass: stderr line\n");
        assert_eq!(case.system_err, None);
    }
}

both_containments! {
    fn fails_with_exit_code(w) {
        let r = w.fixture("f", "fail3.sh", &[], r#"kind = "ut""#).run();
        r.assert_code(1);
        assert_matches(r"^    FAIL \[ *\d+\.\d{3}s\] f: exit code 3$", &r.finish_line("f"), &r.context);
        assert_eq!(r.summary_line(), "Success: 0/1, Failed: 1, Timed out: 0, Leaked: 0");
        assert_eq!(r.log_text("f"), "fail3: about to fail\nfail3: on stderr\n");
        let case = r.case("f");
        case.assert_status(Kind::Failure, Some("failed"));
        assert_eq!(case.message(), "exit code 3");
        assert_eq!(case.classname, "ut");
        assert!(case.out().contains("fail3: about to fail"), "{case:#?}");
    }
}

both_containments! {
    fn hang_times_out(w) {
        let r = w
            .fixture("hang", "hang.sh", &[], "timeout = \"1s\"\ngrace = \"1s\"")
            .run();
        r.assert_code(1);
        assert_elapsed(&r, SECOND, 10 * SECOND);
        let want = "timed out after 1s; sent SIGTERM to 2 processes; all exited within 1s grace";
        assert_matches(
            &format!(r"^ TIMEOUT \[ *\d+\.\d{{3}}s\] hang: {}$", regex::escape(want)),
            &r.finish_line("hang"),
            &r.context,
        );
        assert_eq!(r.summary_line(), "Success: 0/1, Failed: 0, Timed out: 1, Leaked: 0");
        assert_eq!(r.log_text("hang"), "hang: sleeping\n");
        let case = r.case("hang");
        case.assert_status(Kind::Error, Some("timed-out"));
        assert_eq!(case.message(), want);
        assert_eq!(case.out(), "hang: sleeping\n");
    }
}

both_containments! {
    fn sigterm_ignored_by_all_gets_sigkill(w) {
        let pids = w.path_str("children.pid");
        let r = w
            .fixture("stubborn", "ignore_term.sh", &[&pids], "timeout = \"1s\"\ngrace = \"1s\"")
            .run();
        r.assert_code(1);
        assert_elapsed(&r, 2 * SECOND, 10 * SECOND);
        let case = r.case("stubborn");
        case.assert_status(Kind::Error, Some("timed-out"));
        let caps = assert_matches(
            r"^timed out after 1s; sent SIGTERM to 3 processes; still running after 1s grace; SIGKILLed 3 processes \(pids (\d+), (\d+), (\d+)\); gone \d+\.\dms after the grace period$",
            case.message(),
            &r.context,
        );
        let killed = &caps[1..];
        for child in read_pids(&r, "children.pid") {
            assert!(killed.contains(&child), "child {child} not among SIGKILLed {killed:?}\n{}", r.context);
        }
        assert!(r.finish_line("stubborn").starts_with(" TIMEOUT ["), "{}", r.context);
        assert!(r.log_text("stubborn").contains("ignore_term: ready"), "{}", r.context);
        r.assert_pids_gone("children.pid");
    }
}

both_containments! {
    fn slow_cleanup_finishes_within_grace(w) {
        let r = w
            .fixture("slow", "slow_cleanup.sh", &[], "timeout = \"1s\"\ngrace = \"5s\"")
            .run();
        r.assert_code(1);
        // 1 s timeout + ~1 s of cleanup; well before the 5 s grace ends.
        assert_elapsed(&r, 2 * SECOND, Duration::from_millis(5500));
        let case = r.case("slow");
        case.assert_status(Kind::Error, Some("timed-out"));
        assert_eq!(
            case.message(),
            "timed out after 1s; sent SIGTERM to 2 processes; all exited within 5s grace"
        );
        let log = r.log_text("slow");
        // The shell may also report its SIGTERMed `sleep` job ("Terminated").
        let lines: Vec<&str> = log.lines().filter(|l| *l != "Terminated").collect();
        assert_eq!(
            lines,
            ["slow_cleanup: ready", "slow_cleanup: got SIGTERM", "cleanup done"],
            "{}", r.context
        );
        assert!(log.ends_with("cleanup done\n"), "{}", r.context);
        assert!(case.out().contains("cleanup done"), "{case:#?}");
    }
}

both_containments! {
    fn background_child_holding_stdout_is_a_leak_warning(w) {
        let pid_file = w.path_str("bg.pid");
        let r = w
            .fixture("bg", "leak_bg.sh", &[&pid_file], "drain = \"300ms\"\ngrace = \"1s\"")
            .run();
        r.assert_code(0);
        assert_elapsed(&r, Duration::from_millis(300), 10 * SECOND);
        let pid = &read_pids(&r, "bg.pid")[0];
        let warning = format!(
            "left 1 process running 300ms after exit: {pid} (sleep 1000); sent SIGTERM to 1 process; all exited within 1s grace"
        );
        assert!(r.finish_line("bg").starts_with("    PASS ["), "{}", r.context);
        assert_eq!(r.warn_lines("bg"), vec![format!("    WARN bg: {warning}")], "{}", r.context);
        assert_eq!(r.summary_line(), "Success: 1/1, Failed: 0, Timed out: 0, Leaked: 0");
        let case = r.case("bg");
        case.assert_status(Kind::Success, None);
        assert_eq!(case.err(), format!("{warning}\nleaked: pid {pid}: sleep 1000"));
        assert_eq!(r.log_text("bg"), "leak_bg: main exiting\n");
        r.assert_pids_gone("bg.pid");
    }
}

both_containments! {
    fn background_child_holding_stdout_fails_under_leak_fail(w) {
        let pid_file = w.path_str("bg.pid");
        let r = w
            .fixture(
                "bg",
                "leak_bg.sh",
                &[&pid_file],
                "drain = \"300ms\"\ngrace = \"1s\"\nleak = \"fail\"",
            )
            .run();
        r.assert_code(1);
        let pid = &read_pids(&r, "bg.pid")[0];
        let reason = format!(
            "exit code 0; left 1 process running 300ms after exit: {pid} (sleep 1000); sent SIGTERM to 1 process; all exited within 1s grace"
        );
        assert_matches(
            &format!(r"^    LEAK \[ *\d+\.\d{{3}}s\] bg: {}$", regex::escape(&reason)),
            &r.finish_line("bg"),
            &r.context,
        );
        assert_eq!(r.summary_line(), "Success: 0/1, Failed: 0, Timed out: 0, Leaked: 1");
        let case = r.case("bg");
        case.assert_status(Kind::Failure, Some("leaked"));
        assert_eq!(case.message(), reason);
        assert!(case.err().contains(&format!("leaked: pid {pid}: sleep 1000")), "{case:#?}");
        r.assert_pids_gone("bg.pid");
    }
}

both_containments! {
    fn double_forked_setsid_daemon_with_no_fds_is_found_and_killed(w) {
        let pid_file = w.path_str("daemon.pid");
        let r = w
            .fixture(
                "daemon",
                "daemon.py",
                &[&pid_file],
                "drain = \"300ms\"\ngrace = \"1s\"\nleak = \"fail\"",
            )
            .run();
        r.assert_code(1);
        let pid = &read_pids(&r, "daemon.pid")[0];
        let case = r.case("daemon");
        case.assert_status(Kind::Failure, Some("leaked"));
        assert_matches(
            &format!(
                r"^exit code 0; left 1 process running 300ms after exit: {pid} \([^)]*daemon\.py [^)]*\); sent SIGTERM to 1 process; all exited within 1s grace$"
            ),
            case.message(),
            &r.context,
        );
        assert!(r.log_text("daemon").contains("daemon: main exiting"), "{}", r.context);
        assert_eq!(r.summary_line(), "Success: 0/1, Failed: 0, Timed out: 0, Leaked: 1");
        r.assert_pids_gone("daemon.pid");
    }
}

both_containments! {
    fn setsid_child_holding_stdout_is_found_and_killed(w) {
        let pid_file = w.path_str("holder.pid");
        let r = w
            .fixture("holder", "setsid_holder.sh", &[&pid_file], "drain = \"300ms\"\ngrace = \"1s\"")
            .run();
        r.assert_code(0);
        let pid = &read_pids(&r, "holder.pid")[0];
        assert_eq!(
            r.warn_lines("holder"),
            vec![format!(
                "    WARN holder: left 1 process running 300ms after exit: {pid} (sleep 1000); sent SIGTERM to 1 process; all exited within 1s grace"
            )],
            "{}", r.context
        );
        r.case("holder").assert_status(Kind::Success, None);
        assert_eq!(r.log_text("holder"), "setsid_holder: main exiting\n");
        r.assert_pids_gone("holder.pid");
    }
}

both_containments! {
    fn hundred_children_all_killed_on_timeout(w) {
        let pid_file = w.path_str("children.pid");
        let r = w
            .fixture("many", "spawn100.sh", &[&pid_file], "timeout = \"2s\"\ngrace = \"1s\"")
            .run();
        r.assert_code(1);
        assert_elapsed(&r, 2 * SECOND, 10 * SECOND);
        assert_eq!(read_pids(&r, "children.pid").len(), 100);
        assert_eq!(r.log_text("many"), "spawn100: spawned 100 children\n");
        let case = r.case("many");
        case.assert_status(Kind::Error, Some("timed-out"));
        assert_eq!(
            case.message(),
            "timed out after 2s; sent SIGTERM to 101 processes; all exited within 1s grace"
        );
        r.assert_pids_gone("children.pid");
    }
}

both_containments! {
    fn hundred_children_left_behind_are_all_killed(w) {
        let pid_file = w.path_str("children.pid");
        let r = w
            .fixture(
                "many",
                "spawn100.sh",
                &[&pid_file, "exit"],
                "drain = \"300ms\"\ngrace = \"1s\"\nleak = \"fail\"",
            )
            .run();
        r.assert_code(1);
        assert_eq!(read_pids(&r, "children.pid").len(), 100);
        let case = r.case("many");
        case.assert_status(Kind::Failure, Some("leaked"));
        assert_matches(
            r"^exit code 0; left 100 processes running 300ms after exit: (\d+ \(sleep 1000\), ){9}\d+ \(sleep 1000\); sent SIGTERM to 100 processes; all exited within 1s grace$",
            case.message(),
            &r.context,
        );
        r.assert_pids_gone("children.pid");
    }
}

both_containments! {
    fn sigsegv_is_a_crash(w) {
        let r = w.fixture("segv", "segv.sh", &[], "").run();
        r.assert_code(1);
        assert_matches(
            r"^   CRASH \[ *\d+\.\d{3}s\] segv: killed by SIGSEGV$",
            &r.finish_line("segv"),
            &r.context,
        );
        assert_eq!(
            r.summary_line(),
            "Success: 0/1, Failed: 0, Crashed: 1, Timed out: 0, Leaked: 0"
        );
        let case = r.case("segv");
        case.assert_status(Kind::Error, Some("crashed"));
        assert_eq!(case.message(), "killed by SIGSEGV");
        assert_eq!(case.out(), "segv: about to crash\n");
    }
}

both_containments! {
    fn self_stopped_process_times_out_and_is_cleaned_up(w) {
        let r = w
            .fixture("stopped", "sigstop.sh", &[], "timeout = \"1s\"\ngrace = \"1s\"")
            .run();
        r.assert_code(1);
        assert_elapsed(&r, SECOND, 10 * SECOND);
        let case = r.case("stopped");
        case.assert_status(Kind::Error, Some("timed-out"));
        // SIGCONT goes with SIGTERM, so the stopped shell dies within the grace.
        assert_eq!(
            case.message(),
            "timed out after 1s; sent SIGTERM to 1 process; all exited within 1s grace"
        );
        assert!(r.log_text("stopped").starts_with("sigstop: stopping\n"), "{}", r.context);
    }
}

both_containments! {
    fn stopped_leftover_is_killed(w) {
        let pid_file = w.path_str("stopped.pid");
        let r = w
            .fixture("left", "stopped_leftover.sh", &[&pid_file], "drain = \"300ms\"\ngrace = \"1s\"")
            .run();
        r.assert_code(0);
        assert!(
            r.log_text("left").contains("child state T, main exiting"),
            "the child should have been stopped\n{}",
            r.context
        );
        let pid = &read_pids(&r, "stopped.pid")[0];
        let warns = r.warn_lines("left");
        assert_eq!(warns.len(), 1, "{}", r.context);
        assert!(
            warns[0].starts_with(&format!("    WARN left: left 1 process running 300ms after exit: {pid} (")),
            "{}", r.context
        );
        assert!(warns[0].ends_with("; sent SIGTERM to 1 process; all exited within 1s grace"), "{}", r.context);
        r.case("left").assert_status(Kind::Success, None);
        r.assert_pids_gone("stopped.pid");
    }
}

both_containments! {
    fn child_writing_after_main_exit_is_fully_captured(w) {
        let r = w
            .fixture("trickle", "trickle.sh", &[], "drain = \"5s\"")
            .run();
        r.assert_code(0);
        assert!(r.warn_lines("trickle").is_empty(), "no leak warning expected\n{}", r.context);
        let case = r.case("trickle");
        case.assert_status(Kind::Success, None);
        assert_eq!(case.system_err, None, "{case:#?}");
        let log = r.log_text("trickle");
        let mut want: Vec<String> = (0..50).map(|i| format!("trickle line {i}")).collect();
        want.push("trickle: child done".into());
        let got: Vec<&str> = log.lines().filter(|l| l.starts_with("trickle l") || *l == "trickle: child done").collect();
        assert_eq!(got, want, "{}", r.context);
        assert!(log.contains("trickle: main exiting\n"), "{}", r.context);
        assert!(log.ends_with("trickle: child done\n"), "{}", r.context);
        // It ended when the child did, not when the 5 s drain ran out.
        assert_elapsed(&r, Duration::from_millis(400), Duration::from_millis(4500));
    }
}

both_containments! {
    fn mixed_batches_each_get_their_own_status(w) {
        let bg = w.path_str("bg.pid");
        let r = w
            .defaults("timeout = \"1s\"\ngrace = \"500ms\"\ndrain = \"300ms\"")
            .fixture("ok", "pass.sh", &[], "")
            .fixture("fail", "fail3.sh", &[], "")
            .fixture("hang", "hang.sh", &[], "")
            .fixture("segv", "segv.sh", &[], "")
            .fixture("leak", "leak_bg.sh", &[&bg], "leak = \"fail\"")
            .run();
        r.assert_code(1);
        assert_eq!(
            r.summary_line(),
            "Success: 1/5, Failed: 1, Crashed: 1, Timed out: 1, Leaked: 1"
        );
        let cases = r.junit();
        let got: Vec<(&str, Kind, Option<&str>)> = cases
            .iter()
            .map(|c| (c.name.as_str(), c.kind, c.ty.as_deref()))
            .collect();
        let mut got_sorted = got.clone();
        got_sorted.sort();
        let mut want = vec![
            ("fail", Kind::Failure, Some("failed")),
            ("hang", Kind::Error, Some("timed-out")),
            ("leak", Kind::Failure, Some("leaked")),
            ("ok", Kind::Success, None),
            ("segv", Kind::Error, Some("crashed")),
        ];
        want.sort();
        assert_eq!(got_sorted, want, "{}", r.context);
        r.assert_pids_gone("bg.pid");
    }
}

both_containments! {
    fn forking_while_ignoring_sigterm_is_fully_killed(w) {
        // Keeps forking through the grace period and into the SIGKILL
        // phase: processes forked mid-kill must die too.
        let r = w
            .shell(
                "storm",
                "trap '' TERM; echo storming; while :; do sleep 1000 & sleep 0.005; done",
                "timeout = \"1s\"\ngrace = \"500ms\"",
            )
            .run();
        r.assert_code(1);
        assert_elapsed(&r, Duration::from_millis(1500), 10 * SECOND);
        let case = r.case("storm");
        case.assert_status(Kind::Error, Some("timed-out"));
        assert_matches(
            r"^timed out after 1s; sent SIGTERM to \d+ processes; still running after 500ms grace; SIGKILLed \d+ processes \(pids [\d, ]+, and \d+ more\); gone \d+\.\dms after the grace period$",
            case.message(),
            &r.context,
        );
    }
}

both_containments! {
    fn leftover_ignoring_sigterm_gets_sigkill(w) {
        let r = w
            .shell(
                "stubborn",
                // The child's host pid ($! is the PID namespace's number).
                "(trap '' TERM; exec sleep 1000) & read -r me _ < /proc/self/stat; \
                 read -r k < /proc/$me/task/$me/children; echo $k > stubborn.pid; echo bye",
                "drain = \"300ms\"\ngrace = \"500ms\"\nleak = \"fail\"",
            )
            .run();
        r.assert_code(1);
        assert_elapsed(&r, Duration::from_millis(800), 10 * SECOND);
        let pid = &read_pids(&r, "stubborn.pid")[0];
        let case = r.case("stubborn");
        case.assert_status(Kind::Failure, Some("leaked"));
        assert_matches(
            &format!(
                r"^exit code 0; left 1 process running 300ms after exit: {pid} \(sleep 1000\); sent SIGTERM to 1 process; still running after 500ms grace; SIGKILLed 1 process \(pid {pid}\); gone \d+\.\dms after the grace period$"
            ),
            case.message(),
            &r.context,
        );
        r.assert_pids_gone("stubborn.pid");
    }
}

both_containments! {
    fn quiet_helper_finishing_within_drain_is_not_a_leak(w) {
        // The helper doesn't hold the output but outlives the main process
        // by 0.3 s, well within the drain: not a leak.
        let r = w
            .shell(
                "helper",
                "(sleep 0.3; echo helper-done > helper.out) >/dev/null 2>&1 & echo main-done",
                "drain = \"3s\"",
            )
            .run();
        r.assert_code(0);
        assert!(r.warn_lines("helper").is_empty(), "{}", r.context);
        let case = r.case("helper");
        case.assert_status(Kind::Success, None);
        assert_eq!(case.system_err, None, "{case:#?}");
        assert_eq!(
            std::fs::read_to_string(r.path("helper.out")).unwrap_or_default(),
            "helper-done\n",
            "the helper was allowed to finish\n{}",
            r.context
        );
        assert_elapsed(&r, Duration::from_millis(300), Duration::from_millis(2500));
    }
}

both_containments! {
    fn batch_names_that_are_cgroup_file_names(w) {
        let r = w
            .shell("cgroup.procs", "echo one", "")
            .shell("cpu.stat", "echo two", "")
            .shell("memory.pressure", "echo three", "")
            .run();
        r.assert_code(0);
        assert_eq!(r.summary_line(), "Success: 3/3, Failed: 0, Timed out: 0, Leaked: 0");
        assert_eq!(r.log_text("cpu.stat"), "two\n");
    }
}

#[test]
fn child_cgroups_of_a_batch_get_sigterm_and_are_removed() {
    let Some(w) = common::Warden::cgroup() else {
        return;
    };
    let r = w
        .fixture(
            "sub",
            "subcgroup.sh",
            &[],
            "timeout = \"1s\"\ngrace = \"3s\"",
        )
        .run();
    r.assert_code(1);
    let log = r.log_text("sub");
    assert!(log.contains("nested: in /"), "{}", r.context);
    assert!(
        log.contains("nested: got SIGTERM"),
        "the nested process never got SIGTERM\n{}",
        r.context
    );
    let case = r.case("sub");
    case.assert_status(Kind::Error, Some("timed-out"));
    // The main shell, the nested shell and, at times, its `sleep 0.05`.
    let msg = case.message();
    assert!(
        msg.starts_with("timed out after 1s; sent SIGTERM to ")
            && msg.ends_with(" processes; all exited within 3s grace"),
        "{case:#?}"
    );
    assert_elapsed(&r, SECOND, Duration::from_millis(3500));
}

#[test]
fn nested_warden_leaves_no_cgroups_behind() {
    let Some(w) = common::Warden::cgroup() else {
        return;
    };
    let inner = w.path("inner.toml");
    std::fs::write(
        &inner,
        format!(
            "[[batch]]\nname = \"innerhang\"\ncommand = [{}]\ntimeout = \"30s\"\n",
            common::q(&common::fixture("hang.sh"))
        ),
    )
    .unwrap();
    let argv = [
        common::warden_bin().to_str().unwrap().to_string(),
        "run".into(),
        "-c".into(),
        inner.to_str().unwrap().to_string(),
        "--containment".into(),
        "cgroup".into(),
        "--artifacts".into(),
        w.path_str("inner-artifacts"),
    ];
    let r = w
        .batch(&format!(
            "name = \"outer\"\ncommand = {}\ntimeout = \"1s\"\ngrace = \"500ms\"",
            common::q_array(&argv)
        ))
        .run();
    // `run` fails the test if any cgroup of the outer run is left.
    r.assert_code(1);
    r.case("outer")
        .assert_status(Kind::Error, Some("timed-out"));
}

both_containments! {
    fn absurdly_long_timeout_is_rejected_or_honoured(w) {
        let r = w
            .shell("long", "sleep 0.5; echo long-done", "timeout = \"500000000000y\"")
            .fixture("ok", "pass.sh", &[], "")
            .run();
        if r.code == Some(2) {
            // Rejected as bad input is fine too, if it says which key.
            r.assert_stderr_contains("`timeout`");
            return;
        }
        r.assert_code(0);
        assert_eq!(r.summary_line(), "Success: 2/2, Failed: 0, Timed out: 0, Leaked: 0");
        r.case("long").assert_status(Kind::Success, None);
        assert_eq!(r.log_text("long"), "long-done\n");
    }
}
