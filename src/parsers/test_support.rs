//! Tests only: the one harness the parsers' tests feed output through and
//! look at results with. Output is cut into lines as the capture thread
//! cuts it, line `i` arrives at `i` ms (so a duration measured from
//! arrival times is the number of lines a test spans), and the parser is
//! finished with how the batch ended.

use std::time::Duration;

use super::{Ended, Parser, StreamVerdict, TestResult};
use crate::status::TestStatus;

/// What a parser made of a whole output: every result, in the order they
/// came, and its verdict.
pub(crate) type Parsed = (Vec<TestResult>, StreamVerdict);

/// The lines of `input` as the capture thread hands them over: cut at
/// each `\n`, a last line without one only if it is not empty. A `\r`
/// before the `\n` stays (the capture thread drops it): every parser drops
/// it too, and their CRLF tests check that.
pub(crate) fn lines(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let count = if input.is_empty() { 0 } else { usize::MAX };
    body.split(|&b| b == b'\n').take(count)
}

/// How the batch ended: by itself (`None`), or cut off by its timeout
/// with this reason.
pub(crate) fn ended(cut_short: Option<&str>) -> Ended {
    match cut_short {
        None => Ended::exited(),
        Some(reason) => Ended {
            status: TestStatus::Error("timed-out".into()),
            reason: reason.to_string(),
        },
    }
}

/// Cut off by a 5 s timeout.
pub(crate) fn timed_out() -> Ended {
    ended(Some("timed out after 5s"))
}

/// Feeds `lines` to `parser`, line `i` at `i` ms, and finishes it with `ended`.
pub(crate) fn feed<'a>(
    parser: impl Parser + 'static,
    lines: impl IntoIterator<Item = &'a [u8]>,
    ended: &Ended,
) -> Parsed {
    let mut parser: Box<dyn Parser> = Box::new(parser);
    let mut done = Vec::new();
    for (i, line) in lines.into_iter().enumerate() {
        parser.line(line, Duration::from_millis(i as u64), &mut done);
    }
    let (rest, verdict) = parser.finish(ended);
    done.extend(rest);
    (done, verdict)
}

/// `input`, cut into [`lines`], fed to `parser`, finished with `ended`.
pub(crate) fn parse_ended(
    parser: impl Parser + 'static,
    input: impl AsRef<[u8]>,
    ended: &Ended,
) -> Parsed {
    feed(parser, lines(input.as_ref()), ended)
}

/// `input`, cut into [`lines`], fed to `parser`, finished as
/// `cut_short` says ([`ended`]).
pub(crate) fn parse(
    parser: impl Parser + 'static,
    input: impl AsRef<[u8]>,
    cut_short: Option<&str>,
) -> Parsed {
    parse_ended(parser, input, &self::ended(cut_short))
}

/// The result named `name` (its path joined with `/`).
#[track_caller]
pub(crate) fn find<'a>(results: &'a [TestResult], name: &str) -> &'a TestResult {
    results
        .iter()
        .find(|r| r.name() == name)
        .unwrap_or_else(|| panic!("no result {name} in {results:#?}"))
}

/// The result whose path is `path`.
#[track_caller]
pub(crate) fn get<'a>(results: &'a [TestResult], path: &[&str]) -> &'a TestResult {
    results
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("no result {path:?} in {results:#?}"))
}

/// The results' names, in order.
pub(crate) fn names(results: &[TestResult]) -> Vec<String> {
    results.iter().map(TestResult::name).collect()
}

/// The results as `name<TAB>status`, as the real fixtures' expected.tsv
/// files spell them.
pub(crate) fn statuses(results: &[TestResult]) -> Vec<String> {
    results
        .iter()
        .map(|r| format!("{}\t{}", r.name(), r.status))
        .collect()
}

#[test]
fn lines_are_cut_as_the_capture_thread_cuts_them() {
    let cut = |s: &str| lines(s.as_bytes()).map(<[u8]>::to_vec).collect::<Vec<_>>();
    assert_eq!(cut(""), Vec::<Vec<u8>>::new());
    assert_eq!(cut("\n"), [b"".to_vec()]);
    assert_eq!(cut("a"), [b"a".to_vec()]);
    assert_eq!(cut("a\n"), [b"a".to_vec()]);
    assert_eq!(
        cut("a\r\n\nb"),
        [b"a\r".to_vec(), b"".to_vec(), b"b".to_vec()]
    );
}
