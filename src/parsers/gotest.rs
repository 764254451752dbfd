//! `go test -json` (test2json) events, one JSON object a line.
//!
//! Parallel tests interleave, so state is kept per (package, test). Lines
//! that are not test2json events (build errors, `go vet` output printed
//! before the test binary ran) are kept as package-less output and attached
//! to the next package-level failure.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult, TestStatus};

/// The message of a test that started but never ended.
const NO_RESULT: &str = "no result (the test binary exited or was killed)";

/// Longest message kept (a skip reason, a panic line).
const MAX_MESSAGE: usize = 512;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    #[serde(default)]
    action: String,
    #[serde(default)]
    package: Option<String>,
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    elapsed: Option<f64>,
    #[serde(default)]
    output: Option<String>,
}

#[derive(Default)]
struct TestState {
    /// Order of the first event, so leftovers are reported in start order.
    seq: u64,
    /// A `run` (or `pause`/`cont`) event was seen: the test must end. Output
    /// of a test already ended (or never started) is not a test of its own.
    started: bool,
    output: OutputTail,
    /// The last `    file_test.go:12: text` line: a skip's reason.
    last_log: Option<String>,
    /// The first `panic: …` line.
    panic: Option<String>,
    /// The first `file_test.go:12: text` line (t.Error's report, usually).
    first_log: Option<String>,
}

#[derive(Default)]
struct PackageState {
    output: OutputTail,
    /// A test of this package failed (so a package `fail` is explained).
    test_failed: bool,
}

/// Parser of `go test -json` output.
#[derive(Default)]
pub struct GoJsonParser {
    tests: HashMap<(String, String), TestState>,
    packages: HashMap<String, PackageState>,
    /// Lines that were not test2json events.
    loose: OutputTail,
    seq: u64,
}

impl GoJsonParser {
    pub fn new() -> Self {
        Self::default()
    }

    fn test_state(&mut self, package: &str, test: &str) -> &mut TestState {
        let seq = &mut self.seq;
        self.tests
            .entry((package.to_owned(), test.to_owned()))
            .or_insert_with(|| {
                *seq += 1;
                TestState {
                    seq: *seq,
                    ..TestState::default()
                }
            })
    }

    fn event(&mut self, ev: Event, done: &mut Vec<TestResult>) {
        let package = ev.package.unwrap_or_default();
        let test = ev.test.filter(|t| !t.is_empty());
        match (ev.action.as_str(), test) {
            ("output", Some(test)) => {
                let out = ev.output.unwrap_or_default();
                let state = self.test_state(&package, &test);
                for line in output_lines(&out) {
                    note_line(state, line);
                    state.output.push_line(line.as_bytes());
                }
            }
            ("output", None) => {
                let out = ev.output.unwrap_or_default();
                let state = self.packages.entry(package).or_default();
                for line in output_lines(&out) {
                    state.output.push_line(line.as_bytes());
                }
            }
            // Go 1.24+: build output is its own event, keyed by ImportPath.
            ("build-output", _) => {
                for line in output_lines(ev.output.as_deref().unwrap_or_default()) {
                    self.loose.push_line(line.as_bytes());
                }
            }
            // `bench`: a benchmark that logged output but did not fail.
            ("pass" | "fail" | "skip" | "bench", Some(test)) => {
                let state = self
                    .tests
                    .remove(&(package.clone(), test.clone()))
                    .unwrap_or_default();
                let status = match ev.action.as_str() {
                    "pass" | "bench" => TestStatus::Passed,
                    "skip" => TestStatus::Skipped(state.last_log.clone()),
                    _ => TestStatus::Failed,
                };
                if status == TestStatus::Failed {
                    self.packages
                        .entry(package.clone())
                        .or_default()
                        .test_failed = true;
                }
                let message = match status {
                    TestStatus::Failed => state.panic.clone().or(state.first_log.clone()),
                    _ => None,
                };
                done.push(TestResult {
                    path: test_path(&package, &test),
                    status,
                    duration: ev.elapsed.and_then(seconds),
                    output: state.output.text(),
                    message,
                });
            }
            ("pass" | "fail" | "skip", None) => {
                self.package_end(&package, ev.action == "fail", ev.elapsed, done);
            }
            ("run" | "pause" | "cont", Some(test)) => {
                self.test_state(&package, &test).started = true;
            }
            ("start", None) => {
                self.packages.entry(package).or_default();
            }
            _ => {}
        }
    }

    /// The package's test binary ended: tests still open never will.
    fn package_end(
        &mut self,
        package: &str,
        failed: bool,
        elapsed: Option<f64>,
        done: &mut Vec<TestResult>,
    ) {
        let mut open: Vec<((String, String), TestState)> = Vec::new();
        let keys: Vec<(String, String)> = self
            .tests
            .keys()
            .filter(|(p, _)| p == package)
            .cloned()
            .collect();
        for key in keys {
            if let Some(state) = self.tests.remove(&key) {
                open.push((key, state));
            }
        }
        open.retain(|(_, s)| s.started);
        open.sort_by_key(|(_, s)| s.seq);
        let state = self.packages.remove(package).unwrap_or_default();
        let mut test_failed = state.test_failed;
        for ((_, test), t) in open {
            test_failed = true;
            done.push(TestResult {
                path: test_path(package, &test),
                status: TestStatus::Failed,
                duration: None,
                output: t.output.text(),
                message: Some(t.panic.unwrap_or_else(|| NO_RESULT.to_owned())),
            });
        }
        if failed && !test_failed {
            let mut out = OutputTail::default();
            if !self.loose.is_empty() {
                push_text(&mut out, &self.loose.text());
                self.loose.clear();
            }
            let pkg_text = state.output.text();
            push_text(&mut out, &pkg_text);
            let message = if pkg_text.contains("[build failed]") {
                "build failed".to_owned()
            } else if pkg_text.contains("[setup failed]") {
                "setup failed".to_owned()
            } else if let Some(p) = pkg_text.lines().find(|l| l.starts_with("panic: ")) {
                clip(p)
            } else {
                "the package failed without a failing test".to_owned()
            };
            done.push(TestResult {
                path: package_path(package),
                status: TestStatus::Failed,
                duration: elapsed.and_then(seconds),
                output: out.text(),
                message: Some(message),
            });
        }
    }
}

impl Parser for GoJsonParser {
    fn line(&mut self, line: &[u8], _at: Duration, done: &mut Vec<TestResult>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii_start();
        if trimmed.first() == Some(&b'{')
            && let Ok(ev) = serde_json::from_slice::<Event>(trimmed)
        {
            self.event(ev, done);
            return;
        }
        self.loose
            .push_line(String::from_utf8_lossy(line).as_bytes());
    }

    fn finish(mut self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let cut_short = ended.cut_short();
        let mut open: Vec<((String, String), TestState)> =
            self.tests.drain().filter(|(_, s)| s.started).collect();
        open.sort_by_key(|(_, s)| s.seq);
        let message = cut_short.unwrap_or(NO_RESULT);
        // Packages whose test binary never reported its end.
        let mut unfinished: Vec<&str> = self
            .packages
            .keys()
            .map(String::as_str)
            .chain(open.iter().map(|((p, _), _)| p.as_str()))
            .filter(|p| !p.is_empty())
            .collect();
        unfinished.sort_unstable();
        unfinished.dedup();
        let problems = unfinished
            .into_iter()
            .map(|p| format!("{p}: the output ended before the package's result ({message})"))
            .collect();
        let results = open
            .into_iter()
            .map(|((package, test), t)| TestResult {
                path: test_path(&package, &test),
                status: TestStatus::Failed,
                duration: None,
                output: t.output.text(),
                message: Some(match (&t.panic, cut_short) {
                    (Some(p), None) => p.clone(),
                    _ => message.to_owned(),
                }),
            })
            .collect();
        (results, StreamVerdict { problems })
    }
}

/// `go test -run` pattern rerunning the failed tests' top-level tests:
/// `^(TestA|TestB)$`. Empty when no test (only packages) failed.
pub fn rerun_pattern(failed: &[TestResult]) -> String {
    let mut names: Vec<&str> = failed
        .iter()
        .filter(|r| r.status == TestStatus::Failed)
        .filter_map(|r| r.path.get(1).map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return String::new();
    }
    let escaped: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
    format!("^({})$", escaped.join("|"))
}

fn package_path(package: &str) -> Vec<String> {
    if package.is_empty() {
        Vec::new()
    } else {
        vec![package.to_owned()]
    }
}

fn test_path(package: &str, test: &str) -> Vec<String> {
    let mut path = package_path(package);
    path.extend(test.split('/').map(str::to_owned));
    path
}

/// The lines of an `Output` field (usually one, ending in `\n`).
fn output_lines(out: &str) -> impl Iterator<Item = &str> {
    let out = out.strip_suffix('\n').unwrap_or(out);
    out.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l))
}

fn note_line(state: &mut TestState, line: &str) {
    let t = line.trim_start();
    if state.panic.is_none() && t.starts_with("panic: ") {
        state.panic = Some(clip(t));
    }
    // `    foo_test.go:12: reason`, the form t.Skip / t.Log output takes.
    if let Some((loc, text)) = t.split_once(": ")
        && let Some((file, lineno)) = loc.rsplit_once(':')
        && file.ends_with(".go")
        && !lineno.is_empty()
        && lineno.bytes().all(|b| b.is_ascii_digit())
    {
        state.last_log = Some(clip(text.trim()));
        if state.first_log.is_none() {
            state.first_log = Some(clip(t.trim_end()));
        }
    }
}

fn push_text(tail: &mut OutputTail, text: &str) {
    for line in output_lines(text) {
        tail.push_line(line.as_bytes());
    }
}

fn clip(s: &str) -> String {
    super::clip(s, MAX_MESSAGE)
}

fn seconds(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::MAX_TEST_OUTPUT;
    use crate::parsers::parse_lines;
    use proptest::prelude::*;

    fn run(input: &str, cut_short: Option<&str>) -> (Vec<TestResult>, StreamVerdict) {
        parse_lines(
            Box::new(GoJsonParser::new()),
            input.lines().map(str::as_bytes),
            cut_short,
        )
    }

    fn find<'a>(results: &'a [TestResult], name: &str) -> &'a TestResult {
        results
            .iter()
            .find(|r| r.name() == name)
            .unwrap_or_else(|| panic!("no result {name} in {results:#?}"))
    }

    /// Two parallel tests with subtests, interleaved as `go test -json`
    /// prints them; one subtest fails, one test skips.
    const PARALLEL: &str = r#"{"Time":"2024-05-01T10:00:00.000Z","Action":"start","Package":"example.com/shop/cart"}
{"Time":"2024-05-01T10:00:00.001Z","Action":"run","Package":"example.com/shop/cart","Test":"TestTotal"}
{"Time":"2024-05-01T10:00:00.001Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal","Output":"=== RUN   TestTotal\n"}
{"Time":"2024-05-01T10:00:00.001Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal","Output":"=== PAUSE TestTotal\n"}
{"Time":"2024-05-01T10:00:00.001Z","Action":"pause","Package":"example.com/shop/cart","Test":"TestTotal"}
{"Time":"2024-05-01T10:00:00.002Z","Action":"run","Package":"example.com/shop/cart","Test":"TestDiscount"}
{"Time":"2024-05-01T10:00:00.002Z","Action":"output","Package":"example.com/shop/cart","Test":"TestDiscount","Output":"=== RUN   TestDiscount\n"}
{"Time":"2024-05-01T10:00:00.002Z","Action":"output","Package":"example.com/shop/cart","Test":"TestDiscount","Output":"=== PAUSE TestDiscount\n"}
{"Time":"2024-05-01T10:00:00.002Z","Action":"pause","Package":"example.com/shop/cart","Test":"TestDiscount"}
{"Time":"2024-05-01T10:00:00.003Z","Action":"cont","Package":"example.com/shop/cart","Test":"TestTotal"}
{"Time":"2024-05-01T10:00:00.003Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal","Output":"=== CONT  TestTotal\n"}
{"Time":"2024-05-01T10:00:00.003Z","Action":"cont","Package":"example.com/shop/cart","Test":"TestDiscount"}
{"Time":"2024-05-01T10:00:00.003Z","Action":"output","Package":"example.com/shop/cart","Test":"TestDiscount","Output":"=== CONT  TestDiscount\n"}
{"Time":"2024-05-01T10:00:00.004Z","Action":"run","Package":"example.com/shop/cart","Test":"TestTotal/empty"}
{"Time":"2024-05-01T10:00:00.004Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal/empty","Output":"=== RUN   TestTotal/empty\n"}
{"Time":"2024-05-01T10:00:00.004Z","Action":"run","Package":"example.com/shop/cart","Test":"TestDiscount/percent"}
{"Time":"2024-05-01T10:00:00.004Z","Action":"output","Package":"example.com/shop/cart","Test":"TestDiscount/percent","Output":"=== RUN   TestDiscount/percent\n"}
{"Time":"2024-05-01T10:00:00.005Z","Action":"output","Package":"example.com/shop/cart","Test":"TestDiscount/percent","Output":"    cart_test.go:41: got 90, want 85\n"}
{"Time":"2024-05-01T10:00:00.005Z","Action":"run","Package":"example.com/shop/cart","Test":"TestTotal/many"}
{"Time":"2024-05-01T10:00:00.005Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal/many","Output":"=== RUN   TestTotal/many\n"}
{"Time":"2024-05-01T10:00:00.005Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal/many","Output":"    cart_test.go:22: totals agree\n"}
{"Time":"2024-05-01T10:00:00.006Z","Action":"output","Package":"example.com/shop/cart","Test":"TestDiscount/percent","Output":"--- FAIL: TestDiscount/percent (0.00s)\n"}
{"Time":"2024-05-01T10:00:00.006Z","Action":"fail","Package":"example.com/shop/cart","Test":"TestDiscount/percent","Elapsed":0.25}
{"Time":"2024-05-01T10:00:00.006Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal/empty","Output":"--- PASS: TestTotal/empty (0.00s)\n"}
{"Time":"2024-05-01T10:00:00.006Z","Action":"pass","Package":"example.com/shop/cart","Test":"TestTotal/empty","Elapsed":0}
{"Time":"2024-05-01T10:00:00.007Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal/many","Output":"--- PASS: TestTotal/many (0.01s)\n"}
{"Time":"2024-05-01T10:00:00.007Z","Action":"pass","Package":"example.com/shop/cart","Test":"TestTotal/many","Elapsed":0.01}
{"Time":"2024-05-01T10:00:00.007Z","Action":"output","Package":"example.com/shop/cart","Test":"TestTotal","Output":"--- PASS: TestTotal (0.01s)\n"}
{"Time":"2024-05-01T10:00:00.007Z","Action":"pass","Package":"example.com/shop/cart","Test":"TestTotal","Elapsed":0.01}
{"Time":"2024-05-01T10:00:00.008Z","Action":"output","Package":"example.com/shop/cart","Test":"TestDiscount","Output":"--- FAIL: TestDiscount (0.26s)\n"}
{"Time":"2024-05-01T10:00:00.008Z","Action":"fail","Package":"example.com/shop/cart","Test":"TestDiscount","Elapsed":0.26}
{"Time":"2024-05-01T10:00:00.009Z","Action":"run","Package":"example.com/shop/cart","Test":"TestLegacy"}
{"Time":"2024-05-01T10:00:00.009Z","Action":"output","Package":"example.com/shop/cart","Test":"TestLegacy","Output":"=== RUN   TestLegacy\n"}
{"Time":"2024-05-01T10:00:00.009Z","Action":"output","Package":"example.com/shop/cart","Test":"TestLegacy","Output":"    cart_test.go:60: needs the v1 API server\n"}
{"Time":"2024-05-01T10:00:00.009Z","Action":"output","Package":"example.com/shop/cart","Test":"TestLegacy","Output":"--- SKIP: TestLegacy (0.00s)\n"}
{"Time":"2024-05-01T10:00:00.009Z","Action":"skip","Package":"example.com/shop/cart","Test":"TestLegacy","Elapsed":0}
{"Time":"2024-05-01T10:00:00.010Z","Action":"output","Package":"example.com/shop/cart","Output":"FAIL\n"}
{"Time":"2024-05-01T10:00:00.010Z","Action":"output","Package":"example.com/shop/cart","Output":"FAIL\texample.com/shop/cart\t0.270s\n"}
{"Time":"2024-05-01T10:00:00.010Z","Action":"fail","Package":"example.com/shop/cart","Elapsed":0.27}
"#;

    #[test]
    fn interleaved_parallel_subtests() {
        let (results, verdict) = run(PARALLEL, None);
        assert!(verdict.problems.is_empty());
        let names: Vec<String> = results.iter().map(TestResult::name).collect();
        assert_eq!(
            names,
            [
                "example.com/shop/cart/TestDiscount/percent",
                "example.com/shop/cart/TestTotal/empty",
                "example.com/shop/cart/TestTotal/many",
                "example.com/shop/cart/TestTotal",
                "example.com/shop/cart/TestDiscount",
                "example.com/shop/cart/TestLegacy",
            ]
        );
        let pct = find(&results, "example.com/shop/cart/TestDiscount/percent");
        assert_eq!(
            pct.path,
            ["example.com/shop/cart", "TestDiscount", "percent"]
        );
        assert_eq!(pct.status, TestStatus::Failed);
        assert_eq!(pct.duration, Some(Duration::from_millis(250)));
        assert_eq!(
            pct.message.as_deref(),
            Some("cart_test.go:41: got 90, want 85")
        );
        assert_eq!(
            pct.output,
            "=== RUN   TestDiscount/percent\n    cart_test.go:41: got 90, want 85\n--- FAIL: TestDiscount/percent (0.00s)\n"
        );
        let many = find(&results, "example.com/shop/cart/TestTotal/many");
        assert_eq!(many.status, TestStatus::Passed);
        assert_eq!(many.duration, Some(Duration::from_millis(10)));
        assert!(!many.output.contains("got 90"));
        let parent = find(&results, "example.com/shop/cart/TestDiscount");
        assert_eq!(parent.status, TestStatus::Failed);
        assert!(!parent.output.contains("got 90"));
        assert!(parent.output.contains("--- FAIL: TestDiscount (0.26s)"));
        let skip = find(&results, "example.com/shop/cart/TestLegacy");
        assert_eq!(
            skip.status,
            TestStatus::Skipped(Some("needs the v1 API server".into()))
        );
        // The package failed because of its tests: no package result.
        assert!(results.iter().all(|r| r.path.len() > 1));
        assert_eq!(rerun_pattern(&results), "^(TestDiscount)$");
    }

    #[test]
    fn panic_mid_test_cut_short() {
        let input = r#"{"Action":"start","Package":"example.com/svc"}
{"Action":"run","Package":"example.com/svc","Test":"TestFast"}
{"Action":"output","Package":"example.com/svc","Test":"TestFast","Output":"=== RUN   TestFast\n"}
{"Action":"run","Package":"example.com/svc","Test":"TestHang"}
{"Action":"output","Package":"example.com/svc","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"example.com/svc","Test":"TestFast","Output":"--- PASS: TestFast (0.00s)\n"}
{"Action":"pass","Package":"example.com/svc","Test":"TestFast","Elapsed":0.001}
{"Action":"output","Package":"example.com/svc","Test":"TestHang","Output":"waiting for lock\n"}
{"Action":"output","Package":"example.com/svc","Test":"TestHang","Output":"panic: runtime error: invalid memory address or nil pointer dereference\n"}
{"Action":"output","Package":"example.com/svc","Test":"TestHang","Output":"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4f1a2c]\n"}
{"Action":"output","Package":"example.com/svc","Test":"TestHang","Output":"goroutine 7 [running]:\n"}"#;
        let (results, verdict) = run(input, Some("timed out after 5s"));
        assert_eq!(
            verdict.problems,
            ["example.com/svc: the output ended before the package's result (timed out after 5s)"]
        );
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].name(), "example.com/svc/TestFast");
        let hang = &results[1];
        assert_eq!(hang.path, ["example.com/svc", "TestHang"]);
        assert_eq!(hang.status, TestStatus::Error("timed-out".into()));
        assert_eq!(hang.message.as_deref(), Some("timed out after 5s"));
        assert!(hang.output.contains("panic: runtime error"));
        assert!(hang.output.contains("goroutine 7 [running]:"));
        assert!(!hang.output.contains("TestFast"));

        // Not cut short: the binary died by itself.
        let (results, _) = run(input, None);
        assert_eq!(
            results[1].message.as_deref(),
            Some("panic: runtime error: invalid memory address or nil pointer dereference")
        );
        let no_panic = r#"{"Action":"run","Package":"p","Test":"TestA"}"#;
        let (results, _) = run(no_panic, None);
        assert_eq!(results[0].message.as_deref(), Some(NO_RESULT));
    }

    #[test]
    fn panic_then_package_fail_ends_open_tests() {
        let input = r#"{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Test":"TestA","Output":"panic: boom\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t0.01s\n"}
{"Action":"fail","Package":"p","Elapsed":0.01}"#;
        let (results, _) = run(input, Some("late"));
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].name(), "p/TestA");
        assert_eq!(results[0].message.as_deref(), Some("panic: boom"));
    }

    #[test]
    fn build_failure_is_a_package_result() {
        let input = "# example.com/shop/pay [example.com/shop/pay.test]
pay/pay_test.go:14:2: undefined: chargeCard
{\"Time\":\"2024-05-01T10:00:00Z\",\"Action\":\"start\",\"Package\":\"example.com/shop/pay\"}
{\"Time\":\"2024-05-01T10:00:00Z\",\"Action\":\"output\",\"Package\":\"example.com/shop/pay\",\"Output\":\"FAIL\\texample.com/shop/pay [build failed]\\n\"}
{\"Time\":\"2024-05-01T10:00:00Z\",\"Action\":\"fail\",\"Package\":\"example.com/shop/pay\",\"Elapsed\":0}
{\"Action\":\"start\",\"Package\":\"example.com/shop/ok\"}
{\"Action\":\"output\",\"Package\":\"example.com/shop/ok\",\"Output\":\"ok  \\texample.com/shop/ok\\t0.01s\\n\"}
{\"Action\":\"pass\",\"Package\":\"example.com/shop/ok\",\"Elapsed\":0.01}
{\"Action\":\"start\",\"Package\":\"example.com/shop/db\"}
{\"Action\":\"output\",\"Package\":\"example.com/shop/db\",\"Output\":\"panic: init: no DSN\\n\"}
{\"Action\":\"output\",\"Package\":\"example.com/shop/db\",\"Output\":\"FAIL\\texample.com/shop/db\\t0.003s\\n\"}
{\"Action\":\"fail\",\"Package\":\"example.com/shop/db\",\"Elapsed\":0.003}
";
        let (results, verdict) = run(input, None);
        assert!(verdict.problems.is_empty());
        assert_eq!(results.len(), 2, "{results:#?}");
        let pay = &results[0];
        assert_eq!(pay.path, ["example.com/shop/pay"]);
        assert_eq!(pay.status, TestStatus::Failed);
        assert_eq!(pay.message.as_deref(), Some("build failed"));
        assert_eq!(
            pay.output,
            "# example.com/shop/pay [example.com/shop/pay.test]\n\
             pay/pay_test.go:14:2: undefined: chargeCard\n\
             FAIL\texample.com/shop/pay [build failed]\n"
        );
        let db = &results[1];
        assert_eq!(db.path, ["example.com/shop/db"]);
        assert_eq!(db.message.as_deref(), Some("panic: init: no DSN"));
        assert!(!db.output.contains("chargeCard"));
        assert_eq!(rerun_pattern(&results), "");
    }

    #[test]
    fn output_after_end_and_benchmarks_are_not_tests() {
        let input = r#"{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0}
{"Action":"output","Package":"p","Test":"TestA","Output":"late log line\n"}
{"Action":"output","Package":"p","Test":"BenchmarkSum","Output":"BenchmarkSum-8   \t 1000000\t      1053 ns/op\n"}
{"Action":"output","Package":"p","Test":"BenchmarkLog","Output":"    sum_test.go:30: warmed up\n"}
{"Action":"bench","Package":"p","Test":"BenchmarkLog","Elapsed":1.5}
{"Action":"output","Package":"p","Output":"PASS\n"}
{"Action":"pass","Package":"p","Elapsed":2.1}"#;
        let (results, _) = run(input, Some("cut"));
        let names: Vec<String> = results.iter().map(TestResult::name).collect();
        assert_eq!(names, ["p/TestA", "p/BenchmarkLog"]);
        assert_eq!(results[1].status, TestStatus::Passed);
        assert_eq!(results[1].output, "    sum_test.go:30: warmed up\n");
    }

    #[test]
    fn rerun_pattern_escapes_dedups_sorts() {
        let r = |path: &[&str], status| TestResult {
            path: path.iter().map(|s| s.to_string()).collect(),
            status,
            duration: None,
            output: String::new(),
            message: None,
        };
        let failed = [
            r(&["p", "TestZ", "sub"], TestStatus::Failed),
            r(&["p", "TestZ"], TestStatus::Failed),
            r(&["q", "TestA.b"], TestStatus::Failed),
            r(&["q", "TestOk"], TestStatus::Passed),
        ];
        assert_eq!(rerun_pattern(&failed), r"^(TestA\.b|TestZ)$");
    }

    fn event_line() -> impl Strategy<Value = Vec<u8>> {
        let action = prop::sample::select(vec![
            "run", "pause", "cont", "pass", "fail", "skip", "output", "start", "bench",
        ]);
        let test = prop::option::of(prop::sample::select(vec!["TestA", "TestA/x", "TestB", ""]));
        let out = prop::option::of(".{0,300}");
        (action, test, out, any::<f64>()).prop_map(|(a, t, o, e)| {
            let mut v = serde_json::json!({"Action": a, "Package": "p"});
            if let Some(t) = t {
                v["Test"] = t.into();
            }
            if let Some(o) = o {
                v["Output"] = (o + "\n").into();
            }
            if e.is_finite() {
                v["Elapsed"] = e.into();
            }
            v.to_string().into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics_and_bounds_output(
            lines in prop::collection::vec(
                prop_oneof![
                    4 => prop::collection::vec(any::<u8>(), 0..2000),
                    4 => event_line(),
                    1 => prop::collection::vec(any::<u8>(), 70_000..70_001),
                ],
                0..60,
            ),
            cut in prop::option::of(".{0,20}"),
        ) {
            let (done, _) = parse_lines(
                Box::new(GoJsonParser::new()),
                lines.iter().map(Vec::as_slice),
                cut.as_deref(),
            );
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200, "{}", r.output.len());
            }
        }
    }
}
