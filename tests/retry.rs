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
