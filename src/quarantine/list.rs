//! The quarantine file: its entries, read and checked (errors name
//! file:line:col and the key, as the config's do), and which entry a name
//! matches.
//!
//! ```toml
//! [[quarantine]]
//! pattern = "net-*"                  # a glob over the batch name (later batch/test/subtest)
//! reason = "flaky on arm64"
//! issue = "https://example.org/issues/42"
//! until = 2026-12-31                 # optional; a date (TOML date or "YYYY-MM-DD")
//! ```

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use globset::{Glob, GlobMatcher};
use serde::Deserialize;
use toml::Spanned;

use crate::config::ConfigError;
use crate::config::span::Source;

#[derive(Debug, Clone)]
pub struct QuarantineEntry {
    pub pattern: String,
    matcher: GlobMatcher,
    pub reason: String,
    pub issue: Option<String>,
    pub until: Option<NaiveDate>,
}

impl PartialEq for QuarantineEntry {
    fn eq(&self, other: &Self) -> bool {
        (&self.pattern, &self.reason, &self.issue, self.until)
            == (&other.pattern, &other.reason, &other.issue, other.until)
    }
}

impl Eq for QuarantineEntry {}

impl QuarantineEntry {
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// Past its `until` date on `today`.
    pub fn expired(&self, today: NaiveDate) -> bool {
        self.until.is_some_and(|until| today > until)
    }

    /// `reason (issue)`, for reports.
    pub fn describe(&self) -> String {
        match &self.issue {
            Some(issue) => format!("{} ({issue})", self.reason),
            None => self.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quarantine {
    pub path: PathBuf,
    pub entries: Vec<QuarantineEntry>,
}

impl Quarantine {
    /// The first entry matching `name`.
    pub fn find(&self, name: &str) -> Option<&QuarantineEntry> {
        self.entries.iter().find(|e| e.matches(name))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    quarantine: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    pattern: Spanned<String>,
    reason: Spanned<String>,
    issue: Option<String>,
    until: Option<Spanned<toml::Value>>,
}

pub fn load(path: &Path) -> Result<Quarantine, ConfigError> {
    let text =
        crate::input::read_to_string(path, crate::input::MAX_CONFIG_BYTES).map_err(|error| {
            ConfigError::Read {
                path: path.to_path_buf(),
                error,
            }
        })?;
    parse(path, &text)
}

/// Validates quarantine-file text; `path` is used in messages only.
pub fn parse(path: &Path, text: &str) -> Result<Quarantine, ConfigError> {
    let cx = Source::new(path, text);
    let error = |offset: usize, message: String| cx.error(offset..offset, message);
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        error(offset, e.message().trim().replace('\n', "; "))
    })?;
    let mut entries = Vec::with_capacity(raw.quarantine.len());
    for r in raw.quarantine {
        let matcher = Glob::new(r.pattern.get_ref())
            .map_err(|e| error(r.pattern.span().start, format!("key `pattern`: {e}")))?
            .compile_matcher();
        if r.reason.get_ref().trim().is_empty() {
            return Err(error(
                r.reason.span().start,
                "key `reason`: must not be empty".into(),
            ));
        }
        let until = match &r.until {
            None => None,
            Some(v) => Some(date(v.get_ref()).ok_or_else(|| {
                error(
                    v.span().start,
                    "key `until`: expected a date like 2026-12-31".into(),
                )
            })?),
        };
        entries.push(QuarantineEntry {
            pattern: r.pattern.into_inner(),
            matcher,
            reason: r.reason.into_inner(),
            issue: r.issue,
            until,
        });
    }
    Ok(Quarantine {
        path: path.to_path_buf(),
        entries,
    })
}

fn date(v: &toml::Value) -> Option<NaiveDate> {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => d.to_string(),
        _ => return None,
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("quarantine.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn loads_and_matches() {
        let (_d, p) = write(
            "[[quarantine]]\npattern = \"net-*\"\nreason = \"flaky\"\nissue = \"https://x/1\"\nuntil = 2026-12-31\n",
        );
        let q = load(&p).unwrap();
        let e = q.find("net-udp").unwrap();
        assert_eq!(e.describe(), "flaky (https://x/1)");
        assert!(q.find("unit").is_none());
        let day = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert!(!e.expired(day("2026-12-31")));
        assert!(e.expired(day("2027-01-01")));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let (_d, p) = write("[[quarantine]]\npattern = \"a\"\nreason = \"r\"\nuntil = \"soon\"\n");
        let e = load(&p).unwrap_err().to_string();
        assert!(
            e.ends_with(":4:9: key `until`: expected a date like 2026-12-31"),
            "{e}"
        );
        let (_d, p) = write("[[quarantine]]\npattern = \"a\"\n");
        assert!(
            load(&p)
                .unwrap_err()
                .to_string()
                .contains("missing field `reason`")
        );
    }
}
