//! `warden run --rerun-failed FROM`: run again only what did not pass in
//! an earlier run, read from the JUnit report it wrote (an artifacts
//! directory, as CI keeps it and a laptop downloads it) or from the
//! history (a run uuid).
//!
//! A batch is rerun when it did not pass there: failed, crashed, timed
//! out, leaked, aborted, stopped by the deadline or a signal, or never
//! started (`not-run`). A flaky batch passed in the end and is not rerun;
//! a quarantined failure is not rerun from a JUnit report (it is a skip
//! there), but is from the history (which does not record quarantine).
//! A batch with `rerun` whose failed tests are known runs only those
//! tests, through its `rerun` template, as a retry would; one that failed
//! outside any test (a crash before its first test) runs whole. Tests a
//! batch never reached (cut off by a crash) are not in the report: only
//! the failed ones are rerun, as a retry does.
//!
//! Reading warden's own JUnit (report/junit.rs): `<testsuites
//! name="warden">`; the `warden` suite holds a testcase per batch not read
//! into tests (its name, its status as the `type` of a `<failure>`,
//! `<error>` or `<skipped>`); a batch read into tests has a suite of its
//! own, named after it, whose testcases of classname = the batch are its
//! tests (named by their path joined with `/`), plus one testcase for the
//! batch itself when it failed outside any test. The `setup` and `post`
//! suites are left alone: setup and post steps always run.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::config::{Command, OutputFormat};
use crate::history::query::RunDetail;
use crate::phase::Phase;
use crate::plan::Plan;
use crate::status::{Status, TestStatus};

/// What did not pass in the earlier run, by batch name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Failed {
    pub batches: BTreeMap<String, FailedBatch>,
}

/// A batch that did not pass.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FailedBatch {
    /// Its status there: `failed`, `timed-out`, `not-run`, …
    pub status: String,
    /// Its failed tests, by name below the batch; empty when it failed
    /// outside any test or was not read into tests.
    pub tests: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is not a JUnit report warden wrote: {why}", path.display())]
    NotWardens { path: PathBuf, why: String },
}

/// What this run reruns, after [`select`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Batch names kept, each with how many of its tests it reruns (0: whole).
    pub kept: Vec<(String, usize)>,
    /// Failed there, but not among this run's batches.
    pub missing: Vec<String>,
}

impl Failed {
    /// What did not pass in the run the history holds as `run`: its
    /// batches (and imported suites) that did not pass, and their failed
    /// tests (the history names them `<batch>/<test>`).
    pub fn from_run(run: &RunDetail) -> Failed {
        let mut failed = Failed::default();
        let mut names = BTreeMap::new();
        for b in &run.batches {
            if matches!(b.phase, Phase::Batch | Phase::Suite)
                && !matches!(b.status, Status::Passed | Status::Flaky)
            {
                names.insert(b.id, b.name.clone());
                failed.batches.insert(
                    b.name.clone(),
                    FailedBatch {
                        status: b.status.as_str().to_owned(),
                        tests: Vec::new(),
                    },
                );
            }
        }
        for t in run
            .failing
            .iter()
            .filter(|t| t.status == TestStatus::Failed)
        {
            let Some(batch) = t.batch.and_then(|id| names.get(&id)) else {
                continue;
            };
            let Some(test) = t
                .test
                .strip_prefix(batch.as_str())
                .and_then(|t| t.strip_prefix('/'))
            else {
                continue;
            };
            if let Some(b) = failed.batches.get_mut(batch) {
                b.tests.push(test.to_owned());
            }
        }
        failed
    }

    /// What did not pass according to the JUnit report warden wrote at `path`.
    pub fn from_junit(path: &Path) -> Result<Failed, RerunError> {
        let file = std::fs::File::open(path).map_err(|error| RerunError::Read {
            path: path.to_owned(),
            error,
        })?;
        let not_wardens = |why: String| RerunError::NotWardens {
            path: path.to_owned(),
            why,
        };
        let mut reader = Reader::from_reader(BufReader::new(file));
        let mut buf = Vec::new();
        let mut failed = Failed::default();
        let mut root = false;
        // The suite, and the testcase being read (name, classname).
        let mut suite: Option<String> = None;
        let mut case: Option<(String, String)> = None;
        loop {
            let event = reader
                .read_event_into(&mut buf)
                .map_err(|e| not_wardens(format!("malformed XML: {e}")))?;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(event, Event::Empty(_));
                    match e.name().as_ref() {
                        b"testsuites" => {
                            if attr(e, "name").as_deref() != Some("warden") {
                                return Err(not_wardens(
                                    "its <testsuites> is not named \"warden\"".into(),
                                ));
                            }
                            root = true;
                        }
                        b"testsuite" if !empty => suite = attr(e, "name"),
                        b"testcase" if !empty => {
                            case = Some((
                                attr(e, "name").unwrap_or_default(),
                                attr(e, "classname").unwrap_or_default(),
                            ))
                        }
                        tag @ (b"failure" | b"error" | b"skipped") => {
                            if let (Some(s), Some((name, classname))) = (&suite, &case) {
                                let ty = attr(e, "type").unwrap_or_default();
                                failed.add(s, name, classname, tag == b"skipped", ty);
                            }
                        }
                        _ => {}
                    }
                }
                Event::End(ref e) => match e.name().as_ref() {
                    b"testsuite" => suite = None,
                    b"testcase" => case = None,
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        if !root {
            return Err(not_wardens("no <testsuites>".into()));
        }
        Ok(failed)
    }

    /// A testcase's `<failure>`, `<error>` or `<skipped>` (of `type` `ty`).
    fn add(&mut self, suite: &str, name: &str, classname: &str, skipped: bool, ty: String) {
        match suite {
            // A batch not read into tests: skipped only when it never ran
            // (a quarantined failure is a skip too, and is left alone).
            "warden" if !skipped || ty == Status::NotRun.as_str() => {
                self.batches.entry(name.to_owned()).or_default().status = ty;
            }
            "setup" | "post" | "warden" => {}
            batch if !skipped => {
                let b = self.batches.entry(batch.to_owned()).or_default();
                if classname == batch {
                    b.tests.push(name.to_owned());
                    if b.status.is_empty() {
                        b.status = Status::Failed.as_str().to_owned();
                    }
                } else {
                    // The batch's own testcase: it failed outside its tests.
                    b.status = ty;
                }
            }
            _ => {}
        }
    }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let a = e.try_get_attribute(name).ok()??;
    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
        .ok()
        .map(|v| v.into_owned())
}

/// Keeps only the batches of `plan` that did not pass, and points those
/// with `rerun` and known failed tests at only those tests.
pub fn select(plan: &mut Plan, failed: &Failed) -> Selection {
    let mut selection = Selection {
        missing: failed
            .batches
            .keys()
            .filter(|n| !plan.batches.iter().any(|b| b.config.name.as_str() == *n))
            .cloned()
            .collect(),
        ..Selection::default()
    };
    plan.batches
        .retain(|b| failed.batches.contains_key(b.config.name.as_str()));
    for b in &mut plan.batches {
        let Some(f) = failed.batches.get(b.config.name.as_str()) else {
            continue;
        };
        let cfg = &mut b.config;
        let narrowed = match &cfg.rerun {
            Some(template) if !f.tests.is_empty() && cfg.format != OutputFormat::None => {
                let tests: Vec<_> = f
                    .tests
                    .iter()
                    .map(|t| crate::retry::named_failure(&cfg.format, t))
                    .collect();
                let refs: Vec<_> = tests.iter().collect();
                cfg.command =
                    Command::Argv(crate::retry::expand_rerun(template, &cfg.format, &refs));
                tests.len()
            }
            _ => 0,
        };
        selection.kept.push((cfg.name.to_string(), narrowed));
    }
    plan.order_by(&crate::scheduler::order::Expected::none());
    selection
}

impl Selection {
    /// `2 batches: net (3 failed tests), vm`.
    pub fn describe(&self) -> String {
        let n = self.kept.len();
        let names: Vec<String> = self
            .kept
            .iter()
            .map(|(name, tests)| match tests {
                0 => name.clone(),
                1 => format!("{name} (1 failed test)"),
                n => format!("{name} ({n} failed tests)"),
            })
            .collect();
        format!(
            "{n} {}: {}",
            if n == 1 { "batch" } else { "batches" },
            names.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="warden" tests="9" skipped="2" failures="3" errors="1">
    <testsuite name="setup" tests="1" skipped="0" errors="0" failures="0">
        <testcase name="prepare" classname="warden"/>
    </testsuite>
    <testsuite name="warden" tests="5" skipped="2" errors="1" failures="1">
        <testcase name="ok" classname="warden"/>
        <testcase name="broke" classname="warden"><failure message="exit code 1" type="failed"/></testcase>
        <testcase name="hung" classname="vm"><error message="timed out" type="timed-out"/></testcase>
        <testcase name="never" classname="warden"><skipped message="not started" type="not-run"/></testcase>
        <testcase name="known" classname="warden"><skipped message="quarantined" type="quarantined"/></testcase>
    </testsuite>
    <testsuite name="post" tests="1" skipped="0" errors="0" failures="1">
        <testcase name="cleanup" classname="warden"><failure type="failed"/></testcase>
    </testsuite>
    <testsuite name="unit" tests="3" skipped="0" errors="0" failures="2">
        <testcase name="bin/a::ok" classname="unit"/>
        <testcase name="bin/a::bad" classname="unit"><failure type="failed"/></testcase>
        <testcase name="bin/a &amp; b" classname="unit"><failure type="failed"/></testcase>
    </testsuite>
    <testsuite name="green" tests="1" skipped="0" errors="0" failures="0">
        <testcase name="t" classname="green"><flakyFailure type="failed"/></testcase>
    </testsuite>
    <testsuite name="crashy" tests="2" skipped="0" errors="1" failures="0">
        <testcase name="t1" classname="crashy"/>
        <testcase name="crashy" classname="warden"><error type="crashed"/></testcase>
    </testsuite>
</testsuites>
"#;

    #[test]
    fn reads_what_did_not_pass_from_wardens_junit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        std::fs::write(&path, REPORT).unwrap();
        let failed = Failed::from_junit(&path).unwrap();
        let got: Vec<(&str, &str, Vec<&str>)> = failed
            .batches
            .iter()
            .map(|(n, b)| {
                let tests = b.tests.iter().map(String::as_str).collect();
                (n.as_str(), b.status.as_str(), tests)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("broke", "failed", vec![]),
                ("crashy", "crashed", vec![]),
                ("hung", "timed-out", vec![]),
                ("never", "not-run", vec![]),
                ("unit", "failed", vec!["bin/a::bad", "bin/a & b"]),
            ]
        );
    }

    #[test]
    fn other_reports_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junit.xml");
        for (text, why) in [
            ("<testsuites name=\"pytest\"/>", "not named \"warden\""),
            ("<testsuite name=\"x\"></testsuite>", "no <testsuites>"),
            ("<testsuites name=\"warden\"><a></b>", "malformed XML"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = Failed::from_junit(&path).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.contains("is not a JUnit report warden wrote"), "{e}");
        }
        let e = Failed::from_junit(&dir.path().join("none.xml")).unwrap_err();
        assert!(e.to_string().starts_with("cannot read "), "{e}");
    }
}
