//! `format`: a batch's output read into tests and subtests, reported one
//! testcase each in a testsuite of the batch's own, and counted in the summary.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Kind, Warden, named, q};

fn format_batch(name: &str, fixture: &str, format: &str) -> String {
    format!(
        "name = \"{name}\"\ncommand = [{}]\nformat = \"{format}\"",
        q(&common::fixture(fixture))
    )
}

#[test]
fn kselftest_tap_go_json_and_libtest_become_tests() {
    let r = Warden::pgroup()
        .batch(&format_batch("net", "kselftest_tap.sh", "tap"))
        .batch(&format_batch("db", "go_json.sh", "go-json"))
        .batch(&format_batch("rust", "libtest.sh", "libtest"))
        .shell("plain", "true", "")
        .run();
    r.assert_code(1);
    let cases = r.junit();
    // kselftest: dir/test, nested subtests, the failing test's own output.
    named(&cases, "net/reuseport_bpf").assert_status(Kind::Success, None);
    named(&cases, "net/reuseport_bpf/cbpf").assert_status(Kind::Success, None);
    named(&cases, "net/tls").assert_status(Kind::Skipped, None);
    let udp = named(&cases, "net/udpgso.sh");
    udp.assert_status(Kind::Failure, Some("failed"));
    assert_eq!(udp.classname, "net");
    assert_eq!(udp.message(), "exit=1");
    // go test -json: package/test.
    let q = named(&cases, "example.com/db/TestQuery");
    q.assert_status(Kind::Failure, Some("failed"));
    assert!(q.message().contains("expected 3 rows, got 2"), "{q:#?}");
    named(&cases, "example.com/db/TestConnect").assert_status(Kind::Success, None);
    // cargo test.
    let nested = cases
        .iter()
        .find(|c| c.name.ends_with("parse::nested"))
        .unwrap_or_else(|| panic!("{cases:#?}"));
    nested.assert_status(Kind::Failure, Some("failed"));
    assert!(
        cases
            .iter()
            .any(|c| c.name.ends_with("slow::network") && c.kind == Kind::Skipped)
    );
    // A batch without format is still one testcase.
    named(&cases, "plain").assert_status(Kind::Success, None);
    r.assert_stdout_contains("Tests: Success: ");
    r.assert_stdout_contains("test net/udpgso.sh failed: exit=1");
    let line = r.finish_line("net");
    assert!(
        line.contains("1 of 5 tests failed: net/udpgso.sh"),
        "{line}"
    );
}

#[test]
fn a_hang_mid_test_fails_that_test_with_the_timeout() {
    let r = Warden::pgroup()
        .batch(&format!(
            "{}\ntimeout = \"1s\"\ngrace = \"500ms\"",
            format_batch("bpf", "tap_then_hang.sh", "tap")
        ))
        .run();
    r.assert_code(1);
    assert!(r.elapsed < Duration::from_secs(10));
    let cases = r.junit();
    named(&cases, "bpf/test_verifier").assert_status(Kind::Success, None);
    let progs = named(&cases, "bpf/test_progs");
    // Cut off by the timeout: an error of that type, like the batch.
    progs.assert_status(Kind::Error, Some("timed-out"));
    assert!(
        progs.message().starts_with("timed out after 1s"),
        "{progs:#?}"
    );
}

#[test]
fn junit_files_written_by_the_batch_are_read() {
    let r = Warden::pgroup()
        .batch(&format!(
            "{}\njunit-files = [\"out/**/*.xml\"]",
            format_batch("java", "junit_writer.sh", "junit")
        ))
        .run();
    r.assert_code(1);
    let cases = r.junit();
    let nested = named(&cases, "com.example.ParserTest/parsesNested");
    nested.assert_status(Kind::Failure, Some("failed"));
    assert_eq!(nested.message(), "expected 3 but was 2");
    named(&cases, "com.example.ParserTest/parsesEmpty").assert_status(Kind::Success, None);
    named(&cases, "it/boots").assert_status(Kind::Skipped, None);
}

#[test]
fn format_settings_are_checked() {
    let r = Warden::pgroup()
        .shell("x", "touch ran", "format = \"xml\"")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("key `format`: invalid value \"xml\"");
    let r = Warden::pgroup()
        .shell("x", "touch ran", "format = \"junit\"")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("needs `junit-files`");
    let r = Warden::pgroup()
        .shell("x", "touch ran", "junit-files = [\"a.xml\"]")
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("only batches with `format = \"junit\"` take `junit-files`");
    assert!(!r.path("ran").exists());
}

#[test]
fn a_quarantined_test_does_not_fail_its_batch() {
    let w = Warden::pgroup().run_section("quarantine = \"q.toml\"");
    std::fs::write(
        w.path("q.toml"),
        "[[quarantine]]\npattern = \"kself/net/udpgso.sh\"\nreason = \"gso broken on this kernel\"\n",
    )
    .unwrap();
    let r = w
        .batch(&format_batch("kself", "kselftest_tap.sh", "tap"))
        .run();
    r.assert_code(0);
    let cases = r.junit();
    let udp = named(&cases, "net/udpgso.sh");
    udp.assert_status(Kind::Skipped, Some("quarantined"));
    assert_eq!(
        udp.message(),
        "quarantined (gso broken on this kernel): failed"
    );
    r.assert_stdout_contains(
        "test net/udpgso.sh failed: exit=1 (quarantined: gso broken on this kernel)",
    );
}

/// TAP from a batch whose `fetch` test fails with a connection reset on
/// its first run only, and whose `parse` test always passes (saying
/// "connection reset" in its own output, which must not count).
fn flaky_tap(counter: &str, parse_fails: bool) -> String {
    let parse = if parse_fails {
        "not ok 2 - parse"
    } else {
        "ok 2 - parse"
    };
    format!(
        "n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo 1..2; \
         if [ $n -lt 2 ]; then echo '# read: connection reset by peer'; echo 'not ok 1 - fetch'; \
         else echo 'ok 1 - fetch'; fi; echo '# assertion failed: 3 != 4'; echo '{parse}'"
    )
}

#[test]
fn retry_when_looks_at_the_failing_tests_own_output() {
    let retry = "format = \"tap\"\nretry = { attempts = 2, when = [\"connection reset\"] }";
    // Only `fetch` fails, with a connection reset: retried, then flaky.
    let w = Warden::pgroup();
    let counter = w.path_str("n");
    let r = w.shell("net", &flaky_tap(&counter, false), retry).run();
    r.assert_code(0);
    assert!(
        r.finish_line("net").starts_with("   FLAKY ["),
        "{}",
        r.context
    );
    // The test that failed first is flaky in JUnit; no test failed every time.
    let xml = std::fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    let fetch = &xml[xml.find("name=\"fetch\"").expect("fetch testcase")..];
    let fetch = &fetch[..fetch.find("</testcase>").unwrap_or(fetch.len())];
    assert!(fetch.contains("<flakyFailure"), "{xml}");
    assert!(!xml.contains("<rerunFailure"), "{xml}");
    // `parse` also fails, with an assertion: one real failure is enough
    // not to retry, even though the log mentions a connection reset.
    let w = Warden::pgroup();
    let counter = w.path_str("n");
    let r = w.shell("net", &flaky_tap(&counter, true), retry).run();
    r.assert_code(1);
    assert_eq!(std::fs::read_to_string(r.path("n")).unwrap().trim(), "1");
}

#[test]
fn rerun_runs_only_the_failed_tests() {
    let w = Warden::pgroup();
    let args = w.path_str("args");
    let go = common::fixture("fake_go_test.sh");
    let r = w
        .batch(&format!(
            "name = \"net\"\ncommand = [{go}]\nformat = \"go-json\"\n\
             retry = {{ attempts = 2, when = [\"connection reset\"] }}\n\
             rerun = [{go}, \"-run\", \"{{tests}}\"]\nenv = {{ ARGS_FILE = {} }}",
            q(&args),
            go = q(&go)
        ))
        .run();
    r.assert_code(0);
    // First the whole suite, then only the failed test, as go's -run regex.
    let calls = std::fs::read_to_string(r.path("args")).unwrap();
    assert_eq!(calls, "\n-run ^(TestFlaky)$\n", "{}", r.context);
    assert!(
        r.finish_line("net").starts_with("   FLAKY ["),
        "{}",
        r.context
    );
    let cases = r.junit();
    named(&cases, "example.com/net/TestStable").assert_status(Kind::Success, None);
    named(&cases, "example.com/net/TestFlaky").assert_status(Kind::Success, None);
    let xml = std::fs::read_to_string(r.artifacts().join("junit.xml")).unwrap();
    assert_eq!(xml.matches("<flakyFailure").count(), 1, "{xml}");
}

#[test]
fn rerun_needs_a_format_and_a_place_for_the_tests() {
    let r = Warden::pgroup()
        .shell(
            "x",
            "true",
            "rerun = [\"go\", \"test\", \"-run\", \"{tests}\"]",
        )
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("key `rerun`: needs a `format`");
    let r = Warden::pgroup()
        .shell(
            "x",
            "true",
            "format = \"go-json\"\nrerun = [\"go\", \"test\"]",
        )
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("key `rerun`: must contain `{tests}`");
}

#[test]
fn a_reported_time_out_of_range_is_clamped_with_a_warning() {
    // go test -json reporting an absurd Elapsed: clamped to a year, and said.
    let events = [
        r#"{"Action":"run","Package":"p","Test":"TestA"}"#,
        r#"{"Action":"pass","Package":"p","Test":"TestA","Elapsed":1e300}"#,
        r#"{"Action":"pass","Package":"p","Elapsed":0.01}"#,
    ];
    let script = events
        .iter()
        .map(|e| format!("echo '{e}'"))
        .collect::<Vec<_>>()
        .join("; ");
    let r = Warden::pgroup()
        .shell("go", &script, "format = \"go-json\"")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains(
        "1 test time(s) in the output were out of range and clamped to a year, e.g. p/TestA",
    );
    named(&r.junit(), "p/TestA").assert_status(Kind::Success, None);
}
