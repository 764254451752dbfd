//! The syntax of single TAP lines: results and their directives, plans,
//! version lines, `Bail out!`, `# Subtest:`, the kselftest runner's header,
//! kselftest's `# Totals:`, the banners that name the test in progress, and
//! the kernel log's timestamp prefix. All byte checks: these run on every
//! line of million-test batches.

use std::fmt;
use std::time::Duration;

use crate::parsers::{MAX_REPORTED_TIME, reported_seconds};
use crate::text::clip_message;

/// Longest name kept (one on a 1 MB line would otherwise be kept whole);
/// messages are bounded by [`crate::text::MAX_MESSAGE`].
const MAX_NAME: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Directive {
    None,
    Skip(Option<String>),
    Todo(Option<String>),
    /// kselftest: an expected failure (`ok 3 # XFAIL reason`).
    Xfail(Option<String>),
    /// kselftest: an unexpected pass (`ok 7 name # XPASS reason`).
    Xpass(Option<String>),
    /// kselftest.h's `not ok 4 # error reason`.
    Error(Option<String>),
}

impl Directive {
    /// The directive's reason, which names a result that has no name.
    pub(super) fn reason(&self) -> Option<&str> {
        match self {
            Directive::None => None,
            Directive::Skip(r)
            | Directive::Todo(r)
            | Directive::Xfail(r)
            | Directive::Xpass(r)
            | Directive::Error(r) => r.as_deref(),
        }
    }
}

#[derive(Debug)]
pub(super) struct ParsedResult {
    pub ok: bool,
    pub number: Option<u64>,
    pub desc: String,
    pub directive: Directive,
    /// Comments after the name that are no directive and no duration
    /// (`exit=1`, `TIMEOUT 45 seconds`, bats' `timeout after 3 s`).
    pub comment: Option<String>,
    /// `time=12.5ms` (node-tap), `in 3 ms` (bats `--timing`).
    pub duration: Option<Duration>,
}

/// `ok 1 - desc # SKIP reason`, `not ok desc`, `ok`.
pub(super) fn parse_result(line: &[u8]) -> Option<ParsedResult> {
    let (ok, rest) = match line.strip_prefix(b"not ok") {
        Some(rest) => (false, rest),
        None => (true, line.strip_prefix(b"ok")?),
    };
    if rest
        .first()
        .is_some_and(|&b| !b.is_ascii_whitespace() && b != b'#')
    {
        return None; // `okay`
    }
    let rest = trim_start(rest);
    let (number, rest) = match digits(rest) {
        Some((n, after))
            if after
                .first()
                .is_none_or(|&b| b.is_ascii_whitespace() || b == b'#') =>
        {
            (Some(n), trim_start(after))
        }
        _ => (None, rest),
    };
    let rest = match rest.strip_prefix(b"-") {
        Some(after) if after.first().is_none_or(u8::is_ascii_whitespace) => trim_start(after),
        _ => rest,
    };
    let (desc, mut directive_text) = match next_directive(rest, 0) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    // bats 1.x `--timing`: `ok 1 name in 15ms`, no `#` before the time.
    let (desc, bats_time) = match bats_timing_suffix(trim(desc)) {
        Some((name, d)) => (name, Some(d)),
        None => (desc, None),
    };
    let mut parsed = ParsedResult {
        ok,
        number,
        desc: clip_owned(unescape(trim(desc))),
        directive: Directive::None,
        comment: None,
        duration: bats_time,
    };
    // `# in 5 ms # timeout after 3 s`: each `#` segment on its own.
    while let Some(text) = directive_text {
        let (segment, next) = match next_directive(text, 0) {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        parsed.segment(trim(segment));
        directive_text = next;
    }
    Some(parsed)
}

impl ParsedResult {
    fn segment(&mut self, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        if let Some(d) = timing(text) {
            self.duration = Some(d);
            return;
        }
        let word_len = text.iter().take_while(|b| b.is_ascii_alphabetic()).count();
        let (word, reason) = text.split_at(word_len);
        let word = word.to_ascii_lowercase();
        let reason = trim(reason);
        let reason = trim(reason.strip_prefix(b":").unwrap_or(reason));
        let reason = (!reason.is_empty()).then(|| clip_message(&decode(reason)));
        let directive = match word.as_slice() {
            w if w.starts_with(b"skip") => Directive::Skip(reason),
            b"todo" => Directive::Todo(reason),
            b"xfail" => Directive::Xfail(reason),
            b"xpass" => Directive::Xpass(reason),
            b"error" => Directive::Error(reason),
            _ => {
                let text = clip_message(&decode(text));
                self.comment = Some(match self.comment.take() {
                    Some(c) => format!("{c}; {text}"),
                    None => text,
                });
                return;
            }
        };
        if self.directive == Directive::None {
            self.directive = directive;
        }
    }
}

/// The first unescaped `#` in `s` from `from` on that starts a directive
/// or a comment the formats put there: a `#` elsewhere is part of the name
/// (bats' `matches empty string (see #53)`).
fn next_directive(s: &[u8], from: usize) -> Option<usize> {
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate().skip(from) {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'#' if starts_directive(&s[i + 1..]) => return Some(i),
            _ => {}
        }
    }
    None
}

/// What may follow a result's `#`: a directive (`SKIP`, `TODO`, `XFAIL`,
/// `XPASS`, `TIMEOUT`, `ERROR`, any case), a duration (`time=12ms`,
/// `in 3 ms`), the kselftest runner's `exit=1`, kselftest.h's `#  message`
/// (two spaces: its marker for a comment), or nothing.
fn starts_directive(after: &[u8]) -> bool {
    if after.starts_with(b"  ") {
        return true;
    }
    let t = trim_start(after);
    if t.is_empty() {
        return true;
    }
    let word_len = t.iter().take_while(|b| b.is_ascii_alphabetic()).count();
    let word = &t[..word_len];
    let is = |w: &[u8]| word.eq_ignore_ascii_case(w);
    (word_len >= 4 && word[..4].eq_ignore_ascii_case(b"skip"))
        || is(b"todo")
        || is(b"xfail")
        || is(b"xpass")
        || is(b"timeout")
        || is(b"error")
        || t.starts_with(b"exit=")
        || t.starts_with(b"time=")
        || in_ms(t)
}

/// bats 1.x `--timing` puts the time after the name without a `#`:
/// `name in 15ms`. The name without it, and the time; `None` unless the
/// description ends exactly so (` in `, digits, `ms`).
fn bats_timing_suffix(desc: &[u8]) -> Option<(&[u8], Duration)> {
    let rest = desc.strip_suffix(b"ms")?;
    let digits_at = rest.iter().rposition(|b| !b.is_ascii_digit())? + 1;
    if digits_at == rest.len() {
        return None;
    }
    let name = rest[..digits_at].strip_suffix(b" in ")?;
    let n: u64 = std::str::from_utf8(&rest[digits_at..]).ok()?.parse().ok()?;
    Some((name, Duration::from_millis(n).min(MAX_REPORTED_TIME)))
}

/// bats' `in 3 ms`, followed by nothing or another `#`.
fn in_ms(t: &[u8]) -> bool {
    let Some((_, after)) = t.strip_prefix(b"in ").and_then(digits) else {
        return false;
    };
    trim_start(after)
        .strip_prefix(b"ms")
        .is_some_and(|rest| trim_start(rest).first().is_none_or(|&b| b == b'#'))
}

/// `time=12.5ms` / `time=3s` (node-tap) or `in 3 ms` (bats).
fn timing(text: &[u8]) -> Option<Duration> {
    if let Some(rest) = text.strip_prefix(b"in ") {
        let (n, unit) = digits(rest)?;
        return (trim(unit) == b"ms").then(|| Duration::from_millis(n).min(MAX_REPORTED_TIME));
    }
    let rest = text.strip_prefix(b"time=")?;
    let end = rest
        .iter()
        .position(|&b| !b.is_ascii_digit() && b != b'.')
        .unwrap_or(rest.len());
    let (num, unit) = rest.split_at(end);
    let num: f64 = std::str::from_utf8(num).ok()?.parse().ok()?;
    let secs = if unit.starts_with(b"ms") {
        num / 1000.0
    } else if unit.starts_with(b"s") {
        num
    } else {
        return None;
    };
    // Clamped: `time=1e400s` must not panic.
    reported_seconds(secs)
}

/// A YAML diagnostic's `duration_ms: 12` (bats' TAP 13 formatter).
pub(super) fn yaml_duration(value: &[u8]) -> Option<Duration> {
    let secs = std::str::from_utf8(trim(value)).ok()?.parse::<f64>().ok()? / 1000.0;
    reported_seconds(secs)
}

/// A description with TAP's `\#` and `\\` escapes undone.
fn unescape(s: &[u8]) -> String {
    if !s.contains(&b'\\') {
        return decode(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut escaped = false;
    for &b in s {
        if !escaped && b == b'\\' {
            escaped = true;
            continue;
        }
        if escaped && b != b'#' && b != b'\\' {
            out.push(b'\\');
        }
        escaped = false;
        out.push(b);
    }
    if escaped {
        out.push(b'\\');
    }
    decode(&out)
}

/// A plan: `1..N`, `1..0 # SKIP reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    pub count: u64,
    /// `1..0 # SKIP reason`: the reason (kselftest.h's `ksft_exit_skip`).
    pub skip: Option<String>,
}

pub(super) fn plan(line: &[u8]) -> Option<Plan> {
    let rest = line.strip_prefix(b"1..")?;
    let (count, rest) = digits(rest)?;
    let rest = trim(rest);
    if rest.is_empty() {
        return Some(Plan { count, skip: None });
    }
    let comment = trim(rest.strip_prefix(b"#")?);
    let skip = comment
        .get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"skip"))
        .then(|| {
            let reason = comment[4..].trim_ascii_start();
            let reason = reason.strip_prefix(b":").unwrap_or(reason).trim_ascii();
            (!reason.is_empty()).then(|| clip_message(&decode(reason)))
        })
        .flatten();
    Some(Plan { count, skip })
}

/// `TAP version 13`, `TAP version 1.3` (sic, kselftest's binfmt_script),
/// `KTAP version 1`.
pub(super) fn version(line: &[u8]) -> bool {
    line.strip_prefix(b"K")
        .unwrap_or(line)
        .strip_prefix(b"TAP version ")
        .is_some_and(|v| v.first().is_some_and(u8::is_ascii_digit))
}

/// `Bail out! reason`: the reason.
pub(super) fn bail_out(line: &[u8]) -> Option<String> {
    let head = line.get(..9)?;
    if !head.eq_ignore_ascii_case(b"bail out!") {
        return None;
    }
    Some(clip_message(&decode(trim(
        line.get(9..).unwrap_or_default(),
    ))))
}

pub(super) fn bail_message(reason: &str) -> String {
    if reason.is_empty() {
        "Bail out!".to_string()
    } else {
        format!("Bail out! {reason}")
    }
}

/// `# Subtest: name`.
pub(super) fn subtest_name(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"# Subtest:")?;
    Some(clip(&decode(trim(rest))))
}

/// `# selftests: dir: test`: `[dir, test]`.
pub(super) fn kselftest_header(line: &[u8]) -> Option<Vec<String>> {
    let rest = line.strip_prefix(b"# selftests: ")?;
    kselftest_path(&decode(trim(rest)))
}

/// `selftests: dir: test` (a kselftest result's description): `[dir, test]`.
pub(super) fn kselftest_name(desc: &str) -> Option<Vec<String>> {
    kselftest_path(desc.strip_prefix("selftests: ")?)
}

fn kselftest_path(rest: &str) -> Option<Vec<String>> {
    let (dir, test) = rest.split_once(": ")?;
    // The runner's own comments (`# Create NS failed`) are no part of the
    // name; a test's file name has no ` # `.
    let test = test.split_once(" # ").map_or(test, |(t, _)| t);
    let (dir, test) = (dir.trim(), test.trim());
    (!dir.is_empty() && !test.is_empty()).then(|| vec![clip(dir), clip(test)])
}

/// A kselftest test's output line without its `# ` prefix.
pub(super) fn hash_nested(line: &[u8]) -> Option<&[u8]> {
    if line == b"#" {
        return Some(b"");
    }
    line.strip_prefix(b"# ")
}

/// A banner naming the test that starts, in a `#` comment:
/// kselftest_harness's `#  RUN           fixture.name ...` (`true`), or
/// `# Running test 'xyz'` / `# Starting test xyz` (`false`).
pub(super) fn banner(line: &[u8]) -> Option<(String, bool)> {
    let t = trim_start(line.strip_prefix(b"#")?);
    let (rest, harness) = if let Some(rest) = t.strip_prefix(b"RUN ") {
        (rest, true)
    } else if let Some(rest) = t
        .strip_prefix(b"Running test ")
        .or_else(|| t.strip_prefix(b"Starting test "))
    {
        (rest, false)
    } else {
        return None;
    };
    let name = trim(rest);
    let name = trim(name.strip_suffix(b"...").unwrap_or(name));
    let name = match name {
        [q @ (b'\'' | b'"'), inner @ .., last] if last == q => inner,
        _ => name,
    };
    (!name.is_empty()).then(|| (clip(&decode(name)), harness))
}

/// kselftest_harness's verdict lines (`#            OK  global.x`,
/// `#          FAIL  global.x`, `#      SKIP      reason`), with the `#`
/// and spaces trimmed: they say which test, not what failed.
pub(super) fn harness_verdict(line: &str) -> bool {
    ["OK  ", "FAIL  ", "SKIP  "]
        .iter()
        .any(|p| line.starts_with(p))
}

/// kselftest's counts: `pass fail xfail xpass skip error`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub pass: u64,
    pub fail: u64,
    pub xfail: u64,
    pub xpass: u64,
    pub skip: u64,
    pub error: u64,
}

impl Tally {
    pub fn total(&self) -> u64 {
        [
            self.pass, self.fail, self.xfail, self.xpass, self.skip, self.error,
        ]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b))
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pass:{} fail:{} xfail:{} xpass:{} skip:{} error:{}",
            self.pass, self.fail, self.xfail, self.xpass, self.skip, self.error
        )
    }
}

/// kselftest.h's `# Totals: pass:N fail:N xfail:N xpass:N skip:N error:N`.
/// KUnit's `# Totals: pass:N fail:N skip:N total:N` counts a whole tree of
/// suites, not one document's results, and is not taken.
pub(super) fn totals(line: &[u8]) -> Option<Tally> {
    let rest = line.strip_prefix(b"# Totals:")?;
    let mut t = Tally::default();
    let mut seen = 0u8;
    for field in rest
        .split(u8::is_ascii_whitespace)
        .filter(|f| !f.is_empty())
    {
        let colon = field.iter().position(|&b| b == b':')?;
        let (key, value) = (&field[..colon], &field[colon + 1..]);
        let (n, after) = digits(value)?;
        if !after.is_empty() {
            return None;
        }
        let (slot, bit) = match key {
            b"pass" => (&mut t.pass, 1),
            b"fail" => (&mut t.fail, 2),
            b"xfail" => (&mut t.xfail, 4),
            b"xpass" => (&mut t.xpass, 8),
            b"skip" => (&mut t.skip, 16),
            b"error" => (&mut t.error, 32),
            _ => return None,
        };
        *slot = n;
        seen |= bit;
    }
    (seen == 63).then_some(t)
}

/// bats' own diagnostics, which follow the `not ok` they belong to.
pub(super) fn bats_marker(line: &[u8]) -> bool {
    line.starts_with(b"# (in test file")
        || line.starts_with(b"# (from function")
        || line.starts_with(b"# (in file")
        || line.starts_with(b"# bats warning")
}

/// A line of a failing TAP test's output that says what failed.
pub(super) fn telling(line: &str) -> bool {
    // kselftest_harness: `file.c:24:name:Expected 1 (1) == got (2)`.
    line.contains(":Expected ")
        || line.contains("Test terminated by timeout")
        || line.contains("Test terminated unexpectedly by signal")
        || line.starts_with("Bail out!")
        // KUnit: `# name: EXPECTATION FAILED at lib/x.c:29`.
        || line.contains("EXPECTATION FAILED")
        || line.contains("ASSERTION FAILED")
        // bats: `` `false' failed``, `` `run x' failed with status 2``.
        || line.ends_with("' failed")
        || line.contains("' failed with status")
        // A failed subtest of this test.
        || line.starts_with("not ok ")
}

/// A kernel log line without its `[    1.234567] ` timestamp (and
/// `[    T1]` caller id) prefix; other lines unchanged.
pub(super) fn strip_kernel_prefix(line: &[u8]) -> &[u8] {
    let mut rest = line;
    let mut stripped = false;
    while let Some(after) = rest.strip_prefix(b"[") {
        let Some(end) = after.iter().take(40).position(|&b| b == b']') else {
            break;
        };
        let inner = &after[..end];
        let timestamp = inner.iter().any(u8::is_ascii_digit)
            && inner
                .iter()
                .all(|&b| b.is_ascii_digit() || b == b' ' || b == b'.');
        let caller = match trim_start(inner) {
            [b'T' | b'C', id @ ..] => !id.is_empty() && id.iter().all(u8::is_ascii_digit),
            _ => false,
        };
        if !timestamp && !caller {
            break;
        }
        rest = &after[end + 1..];
        stripped = true;
    }
    if stripped {
        rest.strip_prefix(b" ").unwrap_or(rest)
    } else {
        line
    }
}

/// A decimal number at the start of `s` and what follows it.
pub(super) fn digits(s: &[u8]) -> Option<(u64, &[u8])> {
    let end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 || end > 19 {
        return None;
    }
    let (num, rest) = s.split_at(end);
    let n = std::str::from_utf8(num).ok()?.parse().ok()?;
    Some((n, rest))
}

pub(super) fn trim_start(s: &[u8]) -> &[u8] {
    s.trim_ascii_start()
}

pub(super) fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

pub(super) fn decode(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// A name, bounded, without copying it when it fits (one per result line).
fn clip_owned(s: String) -> String {
    if s.len() <= MAX_NAME { s } else { clip(&s) }
}

/// A name, bounded.
pub(super) fn clip(s: &str) -> String {
    crate::text::clip(s, MAX_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(line: &str) -> ParsedResult {
        parse_result(line.as_bytes()).unwrap_or_else(|| panic!("not a result: {line}"))
    }

    #[test]
    fn hash_starts_a_directive_only_before_one() {
        let r = result("ok 3 assert_regex allows regex matching empty string (see #53)");
        assert_eq!(
            r.desc,
            "assert_regex allows regex matching empty string (see #53)"
        );
        assert_eq!(r.directive, Directive::None);
        let r = result("ok 1 a # skip no locale");
        assert_eq!(
            (r.desc.as_str(), r.directive),
            ("a", Directive::Skip(Some("no locale".into())))
        );
        let r = result("ok 1 issue #4 # Skipped: not here");
        assert_eq!(r.desc, "issue #4");
        assert_eq!(r.directive, Directive::Skip(Some("not here".into())));
        for (line, d) in [
            (
                "not ok 2 x # TODO later",
                Directive::Todo(Some("later".into())),
            ),
            (
                "ok 3 # XFAIL known bug",
                Directive::Xfail(Some("known bug".into())),
            ),
            (
                "ok 7 g.x # XPASS unknown",
                Directive::Xpass(Some("unknown".into())),
            ),
            (
                "not ok 4 # error broken",
                Directive::Error(Some("broken".into())),
            ),
        ] {
            assert_eq!(result(line).directive, d, "{line}");
        }
        let r = result("not ok 1 selftests: net: t # TIMEOUT 45 seconds");
        assert_eq!(r.desc, "selftests: net: t");
        assert_eq!(r.comment.as_deref(), Some("TIMEOUT 45 seconds"));
        let r = result("not ok 1 selftests: net: t # exit=1");
        assert_eq!(r.comment.as_deref(), Some("exit=1"));
        // kselftest.h: `#  message` (two spaces) is a comment.
        let r = result("ok 2 check #  all good");
        assert_eq!(
            (r.desc.as_str(), r.comment.as_deref()),
            ("check", Some("all good"))
        );
        let r = result("ok 1 - foo #");
        assert_eq!(r.desc, "foo");
        // The name is only the directive.
        let r = result("ok 8 # SKIP some reason");
        assert_eq!(r.desc, "");
        assert_eq!(r.directive.reason(), Some("some reason"));
    }

    #[test]
    fn durations_on_result_lines() {
        let r = result("ok 7 addition works in 15ms");
        assert_eq!(r.desc, "addition works");
        assert_eq!(r.duration, Some(Duration::from_millis(15)));
        let r = result("ok 3 skipped one in 5ms # skip no reason");
        assert_eq!(r.desc, "skipped one");
        assert_eq!(r.duration, Some(Duration::from_millis(5)));
        // Not a time: kept in the name.
        assert_eq!(result("ok 1 runs in ms").desc, "runs in ms");
        assert_eq!(
            result("ok 1 done in 99999999999999999999999ms").desc,
            "done in 99999999999999999999999ms"
        );
        let r = result("ok 1 quick test # in 3 ms");
        assert_eq!(r.desc, "quick test");
        assert_eq!(r.duration, Some(Duration::from_millis(3)));
        assert_eq!(r.comment, None);
        let r = result("not ok 2 slow # in 3001 ms # timeout after 3 s");
        assert_eq!(r.desc, "slow");
        assert_eq!(r.duration, Some(Duration::from_millis(3001)));
        assert_eq!(r.comment.as_deref(), Some("timeout after 3 s"));
        let r = result("ok 1 a # time=12.5ms");
        assert_eq!(r.duration, Some(Duration::from_micros(12_500)));
        let r = result("ok 1 a # time=1e999s");
        assert_eq!(r.duration, None);
        let r = result("ok 1 a # in 99999999999999999999 ms");
        assert_eq!(r.duration, None);
        // `in` without a number is part of the name.
        assert_eq!(result("ok 1 a # in the middle").desc, "a # in the middle");
        assert_eq!(yaml_duration(b" 12"), Some(Duration::from_millis(12)));
        // Whatever the line says: clamped to 0 to a year, never a panic.
        assert_eq!(yaml_duration(b"1e999"), Some(MAX_REPORTED_TIME));
        assert_eq!(yaml_duration(b"1e30"), Some(MAX_REPORTED_TIME));
        assert_eq!(yaml_duration(b"-1"), Some(Duration::ZERO));
        assert_eq!(yaml_duration(b"NaN"), None);
        let r = result("ok 1 a # time=99999999999999999999999s");
        assert_eq!(r.duration, Some(MAX_REPORTED_TIME));
        let r = result("ok 1 a # in 9999999999999999999 ms");
        assert_eq!(r.duration, Some(MAX_REPORTED_TIME));
        let (_, d) = bats_timing_suffix(b"a in 18446744073709551615ms").unwrap();
        assert_eq!(d, MAX_REPORTED_TIME);
    }

    #[test]
    fn plans_versions_totals_banners() {
        assert_eq!(
            plan(b"1..5"),
            Some(Plan {
                count: 5,
                skip: None
            })
        );
        assert_eq!(
            plan(b"1..0 # SKIP no hardware"),
            Some(Plan {
                count: 0,
                skip: Some("no hardware".into())
            })
        );
        assert_eq!(plan(b"1..5 x"), None);
        assert!(version(b"TAP version 13"));
        assert!(version(b"TAP version 1.3"));
        assert!(version(b"KTAP version 1"));
        assert!(!version(b"TAP version x"));
        let t = totals(b"# Totals: pass:2 fail:5 xfail:0 xpass:1 skip:1 error:0").unwrap();
        assert_eq!(
            (t.pass, t.fail, t.xpass, t.skip, t.total()),
            (2, 5, 1, 1, 9)
        );
        assert_eq!(totals(b"# Totals: pass:11 fail:0 skip:5 total:16"), None);
        assert_eq!(
            totals(b"# Totals: pass:x fail:0 xfail:0 xpass:0 skip:0 error:0"),
            None
        );
        assert_eq!(
            banner(b"#  RUN           global.first_passes ..."),
            Some(("global.first_passes".into(), true))
        );
        assert_eq!(
            banner(b"# Running test 'delta'"),
            Some(("delta".into(), false))
        );
        assert_eq!(banner(b"# Starting test xyz"), Some(("xyz".into(), false)));
        assert_eq!(banner(b"# Starting 3 tests from 1 test cases."), None);
        assert_eq!(banner(b"#  RUN  "), None);
        assert_eq!(
            kselftest_name("selftests: net: t # Create NS failed"),
            Some(vec!["net".into(), "t".into()])
        );
    }

    #[test]
    fn kernel_prefixes() {
        assert_eq!(
            strip_kernel_prefix(b"[    0.060000] TAP version 14"),
            b"TAP version 14"
        );
        assert_eq!(
            strip_kernel_prefix(b"[    0.060000] \t# Subtest: x"),
            b"\t# Subtest: x"
        );
        assert_eq!(strip_kernel_prefix(b"[    0.060000][    T1] 1..3"), b"1..3");
        assert_eq!(strip_kernel_prefix(b"[    0.060000]"), b"");
        assert_eq!(
            strip_kernel_prefix(b"[not a time] ok 1"),
            b"[not a time] ok 1"
        );
        assert_eq!(strip_kernel_prefix(b"["), b"[");
    }
}
