//! Quarantine: known-broken batches warn instead of failing the run, are
//! listed when they pass again, and an expired entry fails the run.

mod common;

use std::fs;

use common::{Kind, Warden, q};

fn with_list(list: &str) -> Warden {
    let w = Warden::pgroup().run_section("quarantine = \"quarantine.toml\"");
    fs::write(w.path("quarantine.toml"), list).unwrap();
    w
}

const NET: &str = "[[quarantine]]\npattern = \"net-*\"\nreason = \"flaky on arm64\"\nissue = \"https://example.org/issues/42\"\nuntil = 2099-12-31\n";

#[test]
fn quarantined_failure_warns_and_passing_one_is_listed() {
    let r = with_list(NET)
        .shell("net-udp", "echo 'udp: assertion failed'; exit 1", "")
        .shell("net-tcp", "true", "")
        .shell("unit", "true", "")
        .run();
    r.assert_code(0);
    let udp = r.case("net-udp");
    udp.assert_status(Kind::Skipped, Some("quarantined"));
    assert_eq!(
        udp.message(),
        "quarantined (flaky on arm64 (https://example.org/issues/42)): failed: exit code 1"
    );
    assert!(udp.out().contains("udp: assertion failed"), "{udp:#?}");
    r.case("net-tcp").assert_status(Kind::Success, None);
    assert!(r.summary_line().contains("Failed: 1") && r.summary_line().contains("Quarantined: 1"));
    r.assert_stdout_contains(
        "quarantined: flaky on arm64 (https://example.org/issues/42): does not fail the run",
    );
    r.assert_stdout_contains("warden: quarantined but passing: net-tcp (flaky on arm64");
}

/// Post steps hear the status the exit code gives: a quarantined failure
/// fails nothing, so the run passed.
#[test]
fn post_steps_hear_the_run_status_of_the_exit_code() {
    let w = with_list(NET).shell("net-udp", "exit 1", "");
    let out = w.path_str("post-saw");
    let r = w
        .config_append(&format!(
            "[[post]]\nname = \"record\"\nshell = {}\n",
            q(&format!("echo \"$WARDEN_RUN_STATUS\" > {out}"))
        ))
        .run();
    r.assert_code(0);
    assert_eq!(fs::read_to_string(r.path("post-saw")).unwrap(), "passed\n");
}

#[test]
fn unquarantined_failure_still_fails() {
    let r = with_list(NET).shell("unit", "exit 1", "").run();
    r.assert_code(1);
    r.case("unit").assert_status(Kind::Failure, Some("failed"));
}

#[test]
fn expired_entry_fails_the_run() {
    let r = with_list(&NET.replace("2099-12-31", "2020-01-01"))
        .shell("net-udp", "exit 1", "")
        .run();
    r.assert_code(1);
    r.assert_stderr_contains("warden: quarantine entry `net-*` in ");
    r.assert_stderr_contains(
        "expired on 2020-01-01: flaky on arm64 (https://example.org/issues/42)",
    );
}

#[test]
fn bad_quarantine_file_is_bad_input() {
    let r = with_list("[[quarantine]]\npattern = \"a\"\nreason = \"r\"\nuntil = \"soon\"\n")
        .shell("x", "touch ran", "")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("quarantine.toml:4:9: key `until`: expected a date like 2026-12-31");
    assert!(!r.path("ran").exists());

    let r = Warden::pgroup()
        .run_section("quarantine = \"missing.toml\"")
        .shell("x", "touch ran", "")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("missing.toml: cannot read config");
}
