//! The streaming parsers against output recorded from real runners
//! (`tests/fixtures/real/<suite>/`, each directory's README says how it was
//! made): every recording's results, test by test, names and statuses,
//! against its `*.expected.tsv`, derived from the runner's own report
//! (`bench/real_expected.py`, `bench/real_kernel_expected.py`). Also the
//! messages a user reads first on a few failures.
//!
//! The expected files spell levels `classname::name`, `package::Test`,
//! `target::test`; warden joins a path with `/`. [`canonical`] is the one
//! spelling both are compared in (as `bench/real_suites.py` does).

use std::path::Path;

use super::test_support::parse;
use super::{Parser, TestResult};

/// One spelling of a test path for both sides (see the module doc).
fn canonical(name: &str) -> String {
    let name = name.trim();
    let name = match name.strip_prefix("Doc-tests ") {
        Some(rest) => format!("doc-tests{}", &rest[rest.find("::").unwrap_or(0)..]),
        None => name.to_string(),
    };
    name.replace("::", "/")
}

/// `tests/fixtures/real/<suite>/<file>`.
pub(super) fn read(suite: &str, file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real")
        .join(suite)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses `suite/recording` with `parser` and compares every result with
/// `suite/<stem>.expected.tsv` as multisets of `name<TAB>status`.
fn check(parser: impl Parser + 'static, suite: &str, recording: &str) -> Vec<TestResult> {
    let (results, _) = parse(parser, read(suite, recording), None);
    let stem = recording.rsplit_once('.').map_or(recording, |(s, _)| s);
    assert_expected(suite, stem, "", &results);
    results
}

/// Compares `results` (their names after `prefix`) with
/// `suite/<stem>.expected.tsv` as multisets of `name<TAB>status`: the
/// runner may report a parent before its subtests, warden after.
pub(super) fn assert_expected<'a>(
    suite: &str,
    stem: &str,
    prefix: &str,
    results: impl IntoIterator<Item = &'a TestResult>,
) {
    let expected = String::from_utf8(read(suite, &format!("{stem}.expected.tsv"))).expect("utf-8");
    let mut want: Vec<String> = expected
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, status) = l.rsplit_once('\t').expect("name<TAB>status");
            format!("{}\t{}", canonical(name), status.trim())
        })
        .collect();
    let mut got: Vec<String> = results
        .into_iter()
        .map(|r| {
            let name = canonical(&format!("{prefix}{}", r.name()));
            format!("{name}\t{}", r.status)
        })
        .collect();
    want.sort_unstable();
    got.sort_unstable();
    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && got.len() == want.len(),
        "{suite}/{stem}: missing {missing:#?}\nextra {extra:#?}"
    );
}

fn message<'a>(results: &'a [TestResult], name: &str) -> &'a str {
    results
        .iter()
        .find(|r| canonical(&r.name()) == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .message
        .as_deref()
        .unwrap_or("")
}

#[test]
fn bats() {
    use super::tap::TapParser;
    for rec in [
        "suite.tap",
        "suite-report.tap",
        "own.tap",
        "own-report.tap",
        "own-timing.tap",
    ] {
        check(TapParser::new(), "bats", rec);
    }
    let own = check(TapParser::new(), "bats", "own.tap");
    // bats prints a failing test's diagnostics after its `not ok`: each
    // failure carries its own, not the previous test's.
    let failing: Vec<&TestResult> = own.iter().filter(|r| r.status.is_failure()).collect();
    assert!(!failing.is_empty());
    for r in failing {
        let last = r.path.last().map(String::as_str).unwrap_or("");
        assert!(r.output.contains("(in test file"), "{last}: {:?}", r.output);
        assert!(
            !r.message.as_deref().unwrap_or("").starts_with("in "),
            "{r:?}"
        );
    }
    assert!(
        own.iter()
            .any(|r| r.name() == "allows regex matching empty string (see #53)")
    );
    let timed = check(TapParser::new(), "bats", "own-timing.tap");
    assert!(timed.iter().all(|r| r.duration.is_some()));
}

#[test]
fn go_test_json() {
    use super::gotest::GoJsonParser;
    for rec in ["stdlib.json", "demo.json", "hang.json"] {
        check(GoJsonParser::new(), "go", rec);
    }
    let demo = check(GoJsonParser::new(), "go", "demo.json");
    let m = message(&demo, "example.com/demo/calc/TestAddFails");
    assert!(m.contains("got 3 want 4") || m.contains(".go:"), "{m}");
    assert!(!m.starts_with("==="), "{m}");
    let hang = check(GoJsonParser::new(), "go", "hang.json");
    let m = message(&hang, "example.com/demo/hang/TestHangs");
    assert!(m.contains("timed out"), "{m}");
}

#[test]
fn cargo_test() {
    use super::libtest::LibtestParser;
    for rec in [
        "cargo-test.txt",
        "cargo-test-nocapture.txt",
        "cargo-test-threads1.txt",
        "cargo-test-report-time.txt",
        "cargo-test-no-fail-fast.txt",
    ] {
        let results = check(LibtestParser::new(), "libtest", rec);
        assert!(results.iter().all(|r| r.duration.is_some()), "{rec}");
        // With and without --nocapture, every failing test says why.
        for r in results.iter().filter(|r| r.status.is_failure()) {
            let m = r.message.as_deref().unwrap_or("");
            assert!(!m.is_empty() && !m.contains("stdout ----"), "{rec}: {r:?}");
            assert!(!m.contains(") panicked"), "thread id kept: {m}");
        }
    }
}
