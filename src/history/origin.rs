//! Where a run came from: the commit and branch tested, from the CI
//! system's environment or else git, and the host.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub host: String,
}

/// (commit, branch) variables of the CI systems we know, in the order tried.
const CI_VARIABLES: &[(&str, &str)] = &[
    ("GITHUB_SHA", "GITHUB_REF_NAME"),
    ("CI_COMMIT_SHA", "CI_COMMIT_REF_NAME"),
    ("SEMAPHORE_GIT_SHA", "SEMAPHORE_GIT_BRANCH"),
];

impl Origin {
    /// Must run before warden's child reaper starts: it waits for a `git`
    /// child of its own.
    pub fn detect(dir: &Path) -> Origin {
        let (commit, branch) = match from_env(|k| std::env::var(k).ok()) {
            (None, None) => from_git(dir),
            found => found,
        };
        Origin {
            commit,
            branch,
            host: host(),
        }
    }
}

/// When `commit` (else `HEAD`) was committed, from git; `None` without git,
/// a repository, or that commit. Like [`Origin::detect`], must run before
/// the child reaper starts.
pub fn commit_time(dir: &Path, commit: Option<&str>) -> Option<SystemTime> {
    // A commit from the environment is passed to git only if it looks like one.
    let commit = commit
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or("HEAD");
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["show", "-s", "--format=%ct", commit])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let secs: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

pub fn host() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn from_env(get: impl Fn(&str) -> Option<String>) -> (Option<String>, Option<String>) {
    let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
    for (sha, branch) in CI_VARIABLES {
        if let Some(commit) = get(sha) {
            return (Some(commit), get(branch));
        }
    }
    (None, None)
}

/// `git rev-parse HEAD --abbrev-ref HEAD`: the commit, then the branch
/// (`HEAD` when detached, which is no branch).
fn from_git(dir: &Path) -> (Option<String>, Option<String>) {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "HEAD", "--abbrev-ref", "HEAD"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let Some(output) = output.ok().filter(|o| o.status.success()) else {
        return (None, None);
    };
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines().map(str::trim);
    let commit = lines.next().filter(|c| !c.is_empty()).map(str::to_owned);
    let branch = lines
        .next()
        .filter(|b| !b.is_empty() && *b != "HEAD")
        .map(str::to_owned);
    (commit, branch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn ci_variables_in_order() {
        assert_eq!(
            from_env(env(&[("GITHUB_SHA", "aaa"), ("GITHUB_REF_NAME", "main")])),
            (Some("aaa".into()), Some("main".into()))
        );
        assert_eq!(
            from_env(env(&[
                ("CI_COMMIT_SHA", "bbb"),
                ("CI_COMMIT_REF_NAME", "dev"),
                ("SEMAPHORE_GIT_SHA", "ccc")
            ])),
            (Some("bbb".into()), Some("dev".into()))
        );
        assert_eq!(
            from_env(env(&[("SEMAPHORE_GIT_SHA", "ccc")])),
            (Some("ccc".into()), None)
        );
        assert_eq!(from_env(env(&[("GITHUB_SHA", " ")])), (None, None));
    }

    #[test]
    fn git_gives_commit_and_branch() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@t")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@t")
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !git(&["init", "-q", "-b", "topic"]) {
            eprintln!("skipping: git is not available");
            return;
        }
        assert_eq!(from_git(dir.path()), (None, None), "no commit yet");
        assert!(git(&["commit", "-q", "--allow-empty", "-m", "x"]));
        let (commit, branch) = from_git(dir.path());
        assert_eq!(commit.as_ref().map(|c| c.len()), Some(40));
        assert_eq!(branch.as_deref(), Some("topic"));
        let when = commit_time(dir.path(), None).expect("HEAD's time");
        let age = SystemTime::now().duration_since(when).unwrap_or_default();
        assert!(age < Duration::from_secs(3600), "{age:?}");
        let sha = commit.unwrap();
        assert_eq!(commit_time(dir.path(), Some(&sha)), Some(when));
        assert_eq!(commit_time(dir.path(), Some(&"0".repeat(40))), None);
        assert_eq!(commit_time(dir.path(), Some("--help")), Some(when));
        assert!(git(&["checkout", "-q", "--detach"]));
        assert_eq!(from_git(dir.path()).1, None);
    }

    #[test]
    fn host_is_known() {
        assert!(!host().is_empty());
    }
}
