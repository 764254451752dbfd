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

use super::{Ended, OutputTail, Parser, StreamVerdict, TestResult, TestStatus};

/// Longest name or message kept (one on a 1 MB line would otherwise be
/// kept whole).
const MAX_TEXT: usize = 4096;

/// Most results of an unnamed indented block held back waiting for the
/// parent's result line to name them.
const MAX_BUFFERED: usize = 1000;

/// Deepest nesting followed; deeper indented lines are plain output (a line
/// of a megabyte of spaces must not make a quarter million levels).
const MAX_DEPTH: usize = 16;

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
    fn line(&mut self, line: &[u8], _at: Duration, done: &mut Vec<TestResult>) {
        if self.root.bailed.is_some() {
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(reason) = self.root.line(line, done) {
            self.problems.push(bail_message(&reason));
        }
    }

    fn finish(self: Box<Self>, ended: &Ended) -> (Vec<TestResult>, StreamVerdict) {
        let cut_short = ended.cut_short();
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
                Some(planned) if planned != root.count => {
                    problems.push(format!("planned {planned} tests, got {}", root.count))
                }
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
                // The block's lines are indented; an unindented line ends
                // a block missing its `...` (and is processed as usual).
                if line.first().is_none_or(u8::is_ascii_whitespace) {
                    held.tail.push_line(line);
                    if trim(line) == b"..." {
                        self.flush_held(out);
                    } else {
                        yaml.feed(line);
                    }
                    return None;
                }
            }
            if held.yaml.is_none()
                && line.first().is_some_and(u8::is_ascii_whitespace)
                && trim(line) == b"---"
            {
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
            if open.buffered.len() > MAX_BUFFERED {
                // No parent result line in sight: name the block now.
                let name = vec![format!("test {}", self.count + 1)];
                let buffered = std::mem::take(&mut open.buffered);
                out.extend(buffered.into_iter().map(|r| prefixed(&name, r)));
                open.name = Some(name);
            }
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
        // A comment that is no directive (`# exit=1`, `# TIMEOUT 45
        // seconds`) is a failed test's message, unless it's node-tap's time.
        let comment = r.comment.filter(|c| !c.starts_with("time="));
        let message = match status {
            TestStatus::Failed => comment.or(message),
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
            result.output = held.tail.text();
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
                output: self.tail.text(),
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

fn clip(s: &str) -> String {
    super::clip(s, MAX_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::parse_lines;
    use crate::parsers::{DROPPED_NOTE, MAX_TEST_OUTPUT};
    use proptest::prelude::*;

    fn run(input: &[u8], cut_short: Option<&str>) -> (Vec<TestResult>, StreamVerdict) {
        let input = input.strip_suffix(b"\n").unwrap_or(input);
        parse_lines(
            Box::new(TapParser::new()),
            input.split(|&b| b == b'\n'),
            cut_short,
        )
    }

    fn get<'a>(results: &'a [TestResult], path: &[&str]) -> &'a TestResult {
        results
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("no result {path:?} in {results:#?}"))
    }

    fn names(results: &[TestResult]) -> Vec<String> {
        results.iter().map(TestResult::name).collect()
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
        assert_eq!(outer.message, None);
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
        let test_bpf = get(&results, &["net", "test_bpf.sh"]);
        assert_eq!(test_bpf.status, TestStatus::Failed);
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
                ],
                0..30,
            ),
            cut in proptest::option::of("[a-z ]{0,10}"),
        ) {
            let (done, _) = parse_lines(
                Box::new(TapParser::new()),
                lines.iter().map(Vec::as_slice),
                cut.as_deref(),
            );
            for r in &done {
                prop_assert!(r.output.len() <= MAX_TEST_OUTPUT + 200);
                prop_assert!(!r.path.is_empty());
            }
        }
    }
}
