//! The commented `warden.toml` for what `detect` found: the run's and the
//! defaults' keys with what each does, then a section per project kind
//! (a batch each, the kernel one a batch per selftest target), or the
//! generic batch when nothing was recognized.

use std::fmt::Write as _;

use super::detect::{Cargo, Detected, Kselftest, Project, Target};
use crate::config::BatchName;

/// The per-batch timeout in `[defaults]`, in seconds (`30m`).
const DEFAULT_TIMEOUT_SECS: u64 = 30 * 60;

/// The whole file.
pub fn render(found: &Detected) -> String {
    let mut t = String::new();
    header(&mut t, &found.projects);
    for p in &found.projects {
        t.push('\n');
        match p {
            Project::Cargo(c) => cargo(&mut t, c),
            Project::Go { module } => go(&mut t, module),
            Project::Pytest(_) => pytest(&mut t),
            Project::Kselftest(k) => kselftest(&mut t, k),
        }
    }
    if found.projects.is_empty() {
        t.push('\n');
        generic(&mut t);
    }
    t
}

fn header(t: &mut String, projects: &[Project]) {
    let what = if projects.is_empty() {
        "nothing it recognized (see the batch at the end)".to_owned()
    } else {
        projects
            .iter()
            .map(|p| clean(&p.describe()))
            .collect::<Vec<_>>()
            .join("; ")
    };
    t.push_str("# warden.toml: the batches `warden run` supervises. Written by `warden init`\n");
    for line in wrap(&format!("for what it found here: {what}."), 76) {
        let _ = writeln!(t, "# {line}");
    }
    t.push_str(
        r#"#
#   warden check   validates this file and prints the plan; runs nothing
#   warden run     runs it: a log per batch and junit.xml in warden-artifacts/,
#                  a summary at the end, exit code 0 (passed) or 1 (failed)
#
# Every key is described in warden's README.md, section "Configuration"
# ("Tests inside batches" for `format` and `rerun`, "History" for
# `history`). Durations are written 500ms, 90s, 5m, 1h30m; paths are
# relative to this file's directory.

[run]
# How many batches run at once (default: the number of CPUs; also
# --max-parallel N). A batch can take more than one slot: threads = 4.
# max-parallel = 4
# Logs (logs/<batch>.log), junit.xml and the summary are written here
# (also --artifacts DIR). Upload it from CI whatever the job's outcome.
artifacts = "warden-artifacts"
# Every run is recorded here, for `warden flaky`, `regressed`, `history`,
# `durations` and the dashboard (`warden serve`), and to start the longest
# batches first: sqlite:PATH, postgres://user:password@host/db for runners
# sharing one store, or "none" (also --history URL, WARDEN_HISTORY).
history = "sqlite:.warden/history.db"
# The whole run's deadline, from warden's start: set it a few minutes below
# the CI job's own limit, so that post steps and reports still happen
# (default: none, or JOB_TIMEOUT_MINUTES when the CI sets it).
# deadline = "55m"

[defaults]
# Every batch below gets these unless it sets its own.
# A batch running longer than `timeout` is stopped: SIGTERM, then SIGKILL
# after `grace`; the test it was in is named in the report.
timeout = "30m"
grace = "10s"
# Retries: a failed batch runs again, up to `attempts` runs in all, when its
# output matches one of `when` (regexes for transient failures; "@oom": the
# OOM killer killed it; leave `when` out to retry any failure). A batch
# that passes on a retry is reported flaky, and passes the run.
# retry = { attempts = 2, when = ["connection reset", "@oom"], backoff = "2s" }
"#,
    );
}

/// The comment on `format` every batch with tests shares.
const FORMAT_COMMENT: &str = "\
# `format` says how the output describes tests: each test becomes a result
# of its own in junit.xml, the summary and the history, and a test that a
# crash or the timeout cut off is named.
";

fn cargo(t: &mut String, c: &Cargo) {
    t.push_str(
        r#"# ---- Cargo ----------------------------------------------------------------
# The tests are compiled in a setup step first, so that the build has a
# timeout of its own and a build error is reported as one, not as a failed
# test run. Setup steps run in order, before every batch; one that fails
# leaves the batches not run.
[[setup]]
name = "cargo-build"
command = ["cargo", "test", "--workspace", "--no-run"]

"#,
    );
    match &c.nextest {
        Some(n) => {
            let _ = write!(
                t,
                r#"# cargo nextest, whose JUnit file (.config/nextest.toml's profile `{profile}`)
# warden reads after the batch (nextest's JUnit leaves ignored tests out).
[[batch]]
name = "cargo-nextest"
command = ["cargo", "nextest", "run", "--workspace", "--profile", {profile_q}, "--no-fail-fast"]
{FORMAT_COMMENT}format = "junit"
junit-files = [{junit}]
"#,
                profile = clean(&n.profile),
                profile_q = q(&n.profile),
                junit = q(&n.junit),
            );
        }
        None => {
            let _ = write!(
                t,
                r#"[[batch]]
name = "cargo-test"
command = ["cargo", "test", "--workspace", "--no-fail-fast"]
{FORMAT_COMMENT}# libtest: cargo test's own output, every test binary and the doc-tests.
format = "libtest"
# With `rerun`, a retry (see `retry` above) runs only the tests that failed,
# their names in place of {{tests}}.
rerun = ["cargo", "test", "--workspace", "--", "--exact", "{{tests}}"]
"#
            );
            if c.nextest_without_junit {
                t.push_str(
                    r#"# cargo-nextest is installed: to run it instead, give a profile a JUnit
# file in .config/nextest.toml ([profile.ci.junit] path = "junit.xml"),
# then: command = ["cargo", "nextest", "run", "--workspace", "--profile", "ci"],
# format = "junit", junit-files = ["target/nextest/ci/junit.xml"]
# (or run `warden init --force` again).
"#,
                );
            }
        }
    }
}

fn go(t: &mut String, module: &str) {
    let _ = write!(
        t,
        r#"# ---- Go: {module} ----
# go test's own -timeout (10m per package binary by default) panics naming
# the tests that were running; warden's timeout bounds the whole batch.
[[batch]]
name = "go-test"
command = ["go", "test", "-json", "./..."]
{FORMAT_COMMENT}# go-json: the events of `go test -json`; tests are named <package>/TestX/sub.
format = "go-json"
# With `rerun`, a retry (see `retry` above) runs only the tests that failed:
# {{tests}} becomes the -run pattern ^(TestA|TestB)$.
rerun = ["go", "test", "-json", "-run", "{{tests}}", "./..."]
"#,
        module = clean(module),
    );
}

/// Where pytest writes its JUnit file: under the artifacts, so CI uploads it.
const PYTEST_JUNIT: &str = "warden-artifacts/pytest-junit.xml";

fn pytest(t: &mut String) {
    let _ = write!(
        t,
        r#"# ---- pytest ----
[[batch]]
name = "pytest"
command = ["python3", "-m", "pytest", "--junitxml={PYTEST_JUNIT}"]
{FORMAT_COMMENT}# junit: the files the batch writes (globs, relative to its cwd), read
# after it ends; a file older than the batch is not read. If you change
# `artifacts` above, change the path in both places.
format = "junit"
junit-files = ["{PYTEST_JUNIT}"]
"#
    );
}

/// Where the setup step installs the selftests, relative to the selftests
/// directory (`make -C` runs there).
const KSELFTEST_INSTALL: &str = "kselftest_install";

fn kselftest(t: &mut String, k: &Kselftest) {
    let names: Vec<&str> = k.selected.iter().map(|s| s.name.as_str()).collect();
    let _ = write!(
        t,
        r#"# ---- Kernel selftests ----------------------------------------------------
# Meant to run on the kernel under test: run warden on that machine or VM,
# as root. The selected targets are built and installed once, with
# run_kselftest.sh, by this setup step; a build error stops the run here.
[[setup]]
name = "kselftest-install"
command = [
    "make", "-C", "tools/testing/selftests", "INSTALL_PATH={KSELFTEST_INSTALL}", "install",
    {targets},
]
timeout = "1h"

# One batch per target: they run in parallel (see max-parallel), each with
# its own log, timeout and JUnit testsuite. run_kselftest.sh stops a single
# test after its per-test timeout (45 s, or `timeout=` in the target's
# `settings` file) and prints KTAP, which `format = "tap"` reads:
# `# selftests: net: udpgso.sh` becomes the test `net/udpgso.sh`.
# Targets that change the same global state (network namespaces, sysctls)
# can be kept apart with a shared lock: locks = ["net"].
"#,
        targets = q(&format!("TARGETS={}", names.join(" "))),
    );
    for target in &k.selected {
        t.push('\n');
        kselftest_batch(t, target);
    }
    if !k.others.is_empty() {
        t.push('\n');
        let list = format!(
            "The tree's other targets (for one more, add a batch as above and the \
             target to TARGETS in the setup step; `warden init --force --selftests \
             all` writes them all): {}.",
            k.others.join(" ")
        );
        for line in wrap(&clean(&list), 76) {
            let _ = writeln!(t, "# {line}");
        }
    }
}

fn kselftest_batch(t: &mut String, target: &Target) {
    match target.settings_timeout {
        Some(0) => t.push_str(
            "# Its `settings` turn run_kselftest.sh's per-test timeout off: warden's\n\
             # timeout is all that bounds it.\n",
        ),
        Some(n) if 2 * n > DEFAULT_TIMEOUT_SECS => {
            let _ = writeln!(
                t,
                "# Its `settings` give a test up to {n} s: the batch gets twice that."
            );
        }
        _ => {}
    }
    let runner = format!("tools/testing/selftests/{KSELFTEST_INSTALL}/run_kselftest.sh");
    let _ = writeln!(t, "[[batch]]");
    let _ = writeln!(t, "name = {}", q(&batch_name("kselftest", &target.name)));
    let _ = writeln!(t, "command = [{}, \"-c\", {}]", q(&runner), q(&target.name));
    let _ = writeln!(t, "format = \"tap\"");
    if let Some(n) = target
        .settings_timeout
        .filter(|n| 2 * n > DEFAULT_TIMEOUT_SECS)
    {
        let _ = writeln!(t, "timeout = \"{}m\"", (2 * n).div_ceil(60));
    }
}

fn generic(t: &mut String) {
    t.push_str(
        r#"# ---- Your tests ----------------------------------------------------------
# warden init found no Cargo.toml, go.mod, pytest project or kernel
# selftests (tools/testing/selftests) here. Put your test command in this
# batch: until then it fails, so that CI can't pass without running tests.
[[batch]]
name = "tests"
# An argv exec'd directly: command = ["make", "check"]; or a string for sh -c:
shell = "echo 'warden.toml: put your test command in the batch named tests' >&2; exit 1"
# How the output describes tests, so that each is a result of its own:
# tap (TAP/KTAP, kselftest, bats), kunit, ltp, test-progs, go-json, libtest
# (cargo test), junit (with junit-files = ["out/**/*.xml"]), or none (the
# default: the batch is one test).
# format = "tap"
# timeout = "10m"
"#,
    );
}

/// `prefix-name` with the characters a batch name can't hold (`/` in
/// `net/forwarding`) as `-`.
fn batch_name(prefix: &str, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let full = format!("{prefix}-{safe}");
    match BatchName::new(&full) {
        Ok(n) => n.as_str().to_owned(),
        // Only too long: keep the start.
        Err(_) => full.chars().take(100).collect(),
    }
}

/// A TOML basic string.
fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text from the project's files, safe inside a comment: one line.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Words into lines of at most `width` characters (a longer word alone).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::detect::{Nextest, Pytest};
    use super::*;

    fn detected(projects: Vec<Project>) -> Detected {
        Detected {
            dir: PathBuf::from("."),
            projects,
        }
    }

    fn every_kind() -> Vec<Project> {
        vec![
            Project::Cargo(Cargo {
                workspace: true,
                package: None,
                nextest: None,
                nextest_without_junit: true,
            }),
            Project::Go {
                module: "example.com/x\"y".into(),
            },
            Project::Pytest(Pytest {
                evidence: "pytest.ini".into(),
            }),
            Project::Kselftest(Kselftest {
                selected: vec![
                    Target {
                        name: "size".into(),
                        settings_timeout: None,
                    },
                    Target {
                        name: "net/forwarding".into(),
                        settings_timeout: Some(7200),
                    },
                    Target {
                        name: "timers".into(),
                        settings_timeout: Some(0),
                    },
                ],
                others: (0..40).map(|i| format!("target{i}")).collect(),
            }),
        ]
    }

    /// The file as `warden check` reads it: the real config parser.
    fn parse(text: &str) -> crate::config::Config {
        crate::config::Config::parse(std::path::Path::new("warden.toml"), text)
            .unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
    }

    #[test]
    fn every_template_is_a_valid_config() {
        let nextest = Project::Cargo(Cargo {
            workspace: false,
            package: Some("shop".into()),
            nextest: Some(Nextest {
                profile: "ci".into(),
                junit: "target/nextest/ci/junit.xml".into(),
            }),
            nextest_without_junit: false,
        });
        for projects in [
            vec![],
            every_kind(),
            vec![nextest],
            every_kind()[1..2].to_vec(),
            every_kind()[2..3].to_vec(),
            every_kind()[3..].to_vec(),
        ] {
            let text = render(&detected(projects));
            parse(&text);
            // Only the list of selftest targets may be longer.
            let long = text
                .lines()
                .find(|l| l.len() > 100 && !l.contains("TARGETS="));
            assert_eq!(long, None, "{text}");
        }
    }

    #[test]
    fn a_batch_per_kind_and_per_selftest_target() {
        let text = render(&detected(every_kind()));
        let config = parse(&text);
        let names: Vec<&str> = config.batches.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cargo-test",
                "go-test",
                "pytest",
                "kselftest-size",
                "kselftest-net-forwarding",
                "kselftest-timers"
            ]
        );
        let setup: Vec<&str> = config.setup.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(setup, ["cargo-build", "kselftest-install"]);
        let timeout = |name: &str| {
            config
                .batches
                .iter()
                .find(|b| b.name.as_str() == name)
                .unwrap()
                .timeout
        };
        assert_eq!(timeout("kselftest-size").as_secs(), 30 * 60);
        assert_eq!(timeout("kselftest-net-forwarding").as_secs(), 240 * 60);
        assert!(
            text.contains(r#""TARGETS=size net/forwarding timers""#),
            "{text}"
        );
        assert!(text.contains("Go: example.com/x\"y"), "{text}");
        assert!(text.contains("cargo-nextest is installed"), "{text}");
        assert!(text.contains("target39."), "{text}");
        for key in [
            "timeout",
            "retry",
            "max-parallel",
            "format",
            "history",
            "artifacts",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with('#') && l.contains(key)),
                "no comment on {key}"
            );
        }
        assert!(text.contains("README.md"));
    }

    #[test]
    fn generic_fails_until_edited() {
        let text = render(&detected(vec![]));
        let config = parse(&text);
        assert_eq!(config.batches.len(), 1);
        assert!(text.contains("exit 1"));
    }

    #[test]
    fn wrap_and_names() {
        assert_eq!(wrap("a bb ccc dddd", 6), ["a bb", "ccc", "dddd"]);
        assert_eq!(batch_name("kselftest", "net/mptcp"), "kselftest-net-mptcp");
        assert_eq!(q("a\"b\\c\n"), r#""a\"b\\c\u000A""#);
    }
}
