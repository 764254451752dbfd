//! Reporters: they turn [`Event`](crate::event::Event)s and
//! [`Outcome`](crate::outcome::Outcome)s into terminal lines ([`Terminal`]),
//! a JUnit file ([`LiveJunit`]), a summary, text and Markdown
//! ([`SummaryReport`]), a JSON Lines event stream ([`events::EventStream`])
//! and a timeline ([`trace::Trace`]). They observe the run; they never
//! drive it.

pub mod events;
pub mod junit;
pub mod live_junit;
pub mod log_tail;
pub mod otlp;
pub mod summary;
pub mod table;
pub mod terminal;
pub mod trace;

pub use junit::JunitWriter;
pub use live_junit::LiveJunit;
pub use summary::{Counts, Makespan, Summary, SummaryReport, TestCounts};
pub use terminal::{Terminal, TerminalMode};

/// Decodes bytes lossily and makes the text safe for XML 1.0: colour escape
/// sequences (CSI) are dropped, and every other character XML forbids becomes U+FFFD.
pub fn xml_safe_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            skip_csi(&mut chars);
        } else if is_xml_char(c) {
            out.push(c);
        } else {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

/// Skips `[`, parameter/intermediate bytes and the final byte of an `ESC [` sequence.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    chars.next(); // the '['
    for c in chars.by_ref() {
        if ('\x40'..='\x7e').contains(&c) {
            return;
        }
        if !('\x20'..='\x3f').contains(&c) {
            // Malformed: stop here; the rest is ordinary text.
            return;
        }
    }
}

/// XML 1.0 `Char`, restricted to what a Rust `char` can hold (no surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod golden;

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use crate::config::BatchName;
    use crate::outcome::Outcome;
    use crate::parsers::TestResult;
    use crate::status::TestStatus;
    use crate::status::{Exit, Status};

    pub fn outcome(name: &str, status: Status, reason: &str) -> Outcome {
        let mut o = Outcome::new(
            BatchName::new(name).expect("test names are valid"),
            crate::phase::Phase::Batch,
            None,
            PathBuf::from(format!("/nonexistent/warden-test/{name}.log")),
            status,
            reason.to_string(),
        );
        o.exit = Some(Exit::Code(i32::from(!status.is_success())));
        o.started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        o.duration = Duration::from_millis(1234);
        o
    }

    pub fn test(
        path: &[&str],
        status: TestStatus,
        message: Option<&str>,
        output: &str,
    ) -> TestResult {
        TestResult {
            path: path.iter().map(|s| s.to_string()).collect(),
            status,
            duration: Some(Duration::from_millis(7)),
            output: output.into(),
            message: message.map(str::to_owned),
        }
    }

    /// Every status a test can have, retries, quarantine, hostile text, and
    /// batches read into tests next to batches that are not.
    pub fn scenario() -> Vec<Outcome> {
        let mut net = outcome("net", Status::Failed, "2 of 8 tests failed");
        net.kind = Some("ut".into());
        net.tests = vec![
            test(&["ok"], TestStatus::Passed, None, "passing output"),
            test(
                &["fail"],
                TestStatus::Failed,
                Some("expected 1, got 2"),
                "# got 2\n<&>",
            ),
            test(
                &["cut"],
                TestStatus::Error("timed-out".into()),
                Some("timed out"),
                "",
            ),
            test(&["flaky"], TestStatus::Flaky, Some("first try failed"), ""),
            test(
                &["skip"],
                TestStatus::Skipped(Some("no <root>".into())),
                None,
                "",
            ),
            test(&["skip2"], TestStatus::Skipped(None), None, ""),
            test(&["q"], TestStatus::Failed, Some("known"), "q output"),
            test(&["grp", "sub\u{1}\u{1b}[31m"], TestStatus::Passed, None, ""),
            test(&["again"], TestStatus::Failed, Some("still"), ""),
            test(&["then-ok"], TestStatus::Passed, None, ""),
        ];
        net.quarantined_tests = vec![("q".into(), "issue #4".into())];
        // Every figure measured, from its cgroup.
        net.usage = Some(crate::usage::Usage {
            partial: false,
            peak_memory: Some(1536 << 20),
            cpu: Some(Duration::from_millis(3400)),
            read_bytes: Some(10 << 20),
            written_bytes: Some(2 << 20),
            cpu_stall: Some(Duration::from_millis(100)),
            memory_stall: Some(Duration::ZERO),
            io_stall: Some(Duration::from_millis(2300)),
            oom_kills: 0,
        });
        net.retried = vec![crate::outcome::Attempt {
            status: Status::Failed,
            reason: "exit code 1".into(),
            duration: Duration::from_secs(1),
            log: "/nonexistent/net.attempt-1.log".into(),
            failed_tests: vec![
                ("again".into(), "first <fail>".into()),
                ("then-ok".into(), "boom".into()),
            ],
        }];
        // Every test passed, yet the batch crashed: a testcase for the batch.
        let mut kernel = outcome("kernel", Status::Crashed, "killed by SIGSEGV");
        kernel.tests = vec![test(&["boot"], TestStatus::Passed, None, "")];
        // One of its processes killed by the OOM killer (the main one then
        // crashed); this host measured no I/O or pressure.
        kernel.usage = Some(crate::usage::Usage {
            peak_memory: Some(4 << 30),
            cpu: Some(Duration::from_millis(61_250)),
            oom_kills: 1,
            ..Default::default()
        });
        let mut flaky = outcome("retried", Status::Flaky, "passed on attempt 2");
        flaky.retried = net.retried.clone();
        let mut quarantined = outcome("known", Status::Failed, "exit code 1");
        quarantined.quarantined = Some("issue #5".into());
        let mut setup = outcome("build", Status::Passed, "ok");
        setup.phase = crate::phase::Phase::Setup;
        let mut outcomes = vec![
            setup,
            net,
            outcome("plain", Status::TimedOut, "timed out after 5s"),
            kernel,
            flaky,
            quarantined,
            outcome("skipped", Status::NotRun, "setup step build failed"),
        ];
        outcomes.extend(more());
        outcomes
    }

    /// The scenario's batches after its first seven (which alone give the
    /// JUnit that quick-junit wrote for earlier versions): a plain pass, a
    /// pass with a warning, a leak, a failing test with a multi-line
    /// message, an abort with its excerpt, and terminal control and bidi
    /// characters where a batch's own text goes.
    fn more() -> Vec<Outcome> {
        use crate::outcome::ProcessInfo;
        let mut unit = outcome("unit", Status::Passed, "exit code 0");
        unit.duration = Duration::from_millis(12);
        // Without a cgroup: `wait4`'s rusage.
        unit.usage = Some(crate::usage::Usage {
            partial: true,
            peak_memory: Some(24 << 20),
            cpu: Some(Duration::from_millis(9)),
            ..Default::default()
        });
        let mut lint = outcome("lint", Status::Passed, "exit code 0");
        lint.warnings = vec!["said \u{1b}]0;title\u{7} and \u{202e}exe.txt".into()];
        let mut daemon = outcome("daemon", Status::Leaked, "left 2 processes behind");
        daemon.leaked = vec![
            ProcessInfo {
                pid: 4242,
                cmdline: "sleep 1000".into(),
            },
            ProcessInfo {
                pid: 4243,
                cmdline: "sh -c 'while :; do :; done'".into(),
            },
        ];
        let mut cargo = outcome("cargo", Status::Failed, "1 of 2 tests failed: tests::eq");
        cargo.duration = Duration::from_millis(83_456);
        cargo.tests = vec![
            test(
                &["tests::eq"],
                TestStatus::Failed,
                Some("assertion `left == right` failed\n  left: 3\n right: 4"),
                "thread 'tests::eq' panicked at src/lib.rs:9:5:\nassertion failed\n",
            ),
            test(&["tests::ok"], TestStatus::Passed, None, ""),
        ];
        cargo.test_problems = vec!["the summary counts 3 tests; 2 were seen".into()];
        let mut vm = outcome("vm", Status::Aborted, "fatal pattern matched: Kernel panic");
        vm.usage = Some(crate::usage::Usage {
            peak_memory: Some(3 << 30),
            cpu: Some(Duration::from_millis(4500)),
            read_bytes: Some(0),
            written_bytes: Some(123_456),
            io_stall: Some(Duration::from_millis(800)),
            ..Default::default()
        });
        vm.excerpt = Some(
            "[    1.0] booting\n[    2.5] Kernel panic - not syncing: \u{1b}[1mVFS\u{1b}[0m\n"
                .into(),
        );
        let evil = outcome(
            "evil",
            Status::Failed,
            "exit code 1: \u{1b}[2J\rgone\u{8} \u{202e}txt.exe | <b>*x*</b> &amp;",
        );
        vec![unit, lint, daemon, cargo, vm, evil]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_safe_replaces_forbidden_chars() {
        let input = b"a\x00b\x07c\td\r\ne\xff\xfef\x1b[1;31mred\x1b[0m g\x1bh";
        let s = xml_safe_text(input);
        assert_eq!(
            s,
            "a\u{FFFD}b\u{FFFD}c\td\r\ne\u{FFFD}\u{FFFD}fred g\u{FFFD}h"
        );
        assert_eq!(
            xml_safe_text("\u{FFFE}\u{FFFF}".as_bytes()),
            "\u{FFFD}\u{FFFD}"
        );
    }
}
