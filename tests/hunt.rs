//! `warden hunt` with the real binary: arms, counts and verdicts on a
//! stable batch, a randomly failing one with a seeded rate, and an
//! I/O-sensitive one; `--until-fail`; one test through `rerun`; hunts in
//! the history (SQLite and PostgreSQL) kept out of the results, and on the
//! test page. The harness fails any test that leaves a process (noise
//! included) or a cgroup behind.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Run, Warden, fixture, q};
use serde_json::Value;

/// A hunt of `target` with `args`, JSON out.
fn hunt(w: Warden, target: &str, args: &[&str]) -> Run {
    // The harness fails it on a process (noise included) or a cgroup, v2
    // or v1 (an arm's limits on a hybrid host), left behind.
    w.subcommand("hunt")
        .args(args.iter().copied())
        .args(["--format", "json", target])
        .watchdog(Duration::from_secs(120))
        .run()
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON: {e}\n{}", r.context))
}

fn arm<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["arms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["arm"] == name)
        .unwrap_or_else(|| panic!("no arm {name} in {doc:#}"))
}

fn arm_names(doc: &Value) -> Vec<String> {
    doc["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["arm"].as_str().unwrap().to_owned())
        .collect()
}

/// The random fixture's own answer for attempt `i` of `arm`: whether it
/// fails (run directly, with the environment a hunt gives it).
fn random_fails(seed: &str, rate: &str, arm: &str, i: u32) -> bool {
    let out = std::process::Command::new(fixture("hunt_random.sh"))
        .env("HUNT_SEED", seed)
        .env("HUNT_RATE", rate)
        .env("WARDEN_HUNT_ARM", arm)
        .env("WARDEN_HUNT_ATTEMPT", i.to_string())
        .output()
        .unwrap();
    !out.status.success()
}

fn random_batch(w: Warden, seed: &str, rate: &str) -> Warden {
    w.batch(&format!(
        "name = \"rnd\"\ncommand = [{}]\nenv = {{ HUNT_SEED = {}, HUNT_RATE = {} }}",
        q(&fixture("hunt_random.sh")),
        q(seed),
        q(rate)
    ))
}

fn logs_in(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for arm in std::fs::read_dir(dir).unwrap() {
        for f in std::fs::read_dir(arm.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap();
            if !name.starts_with("noise") {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn a_stable_batch_is_stable_under_noise_and_its_noise_is_gone_after() {
    let w = Warden::new().fixture("ok", &fixture("pass.sh"), &[], "");
    let r = hunt(
        w,
        "ok",
        &[
            "--runs",
            "6",
            "--parallel",
            "3",
            "--pressure",
            "noise=cpu:2",
            "--pressure",
            "noise=io",
        ],
    );
    r.assert_code(0);
    let doc = json(&r);
    assert_eq!(arm_names(&doc), ["none", "noise=cpu:2", "noise=io"]);
    for a in doc["arms"].as_array().unwrap() {
        assert_eq!(a["runs"], 6, "{a:#}");
        assert_eq!(a["failures"], 0, "{a:#}");
    }
    assert_eq!(arm(&doc, "none")["verdict"], "stable");
    assert_eq!(
        arm(&doc, "none")["sentence"],
        "stable with no pressure (0/6; 95% CI 0–39%)"
    );
    assert_eq!(arm(&doc, "noise=cpu:2")["verdict"], "not-sensitive");
    assert_eq!(
        arm(&doc, "noise=io")["sentence"],
        "noise=io: 0/6 failed — not sensitive to I/O noise"
    );
    // Every attempt's log, and the noise ran (its logs) and was stopped
    // (the harness finds no process or cgroup left).
    let dir = PathBuf::from(doc["dir"].as_str().unwrap());
    assert_eq!(logs_in(&dir).len(), 18);
    assert!(dir.join("none/6.log").is_file());
    let log = std::fs::read_to_string(dir.join("noise-cpu-2/3.log")).unwrap();
    assert!(log.contains("pass: stdout line"), "{log}");
    assert!(dir.join("noise-cpu-2/noise-1.log").is_file());
    assert!(dir.join("noise-cpu-2/noise-2.log").is_file());
    assert!(dir.join("noise-io/noise-1.log").is_file());
}

#[test]
fn a_seeded_random_failure_is_flaky_on_its_own_and_not_sensitive_to_cpu() {
    let (seed, rate) = ("11", "30");
    let w = random_batch(Warden::new(), seed, rate);
    let r = hunt(
        w,
        "rnd",
        &["--runs", "20", "--parallel", "4", "--pressure", "cpu=50%"],
    );
    let doc = json(&r);
    let expected = |a: &str| -> Vec<u32> {
        (1..=20)
            .filter(|&i| random_fails(seed, rate, a, i))
            .collect()
    };
    let (none, cpu) = (expected("none"), expected("cpu=50%"));
    assert!(
        !none.is_empty() && none.len() < 20,
        "the seed should give a flaky control: {none:?}"
    );
    r.assert_code(1);
    assert_eq!(arm(&doc, "none")["failures"], none.len());
    assert_eq!(arm(&doc, "cpu=50%")["failures"], cpu.len());
    assert_eq!(arm(&doc, "none")["verdict"], "flaky");
    let sentence = arm(&doc, "none")["sentence"].as_str().unwrap().to_owned();
    assert!(
        sentence.starts_with(&format!("fails {}/20 (", none.len()))
            && sentence.ends_with("with no pressure: flaky on its own"),
        "{sentence}"
    );
    assert_eq!(arm(&doc, "cpu=50%")["verdict"], "not-sensitive");
    // The failed attempts' logs, exactly those.
    let dir = PathBuf::from(doc["dir"].as_str().unwrap());
    let mut listed: Vec<PathBuf> = arm(&doc, "none")["failed_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    listed.sort();
    let mut want: Vec<PathBuf> = none
        .iter()
        .map(|i| dir.join(format!("none/{i}.log")))
        .collect();
    want.sort();
    assert_eq!(listed, want);
}

#[test]
fn the_table_says_the_verdicts_in_words_and_lists_the_failed_logs() {
    let (seed, rate) = ("11", "30");
    let w = random_batch(Warden::new(), seed, rate);
    let r = w
        .subcommand("hunt")
        .args([
            "--runs",
            "20",
            "--parallel",
            "4",
            "--pressure",
            "cpu=50%",
            "rnd",
        ])
        .watchdog(Duration::from_secs(120))
        .run();
    r.assert_code(1);
    r.assert_stdout_contains("with no pressure: flaky on its own")
        .assert_stdout_contains("failed — not sensitive to CPU")
        .assert_stdout_contains("Failed attempts' logs:")
        .assert_stdout_contains("/none/");
    r.assert_stderr_contains("warden: hunt: cpu=50%: 20 runs, 4 at once");
}

#[test]
fn until_fail_stops_at_the_first_failure_and_prints_its_log() {
    let (seed, rate) = ("5", "50");
    let first = (1..=30)
        .find(|&i| random_fails(seed, rate, "none", i))
        .expect("a failure within 30 at 50%");
    assert!(first < 29);
    let w = random_batch(Warden::new(), seed, rate);
    let r = w
        .subcommand("hunt")
        .args([
            "--runs",
            "30",
            "--until-fail",
            "--pressure",
            "cpu=50%",
            "rnd",
        ])
        .watchdog(Duration::from_secs(120))
        .run();
    r.assert_code(1);
    let line = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("First failure: "))
        .unwrap_or_else(|| panic!("no first failure line\n{}", r.context));
    assert!(line.ends_with(&format!("/none/{first}.log")), "{line}");
    let log = std::fs::read_to_string(line).unwrap();
    assert!(log.contains(&format!("attempt {first}:")), "{log}");
    // One at a time: the attempts up to the first failure ran, and at most
    // the one the scheduler had started as the failure was reported (then
    // stopped, not counted, unless it ended first).
    let dir = Path::new(line).parent().unwrap().parent().unwrap();
    let ran = logs_in(dir).len();
    assert!(
        ran == first as usize || ran == first as usize + 1,
        "{ran} attempts for a failure at {first}"
    );
    r.assert_stdout_contains("cpu=50%: not run (the hunt stopped)");
    let counted = r
        .stdout
        .lines()
        .find(|l| l.starts_with("none "))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap();
    assert!(
        counted == first as usize || counted == ran,
        "{counted}\n{}",
        r.context
    );
}

#[test]
fn until_fail_without_a_failure_exits_0() {
    let w = Warden::new().fixture("ok", &fixture("pass.sh"), &[], "");
    let r = w
        .subcommand("hunt")
        .args(["--runs", "3", "--parallel", "3", "--until-fail", "ok"])
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("No failure in 3 attempts.");
}

#[test]
fn one_test_runs_alone_through_rerun() {
    let script = "for t in \"$@\"; do echo \"ran $t\"; done; echo 'TAP version 13'; echo 1..1; echo \"ok 1 - $1\"";
    let w = Warden::new().batch(&format!(
        "name = \"tap\"\ncommand = [\"sh\", \"-c\", {0}, \"sh\", \"t1\", \"t2\"]\nformat = \"tap\"\nrerun = [\"sh\", \"-c\", {0}, \"sh\", \"{{tests}}\"]",
        q(script)
    ));
    let r = hunt(w, "tap/t2", &["--runs", "2"]);
    r.assert_code(0);
    let doc = json(&r);
    assert_eq!(doc["test"], "tap/t2");
    let dir = PathBuf::from(doc["dir"].as_str().unwrap());
    let log = std::fs::read_to_string(dir.join("none/1.log")).unwrap();
    assert!(log.contains("ran t2") && !log.contains("ran t1"), "{log}");
}

#[test]
fn one_test_of_a_batch_without_rerun_is_refused() {
    let w = Warden::new().fixture("ok", &fixture("pass.sh"), &[], "");
    let r = w
        .subcommand("hunt")
        .args(["--runs", "2", "ok/some-test"])
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("batch \"ok\" has no `rerun` template");
    let w = Warden::new().fixture("ok", &fixture("pass.sh"), &[], "");
    let r = w
        .subcommand("hunt")
        .args(["--runs", "2", "--pressure", "disk=1", "ok"])
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("invalid pressure \"disk=1\"");
    let w = Warden::new().fixture("ok", &fixture("pass.sh"), &[], "");
    let r = w.subcommand("hunt").args(["--runs", "2", "nope"]).run();
    r.assert_code(2);
    r.assert_stderr_contains("no batch named \"nope\"");
}

/// Whether this host has a controller to throttle a batch's writes with:
/// v1 blkio's throttling, or v2's `io` (the I/O fixture's premise).
fn io_throttling() -> bool {
    let v2 = |path: &str| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == "io")
    };
    Path::new("/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device").exists()
        || v2("/sys/fs/cgroup/cgroup.controllers")
        || v2("/sys/fs/cgroup/unified/cgroup.controllers")
}

#[test]
fn an_io_sensitive_test_is_sensitive_to_io_and_not_to_cpu() {
    if !io_throttling() {
        eprintln!("skipping: no blkio (v1) or io (v2) controller to throttle with");
        return;
    }
    let w = Warden::new().batch(&format!(
        "name = \"disk\"\ncommand = [{}]",
        q(&fixture("hunt_io.sh"))
    ));
    let r = hunt(
        w,
        "disk",
        &[
            "--runs",
            "4",
            "--parallel",
            "2",
            "--pressure",
            "io=4M",
            "--pressure",
            "cpu=50%",
        ],
    );
    let doc = json(&r);
    assert_eq!(arm(&doc, "none")["verdict"], "stable", "{}", r.context);
    assert_eq!(arm(&doc, "io=4M")["failures"], 4, "{}", r.context);
    assert_eq!(arm(&doc, "io=4M")["verdict"], "sensitive");
    assert_eq!(
        arm(&doc, "io=4M")["sentence"],
        "io=4M: 4/4 failed — sensitive to I/O"
    );
    assert_eq!(arm(&doc, "cpu=50%")["verdict"], "not-sensitive");
    r.assert_code(1);
}

/// The hunt is recorded as a hunt: its rows in `hunts` and `hunt_arms`,
/// none in `runs` or `results` (so no flaky statistic can count it).
async fn counts(url: &str) -> [i64; 4] {
    use sqlx::Connection as _;
    let mut n = [0; 4];
    macro_rules! count {
        ($conn:expr) => {
            for (i, t) in ["hunts", "hunt_arms", "runs", "results"].iter().enumerate() {
                n[i] = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
                    .fetch_one(&mut $conn)
                    .await
                    .unwrap();
            }
        };
    }
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        count!(c);
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        count!(c);
    }
    n
}

fn recorded_apart(history: &str, url: &str) {
    // A run first: the test is known to the history, with one result.
    let w = random_batch(Warden::new(), "11", "30");
    let r = w.args(["--history", history]).run();
    assert!(r.code.is_some(), "{}", r.context);
    assert_eq!(common::block_on(counts(url)), [0, 0, 1, 1]);
    let w = random_batch(Warden::new(), "11", "30");
    let r = hunt(
        w,
        "rnd",
        &[
            "--runs",
            "10",
            "--pressure",
            "cpu=50%",
            "--history",
            history,
        ],
    );
    r.assert_code(1);
    assert!(json(&r)["recorded"].is_string(), "{}", r.context);
    // The hunt's twenty attempts are in no run and no result.
    assert_eq!(common::block_on(counts(url)), [1, 2, 1, 1]);
    let w = Warden::new().no_config();
    let r = w
        .subcommand("flaky")
        .args(["--history", history, "--format", "json"])
        .run();
    r.assert_code(0);
    assert_eq!(r.stdout.trim(), "[]", "{}", r.context);
    // The test page lists the hunt, its arms and verdicts.
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = common::http::spawn_serve(history, dir.path());
    let page = common::http::get(&format!("{base}/test?name=rnd"));
    let api = common::http::get(&format!("{base}/api/test?name=rnd"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h2>Hunts</h2>"), "{}", page.body);
    assert!(page.body.contains("flaky on its own"), "{}", page.body);
    assert!(page.body.contains("not sensitive to CPU"), "{}", page.body);
    let api = api.json();
    let hunts = api["hunts"].as_array().unwrap();
    assert_eq!(hunts.len(), 1);
    assert_eq!(hunts[0]["runs_per_arm"], 10);
    assert_eq!(hunts[0]["arms"][0]["arm"], "none");
    assert_eq!(hunts[0]["arms"][0]["verdict"], "flaky");
    assert_eq!(hunts[0]["arms"][1]["arm"], "cpu=50%");
    assert_eq!(hunts[0]["arms"][1]["runs"], 10);
    // The run's one result, not the hunt's twenty.
    assert_eq!(api["total"], 1);
}

#[test]
fn hunts_are_recorded_apart_from_results_and_shown_on_the_test_page_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    recorded_apart(
        &format!("sqlite:{}", path.display()),
        &format!("sqlite://{}", path.display()),
    );
}

#[test]
fn hunts_are_recorded_apart_from_results_and_shown_on_the_test_page_postgres() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    recorded_apart(&url, &url);
}

#[test]
fn sigint_stops_the_hunt_its_attempts_and_its_noise() {
    let w = Warden::new();
    let started = w.path("started");
    let w = w.shell(
        "slow",
        &format!("touch {}; exec sleep 30", q(&started.display().to_string())),
        "limits = { cpu = \"50%\" }",
    );
    let running = w
        .subcommand("hunt")
        .args([
            "--runs",
            "4",
            "--parallel",
            "2",
            "--pressure",
            "noise=cpu:1",
            "slow",
        ])
        .spawn();
    assert!(
        common::wait_until(Duration::from_secs(20), || started.exists()),
        "no attempt started"
    );
    running.signal(libc::SIGINT);
    let pid = running.pid();
    let r = running.wait();
    assert_eq!(common::v1_leftovers(pid), Vec::<PathBuf>::new());
    r.assert_code(130);
    assert!(
        r.elapsed < Duration::from_secs(15),
        "{:?}\n{}",
        r.elapsed,
        r.context
    );
    r.assert_stdout_contains("Hunt stopped early: warden got SIGINT");
    r.assert_stdout_contains("none: not run");
}

#[test]
fn attempts_that_cannot_start_are_no_answer() {
    let w = Warden::new().batch("name = \"gone\"\ncommand = [\"/nonexistent/warden-hunt-test\"]");
    let r = hunt(w, "gone", &["--runs", "3"]);
    r.assert_code(1);
    let doc = json(&r);
    let none = arm(&doc, "none");
    assert_eq!(none["runs"], 0, "{}", r.context);
    assert_eq!(none["errors"], 3);
    assert_eq!(none["verdict"], "not-run");
    let sentence = none["sentence"].as_str().unwrap();
    assert!(
        sentence.starts_with("none: no attempt could start: "),
        "{sentence}"
    );
}
