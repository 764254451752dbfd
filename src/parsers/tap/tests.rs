//! The TAP parser's tests: synthetic inputs (named for the rule they
//! check) and the real recorded fixtures in tests/fixtures/real/.

use super::*;
use crate::parsers::test_support::{Parsed, ended, feed, get, names, parse};
use crate::parsers::{DROPPED_NOTE, MAX_TEST_OUTPUT};
use proptest::prelude::*;

fn run(input: &[u8], cut_short: Option<&str>) -> Parsed {
    parse(TapParser::new(), input, cut_short)
}

fn no_problems() -> Vec<String> {
    Vec::new()
}

#[test]
fn tap14_subtests_yaml_skip_todo() {
    let input = "\
TAP version 14
1..5
starting the parser suite
# Subtest: parse
    1..3
    parsing empty input
    ok 1 - empty input
    parsing trailing comma
    not ok 2 - trailing comma
      ---
      message: \"expected 1, got 2\"
      severity: fail
      ...
    ok 3 - unicode # skip no locale
not ok 1 - parse
ok 2 - slow # SKIP no network
not ok 3 - flaky # TODO fix the race
ok 4 - escaped \\# hash # Skipped: not on this arch
connecting to db
not ok 5 - db
  ---
  message: |
    connection refused
    after 3 tries
  at: db.js:12
  ...
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(
        names(&results),
        [
            "parse/empty input",
            "parse/trailing comma",
            "parse/unicode",
            "parse",
            "slow",
            "flaky",
            "escaped # hash",
            "db"
        ]
    );
    let empty = get(&results, &["parse", "empty input"]);
    assert_eq!(empty.status, TestStatus::Passed);
    assert_eq!(empty.output, "parsing empty input\n");
    let comma = get(&results, &["parse", "trailing comma"]);
    assert_eq!(comma.status, TestStatus::Failed);
    assert_eq!(comma.message.as_deref(), Some("expected 1, got 2"));
    assert!(comma.output.contains("parsing trailing comma"));
    assert!(comma.output.contains("severity: fail"));
    assert!(!comma.output.contains("parsing empty input"));
    assert_eq!(
        get(&results, &["parse", "unicode"]).status,
        TestStatus::Skipped(Some("no locale".into()))
    );
    let parse = get(&results, &["parse"]);
    assert_eq!(parse.status, TestStatus::Failed);
    assert!(parse.output.contains("starting the parser suite"));
    assert!(parse.output.contains("parsing trailing comma"));
    assert_eq!(
        get(&results, &["slow"]).status,
        TestStatus::Skipped(Some("no network".into()))
    );
    assert_eq!(
        get(&results, &["flaky"]).status,
        TestStatus::Skipped(Some("TODO: fix the race".into()))
    );
    assert_eq!(
        get(&results, &["escaped # hash"]).status,
        TestStatus::Skipped(Some("not on this arch".into()))
    );
    let db = get(&results, &["db"]);
    assert_eq!(db.status, TestStatus::Failed);
    assert_eq!(
        db.message.as_deref(),
        Some("connection refused\nafter 3 tries")
    );
    assert!(db.output.contains("connecting to db"));
    assert!(db.output.contains("at: db.js:12"));
    assert!(!db.output.contains("parsing"));
}

#[test]
fn unnamed_indented_subtests_take_the_parents_name() {
    let input = "\
TAP version 14
    ok 1 - inner a
    not ok 2 - inner b
        # Subtest: deep
        ok 1 - deepest
    ok 3 - deep
    1..3
not ok 1 - outer # time=12.5ms
1..1
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(
        names(&results),
        [
            "outer/inner a",
            "outer/inner b",
            "outer/deep/deepest",
            "outer/deep",
            "outer"
        ]
    );
    let outer = get(&results, &["outer"]);
    assert_eq!(outer.status, TestStatus::Failed);
    assert_eq!(outer.duration, Some(Duration::from_micros(12_500)));
    // Item 3: the line that says what failed, here its failed subtest.
    assert_eq!(outer.message.as_deref(), Some("not ok 2 - inner b"));
}

const KSELFTEST: &str = "\
TAP version 13
1..5
# selftests: net: reuseport_bpf
# TAP version 13
# 1..2
# ---- IPv4 UDP ----
# ok 1 reuseport_bpf.ipv4_udp
# ---- IPv6 UDP ----
# send failed: Connection refused
# not ok 2 reuseport_bpf.ipv6_udp
# # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:0 error:0
not ok 1 selftests: net: reuseport_bpf # exit=1
# selftests: net: test_bpf.sh
# test_bpf: [FAIL] (loading test module)
# TIMEOUT 45 seconds
not ok 2 selftests: net: test_bpf.sh # TIMEOUT 45 seconds
# selftests: net: udpgso.sh
# ipv4 cmsg
# udpgso: write: Message too long
# exit=1
not ok 3 selftests: net: udpgso.sh
# selftests: net: so_txtime.sh
# SKIP: no sch_etf
ok 4 selftests: net: so_txtime.sh # SKIP
# selftests: drivers/net: stats.py
# Bail out! no netdevsim
# ok 1 after the bail is output
ok 5 selftests: drivers/net: stats.py # SKIP no netdevsim
";

#[test]
fn kselftest_runner() {
    let (results, verdict) = run(KSELFTEST.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(
        names(&results),
        [
            "net/reuseport_bpf/reuseport_bpf.ipv4_udp",
            "net/reuseport_bpf/reuseport_bpf.ipv6_udp",
            "net/reuseport_bpf",
            "net/test_bpf.sh",
            "net/udpgso.sh",
            "net/so_txtime.sh",
            "drivers/net/stats.py"
        ]
    );
    let v6 = get(
        &results,
        &["net", "reuseport_bpf", "reuseport_bpf.ipv6_udp"],
    );
    assert_eq!(v6.status, TestStatus::Failed);
    assert!(v6.output.contains("send failed: Connection refused"));
    assert!(!v6.output.contains("IPv4"));
    let reuseport = get(&results, &["net", "reuseport_bpf"]);
    assert_eq!(reuseport.status, TestStatus::Failed);
    assert_eq!(reuseport.message.as_deref(), Some("exit=1"));
    assert!(
        reuseport
            .output
            .starts_with("# selftests: net: reuseport_bpf\n")
    );
    assert!(reuseport.output.contains("# send failed"));
    assert!(!reuseport.output.contains("test_bpf"));
    // The runner cut it off (the real run_kselftest_timers fixtures).
    let test_bpf = get(&results, &["net", "test_bpf.sh"]);
    assert_eq!(test_bpf.status, TestStatus::Error("timed-out".into()));
    assert_eq!(test_bpf.message.as_deref(), Some("TIMEOUT 45 seconds"));
    assert!(test_bpf.output.contains("loading test module"));
    assert!(!test_bpf.output.contains("reuseport"));
    assert!(!test_bpf.output.contains("udpgso"));
    // The message from the output when the result line has none.
    let udpgso = get(&results, &["net", "udpgso.sh"]);
    assert_eq!(udpgso.status, TestStatus::Failed);
    assert_eq!(udpgso.message.as_deref(), Some("exit=1"));
    assert!(udpgso.output.contains("Message too long"));
    assert!(!udpgso.output.contains("test_bpf"));
    let txtime = get(&results, &["net", "so_txtime.sh"]);
    assert_eq!(txtime.status, TestStatus::Skipped(None));
    assert_eq!(txtime.message, None);
    // A bail out inside a test's own output ends only that test's TAP.
    assert_eq!(
        get(&results, &["drivers/net", "stats.py"]).status,
        TestStatus::Skipped(Some("no netdevsim".into()))
    );
}

#[test]
fn kselftest_crash_mid_test() {
    let input = "\
TAP version 13
1..3
# selftests: bpf: test_verifier
# #0/u invalid and of negative number OK
ok 1 selftests: bpf: test_verifier
# selftests: bpf: test_progs
# #1 align:OK
# test_kfunc:FAIL:load
";
    let cut = "timed out after 300s; killed";
    let (results, verdict) = run(input.as_bytes(), Some(cut));
    assert_eq!(names(&results), ["bpf/test_verifier", "bpf/test_progs"]);
    let progs = get(&results, &["bpf", "test_progs"]);
    assert_eq!(progs.status, TestStatus::Error("timed-out".into()));
    assert_eq!(progs.message.as_deref(), Some(cut));
    assert!(progs.output.contains("# test_kfunc:FAIL:load"));
    assert!(!progs.output.contains("test_verifier"));
    assert_eq!(verdict.problems, ["planned 3 tests, got 1"]);

    let (results, _) = run(input.as_bytes(), None);
    assert_eq!(results[1].message.as_deref(), Some("no result"));
}

#[test]
fn subtest_cut_short_fails_nested_tests_too() {
    let input = "\
1..2
ok 1 - first
# Subtest: second
    1..2
    ok 1 - a
    # Subtest: b
        working
";
    let (results, verdict) = run(input.as_bytes(), Some("timed out"));
    assert_eq!(names(&results), ["first", "second/a", "second/b", "second"]);
    let b = get(&results, &["second", "b"]);
    assert_eq!(b.status, TestStatus::Error("timed-out".into()));
    assert_eq!(b.message.as_deref(), Some("timed out"));
    assert!(b.output.contains("working"));
    assert_eq!(
        get(&results, &["second"]).status,
        TestStatus::Error("timed-out".into())
    );
    assert_eq!(verdict.problems, ["planned 2 tests, got 1"]);
}

#[test]
fn bail_out() {
    let input = "\
TAP version 13
1..4
ok 1 - setup
# Subtest: db
    ok 1 - connect
    Bail out! database went away
    ok 2 - query
ok 2 - db
ok 3 - later
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(names(&results), ["setup", "db/connect", "db"]);
    let db = get(&results, &["db"]);
    assert_eq!(db.status, TestStatus::Failed);
    assert_eq!(db.message.as_deref(), Some("Bail out! database went away"));
    assert_eq!(verdict.problems, ["Bail out! database went away"]);
}

#[test]
fn unterminated_yaml_ends_at_the_next_unindented_line() {
    let input = "\
1..2
not ok 1 - a
  ---
  message: broken
ok 2 - b
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(names(&results), ["a", "b"]);
    assert_eq!(results[0].message.as_deref(), Some("broken"));
    assert!(results[1].output.is_empty());
}

#[test]
fn endless_unnamed_block_is_not_buffered_forever() {
    let mut input = String::from("1..1\n");
    for i in 1..=MAX_BUFFERED + 10 {
        input.push_str(&format!("    ok {i} - s{i}\n"));
    }
    let mut p: Box<dyn Parser> = Box::new(TapParser::new());
    let mut done = Vec::new();
    for line in input.lines() {
        p.line(line.as_bytes(), Duration::ZERO, &mut done);
    }
    assert!(done.len() > MAX_BUFFERED, "{}", done.len());
    assert_eq!(done[0].path, ["test 1", "s1"]);
    p.line(b"ok 1 - parent", Duration::ZERO, &mut done);
    let (rest, verdict) = p.finish(&crate::parsers::Ended::exited());
    done.extend(rest);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(done.len(), MAX_BUFFERED + 11);
    assert_eq!(done[MAX_BUFFERED + 9].path, ["test 1", "s1010"]);
    assert_eq!(done[MAX_BUFFERED + 10].path, ["parent"]);
}

#[test]
fn plan_problems() {
    let (results, verdict) = run(b"ok 1\nnot ok 2 - b\n", None);
    assert_eq!(names(&results), ["test 1", "b"]);
    assert_eq!(verdict.problems, ["no TAP plan (1..N); got 2 test results"]);

    let input = "1..5\nok 1 - a\nok 2 - b\nok 3 - c\n";
    let (_, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, ["planned 5 tests, got 3"]);

    let input = "ok 1 - a\nok 2 - b\nok 3 - c\n1..2\n";
    let (_, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, ["planned 2 tests, got 3"]);

    let input = "ok - a\nok - b\n1..2\n";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(names(&results), ["a", "b"]);
    assert_eq!(verdict.problems, no_problems());

    let (results, verdict) = run(b"TAP version 14\n1..0 # SKIP no hardware\n", None);
    assert!(results.is_empty());
    assert_eq!(verdict.problems, no_problems());

    let (results, verdict) = run(b"", None);
    assert!(results.is_empty());
    assert_eq!(verdict.problems.len(), 1);
}

#[test]
fn not_results() {
    let input = "\
1..1
okay then
ok1 nope
not okay
  ok 1 - two spaces is output
ok 1 - real # TODO
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(names(&results), ["real"]);
    // A passing TODO test passed.
    assert_eq!(results[0].status, TestStatus::Passed);
    assert!(results[0].output.contains("okay then"));
    assert!(results[0].output.contains("two spaces is output"));
}

#[test]
fn garbage_crlf_nuls_and_long_lines() {
    let mut input = Vec::new();
    input.extend_from_slice(b"TAP version 13\r\n1..3\r\n");
    input.extend_from_slice(b"\xff\xfe\0garbage\r\n");
    input.extend_from_slice(&vec![b'x'; 1 << 20]);
    input.extend_from_slice(b"\nnot ok 1 - \xffbad\0name # exit=2\r\n");
    input.extend_from_slice(b"# selftests: a: b\r\n");
    for _ in 0..1000 {
        input.extend_from_slice(b"# ");
        input.extend_from_slice(&[0xff; 300]);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b"not ok 2 selftests: a: b\r\n");
    input.extend_from_slice(&vec![b' '; 1 << 20]);
    input.extend_from_slice(b"ok 99 - too deep to be a result\r\n");
    input.extend_from_slice(b"ok 3\r\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(&b"# ".repeat(1 << 18));
    input.extend_from_slice(b"selftests: x: y\n");
    let (results, verdict) = run(&input, None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(names(&results), ["\u{fffd}bad\0name", "a/b", "test 3"]);
    assert_eq!(results[0].status, TestStatus::Failed);
    assert_eq!(results[0].message.as_deref(), Some("exit=2"));
    assert!(results[0].output.starts_with(DROPPED_NOTE));
    assert!(results[0].output.ends_with("xxx\n"));
    for r in &results {
        assert!(
            r.output.len() <= MAX_TEST_OUTPUT + 200,
            "{}",
            r.output.len()
        );
        assert!(!r.output.contains('\r'));
    }
    assert!(results[1].output.contains('\u{fffd}'));
    assert!(results[2].output.contains("too deep to be a result"));
}

#[test]
fn deep_nesting_is_bounded() {
    let mut input = String::from("1..1\n");
    for depth in 0..100 {
        input.push_str(&"    ".repeat(depth));
        input.push_str("# Subtest: s\n");
        input.push_str(&"# ".repeat(depth));
        input.push_str("# selftests: d: t\n");
    }
    input.push_str("ok 1 - top\n");
    let (results, _) = run(input.as_bytes(), None);
    assert_eq!(results.last().map(TestResult::name).as_deref(), Some("top"));
    assert!(results.iter().all(|r| r.path.len() <= 2 * MAX_DEPTH + 2));
}

proptest! {
    #[test]
    fn never_panics_and_output_is_bounded(
        lines in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                (any::<u8>(), 0..70_000usize).prop_map(|(b, n)| vec![b; n]),
                "( {4}|# ){0,3}(not )?ok( [0-9])?( - [a-z]{0,5})?( # (SKIP|TODO|exit=1)[a-z ]{0,5})?"
                    .prop_map(String::into_bytes),
                "( {4}|# ){0,3}(1\\.\\.[0-9]|TAP version 14|Bail out! x|  ---|  \\.\\.\\.|  message: x)"
                    .prop_map(String::into_bytes),
                "( {4}|# ){0,3}# (Subtest: [a-z]{0,3}|selftests: [a-z]{1,3}: [a-z]{1,3})"
                    .prop_map(String::into_bytes),
                // Issue 12's shapes: banners, totals, directives, timings,
                // kernel prefixes, tabs and KTAP versions.
                "(\\[ *[0-9.]{0,12}\\]( ?\\[ *T[0-9]\\])? )?(\t|  |# ){0,3}(#  RUN +[a-z.]{0,5} \\.\\.\\.|# Running test '[a-z]{0,3}'|# Totals: pass:[0-9]{1,20} fail:[0-9] xfail:0 xpass:0 skip:[0-9] error:0|KTAP version 1|1\\.\\.0 # SKIP x)"
                    .prop_map(String::into_bytes),
                "(\t|# ){0,2}(not )?ok [0-9]{1,20}( [a-z#]{0,5})?( # (XFAIL|XPASS|error|TIMEOUT 4|in [0-9]{1,25} ms|time=[0-9e.]{1,6}s|exit=1[0-9]{2})){0,2}"
                    .prop_map(String::into_bytes),
            ],
            0..30,
        ),
        cut in proptest::option::of("[a-z ]{0,10}"),
        kunit in any::<bool>(),
    ) {
        let parser = if kunit { TapParser::kunit() } else { TapParser::new() };
        let (done, _) = feed(parser, lines.iter().map(Vec::as_slice), &ended(cut.as_deref()));
        for r in &done {
            prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200);
            prop_assert!(!r.path.is_empty());
        }
    }
}

// ---- Real fixtures (tests/fixtures/real/, see their README.md) ----

fn fixture(path: &str) -> Vec<u8> {
    let (suite, file) = path.split_once('/').expect("suite/file");
    crate::parsers::real_fixtures::read(suite, file)
}

/// Tests we report that the runner's own report has no line for: the test
/// in progress when its producer ended (`no result`), and results made
/// from a `# Totals:` line.
fn reported_by_runner(r: &TestResult) -> bool {
    let m = r.message.as_deref().unwrap_or("");
    !m.starts_with("no result") && !m.contains("by `# Totals:`")
}

/// Compares `results` (names prefixed with `prefix`) with an
/// `*.expected.tsv`, leaving out what only warden names.
fn compare_with_expected(expected_tsv: &str, prefix: &str, results: &[TestResult]) {
    let (suite, file) = expected_tsv.split_once('/').expect("suite/file");
    let stem = file.strip_suffix(".expected.tsv").expect(".expected.tsv");
    crate::parsers::real_fixtures::assert_expected(
        suite,
        stem,
        prefix,
        results.iter().filter(|r| reported_by_runner(r)),
    );
}

#[test]
fn real_kselftest_fixtures_match_the_runners_report() {
    for (name, prefix) in [
        ("run_kselftest_multi", ""),
        ("run_kselftest_single", ""),
        ("run_kselftest_custom", ""),
        ("run_kselftest_timers_timeout2", ""),
        ("run_kselftest_timers_timeout6", ""),
        ("harness_misbehave", "harness_misbehave/"),
        ("ksft_crash", "ksft_crash/"),
        ("harness_killed", "harness_killed/"),
    ] {
        let input = fixture(&format!("kselftest/{name}.tap"));
        let (results, verdict) = parse(TapParser::new(), &input, None);
        compare_with_expected(&format!("kselftest/{name}.expected.tsv"), prefix, &results);
        match name {
            // Binaries that died mid-plan.
            "ksft_crash" => assert_eq!(verdict.problems, ["planned 5 tests, got 3"]),
            "harness_killed" => assert_eq!(verdict.problems, ["planned 3 tests, got 1"]),
            // Several collections, each its own document and plan; every
            // `# Totals:` agrees with its results.
            _ => assert_eq!(verdict.problems, no_problems(), "{name}"),
        }
        for r in &results {
            assert!(!r.path.is_empty() && r.duration.is_some() || !reported_by_runner(r));
        }
    }
}

#[test]
fn real_kselftest_tests_in_progress_are_named() {
    let (results, _) = parse(TapParser::new(), fixture("kselftest/ksft_crash.tap"), None);
    let delta = get(&results, &["delta"]);
    assert_eq!(delta.status, TestStatus::Failed);
    assert_eq!(delta.message.as_deref(), Some("no result"));

    let input = fixture("kselftest/harness_killed.tap");
    let (results, _) = parse(TapParser::new(), &input, None);
    let hang = get(&results, &["global.hangs_without_harness_timeout"]);
    assert_eq!(hang.status, TestStatus::Failed);
    assert!(hang.output.contains("sleeping 10s"), "{}", hang.output);
    // The same output cut off by warden's own timeout.
    let (results, _) = parse(TapParser::new(), &input, Some("timed out after 2s"));
    let hang = get(&results, &["global.hangs_without_harness_timeout"]);
    assert_eq!(hang.status, TestStatus::Error("timed-out".into()));
    assert_eq!(hang.message.as_deref(), Some("timed out after 2s"));

    let input = fixture("kselftest/run_kselftest_custom.tap");
    let (results, _) = parse(TapParser::new(), &input, None);
    let delta = get(&results, &["warden_crash", "ksft_crash", "delta"]);
    assert_eq!(delta.status, TestStatus::Error("crashed".into()));
    assert_eq!(delta.message.as_deref(), Some("no result (exit=139)"));
    assert!(delta.output.contains("Segmentation fault"));
    let hang = get(&results, &["warden_hang", "ksft_hang", "hang"]);
    assert_eq!(hang.status, TestStatus::Error("timed-out".into()));
    let misbehave = |t: &str| {
        get(&results, &["warden_crash", "harness_misbehave", t])
            .message
            .clone()
    };
    // Item 3: the line that says what failed.
    assert_eq!(
        misbehave("global.expect_eq_fails").as_deref(),
        Some("harness_misbehave.c:24:expect_eq_fails:Expected 1 (1) == got (2)")
    );
    assert_eq!(
        misbehave("global.segfaults").as_deref(),
        Some("segfaults: Test terminated unexpectedly by signal 11")
    );
    assert_eq!(
        misbehave("slow.hangs_past_timeout").as_deref(),
        Some("hangs_past_timeout: Test terminated by timeout")
    );
    assert_eq!(
        misbehave("global.expected_sigabrt").as_deref(),
        Some("expected_sigabrt: Test terminated by assertion")
    );

    let input = fixture("kselftest/run_kselftest_timers_timeout6.tap");
    let (results, _) = parse(TapParser::new(), &input, None);
    let open = get(&results, &["timers", "nanosleep", "test 8"]);
    assert_eq!(open.status, TestStatus::Error("timed-out".into()));
    assert_eq!(
        open.message.as_deref(),
        Some("no result (TIMEOUT 6 seconds)")
    );
    // Named from the directive's text: `ok 3 # SKIP CLOCK_PROCESS_CPUTIME_ID`.
    assert_eq!(
        get(
            &results,
            &["timers", "nanosleep", "CLOCK_PROCESS_CPUTIME_ID"]
        )
        .status,
        TestStatus::Skipped(Some("CLOCK_PROCESS_CPUTIME_ID".into()))
    );
}

#[test]
fn real_kselftest_output_clobbered_by_a_file_redirect_does_not_panic() {
    let input = fixture("kselftest/run_kselftest_redirect_to_file.out");
    let (results, _) = parse(TapParser::new(), &input, None);
    assert!(results.iter().all(|r| !r.path.is_empty()));
}

/// A result with subtests (a KUnit suite): kunit.py's JSON lists test
/// cases only.
fn is_parent(r: &TestResult, results: &[TestResult]) -> bool {
    results
        .iter()
        .any(|o| o.path.len() > r.path.len() && o.path.starts_with(&r.path))
}

#[test]
fn real_kunit_logs_match_kunit_py() {
    let dir = format!("{}/tests/fixtures/real/kunit", env!("CARGO_MANIFEST_DIR"));
    let mut logs: Vec<String> = std::fs::read_dir(&dir)
        .expect("kunit fixtures")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".log")?.to_string())
        })
        .collect();
    logs.sort();
    assert!(logs.len() >= 17, "{logs:?}");
    for name in &logs {
        let input = fixture(&format!("kunit/{name}.log"));
        let (results, verdict) = parse(TapParser::kunit(), &input, None);
        if name == "test_is_test_passed-kselftest" {
            // kunit.py does not look into the runner's `# ` output; we do.
            assert_eq!(
                names(&results)
                    .iter()
                    .filter(|n| n.matches('/').count() == 1)
                    .collect::<Vec<_>>(),
                [
                    "membarrier/membarrier_test_single_thread",
                    "membarrier/membarrier_test_multi_thread"
                ]
            );
            continue;
        }
        let leaves: Vec<TestResult> = results
            .iter()
            .filter(|r| !is_parent(r, &results))
            .cloned()
            .collect();
        if name == "test_kernel_panic_interrupt" {
            // kunit.py reports the crash as two unnamed `string-stream-test/`
            // errors; we report the test in progress and its suite.
            let open = get(&results, &["string-stream-test", "test 2"]);
            assert_eq!(open.status, TestStatus::Failed);
            assert!(open.output.contains("Kernel panic"), "{}", open.output);
            assert_eq!(
                get(&results, &["string-stream-test"]).status,
                TestStatus::Failed
            );
            assert_eq!(verdict.problems, ["planned 3 tests, got 2"]);
            let ran: Vec<_> = leaves
                .iter()
                .filter(|r| reported_by_runner(r))
                .map(TestResult::name)
                .collect();
            assert_eq!(ran.len(), 8, "{ran:?}");
            continue;
        }
        compare_with_expected(&format!("kunit/{name}.expected.tsv"), "", &leaves);
        let rc = String::from_utf8(fixture(&format!("kunit/{name}.parse.rc"))).expect("rc");
        if rc.trim() == "0" && !name.contains("missing_plan") {
            assert_eq!(verdict.problems, no_problems(), "{name}");
        }
    }
}

// ---- Synthetic tests, one rule each (issue 12) ----

fn run_kunit(input: &str, cut_short: Option<&str>) -> Parsed {
    parse(TapParser::kunit(), input, cut_short)
}

#[test]
fn synthetic_each_document_checks_its_own_plan() {
    // run_kselftest.sh -c size -c kcmp -c mincore, all passing.
    let input = "\
TAP version 13
1..1
# selftests: size: get_size
ok 1 selftests: size: get_size
TAP version 13
1..1
# selftests: kcmp: kcmp_test
ok 1 selftests: kcmp: kcmp_test
TAP version 13
1..1
# selftests: mincore: mincore_selftest
ok 1 selftests: mincore: mincore_selftest
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(
        names(&results),
        [
            "size/get_size",
            "kcmp/kcmp_test",
            "mincore/mincore_selftest"
        ]
    );

    let input = "TAP version 13\n1..1\nok 1 a\nTAP version 13\n1..3\nok 1 b\nok 2 c\n";
    let (_, verdict) = run(input.as_bytes(), None);
    assert_eq!(
        verdict.problems,
        ["planned 3 tests, got 2 (TAP document 2)"]
    );

    // A second plan without a version line starts a document too.
    let (_, verdict) = run(b"1..1\nok 1 a\n1..2\nok 1 b\nok 2 c\n", None);
    assert_eq!(verdict.problems, no_problems());
}

#[test]
fn synthetic_several_documents_in_one_tests_output_and_skip_all() {
    let input = "\
TAP version 13
1..3
# selftests: net: two_docs
# TAP version 13
# 1..1
# ok 1 first
# TAP version 13
# 1..2
# ok 1 second
# ok 2 third
ok 1 selftests: net: two_docs
# selftests: net: skipper
# TAP version 13
# 1..0 # SKIP no IPv6 here
ok 2 selftests: net: skipper # SKIP
# selftests: dup: same
# ok 1 x
ok 3 selftests: dup: same
TAP version 13
1..1
# selftests: dup: same
# ok 1 x
ok 1 selftests: dup: same
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(
        names(&results),
        [
            "net/two_docs/first",
            "net/two_docs/second",
            "net/two_docs/third",
            "net/two_docs",
            "net/skipper",
            "dup/same/x",
            "dup/same",
            "dup/same/x",
            "dup/same"
        ],
        "duplicates are kept"
    );
    assert_eq!(
        get(&results, &["net", "skipper"]).status,
        TestStatus::Skipped(Some("no IPv6 here".into()))
    );
}

#[test]
fn synthetic_kselftest_totals() {
    let input = "\
TAP version 13
1..2
# selftests: d: agrees
# TAP version 13
# 1..4
# ok 1 a
# not ok 2 b
# ok 3 # SKIP c
# ok 4 d # XFAIL known
# # Totals: pass:1 fail:1 xfail:1 xpass:0 skip:1 error:0
not ok 1 selftests: d: agrees # exit=1
# selftests: d: lies
# TAP version 13
# 1..1
# ok 1 a
# # Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0
ok 2 selftests: d: lies
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(
        verdict.problems,
        [
            "d/lies: kselftest `# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0` \
          disagrees with the results: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"
        ]
    );
    assert_eq!(
        get(&results, &["d", "agrees", "d"]).status,
        TestStatus::Passed
    );

    // Only totals, no result lines: results from the counts.
    let input = "\
TAP version 13
1..3
# PASS: 0 returned as expected
# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:0 error:0
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(names(&results), ["test 1", "test 2", "test 3"]);
    assert_eq!(results[2].status, TestStatus::Failed);
    assert_eq!(
        results[2].message.as_deref(),
        Some("failed by `# Totals:`; no result line")
    );

    // Absurd counts are counted, not made into results.
    let input = "1..1\n# Totals: pass:99999999999 fail:0 xfail:0 xpass:0 skip:0 error:0\n";
    let (results, verdict) = run(input.as_bytes(), None);
    assert!(results.is_empty());
    assert_eq!(verdict.problems, ["planned 1 tests, got 99999999999"]);
}

#[test]
fn synthetic_test_in_progress_is_named() {
    // kselftest_harness: the RUN banner names it.
    let input = "\
TAP version 13
1..3
#  RUN           global.first ...
#            OK  global.first
ok 1 global.first
#  RUN           global.second ...
# waiting for the device
";
    let (results, _) = run(input.as_bytes(), Some("timed out after 5s"));
    let second = get(&results, &["global.second"]);
    assert_eq!(second.status, TestStatus::Error("timed-out".into()));
    assert_eq!(second.message.as_deref(), Some("timed out after 5s"));
    assert!(second.output.contains("waiting for the device"));
    assert_eq!(second.duration, Some(Duration::from_millis(1)));
    // The binary crashed: exited by itself without its result.
    let (results, _) = run(input.as_bytes(), None);
    let second = get(&results, &["global.second"]);
    assert_eq!(second.status, TestStatus::Failed);
    assert_eq!(second.message.as_deref(), Some("no result"));

    // The plan says which comes next.
    let mut input = String::from("TAP version 13\n1..19\n");
    for i in 1..=5 {
        input.push_str(&format!("ok {i} t{i}\n"));
    }
    let (results, verdict) = run(input.as_bytes(), Some("killed"));
    assert_eq!(
        results.last().map(TestResult::name).as_deref(),
        Some("test 6")
    );
    assert_eq!(verdict.problems, ["planned 19 tests, got 5"]);
    // Exited with nothing after the last result: only the plan problem.
    let (results, _) = run(input.as_bytes(), None);
    assert_eq!(results.len(), 5);

    // `# Running test 'x'` after the last result names it.
    let input = "1..3\nok 1 a\n# Running test 'bravo'\n";
    let (results, _) = run(input.as_bytes(), Some("killed"));
    assert_eq!(names(&results), ["a", "bravo"]);

    // Nested under run_kselftest.sh: collection/test/inner.
    let input = "\
TAP version 13
1..1
# selftests: net: tls
# TAP version 13
# 1..2
# #  RUN           tls.sendfile ...
# #            OK  tls.sendfile
# ok 1 tls.sendfile
# #  RUN           tls.recv_peek ...
";
    let (results, _) = run(input.as_bytes(), Some("killed"));
    assert_eq!(
        names(&results),
        ["net/tls/tls.sendfile", "net/tls/tls.recv_peek", "net/tls"]
    );
    assert_eq!(results[1].status, TestStatus::Error("timed-out".into()));
}

#[test]
fn synthetic_messages_say_what_failed() {
    let input = "\
TAP version 13
1..4
#  RUN           global.a ...
# a.c:12:a:Expected 0 (0) == ret (-1)
# a: Test failed
#          FAIL  global.a
not ok 1 global.a
#  RUN           global.b ...
# b: Test terminated unexpectedly by signal 11
#          FAIL  global.b
not ok 2 global.b
# Starting test c
not ok 3 c
#  RUN           global.d ...
#          FAIL  global.d
not ok 4 global.d
";
    let (results, _) = run(input.as_bytes(), None);
    let msg = |i: usize| results[i].message.as_deref();
    assert_eq!(msg(0), Some("a.c:12:a:Expected 0 (0) == ret (-1)"));
    assert_eq!(msg(1), Some("b: Test terminated unexpectedly by signal 11"));
    // Never a banner or the harness's verdict line.
    assert_eq!(msg(2), None);
    assert_eq!(msg(3), None);

    let input = "\
TAP version 13
1..2
# selftests: d: bails
# Bail out! no device
not ok 1 selftests: d: bails
# selftests: d: exits
# something
not ok 2 selftests: d: exits # exit=2
";
    let (results, _) = run(input.as_bytes(), None);
    assert_eq!(
        get(&results, &["d", "bails"]).message.as_deref(),
        Some("Bail out! no device")
    );
    let exits = get(&results, &["d", "exits"]);
    assert_eq!(exits.message.as_deref(), Some("exit=2"));
    assert_eq!(exits.status, TestStatus::Failed, "exit=2 is no signal");
}

const BATS: &str = "\
1..4
ok 1 addition works in 3 ms
not ok 2 subtraction # in 12 ms
# (in test file test/math.bats, line 9)
#   `[ \"$result\" -eq 1 ]' failed
# result was 3
ok 3 assert_regex allows regex matching empty string (see #53) # in 1 ms
not ok 4 division # in 5 ms
# (from function `divide' in file test/helper.bash, line 2,
#  in test file test/math.bats, line 20)
#   `divide 1 0' failed with status 2
# bats warning: Executed 4 instead of expected 5 tests
";

#[test]
fn synthetic_bats_diagnostics_follow_their_not_ok() {
    let (results, verdict) = run(BATS.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(
        names(&results),
        [
            "addition works in 3 ms",
            "subtraction",
            "assert_regex allows regex matching empty string (see #53)",
            "division"
        ]
    );
    let sub = &results[1];
    assert!(sub.output.contains("line 9"), "{}", sub.output);
    assert!(sub.output.contains("result was 3"));
    assert_eq!(
        sub.message.as_deref(),
        Some("`[ \"$result\" -eq 1 ]' failed")
    );
    assert_eq!(sub.duration, Some(Duration::from_millis(12)));
    assert!(results[2].output.is_empty(), "{}", results[2].output);
    let div = &results[3];
    assert!(div.output.contains("line 20"));
    assert!(!div.output.contains("line 9"));
    assert_eq!(
        div.message.as_deref(),
        Some("`divide 1 0' failed with status 2")
    );
}

#[test]
fn synthetic_test_more_diagnostics_by_shape() {
    let input = "\
1..3
ok 1 - first
not ok 2 - second
#   Failed test 'second'
#   at t/basic.t line 8.
#          got: '1'
#     expected: '2'
ok 3 - third
";
    let (results, _) = run(input.as_bytes(), None);
    assert!(results[1].output.contains("at t/basic.t line 8."));
    assert_eq!(results[1].message.as_deref(), Some("expected: '2'"));
    assert!(results[2].output.is_empty());
    // With a version line (KTAP, kselftest) output precedes its result.
    let input = "TAP version 13\n1..2\nnot ok 1 a\n# about b\nok 2 b\n";
    let (results, _) = run(input.as_bytes(), None);
    assert!(results[1].output.contains("about b"));
    assert!(results[0].output.is_empty());
}

#[test]
fn synthetic_durations() {
    let input = "\
TAP version 13
1..4
ok 1 a
# output
# more
ok 2 b
ok 3 c # time=250ms
not ok 4 d
  ---
  duration_ms: 7
  ...
";
    // One line per millisecond (test_support::feed).
    let (results, _) = run(input.as_bytes(), None);
    let d = |i: usize| results[i].duration;
    assert_eq!(d(0), Some(Duration::from_millis(2)), "from the batch start");
    assert_eq!(
        d(1),
        Some(Duration::from_millis(3)),
        "from the previous result"
    );
    assert_eq!(d(2), Some(Duration::from_millis(250)));
    assert_eq!(d(3), Some(Duration::from_millis(7)));
    // Arrival times that go backwards saturate.
    let mut p: Box<dyn Parser> = Box::new(TapParser::new());
    let mut done = Vec::new();
    p.line(b"1..1", Duration::from_secs(5), &mut done);
    p.line(b"ok 1 a", Duration::ZERO, &mut done);
    let (rest, _) = p.finish(&Ended::exited());
    assert_eq!(rest[0].duration, Some(Duration::from_secs(5)));
}

#[test]
fn synthetic_kselftest_directives() {
    let input = "\
TAP version 13
1..4
ok 1 # XFAIL known bug
ok 2 thing # XPASS surprise
not ok 3 # error setup failed
ok 4 # SKIP
";
    let (results, verdict) = run(input.as_bytes(), None);
    assert_eq!(verdict.problems, no_problems());
    assert_eq!(
        names(&results),
        ["known bug", "thing", "setup failed", "test 4"]
    );
    assert_eq!(results[0].status, TestStatus::Passed);
    assert_eq!(results[1].status, TestStatus::Passed);
    assert_eq!(results[2].status, TestStatus::Error("error".into()));
    assert_eq!(results[2].message.as_deref(), Some("setup failed"));
}

const KUNIT_LOG: &str = "\
[    0.000000] Linux version 6.12.0 (gcc)
[    0.100000] Booting the kernel.
[    1.000000] KTAP version 1
[    1.000001] 1..2
[    1.000002]     KTAP version 1
[    1.000003]     # Subtest: example
[    1.000004]     # module: kunit_example_test
[    1.000005]     1..3
[    1.000006]     # example_simple_test: initializing
[    1.000007]     ok 1 example_simple_test
[    1.000008] random: crng init done
[    1.000009]     # example_fail_test: EXPECTATION FAILED at lib/kunit/example.c:29
[    1.000010]     Expected 1 + 1 == 3, but
[    1.000011]         1 + 1 == 2 (0x2)
[    1.000012]     not ok 2 example_fail_test
[    1.000013]     ok 3 example_skip_test # SKIP this test should be skipped
[    1.000014] # example: pass:1 fail:1 skip:1 total:3
[    1.000015] not ok 1 example
[    1.000016]     KTAP version 1
[    1.000017]     # Subtest: crashing
[    1.000018]     1..2
[    1.000019]     ok 1 first
[    1.000020] BUG: kernel NULL pointer dereference, address: 0000000000000000
[    1.000021] Kernel panic - not syncing: Fatal exception
";

#[test]
fn synthetic_kunit_in_a_kernel_log() {
    let (results, verdict) = run_kunit(KUNIT_LOG, None);
    assert_eq!(
        names(&results),
        [
            "example/example_simple_test",
            "example/example_fail_test",
            "example/example_skip_test",
            "example",
            "crashing/first",
            "crashing/test 2",
            "crashing"
        ]
    );
    let fail = get(&results, &["example", "example_fail_test"]);
    assert_eq!(fail.status, TestStatus::Failed);
    assert_eq!(
        fail.message.as_deref(),
        Some("example_fail_test: EXPECTATION FAILED at lib/kunit/example.c:29")
    );
    assert!(
        !fail.output.contains("[    1.0"),
        "prefix stripped: {}",
        fail.output
    );
    assert_eq!(
        get(&results, &["example", "example_skip_test"]).status,
        TestStatus::Skipped(Some("this test should be skipped".into()))
    );
    // The boot log is no test's output.
    assert!(results.iter().all(|r| !r.output.contains("Booting")));
    assert_eq!(verdict.problems, ["planned 2 tests, got 1"]);

    // The same log cut off by a timeout: the open test gets its status.
    let (results, _) = run_kunit(KUNIT_LOG, Some("timed out after 60s"));
    let open = get(&results, &["crashing", "test 2"]);
    assert_eq!(open.status, TestStatus::Error("timed-out".into()));
    assert!(open.output.is_empty() || !open.output.contains("example"));
}
