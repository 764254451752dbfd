//! A failure message → its *pattern*: the message with the parts that
//! change from one failure to the next masked, so failures with one cause
//! read the same and `warden failures` can group them (as LUCI Analysis
//! clusters failure reasons).
//!
//! The rules, applied in this order (earlier ones see the text first, so a
//! UUID is not read as hex runs and numbers, a timestamp not as numbers):
//!
//! | what | example | becomes |
//! | --- | --- | --- |
//! | the failing test's own name, when distinctive | `hangs_past_timeout: Test terminated` | `<TEST>: Test terminated` |
//! | UUIDs | `3f2a…-…-…-…-…` | `<UUID>` |
//! | timestamps: RFC 3339, `2026-11-20 10:00:00`, dates, times of day | `2026-11-20T10:00:00.5Z` | `<TIME>` |
//! | temporary paths: `/tmp/…`, `/var/tmp/…`, `/var/folders/…`, `/dev/shm/…`, any path through a `tmpXXXXXX` / `.tmpXXXXXX` / `tmp.XXXXXXXXXX` directory | `/tmp/pytest-of-ci/pytest-7/x.db` | `<PATH>` |
//! | hex numbers (pointers, addresses) | `0x7ffd5e8c` | `<HEX>` |
//! | IP addresses (v4, and v6 in brackets), and ports after an address or `localhost` | `127.0.0.1:45123`, `[::1]:80`, `localhost:80` | `<IP>:<PORT>`, `<IP>:<PORT>`, `localhost:<PORT>` |
//! | thread ids | `thread 'x' (28287)`, `tid=4711`, `ThreadId(12)` | `thread 'x' (<TID>)`, `tid=<TID>`, `ThreadId(<TID>)` |
//! | durations | `1.5s`, `300ms`, `2m3s`, `5000 ms`, `2 seconds` | `<DUR>` |
//! | long hex runs with a digit and a letter (commit shas, hashes) | `9fceb02d0ae598e95dc970b74767f19372d61af8` | `<HEX>` |
//! | other numbers (whole words only: `x86_64` stays) | `Expected 42 (42) == 41` | `Expected <N> (<N>) == <N>` |
//!
//! A test's name is *distinctive* when its last part (after the last `/`,
//! and also after the last `.` or `::` in it) has at least 4 characters
//! and an `_`, a digit or an inner capital (`hangs_past_timeout`,
//! `TestHangs`, `test 1`): it is masked only as a whole word. A plain word
//! such as `connect` is not, or `connect: connection refused` would read
//! differently in the test `connect` than in every other test.
//!
//! Masking is a pure function of the message (and the test's name), so a
//! query masks each distinct message once ([`Masker`] caches).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};

/// One rule: what to find and what to put instead (`$1` etc. name groups).
struct Rule {
    re: LazyLock<Option<Regex>>,
    with: &'static str,
}

macro_rules! rule {
    ($re:expr, $with:expr) => {
        Rule {
            re: LazyLock::new(|| Regex::new($re).ok()),
            with: $with,
        }
    };
}

/// What may follow a path: anything but space, quotes and brackets.
macro_rules! path_chars {
    () => {
        r#"[^\s:'"`,;()\[\]{}<>]"#
    };
}

static UUID: Rule = rule!(
    r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    "<UUID>"
);
/// A date, with a time of day and a zone if given.
static TIMESTAMP: Rule = rule!(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z\b|[+-]\d{2}:?\d{2}\b)?)?",
    "<TIME>"
);
/// A time of day alone (`10:00:00`, not the `4:5` of `file.rs:4:5`).
static TIME_OF_DAY: Rule = rule!(r"(^|[^:\d])\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "${1}<TIME>");
static TEMP_ROOT: Rule = rule!(
    concat!(
        r"(^|[\s'`=(\[{<,])(?:/private)?/(?:tmp|var/tmp|var/folders|dev/shm)\b",
        path_chars!(),
        "*"
    ),
    "${1}<PATH>"
);
static TEMP_DIR: Rule = rule!(
    concat!(
        r"(?:/",
        path_chars!(),
        r"+?)*?/\.?tmp[._]?[A-Za-z0-9_]{6,}(?:/",
        path_chars!(),
        "*)?"
    ),
    "<PATH>"
);
static HEX_NUMBER: Rule = rule!(r"\b0[xX][0-9a-fA-F]+\b", "<HEX>");
static IPV4: Rule = rule!(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", "<IP>");
/// In brackets, with two colons at least (`x[0:1]` is a slice).
static IPV6: Rule = rule!(r"\[[0-9a-fA-F.]*:[0-9a-fA-F.]*:[0-9a-fA-F:.]*\]", "<IP>");
static PORT: Rule = rule!(r"(<IP>|\blocalhost):\d{1,5}\b", "${1}:<PORT>");
static THREAD: Rule = rule!(r"(thread '[^']*') \(\d+\)", "${1} (<TID>)");
static TID: Rule = rule!(r"\b((?i:tid)[=:] ?|ThreadId\()\d+\b", "${1}<TID>");
/// `1.5s`, `300ms`, `2m3s`, `1h2m`.
static DURATION: Rule = rule!(r"\b(?:\d+(?:\.\d+)?(?:ns|us|µs|μs|ms|s|m|h|d))+\b", "<DUR>");
/// `5000 ms`, `2 seconds`.
static SPELLED_DURATION: Rule = rule!(
    r"\b\d+(?:\.\d+)?\s(?:ns|us|µs|ms|milliseconds?|secs?|seconds?|mins?|minutes?|hours?|days?)\b",
    "<DUR>"
);
static NUMBER: Rule = rule!(r"\b\d+(?:\.\d+)*\b", "<N>");
/// Runs of hex digits, judged by [`hex_run`].
static HEX_RUN: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\b[0-9a-fA-F]{7,}\b").ok());

/// The rules after the test's name, in order (hex runs between durations
/// and numbers, see [`mask`]).
static BEFORE_HEX_RUNS: [&Rule; 12] = [
    &UUID,
    &TIMESTAMP,
    &TIME_OF_DAY,
    &TEMP_ROOT,
    &TEMP_DIR,
    &HEX_NUMBER,
    &IPV4,
    &IPV6,
    &PORT,
    &THREAD,
    &TID,
    &DURATION,
];

fn apply<'a>(rule: &Rule, text: Cow<'a, str>) -> Cow<'a, str> {
    let Some(re) = rule.re.as_ref() else {
        return text;
    };
    match re.replace_all(&text, rule.with) {
        Cow::Borrowed(_) => text,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// A hex run that is a hash: it has a digit and a letter. All digits is a
/// number (the next rule's); all letters is a word (`defaced`).
fn hex_run(c: &Captures) -> String {
    let run = &c[0];
    let digit = run.bytes().any(|b| b.is_ascii_digit());
    let letter = run.bytes().any(|b| b.is_ascii_alphabetic());
    if digit && letter {
        "<HEX>".into()
    } else {
        run.into()
    }
}

/// The pattern of `message`: its variable parts masked (the module doc
/// lists the rules).
pub fn mask(message: &str) -> String {
    let mut text = Cow::Borrowed(message);
    for rule in BEFORE_HEX_RUNS {
        text = apply(rule, text);
    }
    text = apply(&SPELLED_DURATION, text);
    if let Some(re) = HEX_RUN.as_ref()
        && let Cow::Owned(s) = re.replace_all(&text, hex_run)
    {
        text = Cow::Owned(s);
    }
    apply(&NUMBER, text).into_owned()
}

/// The pattern of `message` as a failure of `test` (its full name): its
/// distinctive name masked as `<TEST>`, then [`mask`].
pub fn mask_failure(message: &str, test: &str) -> String {
    match name_in(message, test) {
        Some(name) => mask(&replace_word(message, name, "<TEST>")),
        None => mask(message),
    }
}

/// The distinctive part of `test`'s name that `message` holds as a whole
/// word, the longest first.
fn name_in<'a>(message: &str, test: &'a str) -> Option<&'a str> {
    let leaf = test.rsplit('/').next().unwrap_or(test);
    let short = [
        leaf.rfind("::").map(|i| &leaf[i + 2..]),
        leaf.rfind('.').map(|i| &leaf[i + 1..]),
    ];
    std::iter::once(leaf)
        .chain(short.into_iter().flatten())
        .filter(|n| distinctive(n))
        .find(|n| find_word(message, n).is_some())
}

fn distinctive(name: &str) -> bool {
    name.chars().count() >= 4
        && (name.contains(['_', ' ', '-'])
            || name.chars().any(|c| c.is_ascii_digit())
            || name.chars().skip(1).any(char::is_uppercase))
}

fn is_word(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Where `word` first occurs in `text` not inside a longer word.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(word) {
        let at = from + i;
        let end = at + word.len();
        if !is_word(text[..at].chars().next_back()) && !is_word(text[end..].chars().next()) {
            return Some(at);
        }
        from = at + word.chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// `text` with every whole-word `word` replaced by `with`.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_word(rest, word) {
        out.push_str(&rest[..at]);
        out.push_str(with);
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Masks each distinct message once: patterns are numbered as first
/// seen, and a message (or a message and test, when the test's name is in
/// it) maps to its pattern's number.
#[derive(Debug, Default)]
pub struct Masker {
    patterns: Vec<String>,
    numbers: HashMap<String, usize>,
    by_message: HashMap<String, usize>,
    by_message_and_name: HashMap<(String, String), usize>,
}

impl Masker {
    /// The number of the pattern of `message` as a failure of `test`.
    pub fn pattern(&mut self, message: &str, test: &str) -> usize {
        if let Some(name) = name_in(message, test) {
            let key = (message.to_owned(), name.to_owned());
            if let Some(&n) = self.by_message_and_name.get(&key) {
                return n;
            }
            let n = self.number(mask(&replace_word(message, name, "<TEST>")));
            self.by_message_and_name.insert(key, n);
            return n;
        }
        if let Some(&n) = self.by_message.get(message) {
            return n;
        }
        let n = self.number(mask(message));
        self.by_message.insert(message.to_owned(), n);
        n
    }

    fn number(&mut self, pattern: String) -> usize {
        if let Some(&n) = self.numbers.get(&pattern) {
            return n;
        }
        let n = self.patterns.len();
        self.numbers.insert(pattern.clone(), n);
        self.patterns.push(pattern);
        n
    }

    /// Pattern number `n`'s text.
    pub fn text(&self, n: usize) -> &str {
        &self.patterns[n]
    }

    /// How many distinct messages were masked.
    pub fn masked(&self) -> usize {
        self.by_message.len() + self.by_message_and_name.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_hex_and_ids() {
        assert_eq!(
            mask("Expected 42 (42) == 41 (41)"),
            "Expected <N> (<N>) == <N> (<N>)"
        );
        assert_eq!(mask("x86_64 test_04242 sha256"), "x86_64 test_04242 sha256");
        assert_eq!(
            mask("minor version of 1.2.3 (left: -2)"),
            "minor version of <N> (left: -<N>)"
        );
        assert_eq!(
            mask("null pointer at 0x7ffd5e8c0a10"),
            "null pointer at <HEX>"
        );
        assert_eq!(
            mask("bad object 9fceb02d0ae598e95dc970b74767f19372d61af8 (defaced 1234567)"),
            "bad object <HEX> (defaced <N>)"
        );
        assert_eq!(
            mask("request 3f2a9c4e-1b7d-4e8a-9c0f-6d5e4b3a2f10 failed"),
            "request <UUID> failed"
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(mask("at 2026-11-20T10:00:00.5Z: boom"), "at <TIME>: boom");
        assert_eq!(mask("at 2026-11-20T10:00:00+01:00"), "at <TIME>");
        assert_eq!(mask("2026-11-20 10:00:00 ERROR x"), "<TIME> ERROR x");
        assert_eq!(mask("[10:00:01.250] ready"), "[<TIME>] ready");
        assert_eq!(mask("since 2026-11-20"), "since <TIME>");
        // A line and column are not a time.
        assert_eq!(
            mask("tests/integration.rs:4:5"),
            "tests/integration.rs:<N>:<N>"
        );
        for d in [
            "1.5s",
            "300ms",
            "2m3s",
            "1h2m3.5s",
            "5000 ms",
            "2 seconds",
            "45µs",
        ] {
            assert_eq!(
                mask(&format!("took {d} to fail")),
                "took <DUR> to fail",
                "{d}"
            );
        }
        assert_eq!(mask("TIMEOUT 45 seconds"), "TIMEOUT <DUR>");
    }

    #[test]
    fn paths_addresses_and_threads() {
        assert_eq!(
            mask("cannot open /tmp/pytest-of-ci/pytest-7/test_db0/x.db: gone"),
            "cannot open <PATH>: gone"
        );
        assert_eq!(
            mask("wrote '/var/folders/x1/abc/T/.tmpAb12Cd/out'"),
            "wrote '<PATH>'"
        );
        assert_eq!(
            mask("in /home/ci/work/target/.tmpQ8xZ2k/lock (exists)"),
            "in <PATH> (exists)"
        );
        assert_eq!(
            mask("see /usr/lib/tmpfiles.d/x.conf"),
            "see /usr/lib/tmpfiles.d/x.conf"
        );
        assert_eq!(
            mask("Timed out after 5000 ms waiting for 127.0.0.1:45123"),
            "Timed out after <DUR> waiting for <IP>:<PORT>"
        );
        assert_eq!(
            mask("connect [::1]:8080 and localhost:5432"),
            "connect <IP>:<PORT> and localhost:<PORT>"
        );
        assert_eq!(
            mask("thread 'main' (28287) panicked at src/lib.rs:4:5"),
            "thread 'main' (<TID>) panicked at src/lib.rs:<N>:<N>"
        );
        assert_eq!(mask("x[0:1] != [fe80::1]"), "x[<N>:<N>] != <IP>");
        assert_eq!(mask("tid=4711 ThreadId(12)"), "tid=<TID> ThreadId(<TID>)");
    }

    #[test]
    fn the_tests_own_name() {
        assert_eq!(
            mask_failure(
                "hangs_past_timeout: Test terminated by timeout",
                "warden_crash/harness_misbehave/slow.hangs_past_timeout"
            ),
            "<TEST>: Test terminated by timeout"
        );
        assert_eq!(
            mask_failure(
                "thread 'always_fails' (28191) panicked",
                "demo::integration/always_fails"
            ),
            "thread '<TEST>' (<TID>) panicked"
        );
        // Plain words stay, and a name inside a longer word too.
        assert_eq!(
            mask_failure("connect: connection refused", "net/tcp/connect"),
            "connect: connection refused"
        );
        assert_eq!(
            mask_failure("my_test_x failed", "a/my_test"),
            "my_test_x failed"
        );
    }

    #[test]
    fn a_masker_masks_each_message_once() {
        let mut m = Masker::default();
        let a = m.pattern("took 1s", "a");
        assert_eq!(m.pattern("took 2s", "b"), a);
        assert_eq!(m.pattern("took 1s", "c"), a);
        assert_eq!(m.masked(), 2);
        assert_eq!(m.text(a), "took <DUR>");
        let t = m.pattern("test_x: boom", "s/test_x");
        assert_eq!(m.pattern("test_y: boom", "s/test_y"), t);
        assert_eq!(m.text(t), "<TEST>: boom");
    }

    #[test]
    fn every_rule_compiles() {
        for rule in BEFORE_HEX_RUNS.iter().chain([&&SPELLED_DURATION, &&NUMBER]) {
            assert!(rule.re.is_some(), "{}", rule.with);
        }
        assert!(HEX_RUN.is_some());
    }

    /// `tests/fixtures/real/<path>`.
    fn real(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/real")
            .join(path)
    }

    /// The failures of a real recording as the store keeps them: (test,
    /// stored message).
    fn failures(
        parser: impl crate::parsers::Parser + 'static,
        path: &str,
    ) -> Vec<(String, String)> {
        let (results, _) =
            crate::parsers::test_support::parse(parser, std::fs::read(real(path)).unwrap(), None);
        results
            .iter()
            .filter(|r| r.status.is_failure())
            .filter_map(|r| Some((r.name(), crate::history::results::record(r, None).1?)))
            .collect()
    }

    /// The failures of real JUnit files, imported as `warden import junit` does.
    fn imported(path: &str) -> Vec<(String, String)> {
        let file = crate::history::import::read_file(&real(path)).unwrap();
        let run = crate::history::import::ImportedRun::new(vec![file], None, None);
        run.batches
            .iter()
            .flat_map(|b| &b.tests)
            .filter(|t| t.status.is_failure())
            .filter_map(|t| Some((t.name.clone(), t.message.clone()?)))
            .collect()
    }

    /// Failures of real suites' recordings, clustered: the same cause
    /// (kselftest's timeouts, whatever the test and the timeout; nextest's
    /// panics, whatever the thread id) is one cluster; different
    /// assertions are not.
    #[test]
    fn real_failures_cluster_by_cause() {
        use crate::parsers::tap::TapParser;
        let mut all: Vec<(String, String)> = Vec::new();
        for f in [
            "run_kselftest_custom",
            "run_kselftest_timers_timeout2",
            "run_kselftest_timers_timeout6",
            "harness_misbehave",
        ] {
            all.extend(failures(TapParser::new(), &format!("kselftest/{f}.tap")));
        }
        all.extend(failures(
            crate::parsers::gotest::GoJsonParser::new(),
            "go/demo.json",
        ));
        all.extend(failures(
            crate::parsers::gotest::GoJsonParser::new(),
            "go/hang.json",
        ));
        all.extend(failures(
            crate::parsers::libtest::LibtestParser::new(),
            "libtest/cargo-test.txt",
        ));
        for f in [
            "pytest/rerunfailures-10.3.xml",
            "pytest/rerunfailures-16.7.xml",
            "nextest/nextest-ci.xml",
            "nextest/nextest-ci-split.xml",
        ] {
            all.extend(imported(f));
        }
        let mut masker = Masker::default();
        let mut clusters: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
        for (test, message) in &all {
            let n = masker.pattern(message, test);
            clusters
                .entry(masker.text(n).to_owned())
                .or_default()
                .push(test);
        }
        let of = |test: &str| -> String {
            let (_, m) = all.iter().find(|(t, _)| t == test).unwrap();
            mask_failure(m, test)
        };

        // kselftest's runner timing out nine different tests, at 2 s, 3 s
        // and 6 s: one cause.
        let timeouts = &clusters["TIMEOUT <DUR>"];
        for t in [
            "timers/posix_timers",
            "timers/nanosleep",
            "timers/raw_skew",
            "timers/threadtest",
            "warden_hang/ksft_hang",
        ] {
            assert!(timeouts.contains(&t), "{t}: {clusters:#?}");
        }
        assert_eq!(timeouts.len(), 2 * 8 + 1, "{clusters:#?}");
        // The subtest running when the runner timed out: another cluster,
        // one as well.
        assert!(
            clusters["no result (TIMEOUT <DUR>)"].len() >= 6,
            "{clusters:#?}"
        );
        // The harness's own timeout, in two recordings of one test.
        assert_eq!(
            clusters["<TEST>: Test terminated by timeout"],
            [
                "warden_crash/harness_misbehave/slow.hangs_past_timeout",
                "slow.hangs_past_timeout"
            ]
        );
        // nextest's panics in two runs, thread ids 28191 and 28287.
        assert_eq!(
            clusters["failed <N> times: thread '<TEST>' (<TID>) panicked at tests/integration.rs:<N>:<N>"]
                .len(),
            2
        );
        // Different assertions, different clusters.
        let distinct = [
            "global.expect_eq_fails",
            "global.assert_eq_fails",
            "global.segfaults",
            "example.com/demo/calc/TestAddFails",
            "example.com/demo/calc/TestTable/wrong_expectation",
            "example.com/demo/hang/TestHangs",
            "tests/zz_warden.rs/warden_assert_eq_fails",
            "pytest/test_demo/test_fails",
            "pytest/test_demo/test_param[2]",
            "timers/posix_timers",
        ];
        let patterns: std::collections::BTreeSet<String> = distinct.iter().map(|t| of(t)).collect();
        assert_eq!(patterns.len(), distinct.len(), "{patterns:#?}");
        assert_eq!(
            of("global.assert_eq_fails"),
            "harness_misbehave.c:<N>:<TEST>:Expected <N> (<N>) == <N> (<N>)"
        );
        assert_eq!(
            of("example.com/demo/hang/TestHangs"),
            "test timed out after <DUR>"
        );
    }
}
