//! Retries: only failures whose output says they are transient are run
//! again; failed-then-passed is `flaky`; every attempt's log is kept.

mod common;

use std::fs;
use std::time::Duration;

use common::{Kind, Warden};

/// Fails with a transient-looking message until its `n`th run.
fn transient(counter: &str, passes_on: u32) -> String {
    format!(
        "n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; \
         echo attempt $n; if [ $n -lt {passes_on} ]; then echo 'read tcp: connection reset by peer'; exit 1; fi; echo passed"
    )
}

const WHEN: &str =
    r#"retry = { attempts = 3, when = ["connection reset", "Unavailable"], backoff = "300ms" }"#;

#[test]
fn transient_failure_is_retried_and_reported_flaky() {
    let w = Warden::pgroup();
    let counter = w.path_str("n");
    let r = w.shell("net", &transient(&counter, 2), WHEN).run();
    r.assert_code(0);
    assert!(
        r.elapsed >= Duration::from_millis(300),
        "backoff not kept\n{}",
        r.context
    );
    assert_eq!(fs::read_to_string(r.path("n")).unwrap().trim(), "2");
    assert!(
        r.finish_line("net").starts_with("   FLAKY ["),
        "{}",
        r.context
    );
    r.assert_stdout_contains("warden: net: attempt 1 of 3 failed (exit code 1): retrying in 300ms");
    let logs = r.artifacts().join("logs");
    let first = fs::read_to_string(logs.join("net.attempt-1.log")).unwrap();
    assert!(
        first.contains("attempt 1") && first.contains("connection reset"),
        "{first}"
    );
    let second = fs::read_to_string(logs.join("net.attempt-2.log")).unwrap();
    assert_eq!(second, "attempt 2\npassed\n");
    // `<batch>.log` is always the last attempt.
    assert_eq!(r.log_text("net"), second);
    let case = r.case("net");
    case.assert_status(Kind::Success, None);
    let xml = fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    assert!(
        xml.contains("<flakyFailure message=\"exit code 1\" type=\"failed\""),
        "{xml}"
    );
    assert!(r.summary_line().contains("Flaky: 1"), "{}", r.context);
}

#[test]
fn assertion_failure_is_not_retried() {
    let w = Warden::pgroup();
    let counter = w.path_str("n");
    let r = w
        .shell(
            "unit",
            &format!("echo x >> {counter}; echo 'assertion failed: 3 != 4'; exit 1"),
            WHEN,
        )
        .run();
    r.assert_code(1);
    assert_eq!(fs::read_to_string(r.path("n")).unwrap().lines().count(), 1);
    r.case("unit").assert_status(Kind::Failure, Some("failed"));
    assert!(!r.artifacts().join("logs/unit.attempt-1.log").exists());
}

#[test]
fn attempts_run_out_and_every_one_is_reported() {
    let w = Warden::pgroup();
    let counter = w.path_str("n");
    let r = w
        .defaults(WHEN)
        .shell(
            "down",
            &transient(&counter, 99),
            "retry = { attempts = 3, when = [\"connection reset\"] }",
        )
        .run();
    r.assert_code(1);
    assert_eq!(fs::read_to_string(r.path("n")).unwrap().trim(), "3");
    r.case("down").assert_status(Kind::Failure, Some("failed"));
    let xml = fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    assert_eq!(xml.matches("<rerunFailure").count(), 2, "{xml}");
    for n in 1..=3 {
        assert!(
            r.artifacts()
                .join(format!("logs/down.attempt-{n}.log"))
                .exists()
        );
    }
}

#[test]
fn flaky_can_fail_the_run() {
    for (flag, config) in [(true, ""), (false, "flaky = \"fail\"")] {
        let w = Warden::pgroup();
        let counter = w.path_str("n");
        let mut w = w.shell("net", &transient(&counter, 2), WHEN);
        if flag {
            w = w.arg("--flaky-fails");
        } else {
            w = w.run_section(config);
        }
        let r = w.run();
        r.assert_code(1);
        assert!(
            r.finish_line("net").starts_with("   FLAKY ["),
            "{}",
            r.context
        );
    }
}

#[test]
fn bad_retry_settings_are_config_errors() {
    let r = Warden::pgroup()
        .shell("x", "touch ran", "retry = { attempts = 0 }")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("key `attempts`: must be a whole number from 1 to 100");
    let r = Warden::pgroup()
        .shell("x", "touch ran", "retry = { attempts = 2, tries = 3 }")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("unknown key `tries`");
    assert!(!r.path("ran").exists());
}

/// Four batches that fail, one after the other, each with a transient
/// failure and a retry; `cap`: `[run] retry-max-failures`. Returns the run
/// and each batch's attempts.
fn four_failing(cap: u64) -> (common::Run, Vec<usize>) {
    let w = Warden::pgroup().run_section(&format!("max-parallel = 1\nretry-max-failures = {cap}"));
    let names = ["a", "b", "c", "d"];
    let counters: Vec<String> = names.iter().map(|n| w.path_str(n)).collect();
    let mut w = w;
    for (name, counter) in names.iter().zip(&counters) {
        w = w.shell(
            name,
            &format!("echo x >> {counter}; echo 'read tcp: connection reset by peer'; exit 1"),
            r#"retry = { attempts = 2, when = ["connection reset"] }"#,
        );
    }
    let r = w.run();
    let attempts = names
        .iter()
        .map(|n| {
            fs::read_to_string(r.path(n))
                .map(|s| s.lines().count())
                .unwrap_or(0)
        })
        .collect();
    (r, attempts)
}

#[test]
fn no_retry_starts_once_too_many_failed() {
    // Cap 2: the first two failures are retried (1, then 2 failed: not
    // more than 2); the third makes 3, and no retry starts after it.
    let (r, mut attempts) = four_failing(2);
    r.assert_code(1);
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 1, 2, 2], "{}", r.context);
    let refused: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.contains(": not retried: too many failures to retry: "))
        .collect();
    assert_eq!(refused.len(), 2, "{}", r.context);
    assert!(
        refused[0].ends_with(
            "attempt 1 of 2 failed (exit code 1): not retried: \
             too many failures to retry: 3 failed (retry-max-failures = 2)"
        ),
        "{}",
        r.context
    );
    // And in the summary, with the run's final count.
    r.assert_stdout_contains(
        "Retries: too many failures to retry: 4 failed (retry-max-failures = 2); \
         2 retries not started",
    );
    for n in ["a", "b", "c", "d"] {
        r.case(n).assert_status(Kind::Failure, Some("failed"));
    }
}

#[test]
fn below_the_cap_retries_still_happen() {
    let (r, attempts) = four_failing(10);
    r.assert_code(1);
    assert_eq!(attempts, [2, 2, 2, 2], "{}", r.context);
    assert!(!r.stdout.contains("too many failures"), "{}", r.context);
    assert_eq!(r.stdout.matches("): retrying").count(), 4, "{}", r.context);
}
