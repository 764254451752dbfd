//! Real output read right, end to end: batches replay output recorded from
//! real runners (`tests/fixtures/real/`, each with its README saying how it
//! was made) through the real binary, and the JUnit, the summary and the
//! history say what the runner's own report says. The parsers' unit tests
//! compare every recording test by test; these check what reaches the user.

mod common;

use common::{Kind, Warden, named, q};

fn real(path: &str) -> String {
    format!("{}/tests/fixtures/real/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A batch that prints `lines` of a recording (all with `None`), then
/// either exits with `exit` or hangs.
fn replay(name: &str, recording: &str, lines: Option<usize>, then: &str, extra: &str) -> String {
    let head = match lines {
        Some(n) => format!("head -n {n} {}", q(&real(recording))),
        None => format!("cat {}", q(&real(recording))),
    };
    format!(
        "name = \"{name}\"\ncommand = [\"sh\", \"-c\", {}]\n{extra}",
        q(&format!("{head}; {then}"))
    )
}

#[test]
fn run_kselftest_over_several_collections_passes() {
    // `run_kselftest.sh -c size -c kcmp -c mincore -c exec -t
    // breakpoints:breakpoint_test`, all passing: a TAP document per
    // collection, each with its own plan.
    let r = Warden::pgroup()
        .batch(&replay(
            "ksft",
            "kselftest/run_kselftest_multi.tap",
            None,
            "exit 0",
            "format = \"tap\"",
        ))
        .run();
    r.assert_code(0);
    let out = &r.stdout;
    assert!(!out.contains("planned"), "{out}");
    let cases = r.junit();
    named(&cases, "mincore/mincore_selftest/global.basic_interface")
        .assert_status(Kind::Success, None);
    named(&cases, "size/get_size").assert_status(Kind::Success, None);
    assert!(
        cases
            .iter()
            .all(|c| c.kind != Kind::Failure && c.kind != Kind::Error)
    );
}

#[test]
fn a_harness_test_hung_mid_run_is_named_and_recorded() {
    // kselftest_harness output up to the `#  RUN` of its ninth test, then
    // the binary hangs until warden's timeout.
    let w = Warden::pgroup();
    let r = w
        .batch(&replay(
            "harness",
            "kselftest/harness_misbehave.tap",
            Some(42),
            "exec sleep 60",
            "format = \"tap\"\ntimeout = \"1s\"\ngrace = \"200ms\"",
        ))
        .run();
    r.assert_code(1);
    let cases = r.junit();
    let hung = named(&cases, "slow.passes_in_fixture");
    hung.assert_status(Kind::Error, Some("timed-out"));
    assert!(
        hung.message().starts_with("timed out after 1s"),
        "{hung:#?}"
    );
    // The telling line, not the `RUN` banner, is each failure's message.
    let eq = named(&cases, "global.expect_eq_fails");
    eq.assert_status(Kind::Failure, Some("failed"));
    assert_eq!(
        eq.message(),
        "harness_misbehave.c:24:expect_eq_fails:Expected 1 (1) == got (2)"
    );
    assert_eq!(
        named(&cases, "global.segfaults").message(),
        "segfaults: Test terminated unexpectedly by signal 11"
    );
    r.assert_stdout_contains("test slow.passes_in_fixture error (timed-out): timed out after 1s");
    // The history has the hung test under its name, failed, with the reason.
    let h = Warden::pgroup()
        .subcommand("history")
        .arg("harness/slow.passes_in_fixture")
        .args(["--format", "json"])
        .arg("--history")
        .arg(format!("sqlite:{}", r.path(".warden/history.db").display()))
        .no_config()
        .run();
    h.assert_code(0);
    let json = &h.stdout;
    assert!(json.contains("\"status\": \"failed\""), "{json}");
    assert!(json.contains("timed out after 1s"), "{json}");
}

#[test]
fn kunit_in_a_kernel_log_is_read() {
    // A kernel log from linux-source-6.12's kunit test data: timestamps,
    // boot messages, nested KTAP.
    let r = Warden::pgroup()
        .batch(&replay(
            "kunit",
            "kunit/test_is_test_passed-failure.log",
            None,
            "exit 0",
            "format = \"kunit\"",
        ))
        .run();
    r.assert_code(1);
    let cases = r.junit();
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.kind == Kind::Failure)
        .map(|c| c.name.as_str())
        .collect();
    assert!(!failed.is_empty(), "{cases:#?}");
    assert!(failed.iter().all(|n| !n.contains('[')), "{failed:?}");
}
