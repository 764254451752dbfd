//! Golden tests: every reporter's output on one fixed run
//! ([`scenario`]), as insta snapshots in `snapshots/` next to this file,
//! so a change in what people or tools read is reviewed in the diff, not
//! stumbled on. The inputs are fixed (start times, durations, paths); the
//! one real file, a log, lives in a temporary directory whose path is
//! written `[TMP]`. So the snapshots are the same on every machine.
//!
//! A change in output fails these tests; `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test --lib report::golden`) takes the new
//! output once it is the one wanted. CI never writes snapshots.

use std::path::Path;
use std::time::{Duration, Instant};

use super::test_support::scenario;
use super::{JunitWriter, Makespan, Summary, terminal};
use crate::event::Event;
use crate::outcome::Outcome;
use crate::scheduler::predict::Prediction;

/// The scenario, with a real log for the batch that timed out (its tail
/// is JUnit's `system-out`): colour, controls, bytes that are not UTF-8.
fn outcomes(dir: &Path) -> Vec<Outcome> {
    let mut outcomes = scenario();
    let log = dir.join("plain.log");
    std::fs::write(
        &log,
        b"starting\n\x1b[31mred\x1b[0m bell\x07 nul\x00 \xff\xfe\nwaiting <forever> & more\n",
    )
    .expect("log written");
    let plain = outcomes
        .iter_mut()
        .find(|o| o.name.as_ref() == "plain")
        .expect("the scenario has `plain`");
    plain.log = log;
    outcomes
}

/// `text` with the temporary directory's path as `[TMP]`.
fn fixed(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "[TMP]")
}

/// The summary as a run ends it: a makespan with its prediction, and where
/// the run was recorded.
fn summary(outcomes: &[Outcome]) -> Summary {
    let mut s = Summary::new(outcomes);
    s.set_makespan(Makespan {
        actual: Duration::from_secs(250),
        predicted: Some(Prediction {
            makespan: Duration::from_secs(242),
            lower_bound: Duration::from_secs(235),
            guessed: 2,
            batches: 13,
        }),
    });
    s.add_note("History: run r-1 recorded in sqlite:/nonexistent/history.db".into());
    s
}

/// Plain terminal lines (no TTY, no colour): each batch's start and
/// finish, and a note about the run.
#[test]
fn terminal_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut events = Vec::new();
    for o in outcomes(dir.path()) {
        events.push(Event::Started {
            name: o.name.clone(),
            at: Instant::now(),
            slot: Some(0),
            attempt: 1,
            attempts: 1,
        });
        events.push(Event::Finished(Box::new(o)));
    }
    events.push(Event::Note(
        "warden: deadline in 5s \u{1b}[2J: stopping\nsecond line".into(),
    ));
    let text: String = events
        .iter()
        .flat_map(|e| terminal::lines(e, true, false))
        .map(|l| l + "\n")
        .collect();
    insta::assert_snapshot!(fixed(&text, dir.path()));
}

#[test]
fn summary_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = summary(&outcomes(dir.path())).render_text();
    insta::assert_snapshot!(fixed(&text, dir.path()));
}

#[test]
fn summary_markdown() {
    let dir = tempfile::tempdir().expect("temp dir");
    let md = summary(&outcomes(dir.path())).render_markdown();
    insta::assert_snapshot!(fixed(&md, dir.path()));
}

/// The JUnit file, recorded in two bursts (the first three outcomes, then
/// the rest) as a run rewrites it. Its layout is the one quick-junit wrote
/// for earlier versions (the same elements, attribute order and
/// indentation): the snapshot began as that file, byte for byte, for the
/// scenario's first seven outcomes.
#[test]
fn junit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outcomes = outcomes(dir.path());
    let path = dir.path().join("junit.xml");
    let mut w = JunitWriter::new(path.clone());
    w.record_many(&outcomes[..3]).expect("JUnit written");
    w.record_many(&outcomes[3..]).expect("JUnit written");
    let xml = std::fs::read_to_string(&path).expect("JUnit read back");
    // The snapshot is compared without its trailing newline.
    assert!(xml.ends_with("</testsuites>\n"), "{xml}");
    insta::assert_snapshot!(fixed(&xml, dir.path()));
}
