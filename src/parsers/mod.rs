//! Test-output parsers: a batch's output, line by line as it arrives, into
//! test and subtest results (issue 5). Each format is one file; all share
//! the streaming interface below. Parsers never panic and keep going after
//! garbage; memory is bounded per test (see [`MAX_TEST_OUTPUT`]).
//!
//! Not wired into the supervisor yet: the next step feeds the capture
//! thread's lines here and reports the results in JUnit and the summary.

use std::time::Duration;

use crate::status::{Status, TestStatus};
use crate::text::{clip_message, tail};

pub mod clip;
mod format;
pub mod gotest;
pub mod junit;
pub mod libtest;
pub mod ltp;
pub mod names;
#[cfg(test)]
mod real_fixtures;
pub mod repeat;
pub mod tap;
pub mod test_progs;
#[cfg(test)]
pub(crate) mod test_support;

pub use format::for_format;

/// The most output kept per test (its last bytes); older output is dropped
/// with a note, so a test printing gigabytes can't exhaust memory.
pub const MAX_TEST_OUTPUT: usize = 64 * 1024;

/// One test or subtest result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// The test's path: `["btf_dump", "btf_dump: struct_data"]`, or
    /// `["net", "test_bpf.sh"]` for kselftest; joined with `/` for display.
    pub path: Vec<String>,
    pub status: TestStatus,
    pub duration: Option<Duration>,
    /// That test's own output (the last [`MAX_TEST_OUTPUT`] bytes, lossily
    /// decoded), used as the JUnit failure text.
    pub output: String,
    /// A short reason when the format gives one (a TAP diagnostic's
    /// `message`, `TIMEOUT 45 seconds`, `exit=1`, the batch's reason for a
    /// test cut off by a timeout).
    pub message: Option<String>,
}

impl TestResult {
    pub fn name(&self) -> String {
        self.path.join("/")
    }
}

/// Drops the output of passing and skipped tests: only failures (and flaky
/// tests, for their failed attempt) keep theirs, unless the batch has
/// `store-success-output`. The streaming feed applies it as results arrive,
/// the JUnit reader once after the batch.
pub fn drop_success_output(results: &mut [TestResult]) {
    for r in results {
        if matches!(r.status, TestStatus::Passed | TestStatus::Skipped(_)) {
            r.output = String::new();
        }
    }
}

/// What a parser concluded about the whole stream, beyond single tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamVerdict {
    /// Problems that make the batch fail even if every test passed: a TAP
    /// plan missing or not met, `Bail out!`, a summary line that disagrees.
    pub problems: Vec<String>,
}

/// A streaming parser of one batch's output.
pub trait Parser: Send {
    /// One line of output, without its line terminator (`\n` or `\r\n`).
    /// May be invalid UTF-8, contain NULs, or be arbitrarily long. `at` is
    /// when it arrived, from the batch's start: durations of tests whose
    /// format gives none are measured from these. Results of tests that
    /// finished with this line are appended to `done`.
    fn line(&mut self, line: &[u8], at: Duration, done: &mut Vec<TestResult>);

    /// The output ended. A test that started and has no result (the batch
    /// crashed, hung, was stopped) is reported under its real name with
    /// `ended`'s status and reason. Returns the remaining results and the
    /// verdict.
    fn finish(self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict);
}

/// How the batch's output ended, for the tests still running then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// What a test still running gets: `Failed` when the batch exited by
    /// itself, `Error(type)` when it was cut off ([`TestStatus::cut_off`]).
    pub status: TestStatus,
    /// The batch's reason (`timed out after 5s; …`), or `no result` when
    /// the batch exited by itself.
    pub reason: String,
}

impl Ended {
    /// The batch exited by itself: a test without a result failed.
    pub fn exited() -> Ended {
        Ended {
            status: TestStatus::Failed,
            reason: "no result".to_string(),
        }
    }

    /// The batch ended with `status` and `reason`.
    pub fn batch(status: Status, reason: &str) -> Ended {
        let status = TestStatus::cut_off(status);
        let reason = if status == TestStatus::Failed {
            "no result".to_string()
        } else {
            reason.to_string()
        };
        Ended { status, reason }
    }

    /// A test cut off: its result with this status and reason.
    pub fn result(
        &self,
        path: Vec<String>,
        output: String,
        duration: Option<Duration>,
    ) -> TestResult {
        TestResult {
            path,
            status: self.status.clone(),
            duration,
            output,
            message: Some(self.reason.clone()),
        }
    }
}

/// The line of a failing test's output that says what failed: the last
/// line `telling` accepts (a format's assertion or panic line), else the
/// last non-blank line that is not a banner (`RUN`, `Starting`, `Running`,
/// `PASS`/`ok` lines of other tests), clipped to [`MAX_MESSAGE`](crate::text::MAX_MESSAGE). `None`
/// when the output has no such line.
pub fn telling_line(output: &str, telling: impl Fn(&str) -> bool) -> Option<String> {
    let lines = || {
        output
            .lines()
            .rev()
            .map(|l| l.trim_start_matches(['#', ' ', '\t']).trim_end())
            .filter(|l| !l.is_empty() && !l.starts_with("[warden: "))
    };
    let pick = lines()
        .find(|l| telling(l))
        .or_else(|| lines().find(|l| !is_banner(l)))?;
    Some(clip_message(pick))
}

/// Lines that announce a test rather than say how it ended.
fn is_banner(line: &str) -> bool {
    const BANNERS: [&str; 10] = [
        "RUN ",
        "=== RUN",
        "=== PAUSE",
        "=== CONT",
        "Starting ",
        "Running ",
        "running ",
        "--- PASS",
        "ok ",
        "PASS",
    ];
    let l = line.trim_start_matches(['=', ' ']);
    BANNERS
        .iter()
        .any(|b| line.starts_with(b) || l.starts_with(b))
        || line.starts_with("Running test")
        || line == "RUN"
}

/// The longest time a test's output may say it took: a year, as a JUnit
/// `time` ([`junit::MAX_TIME`]). The number is whatever the line says.
pub const MAX_REPORTED_TIME: Duration = Duration::from_secs(366 * 24 * 3600);

/// A time a test's output reports, in seconds (TAP `time=`, go's
/// `Elapsed`, libtest's `<0.01s>`), clamped to 0 to [`MAX_REPORTED_TIME`]:
/// negative is zero, longer or infinite is a year, NaN is none (the time
/// is then measured from the lines' arrival). Never panics.
pub(crate) fn reported_seconds(secs: f64) -> Option<Duration> {
    if secs.is_nan() {
        return None;
    }
    // In range after the clamp, so the conversion cannot fail.
    Duration::try_from_secs_f64(secs.clamp(0.0, MAX_REPORTED_TIME.as_secs_f64())).ok()
}

/// What starts a test's output when its beginning was dropped.
pub const DROPPED_NOTE: &str = "[warden: earlier output of this test dropped]\n";

/// Keeps the last [`MAX_TEST_OUTPUT`] bytes of a test's output.
#[derive(Debug, Clone, Default)]
pub struct OutputTail {
    buf: Vec<u8>,
    dropped: bool,
}

impl OutputTail {
    pub fn push_line(&mut self, line: &[u8]) {
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        if self.buf.len() > MAX_TEST_OUTPUT {
            let cut = self.buf.len() - MAX_TEST_OUTPUT;
            self.buf.drain(..cut);
            self.dropped = true;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.dropped = false;
    }

    /// The kept output, lossily decoded, with a note if the start was
    /// dropped. Bounded again after decoding: each invalid byte becomes a
    /// 3-byte U+FFFD, so 64 KiB of garbage would otherwise come out as 192 KiB.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        let kept = tail(&text, MAX_TEST_OUTPUT);
        if self.dropped || kept.len() < text.len() {
            format!("{DROPPED_NOTE}{kept}")
        } else {
            text.into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telling_line_skips_banners() {
        let out = "#  RUN           global.attach ...\n# file.c:54:attach:Expected 0 (0) == ret (-1)\n# attach: Test failed\n";
        let tell = |l: &str| l.contains(":Expected ");
        assert_eq!(
            telling_line(out, tell).as_deref(),
            Some("file.c:54:attach:Expected 0 (0) == ret (-1)")
        );
        assert_eq!(
            telling_line("=== RUN   TestX\n", |_| false),
            None,
            "a banner alone says nothing"
        );
        assert_eq!(
            telling_line("=== RUN   TestX\n    x_test.go:12: got 3 want 4\n", |_| {
                false
            })
            .as_deref(),
            Some("x_test.go:12: got 3 want 4")
        );
    }

    #[test]
    fn reported_times_are_clamped() {
        assert_eq!(reported_seconds(0.25), Some(Duration::from_millis(250)));
        assert_eq!(reported_seconds(-1.0), Some(Duration::ZERO));
        assert_eq!(reported_seconds(1e300), Some(MAX_REPORTED_TIME));
        assert_eq!(reported_seconds(f64::INFINITY), Some(MAX_REPORTED_TIME));
        assert_eq!(reported_seconds(f64::NEG_INFINITY), Some(Duration::ZERO));
        assert_eq!(reported_seconds(f64::NAN), None);
    }

    #[test]
    fn decoded_tail_is_bounded() {
        let mut t = OutputTail::default();
        for _ in 0..1000 {
            t.push_line(&[0xff; 100]);
        }
        assert!(t.text().len() <= MAX_TEST_OUTPUT + DROPPED_NOTE.len());
    }

    #[test]
    fn tail_is_bounded() {
        let mut t = OutputTail::default();
        for _ in 0..10_000 {
            t.push_line(&[b'x'; 100]);
        }
        let text = t.text();
        assert!(text.len() <= MAX_TEST_OUTPUT + 100);
        assert!(text.starts_with("[warden: earlier output"));
    }
}
