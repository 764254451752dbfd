//! `go test -json` (test2json) events, one JSON object a line:
//!
//! ```text
//! {"Time":"…","Action":"run","Package":"example.com/m","Test":"TestSum"}
//! {"Time":"…","Action":"output","Package":"example.com/m","Test":"TestSum","Output":"    sum_test.go:12: got 3 want 4\n"}
//! {"Time":"…","Action":"fail","Package":"example.com/m","Test":"TestSum","Elapsed":0.01}
//! {"Time":"…","Action":"fail","Package":"example.com/m","Elapsed":0.02}
//! ```
//!
//! Parallel tests interleave, so state is kept per (package, test). Lines
//! that are not test2json events (build errors, `go vet` output printed
//! before the test binary ran) are kept as package-less output and attached
//! to the next package-level failure.
//!
//! A failing test's message is the line that says what failed: its panic
//! (`panic: …`, or `test timed out after 3s` for go's own `-timeout`), else
//! the first failing subtest's message (a parent's own `t.Log` lines can't
//! be told from `t.Error`'s, and a subtest's failure is why it failed),
//! else its last `file_test.go:N: text` line.
//!
//! A test that started (`run`) and has no `pass`/`fail`/`skip` when its
//! package's binary ended is failed (its message: go's timeout, which
//! lists the running tests as `running tests:` / `\tTestHang (3s)` since
//! Go 1.20, or its panic, else `no result`); when the whole output ended
//! first, it gets how the batch ended ([`Ended::result`]).
//!
//! Durations are test2json's `Elapsed` (clamped: it is a float from the
//! test binary); a test without one gets the time from its `run` event's
//! arrival to its end's.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult};
use crate::status::TestStatus;
use crate::text::clip_message;

/// Most names kept from a timeout's `running tests:` list (it lists each
/// running test once, but the input may be anything).
const MAX_LISTED: usize = 10_000;

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
    /// When its `run` event arrived.
    started_at: Option<Duration>,
    output: OutputTail,
    /// The last `    file_test.go:12: text` line's text: a skip's reason.
    last_log: Option<String>,
    /// The first `panic: …` line (go's timeout: `test timed out after 3s`).
    panic: Option<String>,
    /// The message of its first failing subtest.
    sub_failure: Option<String>,
}

#[derive(Default)]
struct PackageState {
    output: OutputTail,
    /// A test of this package failed (so a package `fail` is explained).
    test_failed: bool,
    /// When its `start` event (or first event) arrived.
    started_at: Option<Duration>,
    /// Go's own `-timeout` fired: `test timed out after 3s`.
    timeout: Option<String>,
    /// Reading the timeout's `running tests:` list.
    listing: bool,
    /// The tests that list names.
    listed: Vec<String>,
}

impl PackageState {
    /// Notes go's timeout panic and the running tests it lists, from any
    /// output line of the package (test2json gives it to whichever test
    /// printed last, or to the package).
    fn note(&mut self, line: &str) {
        if self.listing {
            match line.strip_prefix('\t') {
                Some(entry) if self.listed.len() < MAX_LISTED => {
                    // `TestHang (3s)` → `TestHang` (go names have no spaces).
                    let name = entry.rsplit_once(" (").map_or(entry, |(n, _)| n);
                    self.listed.push(name.trim().to_owned());
                }
                Some(_) => {}
                None => self.listing = false,
            }
            return;
        }
        if self.timeout.is_none()
            && let Some(t) = line.trim_start().strip_prefix("panic: ")
            && t.starts_with("test timed out after ")
        {
            self.timeout = Some(clip_message(t.trim_end()));
        } else if self.timeout.is_some() && line.trim_end() == "running tests:" {
            self.listing = true;
        }
    }

    /// The timeout's message for `test` if the timeout caught it running.
    fn timed_out(&self, test: &str) -> Option<&str> {
        let t = self.timeout.as_deref()?;
        // Before Go 1.20 there is no list: every open test was running.
        (self.listed.is_empty() || self.listed.iter().any(|n| n == test)).then_some(t)
    }
}

/// Parser of `go test -json` output.
#[derive(Default)]
pub struct GoJsonParser {
    tests: HashMap<(String, String), TestState>,
    packages: HashMap<String, PackageState>,
    /// Lines that were not test2json events.
    loose: OutputTail,
    seq: u64,
    /// The latest line's arrival.
    last_at: Duration,
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

    fn package(&mut self, package: &str, at: Duration) -> &mut PackageState {
        let p = self.packages.entry(package.to_owned()).or_default();
        p.started_at.get_or_insert(at);
        p
    }

    fn event(&mut self, ev: Event, at: Duration, done: &mut Vec<TestResult>) {
        let package = ev.package.unwrap_or_default();
        let test = ev.test.filter(|t| !t.is_empty());
        match (ev.action.as_str(), test) {
            ("output", Some(test)) => {
                let out = ev.output.unwrap_or_default();
                let pkg = self.package(&package, at);
                for line in output_lines(&out) {
                    pkg.note(line);
                }
                let state = self.test_state(&package, &test);
                for line in output_lines(&out) {
                    note_line(state, line);
                    state.output.push_line(line.as_bytes());
                }
            }
            ("output", None) => {
                let out = ev.output.unwrap_or_default();
                let state = self.package(&package, at);
                for line in output_lines(&out) {
                    state.note(line);
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
                let message = match status {
                    // Go's timeout naming it (newer test2json may end the
                    // running tests itself), else its own lines.
                    TestStatus::Failed => self
                        .packages
                        .get(&package)
                        .and_then(|p| p.timed_out(&test))
                        .map(str::to_owned)
                        .or_else(|| failure_message(&state)),
                    _ => None,
                };
                if status == TestStatus::Failed {
                    self.package(&package, at).test_failed = true;
                    // The parent's message, if it has none of its own.
                    if let Some((parent, _)) = test.rsplit_once('/')
                        && let Some(p) = self.tests.get_mut(&(package.clone(), parent.to_owned()))
                        && p.sub_failure.is_none()
                    {
                        p.sub_failure = message.clone();
                    }
                }
                let duration = ev
                    .elapsed
                    .and_then(seconds)
                    .or_else(|| state.started_at.map(|s| at.saturating_sub(s)));
                done.push(TestResult {
                    path: test_path(&package, &test),
                    status,
                    duration,
                    output: state.output.text(),
                    message,
                });
            }
            ("pass" | "fail" | "skip", None) => {
                self.package_end(&package, ev.action == "fail", ev.elapsed, at, done);
            }
            ("run" | "pause" | "cont", Some(test)) => {
                self.package(&package, at);
                let state = self.test_state(&package, &test);
                state.started = true;
                state.started_at.get_or_insert(at);
            }
            ("start", None) => {
                self.package(&package, at);
            }
            _ => {}
        }
    }

    /// The open tests of `package` (all packages if `None`) that started,
    /// in start order.
    fn take_open(&mut self, package: Option<&str>) -> Vec<((String, String), TestState)> {
        let keys: Vec<(String, String)> = self
            .tests
            .keys()
            .filter(|(p, _)| package.is_none_or(|want| p == want))
            .cloned()
            .collect();
        let mut open: Vec<((String, String), TestState)> = keys
            .into_iter()
            .filter_map(|k| self.tests.remove(&k).map(|s| (k, s)))
            .filter(|(_, s)| s.started)
            .collect();
        open.sort_by_key(|(_, s)| s.seq);
        open
    }

    /// The result of a test that never ended: `ended`'s, but a test whose
    /// binary exited by itself gets the line that says why if it has one
    /// (go's timeout naming it, its panic) rather than `no result`.
    fn cut_off(
        &self,
        ended: &Ended,
        package: &str,
        test: &str,
        state: TestState,
        pkg: Option<&PackageState>,
    ) -> TestResult {
        let duration = state.started_at.map(|s| self.last_at.saturating_sub(s));
        let own = pkg
            .and_then(|p| p.timed_out(test))
            .map(str::to_owned)
            .or_else(|| state.panic.clone());
        let mut r = ended.result(test_path(package, test), state.output.text(), duration);
        if ended.status == TestStatus::Failed
            && let Some(m) = own
        {
            r.message = Some(m);
        }
        r
    }

    /// The package's test binary ended: tests still open never will.
    fn package_end(
        &mut self,
        package: &str,
        failed: bool,
        elapsed: Option<f64>,
        at: Duration,
        done: &mut Vec<TestResult>,
    ) {
        let open = self.take_open(Some(package));
        let state = self.packages.remove(package).unwrap_or_default();
        let mut test_failed = state.test_failed;
        let exited = Ended::exited();
        for ((_, test), t) in open {
            test_failed = true;
            done.push(self.cut_off(&exited, package, &test, t, Some(&state)));
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
            } else if let Some(t) = &state.timeout {
                t.clone()
            } else if let Some(p) = pkg_text.lines().find(|l| l.starts_with("panic: ")) {
                clip_message(p)
            } else {
                "the package failed without a failing test".to_owned()
            };
            let duration = elapsed
                .and_then(seconds)
                .or_else(|| state.started_at.map(|s| at.saturating_sub(s)));
            done.push(TestResult {
                path: package_path(package),
                status: TestStatus::Failed,
                duration,
                output: out.text(),
                message: Some(message),
            });
        }
    }
}

impl Parser for GoJsonParser {
    fn line(&mut self, line: &[u8], at: Duration, done: &mut Vec<TestResult>) {
        self.last_at = self.last_at.max(at);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii_start();
        if trimmed.first() == Some(&b'{')
            && let Ok(ev) = serde_json::from_slice::<Event>(trimmed)
        {
            self.event(ev, at, done);
            return;
        }
        self.loose
            .push_line(String::from_utf8_lossy(line).as_bytes());
    }

    fn finish(mut self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let open = self.take_open(None);
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
            .map(|p| {
                format!(
                    "{p}: the output ended before the package's result ({})",
                    ended.reason
                )
            })
            .collect();
        let results = open
            .into_iter()
            .map(|((package, test), t)| {
                self.cut_off(ended, &package, &test, t, self.packages.get(&package))
            })
            .collect();
        (results, StreamVerdict { problems })
    }
}

/// `go test -run` pattern rerunning the failed tests' top-level tests:
/// `^(TestA|TestB)$`. Empty when no test (only packages) failed. Tests cut
/// off by the batch's end count as failed: they are what a rerun is for.
pub fn rerun_pattern(failed: &[TestResult]) -> String {
    let mut names: Vec<&str> = failed
        .iter()
        .filter(|r| r.status.is_failure())
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

/// `    foo_test.go:12: reason` → `reason`: the form `t.Error`, `t.Fatal`,
/// `t.Skip` and `t.Log` output takes.
fn go_log(line: &str) -> Option<&str> {
    let (loc, text) = line.trim_start().split_once(": ")?;
    let (file, lineno) = loc.rsplit_once(':')?;
    (file.ends_with(".go") && !lineno.is_empty() && lineno.bytes().all(|b| b.is_ascii_digit()))
        .then_some(text)
}

fn note_line(state: &mut TestState, line: &str) {
    let t = line.trim_start();
    if state.panic.is_none()
        && let Some(p) = t.strip_prefix("panic: ")
    {
        state.panic = Some(if p.starts_with("test timed out after ") {
            clip_message(p.trim_end())
        } else {
            clip_message(t.trim_end())
        });
    }
    if let Some(text) = go_log(line) {
        state.last_log = Some(clip_message(text.trim()));
    }
}

/// What a failed test's message is (see the module doc).
fn failure_message(state: &TestState) -> Option<String> {
    if let Some(p) = &state.panic {
        return Some(p.clone());
    }
    if let Some(s) = &state.sub_failure {
        return Some(s.clone());
    }
    // Go's own `=== RUN` / `--- FAIL: TestX (0.00s)` lines say nothing.
    let output = state.output.text();
    let own: String = output
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !t.starts_with("--- ") && !t.starts_with("=== ")
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    super::telling_line(&own, |l| go_log(l).is_some())
}

fn push_text(tail: &mut OutputTail, text: &str) {
    for line in output_lines(text) {
        tail.push_line(line.as_bytes());
    }
}

/// test2json's `Elapsed` seconds: negative is 0, absurdly large is
/// clamped, NaN is no duration (then it is measured from arrival times).
fn seconds(s: f64) -> Option<Duration> {
    super::reported_seconds(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::MAX_TEST_OUTPUT;
    use crate::parsers::test_support::{Parsed, ended, feed, find, parse};
    use proptest::prelude::*;

    fn run(input: &str, cut_short: Option<&str>) -> Parsed {
        parse(GoJsonParser::new(), input, cut_short)
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
        assert_eq!(results[0].message.as_deref(), Some("no result"));
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

    /// Recorded with go1.19.8 on the build machine (`go test -json
    /// -timeout 2s`; `Time` fields and most of the goroutine dump cut):
    /// go's own timeout, before Go 1.20 named no running tests.
    const GO119_TIMEOUT: &str = r#"{"Action":"run","Package":"example.com/gm","Test":"TestOk"}
{"Action":"output","Package":"example.com/gm","Test":"TestOk","Output":"=== RUN   TestOk\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestOk","Output":"    x_test.go:5: fine\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestOk","Output":"--- PASS: TestOk (0.00s)\n"}
{"Action":"pass","Package":"example.com/gm","Test":"TestOk","Elapsed":0}
{"Action":"run","Package":"example.com/gm","Test":"TestFail"}
{"Action":"output","Package":"example.com/gm","Test":"TestFail","Output":"=== RUN   TestFail\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestFail","Output":"    x_test.go:6: setting up\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestFail","Output":"    x_test.go:6: got 3 want 4\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestFail","Output":"--- FAIL: TestFail (0.00s)\n"}
{"Action":"fail","Package":"example.com/gm","Test":"TestFail","Elapsed":0}
{"Action":"run","Package":"example.com/gm","Test":"TestSub"}
{"Action":"output","Package":"example.com/gm","Test":"TestSub","Output":"=== RUN   TestSub\n"}
{"Action":"run","Package":"example.com/gm","Test":"TestSub/a"}
{"Action":"output","Package":"example.com/gm","Test":"TestSub/a","Output":"=== RUN   TestSub/a\n"}
{"Action":"run","Package":"example.com/gm","Test":"TestSub/b"}
{"Action":"output","Package":"example.com/gm","Test":"TestSub/b","Output":"=== RUN   TestSub/b\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestSub/b","Output":"    x_test.go:9: b broke\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestSub","Output":"--- FAIL: TestSub (0.00s)\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestSub/a","Output":"    --- PASS: TestSub/a (0.00s)\n"}
{"Action":"pass","Package":"example.com/gm","Test":"TestSub/a","Elapsed":0}
{"Action":"output","Package":"example.com/gm","Test":"TestSub/b","Output":"    --- FAIL: TestSub/b (0.00s)\n"}
{"Action":"fail","Package":"example.com/gm","Test":"TestSub/b","Elapsed":0}
{"Action":"fail","Package":"example.com/gm","Test":"TestSub","Elapsed":0}
{"Action":"run","Package":"example.com/gm","Test":"TestHang"}
{"Action":"output","Package":"example.com/gm","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"run","Package":"example.com/gm","Test":"TestHang/inner"}
{"Action":"output","Package":"example.com/gm","Test":"TestHang/inner","Output":"=== RUN   TestHang/inner\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestHang/inner","Output":"panic: test timed out after 2s\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestHang/inner","Output":"\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestHang/inner","Output":"goroutine 5 [running]:\n"}
{"Action":"output","Package":"example.com/gm","Test":"TestHang/inner","Output":"testing.(*M).startAlarm.func1()\n"}
{"Action":"output","Package":"example.com/gm","Output":"FAIL\texample.com/gm\t2.006s\n"}
{"Action":"fail","Package":"example.com/gm","Elapsed":2.006}"#;

    #[test]
    fn messages_subtests_and_go119_timeout() {
        let (results, verdict) = run(GO119_TIMEOUT, None);
        assert!(verdict.problems.is_empty(), "{:?}", verdict.problems);
        let status = |n: &str| {
            find(&results, &format!("example.com/gm/{n}"))
                .status
                .clone()
        };
        let message = |n: &str| {
            find(&results, &format!("example.com/gm/{n}"))
                .message
                .clone()
        };
        assert_eq!(status("TestOk"), TestStatus::Passed);
        // The last log line says what failed, not `setting up`.
        assert_eq!(
            message("TestFail").as_deref(),
            Some("x_test.go:6: got 3 want 4")
        );
        assert_eq!(
            message("TestSub/b").as_deref(),
            Some("x_test.go:9: b broke")
        );
        // The parent says why: its first failing subtest's line, never
        // its own `=== RUN` / `--- FAIL` lines.
        assert_eq!(status("TestSub"), TestStatus::Failed);
        assert_eq!(message("TestSub").as_deref(), Some("x_test.go:9: b broke"));
        // Go's timeout: both open tests fail with it, under their names.
        for t in ["TestHang", "TestHang/inner"] {
            assert_eq!(status(t), TestStatus::Failed, "{t}");
            assert_eq!(
                message(t).as_deref(),
                Some("test timed out after 2s"),
                "{t}"
            );
        }
        // Explained by its tests: no package result.
        assert_eq!(results.len(), 7, "{results:#?}");
        assert_eq!(rerun_pattern(&results), "^(TestFail|TestHang|TestSub)$");
    }

    /// Synthetic, in the shape Go 1.20+ prints: the timeout panic names
    /// the running tests; a paused parallel test that never continued is
    /// not among them.
    #[test]
    fn timeout_lists_running_tests() {
        let input = r#"{"Action":"start","Package":"m"}
{"Action":"run","Package":"m","Test":"TestHang"}
{"Action":"run","Package":"m","Test":"TestWaits"}
{"Action":"output","Package":"m","Test":"TestWaits","Output":"=== PAUSE TestWaits\n"}
{"Action":"pause","Package":"m","Test":"TestWaits"}
{"Action":"output","Package":"m","Test":"TestHang","Output":"panic: test timed out after 3s\n"}
{"Action":"output","Package":"m","Output":"running tests:\n"}
{"Action":"output","Package":"m","Output":"\tTestHang (3s)\n"}
{"Action":"output","Package":"m","Output":"\n"}
{"Action":"output","Package":"m","Output":"goroutine 17 [running]:\n"}
{"Action":"output","Package":"m","Output":"FAIL\tm\t3.010s\n"}
{"Action":"fail","Package":"m","Elapsed":3.01}"#;
        let (results, verdict) = run(input, None);
        assert!(verdict.problems.is_empty());
        assert_eq!(results.len(), 2, "{results:#?}");
        let hang = find(&results, "m/TestHang");
        assert_eq!(hang.status, TestStatus::Failed);
        assert_eq!(hang.message.as_deref(), Some("test timed out after 3s"));
        let waits = find(&results, "m/TestWaits");
        assert_eq!(waits.status, TestStatus::Failed);
        assert_eq!(waits.message.as_deref(), Some("no result"));

        // Cut off by the batch before the package's end: the batch's
        // status and reason.
        let cut = input
            .rsplit_once("\n{\"Action\":\"fail\"")
            .map_or(input, |(h, _)| h);
        let (results, verdict) = run(cut, Some("timed out after 5s"));
        assert_eq!(verdict.problems.len(), 1);
        let hang = find(&results, "m/TestHang");
        assert_eq!(hang.status, TestStatus::Error("timed-out".into()));
        assert_eq!(hang.message.as_deref(), Some("timed out after 5s"));
    }

    #[test]
    fn elapsed_is_clamped_or_measured() {
        let input = r#"{"Action":"run","Package":"p","Test":"TestNeg"}
{"Action":"pass","Package":"p","Test":"TestNeg","Elapsed":-3}
{"Action":"run","Package":"p","Test":"TestHuge"}
{"Action":"pass","Package":"p","Test":"TestHuge","Elapsed":1e19}
{"Action":"run","Package":"p","Test":"TestNone"}
{"Action":"output","Package":"p","Test":"TestNone","Output":"x\n"}
{"Action":"output","Package":"p","Test":"TestNone","Output":"y\n"}
{"Action":"pass","Package":"p","Test":"TestNone"}
{"Action":"run","Package":"p","Test":"TestOpen"}
{"Action":"output","Package":"p","Test":"TestOpen","Output":"z\n"}"#;
        let (results, _) = run(input, Some("cut"));
        let d = |n: &str| find(&results, n).duration;
        assert_eq!(d("p/TestNeg"), Some(Duration::ZERO));
        assert_eq!(d("p/TestHuge"), Some(super::super::MAX_REPORTED_TIME));
        // One millisecond a line in these tests: from `run` to `pass`.
        assert_eq!(d("p/TestNone"), Some(Duration::from_millis(3)));
        assert_eq!(d("p/TestOpen"), Some(Duration::from_millis(1)));
        assert_eq!(seconds(f64::NAN), None);
        assert_eq!(
            seconds(f64::INFINITY),
            Some(super::super::MAX_REPORTED_TIME)
        );
        assert_eq!(seconds(f64::NEG_INFINITY), Some(Duration::ZERO));
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
            r(&["q", "TestCut"], TestStatus::Error("timed-out".into())),
        ];
        assert_eq!(rerun_pattern(&failed), r"^(TestA\.b|TestCut|TestZ)$");
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
            let (done, _) = feed(
                GoJsonParser::new(),
                lines.iter().map(Vec::as_slice),
                &ended(cut.as_deref()),
            );
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200, "{}", r.output.len());
            }
        }
    }
}
