//! The run key: what the machines of one CI run share, so they find one
//! queue. `BASE#ATTEMPT`: the CI's id of the run, and which attempt of it
//! this is (a CI's "re-run failed jobs" keeps the base and counts the
//! attempt up; see `queue::store::join` for what an attempt after the
//! first runs).

use std::fmt;
use std::str::FromStr;

/// Where the key comes from when `--run-key` is not given: the first of
/// these whose base variable is set. (base variable, attempt variable,
/// prefix of the base.)
pub const SOURCES: &[(&str, Option<&str>, &str)] = &[
    ("WARDEN_RUN_KEY", None, ""),
    ("GITHUB_RUN_ID", Some("GITHUB_RUN_ATTEMPT"), "github-"),
    (
        "BUILDKITE_BUILD_ID",
        Some("BUILDKITE_RETRY_COUNT"),
        "buildkite-",
    ),
    ("CI_PIPELINE_ID", None, "gitlab-"),
    ("PROW_JOB_ID", None, "prow-"),
    ("CIRCLE_WORKFLOW_ID", None, "circleci-"),
    ("BUILD_TAG", None, "jenkins-"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    pub base: String,
    /// 1 for the first attempt.
    pub attempt: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "queue mode needs a run key shared by the machines of one CI run: give --run-key, \
         or set one of {}",
        names()
    )]
    Missing,
    #[error("invalid run key {0:?}: {1}")]
    Invalid(String, &'static str),
}

/// The variables looked at, as the error names them.
fn names() -> String {
    SOURCES
        .iter()
        .map(|(base, attempt, _)| match attempt {
            Some(a) => format!("{base} (+{a})"),
            None => (*base).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl RunKey {
    /// The key from the environment `var` reads (the process's own, in
    /// the app); `None` when no source is set.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<RunKey, KeyError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        for (base_var, attempt_var, prefix) in SOURCES {
            let Some(base) = set(base_var) else { continue };
            if prefix.is_empty() {
                // WARDEN_RUN_KEY: written as --run-key is.
                return base.parse();
            }
            let attempt = match attempt_var.and_then(set) {
                None => 1,
                Some(a) => {
                    let n: u32 = a
                        .trim()
                        .parse()
                        .map_err(|_| KeyError::Invalid(a.clone(), "attempt is not a number"))?;
                    // Buildkite counts retries from 0; GitHub attempts from 1.
                    if *base_var == "BUILDKITE_BUILD_ID" {
                        n.saturating_add(1)
                    } else {
                        n.max(1)
                    }
                }
            };
            let key = RunKey {
                base: format!("{prefix}{}", base.trim()),
                attempt,
            };
            key.check()?;
            return Ok(key);
        }
        Err(KeyError::Missing)
    }

    fn check(&self) -> Result<(), KeyError> {
        let bad = |why| Err(KeyError::Invalid(self.to_string(), why));
        if self.base.is_empty() {
            return bad("empty");
        }
        if self.base.len() > 200 {
            return bad("longer than 200 bytes");
        }
        if self.base.contains('#') || self.base.chars().any(char::is_control) {
            return bad("'#' or a control character in its base");
        }
        if self.attempt == 0 {
            return bad("attempts count from 1");
        }
        Ok(())
    }
}

impl fmt::Display for RunKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.base, self.attempt)
    }
}

/// `BASE` (attempt 1) or `BASE#N`.
impl FromStr for RunKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<RunKey, KeyError> {
        let s = s.trim();
        let key = match s.rsplit_once('#') {
            Some((base, n)) => RunKey {
                base: base.to_owned(),
                attempt: n.parse().map_err(|_| {
                    KeyError::Invalid(s.to_owned(), "attempt after '#' is not a number")
                })?,
            },
            None => RunKey {
                base: s.to_owned(),
                attempt: 1,
            },
        };
        key.check()?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn github_gives_run_id_and_attempt() {
        let k =
            RunKey::from_env(env(&[("GITHUB_RUN_ID", "42"), ("GITHUB_RUN_ATTEMPT", "3")])).unwrap();
        assert_eq!(k.to_string(), "github-42#3");
        let k = RunKey::from_env(env(&[("BUILDKITE_BUILD_ID", "abc")])).unwrap();
        assert_eq!(k.to_string(), "buildkite-abc#1");
        let k = RunKey::from_env(env(&[
            ("BUILDKITE_BUILD_ID", "abc"),
            ("BUILDKITE_RETRY_COUNT", "1"),
        ]))
        .unwrap();
        assert_eq!(k.attempt, 2);
        let k =
            RunKey::from_env(env(&[("WARDEN_RUN_KEY", "mine#2"), ("GITHUB_RUN_ID", "1")])).unwrap();
        assert_eq!(k.to_string(), "mine#2");
    }

    #[test]
    fn no_key_names_the_variables() {
        let e = RunKey::from_env(env(&[])).unwrap_err().to_string();
        for v in [
            "GITHUB_RUN_ID",
            "GITHUB_RUN_ATTEMPT",
            "BUILDKITE_BUILD_ID",
            "CI_PIPELINE_ID",
            "PROW_JOB_ID",
        ] {
            assert!(e.contains(v), "{e}");
        }
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!("a".parse::<RunKey>().unwrap().to_string(), "a#1");
        assert_eq!("a#7".parse::<RunKey>().unwrap().attempt, 7);
        assert!("a#x".parse::<RunKey>().is_err());
        assert!("#2".parse::<RunKey>().is_err());
        assert!("a#0".parse::<RunKey>().is_err());
    }
}
