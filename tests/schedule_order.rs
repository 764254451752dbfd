//! Start order and sharding from the history: longest expected p90 first
//! (`priority` before that), the predicted and actual makespan in the
//! summary, and `--partition count|hash|duration:K/N` putting every batch
//! in exactly one shard.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::{Warden, block_on};
use warden::history::model::{BatchRecord, Labels, RunRecord, RunSource};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status};

const DAY: Duration = Duration::from_secs(86_400);

/// One recorded run per entry, started at `at`, with these batches and
/// durations (milliseconds).
fn seed(db: &Path, runs: &[(SystemTime, &[(&str, u64)])]) {
    block_on(async {
        let location = Location::Sqlite(db.to_owned());
        let store = Db::open(&location, Access::Write).await.expect("open");
        for (n, (at, batches)) in runs.iter().enumerate() {
            let run = RunRecord {
                uuid: format!("seed-{n}-{}", db.display()),
                started: *at,
                commit: None,
                branch: None,
                host: "seed".into(),
                labels: Labels::default(),
                source: RunSource::Run,
            };
            let id = store.begin_run(&run).await.expect("begin_run");
            for (name, ms) in *batches {
                let b = BatchRecord {
                    name: (*name).into(),
                    phase: Phase::Batch,
                    status: Status::Passed,
                    reason: "exit code 0".into(),
                    started: *at,
                    duration: Duration::from_millis(*ms),
                    log: None,
                    attempts: Vec::new(),
                    tests: Vec::new(),
                    usage: None,
                };
                store.record_batch(id, &b).await.expect("record_batch");
            }
            store
                .finish_run(id, RunStatus::Passed, *at + Duration::from_secs(3600))
                .await
                .expect("finish_run");
        }
        store.close().await;
    });
}

fn days_ago(n: u32) -> SystemTime {
    SystemTime::now() - DAY * n
}

fn history_arg(db: &Path) -> String {
    format!("sqlite:{}", db.display())
}

/// The names after `--partition …: ` in `check`'s output.
fn shard_batches(stdout: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("--partition "))
        .unwrap_or_else(|| panic!("no partition line in\n{stdout}"));
    let (_, names) = line
        .rsplit_once("): ")
        .unwrap_or_else(|| panic!("no batch list in {line:?}"));
    names
        .split(", ")
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `check`'s start order: the names of the `  N. name (…)` lines.
fn check_order(stdout: &str) -> Vec<String> {
    let (_, rest) = stdout
        .split_once("start order (")
        .unwrap_or_else(|| panic!("no start order in\n{stdout}"));
    rest.lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let (_, name) = l.trim().split_once(". ").expect("`N. name`");
            name.split(" (").next().unwrap_or(name).to_owned()
        })
        .collect()
}

#[test]
fn longest_p90_first_new_batches_at_the_median_priority_first() {
    let w = Warden::pgroup();
    let db = w.path("history.db");
    // Three runs: the p90 (nearest rank, of 3) is the largest of each.
    let durations: &[(&str, u64)] = &[("a", 1000), ("b", 30_000), ("c", 10_000), ("e", 100)];
    seed(
        &db,
        &[
            (days_ago(3), durations),
            (days_ago(2), durations),
            (days_ago(1), durations),
        ],
    );
    let order = w.path_str("order");
    let mut w = w;
    // `d` is new: guessed at the median of the known p90s (0.1, 1, 10, 30:
    // the lower middle, 1 s), it ties with `a` and keeps its config place
    // after it. `e` is the shortest but has priority.
    for name in ["a", "d", "b", "c", "e"] {
        let extra = if name == "e" { "priority = 1" } else { "" };
        w = w.shell(name, &format!("echo {name} >> {order}"), extra);
    }
    let config = w.config_text();

    // `check` shows the order, with what each batch is expected to take.
    let c = Warden::new()
        .config(&config)
        .check()
        .args(["--max-parallel", "1", "--history", &history_arg(&db)])
        .run();
    c.assert_code(0);
    assert_eq!(
        check_order(&c.stdout),
        ["e", "b", "c", "a", "d"],
        "{}",
        c.context
    );
    c.assert_stdout_contains("start order (priority, then the longest expected first):");
    c.assert_stdout_contains("  1. e (priority 1, p90 0.10s)\n  2. b (p90 30.00s)\n");
    c.assert_stdout_contains("  5. d (no history: the median, 1.00s)\n");
    c.assert_stdout_contains(&format!(
        "history: {}: p90 of 4 of 5 batches over the last 30 days",
        history_arg(&db)
    ));
    // One at a time: the sum.
    c.assert_stdout_contains("predicted makespan: 42.10s (lower bound 42.10s; 1 of 5 batches");

    // Without history: priority, then config order.
    let c = Warden::new()
        .config(&config)
        .check()
        .args(["--history", "none"])
        .run();
    c.assert_code(0);
    assert_eq!(
        check_order(&c.stdout),
        ["e", "a", "d", "b", "c"],
        "{}",
        c.context
    );
    c.assert_stdout_contains("start order (priority, then config order):");
    c.assert_stdout_contains("predicted makespan: unknown");

    // The run starts them so, one at a time.
    let r = w
        .args(["--max-parallel", "1", "--history", &history_arg(&db)])
        .run();
    r.assert_code(0);
    let started = std::fs::read_to_string(r.path("order")).unwrap();
    assert_eq!(started, "e\nb\nc\na\nd\n", "{}", r.context);
    let starts: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("START "))
        .collect();
    assert_eq!(starts, ["e", "b", "c", "a", "d"], "{}", r.context);
}

#[test]
fn summary_shows_actual_and_predicted_makespan() {
    let w = Warden::pgroup();
    let db = w.path("history.db");
    seed(&db, &[(days_ago(1), &[("slow", 2000), ("quick", 1000)])]);
    let r = w
        .shell("slow", "sleep 0.3", "")
        .shell("quick", "true", "")
        .arg("--max-parallel")
        .arg("2")
        .arg("--history")
        .arg(history_arg(&db))
        .run();
    r.assert_code(0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("Success: "))
        .expect("summary");
    let line = lines[at + 1];
    assert!(
        line.starts_with("Makespan: ")
            && line.ends_with(" (predicted 2.00s from history p90; lower bound 2.00s)"),
        "{}",
        r.context
    );
    let actual: f64 = line["Makespan: ".len()..]
        .split('s')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.3..5.0).contains(&actual), "{}", r.context);

    // A batch the history does not know is counted at the median.
    let r = Warden::pgroup()
        .shell("slow", "true", "")
        .shell("quick", "true", "")
        .shell("new", "true", "")
        .arg("--max-parallel")
        .arg("1")
        .arg("--history")
        .arg(history_arg(&db))
        .run();
    r.assert_code(0);
    // 2 + 1 + the lower median of (1, 2): 1.
    r.assert_stdout_contains(
        " (predicted 4.00s from history p90, 1 of 3 batches without history counted at the \
         median; lower bound 4.00s)\n",
    );

    // No history: the actual makespan only.
    let r = Warden::pgroup()
        .shell("one", "true", "")
        .arg("--history")
        .arg("none")
        .run();
    r.assert_code(0);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("Makespan: "))
        .unwrap_or_else(|| panic!("no makespan line\n{}", r.context));
    assert!(!line.contains('('), "{}", r.context);

    // No batch ran: no makespan.
    let r = Warden::pgroup()
        .config("")
        .arg("--history")
        .arg("none")
        .run();
    r.assert_code(0);
    assert!(!r.stdout.contains("Makespan"), "{}", r.context);
}

/// `check --partition KIND:K/N` for K = 1..N, N = 1..8: the shards' batch
/// lists are disjoint and together hold every batch.
#[test]
fn every_batch_lands_in_exactly_one_shard() {
    let names: Vec<String> = (0..23).map(|i| format!("batch-{i:02}")).collect();
    let mut config = String::new();
    for n in &names {
        config.push_str(&format!("[[batch]]\nname = \"{n}\"\nshell = \"true\"\n\n"));
    }
    for kind in ["count", "hash", "duration"] {
        for n in 1..=8 {
            let mut owners: BTreeMap<String, Vec<u32>> = BTreeMap::new();
            for k in 1..=n {
                let r = Warden::new()
                    .config(&config)
                    .check()
                    .arg("--history")
                    .arg("none")
                    .arg("--partition")
                    .arg(format!("{kind}:{k}/{n}"))
                    .run();
                r.assert_code(0);
                for b in shard_batches(&r.stdout) {
                    owners.entry(b).or_default().push(k);
                }
            }
            let all: Vec<&String> = owners.keys().collect();
            assert_eq!(all, names.iter().collect::<Vec<_>>(), "{kind}:?/{n}");
            for (b, shards) in &owners {
                assert_eq!(shards.len(), 1, "{kind}:?/{n}: {b} in shards {shards:?}");
            }
        }
    }
}

#[test]
fn partition_runs_only_its_shard_with_setup_and_post() {
    let w = Warden::pgroup();
    let post = w.path_str("post-ran");
    let r = w
        .shell("b0", "true", "")
        .shell("b1", "true", "")
        .shell("b2", "true", "")
        .shell("b3", "true", "")
        .config_append("[[setup]]\nname = \"prepare\"\nshell = \"true\"\n")
        .config_append(&format!(
            "[[post]]\nname = \"cleanup\"\nshell = \"touch {post}\"\n"
        ))
        .env("WARDEN_PARTITION", "count:2/2")
        .arg("--history")
        .arg("none")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("warden: --partition count:2/2: 2 of 4 batches (assignment ");
    // The other shard's batches are not in this run at all.
    assert_eq!(
        r.summary_line(),
        "Success: 2/2, Failed: 0, Timed out: 0, Leaked: 0"
    );
    let mut cases: Vec<String> = r.junit().into_iter().map(|c| c.name).collect();
    cases.sort();
    assert_eq!(cases, ["b1", "b3", "cleanup", "prepare"], "{}", r.context);
    assert!(r.path("post-ran").exists(), "{}", r.context);

    // The flag wins over the environment; bad values are usage errors.
    let r = Warden::new()
        .shell("b0", "true", "")
        .shell("b1", "true", "")
        .check()
        .env("WARDEN_PARTITION", "count:2/2")
        .arg("--partition")
        .arg("count:1/2")
        .arg("--history")
        .arg("none")
        .run();
    r.assert_code(0);
    assert_eq!(shard_batches(&r.stdout), ["b0"]);
    for (bad, why) in [
        ("hash:0/4", "shard K must be between 1 and N (4)"),
        ("hash:5/4", "shard K must be between 1 and N (4)"),
        ("hash:1/1001", "N must be between 1 and 1000"),
        ("size:1/4", "unknown kind `size`"),
        ("hash:1-4", "expected count:K/N, hash:K/N or duration:K/N"),
    ] {
        for sub in ["run", "check"] {
            let r = Warden::pgroup()
                .shell("b0", "true", "")
                .subcommand(sub)
                .arg("--partition")
                .arg(bad)
                .run();
            r.assert_code(2);
            r.assert_stderr_contains(why);
        }
    }
    // A shard of the named batches.
    let r = Warden::new()
        .shell("b0", "true", "")
        .shell("b1", "true", "")
        .shell("b2", "true", "")
        .check()
        .args(["--history", "none", "--partition", "count:2/2", "b0", "b2"])
        .run();
    r.assert_code(0);
    assert_eq!(shard_batches(&r.stdout), ["b2"]);
}

/// Batches with their p90s for the duration tests: `new` has none (the
/// median, 50 s). LPT on two shards: a 100 → 0; b 60 → 1; c 50 → 1 (110);
/// new 50 → 0 (150); d 40 → 1 (150); e 10 → 0 (lowest of equals, 160).
const DURATIONS: &[(&str, u64)] = &[
    ("a", 100_000),
    ("b", 60_000),
    ("c", 50_000),
    ("d", 40_000),
    ("e", 10_000),
];

fn duration_config() -> String {
    ["a", "b", "c", "d", "e", "new"]
        .iter()
        .map(|n| format!("[[batch]]\nname = \"{n}\"\nshell = \"true\"\n\n"))
        .collect()
}

#[test]
fn duration_partition_balances_by_history() {
    let w = Warden::new();
    let db = w.path("history.db");
    seed(&db, &[(days_ago(3), DURATIONS), (days_ago(2), DURATIONS)]);
    let mut shards = Vec::new();
    for k in 1..=2 {
        let r = Warden::new()
            .config(&duration_config())
            .check()
            // No repository: the history as of today's start, which the
            // seeded runs precede.
            .env("GIT_DIR", "/nonexistent/warden-test")
            .args(["--history", &history_arg(&db)])
            .arg("--partition")
            .arg(format!("duration:{k}/2"))
            .run();
        r.assert_code(0);
        r.assert_stderr_contains("git does not know the commit's time");
        assert!(!r.stderr.contains("sharding by hash"), "{}", r.context);
        shards.push(shard_batches(&r.stdout));
    }
    assert_eq!(shards, [vec!["a", "e", "new"], vec!["b", "c", "d"]]);
}

#[test]
fn duration_partition_reads_the_history_as_of_the_commit() {
    let w = Warden::new();
    let git = |args: &[&str], date: &str| {
        Command::new("git")
            .arg("-C")
            .arg(w.dir())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .env("GIT_COMMITTER_DATE", date)
            .env("GIT_AUTHOR_DATE", date)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !git(&["init", "-q"], "") {
        eprintln!("skipping: git is not available");
        return;
    }
    let commit = days_ago(1);
    let secs = commit
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(git(
        &["commit", "-q", "--allow-empty", "-m", "x"],
        &format!("@{secs} +0000")
    ));
    let db = w.path("history.db");
    // Before the commit: the durations above. After it (another shard of
    // this very CI run, say, that finished first): `e` took far longer,
    // which would move it.
    let later: &[(&str, u64)] = &[("e", 900_000)];
    seed(
        &db,
        &[
            (days_ago(3), DURATIONS),
            (SystemTime::now() - DAY / 4, later),
        ],
    );
    let r = w
        .config(&duration_config())
        .check()
        .args([
            "--history",
            &history_arg(&db),
            "--partition",
            "duration:1/2",
        ])
        .run();
    r.assert_code(0);
    assert_eq!(shard_batches(&r.stdout), ["a", "e", "new"], "{}", r.context);
    assert!(r.stderr.is_empty(), "{}", r.context);
}

#[test]
fn duration_partition_without_history_is_hash_with_a_note() {
    for history in ["none", "sqlite:missing/history.db"] {
        let by_hash = Warden::new()
            .config(&duration_config())
            .check()
            .args(["--history", history, "--partition", "hash:2/3"])
            .run();
        let r = Warden::new()
            .config(&duration_config())
            .check()
            .env("GIT_DIR", "/nonexistent/warden-test")
            .args(["--history", history, "--partition", "duration:2/3"])
            .run();
        r.assert_code(0);
        r.assert_stderr_contains(
            "warden: --partition duration:2/3: no durations in the history yet; sharding by hash",
        );
        r.assert_stdout_contains(", by hash (assignment ");
        assert_eq!(shard_batches(&r.stdout), shard_batches(&by_hash.stdout));
        assert!(!r.path("missing").exists(), "reading created the store");
    }
}

#[test]
fn unreadable_history_stops_a_duration_shard_but_not_a_run() {
    let down = "postgres://warden@127.0.0.1:1/history";
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--history", down, "--partition", "duration:1/2"])
        .run();
    r.assert_code(2);
    r.assert_stderr_contains("--partition duration:1/2: cannot read the durations: cannot open");
    assert!(!r.stdout.contains("START"), "{}", r.context);
    // Ordering alone does without: a warning, and the run goes on.
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .args(["--history", down])
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("warden: warning: cannot read batch durations: cannot open");
}

/// A server that accepts connections and never answers holds the start
/// for the bounded wait only.
#[test]
fn a_silent_store_holds_the_start_a_few_seconds_only() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let started = Instant::now();
    let r = Warden::new()
        .shell("ok", "true", "")
        .check()
        .args([
            "--history",
            &format!("postgres://warden@127.0.0.1:{port}/h"),
        ])
        .run();
    let took = started.elapsed();
    drop(listener);
    r.assert_code(0);
    r.assert_stderr_contains("did not answer within 3s");
    r.assert_stdout_contains("start order (priority, then config order):");
    assert!(took < Duration::from_secs(8), "{took:?}\n{}", r.context);
}
