//! `warden run --rerun-failed FROM`: only the batches that did not pass in
//! an earlier run, from its artifacts directory (copied elsewhere, as a CI
//! artifact downloaded to a laptop) or from its uuid in the history; a
//! batch with `rerun` runs only its failed tests; nothing failed: exit 0
//! without running anything; a FROM that cannot be used: exit 2.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

use common::{Kind, Warden, named, q};

/// Files the batches of both runs share: which tests fail, which batches
/// are broken, and what ran.
struct State {
    dir: tempfile::TempDir,
}

impl State {
    fn new() -> State {
        State {
            dir: tempfile::Builder::new()
                .prefix("warden-rerun-")
                .tempdir()
                .unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The tests of `unit` that fail, one per line; `broken` fails while
    /// the file `broken` exists.
    fn set(&self, failing: &[&str], broken: bool) {
        let mut text = failing.join("\n");
        text.push('\n');
        std::fs::write(self.path("failing"), text).unwrap();
        if broken {
            std::fs::write(self.path("broken"), "").unwrap();
        } else {
            let _ = std::fs::remove_file(self.path("broken"));
        }
        let _ = std::fs::remove_file(self.path("started"));
        let _ = std::fs::remove_file(self.path("args"));
    }

    fn lines(&self, name: &str) -> Vec<String> {
        let mut l: Vec<String> = std::fs::read_to_string(self.path(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        l.sort();
        l
    }

    /// The suite: `unit` (TAP, tests t1..t4, those in `failing` fail; with
    /// arguments it runs only those and logs them), `ok` (passes),
    /// `broken`, and a post step; every unit logs its name to `started`.
    fn suite(&self, w: Warden) -> Warden {
        let started = self.p("started");
        let unit = format!(
            "echo unit >> {started}; echo \"$*\" >> {args}; \
             tests=\"$*\"; [ -n \"$tests\" ] || tests='t1 t2 t3 t4'; \
             echo 'TAP version 13'; echo \"1..$(echo $tests | wc -w)\"; n=0; bad=0; \
             for t in $tests; do n=$((n+1)); \
               if grep -qx \"$t\" {failing}; then echo \"not ok $n - $t\"; bad=1; \
               else echo \"ok $n - $t\"; fi; done; exit $bad",
            args = self.p("args"),
            failing = self.p("failing"),
        );
        w.run_section("max-parallel = 1")
            .batch(&format!(
                "name = \"unit\"\ncommand = [\"sh\", \"-c\", {0}, \"sh\"]\nformat = \"tap\"\n\
                 rerun = [\"sh\", \"-c\", {0}, \"sh\", \"{{tests}}\"]",
                q(&unit)
            ))
            .shell("ok", &format!("echo ok >> {started}"), "")
            .shell(
                "broken",
                &format!("echo broken >> {started}; [ ! -e {} ]", self.p("broken")),
                "",
            )
            .config_append(&format!(
                "[[post]]\nname = \"cleanup\"\nshell = {}\n",
                q(&format!("echo cleanup >> {started}"))
            ))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The first run: t2 and t4 of `unit` fail, `broken` fails, `ok` passes.
fn first_run(state: &State, history: &str) -> common::Run {
    state.set(&["t2", "t4"], true);
    let r = state
        .suite(Warden::pgroup())
        .run_section(&format!("history = {}", q(history)))
        .run();
    r.assert_code(1);
    assert_eq!(
        state.lines("started"),
        ["broken", "cleanup", "ok", "unit"],
        "{}",
        r.context
    );
    r
}

/// The rerun, once the failures are fixed: `unit` with only t2 and t4,
/// `broken`, and the post step; not `ok`.
fn assert_rerun(state: &State, r: &common::Run) {
    r.assert_code(0);
    r.assert_stdout_contains("rerunning what did not pass in ");
    r.assert_stdout_contains(": 2 batches: unit (2 failed tests), broken\n");
    assert_eq!(
        state.lines("started"),
        ["broken", "cleanup", "unit"],
        "{}",
        r.context
    );
    assert_eq!(state.lines("args"), ["t2 t4"], "{}", r.context);
    let cases = r.junit();
    named(&cases, "t2").assert_status(Kind::Success, None);
    named(&cases, "t4").assert_status(Kind::Success, None);
    assert!(
        !cases.iter().any(|c| c.name == "t1" || c.name == "ok"),
        "{cases:#?}"
    );
}

#[test]
fn from_an_artifacts_directory_copied_elsewhere() {
    let state = State::new();
    let first = first_run(&state, "none");
    // Downloaded to a laptop: another directory, no history.
    let download = state.path("download");
    copy_dir(&first.artifacts(), &download);
    drop(first);
    state.set(&[], false);
    let r = state
        .suite(Warden::pgroup())
        .run_section("history = \"none\"")
        .arg("--rerun-failed")
        .arg(&download)
        .run();
    assert_rerun(&state, &r);
    // A junit.xml named directly works the same.
    state.set(&["t4"], false);
    let r = state
        .suite(Warden::pgroup())
        .run_section("history = \"none\"")
        .arg(format!(
            "--rerun-failed={}",
            download.join("junit.xml").display()
        ))
        .run();
    r.assert_code(1);
    assert_eq!(state.lines("args"), ["t2 t4"], "{}", r.context);
    named(&r.junit(), "t4").assert_status(Kind::Failure, Some("failed"));
}

#[test]
fn from_a_run_uuid_in_the_history() {
    let state = State::new();
    from_a_run_uuid_in(&state, &format!("sqlite:{}", state.p("history.db")));
}

#[test]
fn from_a_run_uuid_in_a_postgresql_history() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    from_a_run_uuid_in(&State::new(), &url);
}

fn from_a_run_uuid_in(state: &State, history: &str) {
    let history = history.to_owned();
    let first = first_run(state, &history);
    let uuid = first
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("History: run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no history line\n{}", first.context))
        .to_owned();
    drop(first);
    state.set(&[], false);
    let r = state
        .suite(Warden::pgroup())
        .run_section(&format!("history = {}", q(&history)))
        .args(["--rerun-failed", &uuid])
        .run();
    assert_rerun(state, &r);
    r.assert_stdout_contains(&format!("rerunning what did not pass in {uuid}: "));
}

#[test]
fn nothing_failed_runs_nothing_and_exits_0() {
    let state = State::new();
    state.set(&[], false);
    let first = state
        .suite(Warden::pgroup())
        .run_section("history = \"none\"")
        .run();
    first.assert_code(0);
    let artifacts = first.artifacts();
    state.set(&[], false);
    let r = state
        .suite(Warden::pgroup())
        .run_section("history = \"none\"")
        .arg("--rerun-failed")
        .arg(&artifacts)
        .run();
    r.assert_code(0);
    r.assert_stdout_contains(&format!(
        "warden: nothing failed in {}: no batch to rerun",
        artifacts.display()
    ));
    assert!(state.lines("started").is_empty(), "{}", r.context);
    assert!(!r.artifacts().exists(), "{}", r.context);
}

#[test]
fn unusable_sources_are_errors() {
    let state = State::new();
    state.set(&[], false);
    let empty = state.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let foreign = state.path("pytest.xml");
    std::fs::write(
        &foreign,
        "<testsuites name=\"pytest tests\"><testsuite name=\"x\"/></testsuites>",
    )
    .unwrap();
    let history = format!("sqlite:{}", state.p("history.db"));
    // A store that exists, without that run.
    state
        .suite(Warden::pgroup())
        .run_section(&format!("history = {}", q(&history)))
        .run()
        .assert_code(0);
    let unknown = "0b5b2a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
    for (from, history, needle) in [
        (
            state.p("no-such-dir"),
            "none".to_owned(),
            "no such directory or file, and not a run uuid".to_owned(),
        ),
        (
            empty.display().to_string(),
            "none".to_owned(),
            format!("cannot read {}", empty.join("junit.xml").display()),
        ),
        (
            foreign.display().to_string(),
            "none".to_owned(),
            "is not a JUnit report warden wrote: its <testsuites> is not named \"warden\""
                .to_owned(),
        ),
        (
            unknown.to_owned(),
            history.clone(),
            format!("no run with this uuid in the history {history}"),
        ),
        (
            unknown.to_owned(),
            format!("sqlite:{}", state.p("absent.db")),
            format!("--rerun-failed {unknown}: "),
        ),
    ] {
        state.set(&[], false);
        let r = state
            .suite(Warden::pgroup())
            .run_section(&format!("history = {}", q(&history)))
            .args(["--rerun-failed", &from])
            .run();
        r.assert_code(2);
        r.assert_stderr_contains(&needle);
        assert!(state.lines("started").is_empty(), "{}", r.context);
    }
}
