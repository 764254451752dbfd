//! Golden tests: every reporter's output on one fixed run
//! ([`scenario`]), as insta snapshots in `snapshots/` next to this file,
//! so a change in what people or tools read is reviewed in the diff, not
//! stumbled on. The inputs are fixed (start times, durations, log paths),
//! so the snapshots are the same on every machine.
//!
//! A change in output fails these tests; `cargo insta review` (or
//! `INSTA_UPDATE=always cargo test --lib report::golden`) takes the new
//! output once it is the one wanted. CI never writes snapshots.

use super::JunitWriter;
use super::test_support::scenario;
use crate::outcome::Outcome;

/// The JUnit file of `outcomes`, recorded in two bursts (the first three,
/// then the rest), as a run rewrites it.
fn junit_xml(outcomes: &[Outcome]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("junit.xml");
    let mut w = JunitWriter::new(path.clone());
    let (first, rest) = outcomes.split_at(3.min(outcomes.len()));
    w.record_many(first).expect("JUnit written");
    w.record_many(rest).expect("JUnit written");
    std::fs::read_to_string(&path).expect("JUnit read back")
}

/// The layout is the one quick-junit wrote for earlier versions (the same
/// elements, attribute order and indentation), byte for byte.
#[test]
fn junit() {
    let xml = junit_xml(&scenario());
    // The snapshot is compared without its trailing newline.
    assert!(xml.ends_with("</testsuites>\n"), "{xml}");
    insta::assert_snapshot!(xml);
}
