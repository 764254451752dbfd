//! TAP 13/14 and the kselftest runner's TAP.
//!
//! ```text
//! TAP version 14
//! 1..2
//! # Subtest: parse
//!     1..2
//!     ok 1 - empty input
//!     not ok 2 - trailing comma
//!       ---
//!       message: "expected 1, got 2"
//!       ...
//! not ok 1 - parse
//! ok 2 - slow # SKIP no network
//! ```
//!
//! Results: `ok`/`not ok` lines (`# SKIP` → skipped; `not ok … # TODO` →
//! skipped with `TODO: reason`, not a failure). Output that is not TAP goes
//! to the next result of its level (output precedes its result); a YAML
//! diagnostic block after a result goes to that result, and its `message:`
//! becomes the result's message.
//!
//! Nesting: a block indented by 4 spaces is a subtest (TAP 14), named by a
//! preceding `# Subtest: name` line or else by the parent's result line
//! that follows the block (its results are held back until then). The
//! kselftest runner (tools/testing/selftests/kselftest/runner.sh) prints
//! `# selftests: dir: test`, the test's own output prefixed with `# `, then
//! `ok N selftests: dir: test`; that test's path is `[dir, test]`, and TAP
//! results in its `# ` output are its subtests (`[dir, test, subtest]`).
//! `# TIMEOUT 45 seconds` / `# exit=1` become the failed test's message.
//!
//! `Bail out!` ends the stream (a problem in the verdict), except inside a
//! kselftest test's `# ` output, where it only ends that test's own TAP (the
//! runner goes on with the next test). The plan is checked at the top
//! level only: a nested plan is the parent's business, and the parent's
//! result line reports it.

use std::time::Duration;

use super::{MAX_TEST_OUTPUT, OutputTail, Parser, StreamVerdict, TestResult, TestStatus};

/// The note [`OutputTail::text`] starts with when it dropped output.
const DROPPED_NOTE: &str = "[warden: earlier output of this test dropped]\n";

/// Longest name or message kept (one on a 1 MB line would otherwise be
/// kept whole).
const MAX_TEXT: usize = 4096;

/// Deepest nesting followed; deeper indented lines are plain output (a line
/// of a megabyte of spaces must not make a quarter million levels).
const MAX_DEPTH: usize = 16;

/// [`OutputTail::text`], bounded again after decoding: lossy decoding turns
/// each invalid byte into a 3-byte U+FFFD, so 64 KiB of garbage would
/// otherwise come out as 192 KiB.
pub(super) fn tail_text(tail: &OutputTail) -> String {
    let text = tail.text();
    if text.len() <= MAX_TEST_OUTPUT + DROPPED_NOTE.len() {
        return text;
    }
    let mut start = text.len() - MAX_TEST_OUTPUT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{DROPPED_NOTE}{}", &text[start..])
}

/// Parser of TAP 13/14 and kselftest output.
#[derive(Debug, Default)]
pub struct TapParser {
    root: Level,
    problems: Vec<String>,
}

impl TapParser {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Parser for TapParser {
    fn line(&mut self, line: &[u8], done: &mut Vec<TestResult>) {
        if self.root.bailed.is_some() {
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(reason) = self.root.line(line, done) {
            self.problems.push(bail_message(&reason));
        }
    }

    fn finish(self: Box<Self>, cut_short: Option<&str>) -> (Vec<TestResult>, StreamVerdict) {
        let TapParser {
            mut root,
            mut problems,
        } = *self;
        let mut out = Vec::new();
        root.finish_nested(cut_short.unwrap_or("no result"), &mut out);
        if root.bailed.is_none() {
            match root.plan {
                None => problems.push(format!(
                    "no TAP plan (1..N); got {} test results",
                    root.count
                )),
                Some(planned) if planned != root.count => problems.push(format!(
                    "planned {planned} tests, got {}",
                    root.count
                )),
                Some(_) => {}
            }
        }
        (out, StreamVerdict { problems })
    }
}

fn bail_message(reason: &str) -> String {
    if reason.is_empty() {
        "Bail out!".to_string()
    } else {
        format!("Bail out! {reason}")
    }
}

/// One level of TAP: the top level, a subtest's indented block, or a
/// kselftest test's `# ` output.
#[derive(Debug, Default)]
struct Level {
    depth: usize,
    /// A kselftest test's `# ` output: `Bail out!` ends only this level.
    local_bail: bool,
    /// The `Bail out!` reason, once bailed: later lines are plain output.
    bailed: Option<String>,
    /// The plan's test count.
    plan: Option<u64>,
    /// Result lines seen.
    count: u64,
    /// Output since the last result: the next result's.
    tail: OutputTail,
    /// The last result, held back one line for a YAML block that may follow.
    held: Option<Held>,
    /// The subtest or kselftest test running at this level.
    open: Option<Box<Open>>,
}

#[derive(Debug)]
struct Held {
    result: TestResult,
    tail: OutputTail,
    yaml: Option<Yaml>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TAP 14: indented by 4 spaces.
    Indent,
    /// kselftest: prefixed with `# `.
    Hash,
}

/// A subtest or kselftest test that started and has no result yet.
#[derive(Debug)]
struct Open {
    kind: Kind,
    /// Its path (relative to the level), if known before its result line.
    name: Option<Vec<String>>,
    /// A `# Subtest:` line or kselftest header started it.
    explicit: bool,
    level: Level,
    /// Its subtests' results while its name is unknown.
    buffered: Vec<TestResult>,
    /// `TIMEOUT 45 seconds` / `exit=1` seen in its output.
    message: Option<String>,
}

impl Open {
    fn new(kind: Kind, name: Option<Vec<String>>, depth: usize) -> Box<Self> {
        Box::new(Open {
            kind,
            explicit: name.is_some(),
            name,
            level: Level {
                depth: depth + 1,
                local_bail: kind == Kind::Hash,
                ..Level::default()
            },
            buffered: Vec::new(),
            message: None,
        })
    }

    fn started(&self) -> bool {
        self.explicit
            || self.level.count > 0
            || self.level.plan.is_some()
            || !self.buffered.is_empty()
    }

    /// Results of the nested level, with this test's path put in front
    /// (or held back while it's unknown).
    fn take(&mut self, results: Vec<TestResult>, out: &mut Vec<TestResult>) {
        match &self.name {
            Some(name) => out.extend(results.into_iter().map(|r| prefixed(name, r))),
            None => self.buffered.extend(results),
        }
    }

    /// Ends the nested level (tests open in it fail with `cut`) and emits
    /// the remaining results under `name` (or the name it already has).
    fn close(mut self, cut: &str, name: &[String], out: &mut Vec<TestResult>) {
        let mut rest = Vec::new();
        self.level.finish_nested(cut, &mut rest);
        let name = self.name.as_deref().unwrap_or(name);
        out.extend(
            std::mem::take(&mut self.buffered)
                .into_iter()
                .chain(rest)
                .map(|r| prefixed(name, r)),
        );
    }
}

fn prefixed(prefix: &[String], mut r: TestResult) -> TestResult {
    let mut path = prefix.to_vec();
    path.append(&mut r.path);
    r.path = path;
    r
}

impl Level {
    /// One line (its nesting prefix removed). Returns the reason of a
    /// `Bail out!` that ends the whole stream.
    fn line(&mut self, line: &[u8], out: &mut Vec<TestResult>) -> Option<String> {
        // A YAML block after the last result.
        if let Some(held) = &mut self.held {
            if let Some(yaml) = &mut held.yaml {
                held.tail.push_line(line);
                if trim(line) == b"..." {
                    self.flush_held(out);
                } else {
                    yaml.feed(line);
                }
                return None;
            }
            if line.first().is_some_and(u8::is_ascii_whitespace) && trim(line) == b"---" {
                held.tail.push_line(line);
                held.yaml = Some(Yaml::default());
                return None;
            }
            self.flush_held(out);
        }
        if self.bailed.is_some() {
            self.tail.push_line(line);
            return None;
        }

        // A kselftest header starts a test (ending one without result).
        let can_nest = self.depth < MAX_DEPTH;
        if can_nest && let Some(name) = kselftest_header(line) {
            self.abandon_open("no result", out);
            self.tail.push_line(line);
            self.open = Some(Open::new(Kind::Hash, Some(name), self.depth));
            return None;
        }

        // Nested lines.
        let nested = match self.open.as_ref().map(|o| o.kind) {
            Some(Kind::Hash) => hash_nested(line),
            Some(Kind::Indent) | None if can_nest => line.strip_prefix(b"    "),
            _ => None,
        };
        if let Some(nested) = nested {
            self.tail.push_line(line);
            let depth = self.depth;
            let open = self
                .open
                .get_or_insert_with(|| Open::new(Kind::Indent, None, depth));
            if open.kind == Kind::Hash {
                let text = trim(nested);
                if text.starts_with(b"TIMEOUT") || text.starts_with(b"exit=") {
                    open.message = Some(decode(text));
                }
            } else if !open.started()
                && let Some(name) = subtest_name(nested)
            {
                // `    # Subtest: name` as the block's first line.
                open.name = Some(vec![name]);
                open.explicit = true;
                return None;
            }
            let mut results = Vec::new();
            let bail = open.level.line(nested, &mut results);
            open.take(results, out);
            return match bail {
                Some(reason) => self.bail(reason, out),
                None => None,
            };
        }

        // This level's own lines.
        if let Some(reason) = bail_out(line) {
            return self.bail(reason, out);
        }
        if let Some(planned) = plan(line) {
            self.plan = Some(planned);
            return None;
        }
        if version(line) {
            return None;
        }
        if let Some(r) = parse_result(line) {
            self.result(r, out);
            return None;
        }
        if can_nest && let Some(name) = subtest_name(line) {
            self.abandon_open("no result", out);
            self.tail.push_line(line);
            self.open = Some(Open::new(Kind::Indent, Some(vec![name]), self.depth));
            return None;
        }
        self.tail.push_line(line);
        None
    }

    fn bail(&mut self, reason: String, out: &mut Vec<TestResult>) -> Option<String> {
        self.abandon_open(&bail_message(&reason), out);
        self.bailed = Some(reason.clone());
        if self.local_bail { None } else { Some(reason) }
    }

    fn result(&mut self, r: ParsedResult, out: &mut Vec<TestResult>) {
        self.count += 1;
        let number = r.number.unwrap_or(self.count);
        let mut path = match kselftest_name(&r.desc) {
            Some(name) => name,
            None if r.desc.is_empty() => Vec::new(),
            None => vec![clip(&r.desc)],
        };
        let mut message = None;
        if let Some(open) = self.open.take() {
            if path.is_empty()
                && let Some(name) = &open.name
            {
                path = name.clone();
            }
            if path.is_empty() {
                path = vec![format!("test {number}")];
            }
            message = open.message.clone().or_else(|| {
                (open.kind == Kind::Hash)
                    .then(|| open.level.bailed.as_deref().map(bail_message))
                    .flatten()
            });
            open.close("no result", &path, out);
        }
        if path.is_empty() {
            path = vec![format!("test {number}")];
        }
        let status = match r.directive {
            Directive::Skip(reason) => TestStatus::Skipped(reason),
            Directive::Todo(reason) if !r.ok => TestStatus::Skipped(Some(match reason {
                Some(reason) => format!("TODO: {reason}"),
                None => "TODO".to_string(),
            })),
            _ if r.ok => TestStatus::Passed,
            _ => TestStatus::Failed,
        };
        let duration = r.comment.as_deref().and_then(duration);
        let message = match status {
            TestStatus::Failed => r.comment.or(message),
            _ => None,
        };
        self.held = Some(Held {
            result: TestResult {
                path,
                status,
                duration,
                output: String::new(),
                message,
            },
            tail: std::mem::take(&mut self.tail),
            yaml: None,
        });
    }

    fn flush_held(&mut self, out: &mut Vec<TestResult>) {
        if let Some(held) = self.held.take() {
            let mut result = held.result;
            result.output = tail_text(&held.tail);
            if let Some(message) = held.yaml.and_then(Yaml::message) {
                result.message = Some(message);
            }
            out.push(result);
        }
    }

    /// Ends the open subtest or kselftest test without a result line: if it
    /// started, it failed with `why`.
    fn abandon_open(&mut self, why: &str, out: &mut Vec<TestResult>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let started = open.started();
        let name = open
            .name
            .clone()
            .unwrap_or_else(|| vec![format!("test {}", self.count + 1)]);
        open.close(why, &name, out);
        if started {
            out.push(TestResult {
                path: name,
                status: TestStatus::Failed,
                duration: None,
                output: tail_text(&self.tail),
                message: Some(why.to_string()),
            });
            self.tail.clear();
        }
    }

    /// The output ended (or the parent's result line came): emits what is
    /// held and fails the test still open with `why`.
    fn finish_nested(&mut self, why: &str, out: &mut Vec<TestResult>) {
        self.flush_held(out);
        self.abandon_open(why, out);
    }
}

/// A YAML diagnostic block: only its `message:` is looked at.
#[derive(Debug, Default)]
struct Yaml {
    message: Option<String>,
    /// In a `message: |` block scalar: the key's indentation and the lines.
    block: Option<(usize, String)>,
}

impl Yaml {
    fn feed(&mut self, line: &[u8]) {
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        if let Some((key_indent, text)) = &mut self.block {
            if trim(line).is_empty() || indent > *key_indent {
                if text.len() < MAX_TEXT {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&decode(trim(line)));
                }
                return;
            }
            self.end_block();
        }
        if self.message.is_some() {
            return;
        }
        let Some(value) = trim(line).strip_prefix(b"message:") else {
            return;
        };
        let value = trim(value);
        if value.starts_with(b"|") || value.starts_with(b">") {
            self.block = Some((indent, String::new()));
        } else {
            let unquoted = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .or_else(|| value.strip_prefix(b"'").and_then(|v| v.strip_suffix(b"'")))
                .unwrap_or(value);
            self.message = Some(clip(&decode(unquoted)));
        }
    }

    fn end_block(&mut self) {
        if let Some((_, text)) = self.block.take() {
            self.message = Some(clip(text.trim_end()));
        }
    }

    fn message(mut self) -> Option<String> {
        self.end_block();
        self.message.filter(|m| !m.is_empty())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Directive {
    None,
    Skip(Option<String>),
    Todo(Option<String>),
}

#[derive(Debug)]
struct ParsedResult {
    ok: bool,
    number: Option<u64>,
    desc: String,
    directive: Directive,
    /// The text after `#` when it isn't a SKIP/TODO directive.
    comment: Option<String>,
}

/// `ok 1 - desc # SKIP reason`, `not ok desc`, `ok`.
fn parse_result(line: &[u8]) -> Option<ParsedResult> {
    let (ok, rest) = match line.strip_prefix(b"not ok") {
        Some(rest) => (false, rest),
        None => (true, line.strip_prefix(b"ok")?),
    };
    if rest.first().is_some_and(|&b| !b.is_ascii_whitespace() && b != b'#') {
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
    let (desc, directive_text) = split_directive(rest);
    let desc = clip(&unescape(trim(desc)));
    let (directive, comment) = match directive_text.map(trim) {
        None | Some(b"") => (Directive::None, None),
        Some(text) => {
            let word_len = text.iter().take_while(|b| b.is_ascii_alphabetic()).count();
            let (word, reason) = text.split_at(word_len);
            let word = word.to_ascii_lowercase();
            let reason = trim(reason);
            let reason = trim(reason.strip_prefix(b":").unwrap_or(reason));
            let reason = (!reason.is_empty()).then(|| clip(&decode(reason)));
            if word.starts_with(b"skip") {
                (Directive::Skip(reason), None)
            } else if word.starts_with(b"todo") {
                (Directive::Todo(reason), None)
            } else {
                (Directive::None, Some(clip(&decode(text))))
            }
        }
    };
    Some(ParsedResult {
        ok,
        number,
        desc,
        directive,
        comment,
    })
}

/// The description and the text after its first unescaped `#`.
fn split_directive(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    let mut escaped = false;
    for (i, &b) in s.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'#' => return (&s[..i], Some(&s[i + 1..])),
            _ => {}
        }
    }
    (s, None)
}

/// A description with TAP's `\#` and `\\` escapes undone.
fn unescape(s: &[u8]) -> String {
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

/// `1..N`, `1..0 # SKIP reason`: the planned count.
fn plan(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"1..")?;
    let (n, rest) = digits(rest)?;
    let rest = trim(rest);
    (rest.is_empty() || rest.starts_with(b"#")).then_some(n)
}

fn version(line: &[u8]) -> bool {
    line.strip_prefix(b"TAP version ")
        .is_some_and(|v| !v.is_empty() && v.iter().all(u8::is_ascii_digit))
}

/// `Bail out! reason`: the reason.
fn bail_out(line: &[u8]) -> Option<String> {
    let head = line.get(..9)?;
    if !head.eq_ignore_ascii_case(b"bail out!") {
        return None;
    }
    Some(clip(&decode(trim(line.get(9..).unwrap_or_default()))))
}

/// `# Subtest: name`.
fn subtest_name(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"# Subtest:")?;
    Some(clip(&decode(trim(rest))))
}

/// `# selftests: dir: test`: `[dir, test]`.
fn kselftest_header(line: &[u8]) -> Option<Vec<String>> {
    let rest = line.strip_prefix(b"# ")?;
    if !rest.starts_with(b"selftests: ") {
        return None;
    }
    kselftest_name(&decode(trim(rest)))
}

/// `selftests: dir: test` (a kselftest result's description): `[dir, test]`.
fn kselftest_name(desc: &str) -> Option<Vec<String>> {
    let rest = desc.strip_prefix("selftests: ")?;
    let (dir, test) = rest.split_once(": ")?;
    let (dir, test) = (dir.trim(), test.trim());
    (!dir.is_empty() && !test.is_empty()).then(|| vec![clip(dir), clip(test)])
}

/// A kselftest test's output line without its `# ` prefix.
fn hash_nested(line: &[u8]) -> Option<&[u8]> {
    if line == b"#" {
        return Some(b"");
    }
    line.strip_prefix(b"# ")
}

/// `time=12.5ms` / `time=3s` in a result's comment (node-tap).
fn duration(comment: &str) -> Option<Duration> {
    let (_, rest) = comment.split_once("time=")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (num, unit) = rest.split_at(end);
    let num: f64 = num.parse().ok()?;
    let secs = if unit.starts_with("ms") {
        num / 1000.0
    } else if unit.starts_with('s') {
        num
    } else {
        return None;
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// A decimal number at the start of `s` and what follows it.
fn digits(s: &[u8]) -> Option<(u64, &[u8])> {
    let end = s.iter().position(|b| !b.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 || end > 19 {
        return None;
    }
    let (num, rest) = s.split_at(end);
    let n = std::str::from_utf8(num).ok()?.parse().ok()?;
    Some((n, rest))
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

fn decode(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// `s`, cut to at most [`MAX_TEXT`] bytes at a character boundary.
fn clip(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_string();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
