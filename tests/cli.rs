//! The command line: `check`, `--help`, flag errors, `WARDEN_CONTAINMENT`.

#[macro_use]
mod common;

use common::{Warden, cgroup_unavailable, q};

#[test]
fn check_prints_the_plan_and_runs_nothing() {
    let w = Warden::new();
    let touch = format!("touch {}", w.path_str("ran"));
    std::fs::create_dir(w.path("sub")).unwrap();
    let r = w
        .run_section("max-parallel = 3\nartifacts = \"out\"")
        .defaults("timeout = \"5m\"\ngrace = \"3s\"")
        .shell("toucher", &touch, "leak = \"fail\"\nkind = \"ut\"")
        .batch("name = \"argv\"\ncommand = [\"echo\", \"a b\"]\ncwd = \"sub\"\ndrain = \"250ms\"")
        .check()
        .run();
    r.assert_code(0);
    // The artifacts path is absolute: batches see it from their own cwd.
    let out = r.path("out").display().to_string();
    let want = format!(
        "config: warden.toml
artifacts: {out}
junit: {out}/junit.xml
max-parallel: 3
deadline: none
history: sqlite:.warden/history.db: no history yet
batches: 2
  toucher: sh -c {touch:?}
    cwd ., timeout 5m, grace 3s, drain 1s, leak fail, kind ut
  argv: [\"echo\", \"a b\"]
    cwd ./sub, timeout 5m, grace 3s, drain 250ms, leak warn
start order (priority, then config order):
  1. toucher
  2. argv
predicted makespan: unknown (no durations in the history)
"
    );
    // Which containment layers this machine gives is checked elsewhere.
    let (layers, rest): (Vec<&str>, Vec<&str>) = r
        .stdout
        .lines()
        .partition(|l| l.starts_with("containment: "));
    assert_eq!(layers.len(), 1, "{}", r.context);
    assert_eq!(rest.join("\n") + "\n", want, "{}", r.context);
    assert!(r.stderr.is_empty(), "{}", r.context);
    assert!(!r.path("ran").exists(), "check must run nothing");
    assert!(!r.path(".warden").exists(), "check must create no history");
    assert!(!r.path("out").exists(), "check must create no artifacts");
    assert!(!r.artifacts().exists());
}

#[test]
fn help_for_run_and_check() {
    let r = Warden::new().subcommand("run").arg("--help").run();
    r.assert_code(0);
    r.assert_stdout_contains("Usage: warden run [OPTIONS] [BATCH]...");
    for flag in [
        "--config",
        "--artifacts",
        "--junit",
        "--max-parallel",
        "--verbose",
        "--containment",
        "WARDEN_CONTAINMENT",
        "--partition",
        "WARDEN_PARTITION",
    ] {
        r.assert_stdout_contains(flag);
    }
    let r = Warden::new().check().arg("--help").run();
    r.assert_code(0);
    r.assert_stdout_contains("Usage: warden check [OPTIONS] [BATCH]...");
    r.assert_stdout_contains("--config");
    r.assert_stdout_contains("--partition");
    let r = Warden::new().subcommand("").arg("--help").run();
    r.assert_code(0);
    r.assert_stdout_contains("run");
    r.assert_stdout_contains("check");
    let r = Warden::new().subcommand("help").arg("run").run();
    r.assert_code(0);
    r.assert_stdout_contains("Usage: warden run");
}

#[test]
fn version() {
    let r = Warden::new().subcommand("").arg("--version").run();
    r.assert_code(0);
    r.assert_stdout_contains(concat!("warden ", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_errors_exit_2_and_run_nothing() {
    for args in [
        vec!["--max-parallel", "0"],
        vec!["--max-parallel", "x"],
        vec!["--containment", "bogus"],
        vec!["--no-such-flag"],
    ] {
        let w = Warden::new();
        let touch = format!("touch {}", q(&w.path_str("ran")));
        let r = w.shell("toucher", &touch, "").args(args.clone()).run();
        r.assert_code(2);
        assert!(!r.stderr.is_empty(), "{args:?}\n{}", r.context);
        assert!(!r.path("ran").exists(), "{args:?}\n{}", r.context);
    }
    let r = Warden::new().subcommand("frobnicate").run();
    r.assert_code(2);
    let r = Warden::new().subcommand("").run();
    r.assert_code(2);
}

#[test]
fn containment_from_environment() {
    let r = Warden::new()
        .shell("ok", "true", "")
        .env("WARDEN_CONTAINMENT", "pgroup")
        .arg("--verbose")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("containment: process group + environment cookie");

    let r = Warden::new()
        .shell("ok", "true", "")
        .env("WARDEN_CONTAINMENT", "bogus")
        .run();
    r.assert_code(2);

    if let Some(why) = cgroup_unavailable() {
        eprintln!("skipping the cgroup half: {why}");
        return;
    }
    let r = Warden::new()
        .shell("ok", "true", "")
        .env("WARDEN_CONTAINMENT", "cgroup")
        .arg("--verbose")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("containment: cgroup v2 (");
    // The command line wins over the environment.
    let r = Warden::new()
        .shell("ok", "true", "")
        .env("WARDEN_CONTAINMENT", "cgroup")
        .args(["--verbose", "--containment", "pgroup"])
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("containment: process group");
}

#[test]
fn auto_containment_uses_cgroup_when_available() {
    if let Some(why) = cgroup_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let r = Warden::new()
        .shell("where", "cat /proc/self/cgroup", "")
        .arg("--verbose")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("containment: cgroup v2 (");
    let log = r.log_text("where");
    let line = log
        .lines()
        .find(|l| l.starts_with("0::"))
        .unwrap_or_else(|| panic!("no cgroup2 line in {log:?}"));
    assert!(
        line.contains("/warden-") && line.ends_with("/batch-where"),
        "batch runs in its own cgroup: {line}"
    );
}

#[test]
fn no_batches_is_a_trivial_success() {
    let r = Warden::new().config("").run();
    r.assert_code(0);
    r.assert_stdout_contains("Success: 0/0, Failed: 0, Timed out: 0, Leaked: 0");
}
