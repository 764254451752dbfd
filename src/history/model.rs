//! What the history records: plain values built from a run's outcomes or
//! from imported JUnit, written by [`Db`](super::Db).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::phase::Phase;
use crate::status::{Status, TestStatus, Unknown};
use crate::text::{MAX_MESSAGE, head};
use crate::usage::Usage;

/// Labels of a run (`arch=x86_64 compiler=gcc`), from `--label k=v` and `[run] labels`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    pub fn insert(&mut self, key: String, value: String) {
        self.0.insert(key, value);
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Later labels override earlier ones with the same key.
    pub fn merged(mut self, other: &Labels) -> Labels {
        for (k, v) in other.iter() {
            self.insert(k.to_owned(), v.to_owned());
        }
        self
    }

    /// The canonical text, `k=v` sorted by key and joined by spaces: how
    /// runs "with the same labels" are compared.
    pub fn canonical(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// Checks a label key: letters, digits, `_`, `-`, `.`; it becomes a column
/// name in `--by` output and must stay unambiguous in `k=v` text.
pub fn valid_label_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// One `k=v` label as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
}

impl FromStr for Label {
    type Err = String;

    fn from_str(s: &str) -> Result<Label, String> {
        let Some((key, value)) = s.split_once('=') else {
            return Err(format!("`{s}` is not a label: expected KEY=VALUE"));
        };
        if !valid_label_key(key) {
            return Err(format!(
                "`{key}` is not a label key: use letters, digits, `_`, `-` and `.`"
            ));
        }
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(format!(
                "label `{key}` needs a value without spaces, as in {key}=x86_64"
            ));
        }
        Ok(Label {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl FromIterator<Label> for Labels {
    fn from_iter<I: IntoIterator<Item = Label>>(iter: I) -> Labels {
        let mut labels = Labels::default();
        for l in iter {
            labels.insert(l.key, l.value);
        }
        labels
    }
}

/// Who wrote a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunSource {
    /// `warden run`.
    Run,
    /// `warden import junit`.
    Import,
}

impl RunSource {
    pub fn as_str(self) -> &'static str {
        match self {
            RunSource::Run => "run",
            RunSource::Import => "import",
        }
    }
}

/// The word [`RunSource::as_str`] writes, back (a run row of the store).
impl FromStr for RunSource {
    type Err = Unknown;

    fn from_str(s: &str) -> Result<RunSource, Unknown> {
        [RunSource::Run, RunSource::Import]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Unknown::new("run source", s))
    }
}

impl serde::Serialize for RunSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A run, as known when it starts.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Unique across machines: a fleet writes into one database.
    pub uuid: String,
    pub started: SystemTime,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub host: String,
    pub labels: Labels,
    pub source: RunSource,
}

/// A batch (or setup/post step, or imported test suite) and everything in it.
#[derive(Debug, Clone)]
pub struct BatchRecord {
    pub name: String,
    /// [`Phase::Suite`] for imported JUnit.
    pub phase: Phase,
    pub status: Status,
    pub reason: String,
    pub started: SystemTime,
    pub duration: Duration,
    /// The log file, an absolute path on the machine that ran the batch;
    /// `None` for imported suites.
    pub log: Option<String>,
    /// Earlier attempts that failed and were retried, oldest first.
    pub attempts: Vec<AttemptRecord>,
    pub tests: Vec<TestRecord>,
    /// What it used (its last attempt), when measured: stored in the
    /// columns of migrations/*/0004; `None` for imported suites.
    pub usage: Option<Usage>,
}

impl BatchRecord {
    /// Whether this is a setup step that failed: one mark of a mass
    /// failure (the run's `setup_failed`). Failed, crashed, timed out,
    /// leaked, aborted or stopped by the deadline; not passed or flaky, and
    /// not a stop someone asked for (interrupted, not run).
    /// migrations/*/0003 says the same in SQL for the runs before it.
    pub fn is_failed_setup(&self) -> bool {
        self.phase == Phase::Setup
            && !self.status.is_success()
            && !matches!(self.status, Status::NotRun | Status::Interrupted)
    }
}

#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub status: Status,
    pub reason: String,
    pub duration: Duration,
}

/// One test or subtest result. Names are unique within a run.
#[derive(Debug, Clone, PartialEq)]
pub struct TestRecord {
    /// `batch/test/subtest` for warden's own runs; `classname/name` for
    /// imported JUnit.
    pub name: String,
    /// As stored ([`TestStatus::stored`]): no error, no skip reason.
    pub status: TestStatus,
    pub duration: Option<Duration>,
    /// A short failure message (at most [`MAX_MESSAGE`] bytes).
    pub message: Option<String>,
}

/// Cuts `text` to its first non-empty line, at most [`MAX_MESSAGE`] bytes
/// on a character boundary.
pub fn short_message(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(head(line, MAX_MESSAGE).to_owned())
}

pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub fn from_unix_millis(ms: i64) -> SystemTime {
    if ms >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// A duration as the store keeps it: whole milliseconds.
pub fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A stored duration back: a negative one (a clock that went back) is zero.
pub fn from_duration_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_print_canonically() {
        let labels: Labels = ["compiler=gcc", "arch=x86_64"]
            .iter()
            .map(|s| s.parse::<Label>().unwrap())
            .collect();
        assert_eq!(labels.canonical(), "arch=x86_64 compiler=gcc");
        assert!("arch".parse::<Label>().is_err());
        assert!("=x".parse::<Label>().is_err());
        assert!("a b=x".parse::<Label>().is_err());
        assert!("arch=".parse::<Label>().is_err());
        assert_eq!("k=a=b".parse::<Label>().unwrap().value, "a=b");
    }

    #[test]
    fn short_message_takes_the_first_line_within_bounds() {
        assert_eq!(short_message("\n  \n boom \nmore"), Some("boom".into()));
        assert_eq!(short_message(""), None);
        let long = "é".repeat(MAX_MESSAGE);
        let m = short_message(&long).unwrap();
        assert!(m.len() <= MAX_MESSAGE && m.chars().all(|c| c == 'é'));
    }

    #[test]
    fn millis_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_123);
        assert_eq!(from_unix_millis(unix_millis(t)), t);
    }
}
