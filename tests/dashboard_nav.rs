//! `warden serve` as people navigate it: the runs list says what failed
//! (with run numbers and times to the second), the search box finds
//! tests, the durations page ranks them with their trend, two runs
//! compare, sortable headers say so, and a batch's log is reached by its
//! name. Over the seeded history (`common::history_seed`) plus two runs
//! of this file's own (`nav-a`, then `nav-b`: what changed between them
//! is known), on SQLite and on PostgreSQL alike.

#[macro_use]
mod common;

use std::process::Child;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tempfile::TempDir;

use common::history_seed::{self, HOSTILE};
use common::http::{self, Response};
use warden::history::model::{BatchRecord, Label, RunRecord, RunSource, TestRecord};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status, TestStatus};

/// A test of `nav-b` whose name is markup and LIKE metacharacters.
const HOSTILE_NAV: &str = "nav/<script>alert('cmp')</script>/100%_x";
/// A batch of `nav-b` with an odd name and a log on this machine.
const ODD_BATCH: &str = "odd/<b> name?#%";
const ODD_LOG: &str = "odd log <script>alert(4)</script>\n";

struct Server {
    child: Child,
    url: String,
    /// `nav-b`'s start.
    nav_b: SystemTime,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn record(name: &str, status: TestStatus, ms: u64) -> TestRecord {
    TestRecord {
        name: name.into(),
        message: (status == TestStatus::Failed).then(|| format!("{name} failed")),
        status,
        duration: Some(Duration::from_millis(ms)),
    }
}

fn batch(
    name: &str,
    status: Status,
    at: SystemTime,
    ms: u64,
    tests: Vec<TestRecord>,
) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        phase: Phase::Batch,
        status,
        reason: String::new(),
        started: at,
        duration: Duration::from_millis(ms),
        log: None,
        attempts: Vec::new(),
        tests,
        usage: None,
    }
}

/// `nav-a` (an hour ago) and `nav-b` (half an hour ago), label
/// `suite=nav`, recorded on this host. From A to B: batch `alpha` newly
/// failed and got slower (10 s → 30 s), `beta` was fixed; tests
/// `t/newly`, the five `t/many/N` and [`HOSTILE_NAV`] newly failed,
/// `t/fixed` was fixed, `t/still` failed in both, `t/slow` got slower
/// (1 s → 3 s), `t/noise` is 4× slower but only by 30 ms (not slower).
async fn seed_nav(db: &Db, logs: &std::path::Path) -> SystemTime {
    let now = UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
    let host = warden::history::origin::host();
    let a_at = now - Duration::from_secs(3600);
    let b_at = now - Duration::from_secs(1800);
    for (uuid, at) in [("nav-a", a_at), ("nav-b", b_at)] {
        let b = uuid == "nav-b";
        let id = db
            .begin_run(&RunRecord {
                uuid: uuid.into(),
                started: at,
                commit: Some(format!("{uuid}-commit")),
                branch: Some("main".into()),
                host: host.clone(),
                labels: [Label {
                    key: "suite".into(),
                    value: "nav".into(),
                }]
                .into_iter()
                .collect(),
                source: RunSource::Run,
            })
            .await
            .unwrap();
        let st = |failed: bool| {
            if failed {
                TestStatus::Failed
            } else {
                TestStatus::Passed
            }
        };
        let mut alpha_tests = vec![
            record("t/fixed", st(!b), 100),
            record("t/newly", st(b), 100),
            record("t/still", TestStatus::Failed, 100),
            record("t/slow", TestStatus::Passed, if b { 3000 } else { 1000 }),
            record("t/noise", TestStatus::Passed, if b { 40 } else { 10 }),
            record(HOSTILE_NAV, st(b), 5),
        ];
        for n in 1..=5 {
            alpha_tests.push(record(&format!("t/many/{n}"), st(b), 5));
        }
        let failed = |f: bool| if f { Status::Failed } else { Status::Passed };
        let mut batches = vec![
            batch(
                "alpha",
                failed(b),
                at,
                if b { 30_000 } else { 10_000 },
                alpha_tests,
            ),
            batch(
                "beta",
                failed(!b),
                at + Duration::from_secs(1),
                5_000,
                Vec::new(),
            ),
            batch(
                "gamma",
                Status::Passed,
                at + Duration::from_secs(2),
                2_000,
                Vec::new(),
            ),
        ];
        if b {
            let log = logs.join("odd.log");
            std::fs::write(&log, ODD_LOG).unwrap();
            let mut odd = batch(
                ODD_BATCH,
                Status::Passed,
                at + Duration::from_secs(3),
                1,
                Vec::new(),
            );
            odd.log = Some(log.to_str().unwrap().to_owned());
            batches.push(odd);
        }
        db.record_batches(id, &batches).await.unwrap();
        db.finish_run(id, RunStatus::Failed, at + Duration::from_secs(60))
            .await
            .unwrap();
    }
    b_at
}

impl Server {
    async fn sqlite() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let location = format!("sqlite:{}", dir.path().join("history.db").display());
        Server::seeded(dir, &location).await
    }

    async fn seeded(dir: TempDir, location: &str) -> Server {
        let db = Db::open(&location.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        let seeded = history_seed::seed(&db).await;
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        history_seed::seed_hostile(&db, &seeded, &logs).await;
        let nav_b = seed_nav(&db, &logs).await;
        db.close().await;
        let (child, url) = http::spawn_serve(location, dir.path());
        Server {
            child,
            url,
            nav_b,
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Response {
        http::get(&format!("{}{path}", self.url))
    }

    /// A page: 200, HTML, the search box in its header, nothing hostile
    /// unescaped.
    fn page(&self, path: &str) -> String {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(
            r.header("content-security-policy")
                .unwrap_or_default()
                .contains("default-src 'none'")
        );
        for raw in ["<script", "<b>", "<img"] {
            assert!(!r.body.contains(raw), "{path}: raw {raw:?} in\n{}", r.body);
        }
        assert!(
            r.body.contains(
                r#"<form class="search" method="get" action="/search" role="search"><input type="search" name="q""#
            ),
            "{path}: no search box in\n{}",
            r.body
        );
        r.body
    }

    fn api(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    }
}

fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn names(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x[key].as_str().unwrap().to_owned())
        .collect()
}

/// The runs list: numbers, times to the second, what failed, the fitted
/// sparkline, the way to compare.
fn check_runs_list(s: &Server) {
    let runs = s.api("/api/runs");
    let rows = runs.as_array().unwrap();
    let b = &rows[0];
    assert_eq!(b["uuid"], "nav-b");
    let a = rows.iter().find(|r| r["uuid"] == "nav-a").unwrap();
    let (na, nb) = (a["number"].as_i64().unwrap(), b["number"].as_i64().unwrap());
    // A per-store sequence: a later run, a higher number.
    assert!(nb > na && na > 0, "{na} {nb}");
    let r3 = rows.iter().find(|r| r["uuid"] == "run-03").unwrap();
    let r4 = rows.iter().find(|r| r["uuid"] == "run-04").unwrap();
    assert_eq!(
        r4["number"].as_i64().unwrap(),
        r3["number"].as_i64().unwrap() + 1
    );
    // nav-b: one failed batch; eight failed tests, the first three by name.
    assert_eq!(
        b["failures"],
        json!({
            "batches": ["alpha"],
            "failed_batches": 1,
            "tests": [HOSTILE_NAV, "t/many/1", "t/many/2"],
        })
    );
    assert_eq!(b["failed"], 8);
    // A run's page by its number, too.
    assert_eq!(s.api(&format!("/api/runs/%23{nb}"))["run"]["uuid"], "nav-b");
    assert_eq!(s.api(&format!("/api/runs/{na}"))["run"]["uuid"], "nav-a");
    // The hostile runs: both batches failed (start order), both tests.
    let h1 = rows.iter().find(|r| r["uuid"] == "hostile-1").unwrap();
    assert_eq!(h1["failures"]["batches"], json!(["evil", "secret"]));
    assert_eq!(
        h1["failures"]["tests"],
        json!([HOSTILE, history_seed::HOSTILE_BROKEN])
    );
    // A seeded run with one failed test and no failed batch.
    assert_eq!(
        r3["failures"],
        json!({"batches": [], "failed_batches": 0, "tests": ["bpf/maps/hash_race"]})
    );

    let page = s.page("/runs");
    // The run number links to the run.
    assert!(
        page.contains(&format!(
            r#"<td class="num number"><a href="/runs/nav-b">#{nb}</a></td>"#
        )),
        "{page}"
    );
    // To the second, in UTC.
    let when = chrono::DateTime::<chrono::Utc>::from(s.nav_b)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    assert!(page.contains(&format!(">{when}</time>")), "{when}: {page}");
    // What failed, in brief: the first names, then how many more.
    assert!(page.contains("1 batch: alpha"), "{page}");
    assert!(
        page.contains(&format!(
            r#"8 tests: <a href="/test?name={}">{}</a>"#,
            enc(HOSTILE_NAV).replace("%20", "+"),
            escaped(HOSTILE_NAV)
        )),
        "{page}"
    );
    assert!(
        page.contains(r#"<span class="more">+5 more</span>"#),
        "{page}"
    );
    // Compare with the previous run of the same labels, or pick A and B.
    assert!(
        page.contains(r#"<a class="vs-previous" href="/compare?a=nav-a&amp;b=nav-b""#),
        "{page}"
    );
    assert!(page.contains(r#"<input type="radio" name="a" value="nav-b">"#));
    // Each sparkline labels its own scale.
    assert!(page.contains(r#"<text class="max""#), "{page}");
}

/// The search box: substring, any case, LIKE metacharacters literal,
/// bounded, hostile names as text.
fn check_search(s: &Server) {
    let found = s.api("/api/search?q=HASH");
    assert_eq!(
        found,
        json!({"query": "HASH", "total": 2, "tests": ["bpf/maps/hash", "bpf/maps/hash_race"]})
    );
    // `_` and `%` are themselves, not wildcards.
    assert_eq!(s.api("/api/search?q=h_sh")["total"], 0);
    assert_eq!(s.api("/api/search?q=%25_")["tests"], json!([HOSTILE_NAV]));
    assert_eq!(s.api("/api/search?q=100%25")["tests"], json!([HOSTILE_NAV]));
    // Bounded: the first two by name, and the count of all.
    let some = s.api("/api/search?q=t%2Fmany%2F&limit=2");
    assert_eq!(some["total"], 5);
    assert_eq!(some["tests"], json!(["t/many/1", "t/many/2"]));
    assert_eq!(s.api("/api/search?q=")["total"], 0);

    let page = s.page("/search?q=t%2Fmany%2F&limit=2");
    assert!(
        page.contains(r#"value="t/many/""#),
        "the box keeps the text: {page}"
    );
    assert!(
        page.contains(r#"<li><a href="/test?name=t%2Fmany%2F1">t/many/1</a></li>"#),
        "{page}"
    );
    assert!(page.contains("3 more: type more of the name"), "{page}");
    let page = s.page(&format!("/search?q={}", enc("<script>")));
    assert!(page.contains(&escaped(HOSTILE_NAV)), "{page}");
    assert!(page.contains(r#"value="&lt;script&gt;""#), "{page}");
    let page = s.page("/search?q=no-such-test");
    assert!(page.contains("No test's name contains it."), "{page}");
    // Huge text: refused, not a failed query; the page says why.
    for q in ["x".repeat(201), "%".repeat(20_000)] {
        let r = s.get(&format!("/search?q={}", enc(&q)));
        assert_eq!(r.status, 400, "{}", &r.body[..r.body.len().min(300)]);
        assert!(r.body.contains("at most 200 characters"));
        assert_eq!(s.get(&format!("/api/search?q={}", enc(&q))).status, 400);
    }
}

/// The durations page: slowest first, p50/p90, the trend against the
/// window before, sortable columns.
fn check_durations(s: &Server) {
    // 45 days: the 60-day-old run is in the window before.
    let d = s.api("/api/durations?since=45d");
    let tests = &d["tests"]["rows"];
    // Without label filters, from the daily rollups: within 1/128 (exact
    // below 128 ms; the maximum always).
    let near = |v: &Value, want: f64| {
        let v = v.as_f64().unwrap_or_else(|| panic!("{v}"));
        assert!((v - want).abs() <= want / 128.0, "{v} is not about {want}");
    };
    assert_eq!(tests[0]["name"], "t/slow");
    near(&tests[0]["p50_ms"], 1000.0);
    near(&tests[0]["p90_ms"], 3000.0);
    assert_eq!(tests[0]["max_ms"], 3000);
    let find = |rows: &Value, name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {rows}"))
            .clone()
    };
    let lp = find(tests, "bpf/verifier/loop");
    assert_eq!(
        (&lp["count"], &lp["p50_ms"], &lp["p90_ms"], &lp["max_ms"]),
        (&json!(24), &json!(120), &json!(220), &json!(240))
    );
    // 9 s in the run 60 days ago, 0.12 s now.
    near(&lp["previous_p50_ms"], 9000.0);
    let before = lp["previous_p50_ms"].as_f64().unwrap();
    assert!((lp["change"].as_f64().unwrap() - 120.0 / before).abs() < 1e-9);
    assert!(find(tests, "t/newly")["previous_p50_ms"].is_null());
    let batches = &d["batches"]["rows"];
    assert_eq!(names(batches, "name")[..2], ["bpf", "alpha"]);
    let bpf = find(batches, "bpf");
    // 60+k s in run k: p50 the 12th of 24, p90 the 22nd.
    assert_eq!(
        (&bpf["p50_ms"], &bpf["p90_ms"]),
        (&json!(71_000), &json!(81_000))
    );
    assert_eq!(bpf["previous_p50_ms"], 999_000);
    // Setup steps are not batches.
    assert!(!names(batches, "name").contains(&"prepare".to_owned()));
    // A label filter: the raw results, not the rollups; the same numbers.
    let x86 = s.api("/api/durations?since=45d&arch=x86_64");
    let lp = find(&x86["tests"]["rows"], "bpf/verifier/loop");
    assert_eq!(
        (&lp["count"], &lp["previous_p50_ms"]),
        (&json!(16), &json!(9000))
    );
    // Sorted by name, and cut.
    let by_name = s.api("/api/durations?sort=name&dir=asc&limit=3");
    let got = names(&by_name["tests"]["rows"], "name");
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    assert_eq!(got.len(), 3);
    assert!(by_name["tests"]["total"].as_u64().unwrap() > 10);
    assert_eq!(s.get("/api/durations?sort=nope").status, 400);
    // The window before is read for the rows shown only (a limit, sorted
    // by this window) or for all (sorted by the trend, or no limit): the
    // same numbers either way, with or without labels.
    for labels in ["", "&arch=x86_64"] {
        let all = s.api(&format!("/api/durations?since=45d&limit=0{labels}"));
        let shown = s.api(&format!("/api/durations?since=45d&limit=4{labels}"));
        let by_change = s.api(&format!(
            "/api/durations?since=45d&sort=change&limit=4{labels}"
        ));
        for kind in ["tests", "batches"] {
            for part in [&shown, &by_change] {
                let rows = part[kind]["rows"].as_array().unwrap();
                assert!(!rows.is_empty());
                assert_eq!(part[kind]["total"], all[kind]["total"]);
                for r in rows {
                    let name = r["name"].as_str().unwrap();
                    assert_eq!(r, &find(&all[kind]["rows"], name), "{kind} {name}");
                }
            }
        }
        // Sorted by the change: the largest first, however few are shown.
        let changes: Vec<f64> = by_change["tests"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["change"].as_f64())
            .collect();
        let mut best: Vec<f64> = all["tests"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["change"].as_f64())
            .collect();
        best.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(changes, best[..changes.len()]);
    }

    let page = s.page("/durations?since=45d");
    assert!(page.contains("<h2>Slowest tests</h2>"), "{page}");
    assert!(
        page.contains(r#"<a href="/test?since=45d&amp;name=t%2Fslow">t/slow</a>"#),
        "{page}"
    );
    assert!(page.contains(r#"title="not measured in the window before">new</span>"#));
    assert!(
        page.contains(r#"<span class="change faster">−99%</span>"#),
        "{page}"
    );
    assert!(page.contains(&escaped(HOSTILE)), "{page}");
    // Sortable headers say so; the sorted one says which way.
    let page = s.page("/durations?sort=p50&dir=asc");
    assert!(
        page.contains(
            r#"<th class="num" aria-sort="ascending"><a class="sort" href="/durations?sort=p50&amp;dir=desc" data-sort="p50" title="sorted ascending: click for descending">p50 ▲</a></th>"#
        ),
        "{page}"
    );
    assert!(
        page.contains(
            r#"<a class="sort" href="/durations?sort=name&amp;dir=asc" data-sort="name" title="sort by this column">Name<span class="sort-hint" aria-hidden="true"> ↕</span></a>"#
        ),
        "{page}"
    );
    assert!(page.contains(r#"href="/durations" aria-current="page">Durations</a>"#));
}

/// Two runs compared: newly failed, fixed, slower, per batch and test.
fn check_compare(s: &Server) {
    let c = s.api("/api/compare?a=nav-a&b=nav-b");
    assert_eq!(
        (&c["a"]["uuid"], &c["b"]["uuid"]),
        (&json!("nav-a"), &json!("nav-b"))
    );
    let list = |what: &str, kind: &str| names(&c[what][kind]["items"], "name");
    assert_eq!(list("batches", "newly_failed"), ["alpha"]);
    assert_eq!(list("batches", "fixed"), ["beta"]);
    assert_eq!(list("batches", "slower"), ["alpha"]);
    assert_eq!(
        list("tests", "newly_failed"),
        [
            HOSTILE_NAV,
            "t/many/1",
            "t/many/2",
            "t/many/3",
            "t/many/4",
            "t/many/5",
            "t/newly"
        ]
    );
    assert_eq!(list("tests", "fixed"), ["t/fixed"]);
    // t/noise is 4x slower, but by 30 ms: not listed.
    assert_eq!(list("tests", "slower"), ["t/slow"]);
    let slow = &c["tests"]["slower"]["items"][0];
    assert_eq!(
        (&slow["before_ms"], &slow["after_ms"], &slow["batch"]),
        (&json!(1000), &json!(3000), &json!("alpha"))
    );
    assert_eq!(c["tests"]["fixed"]["items"][0]["before"], "failed");
    assert_eq!(c["tests"]["fixed"]["items"][0]["after"], "passed");
    // Cut to `limit`, counted in full.
    let cut = s.api("/api/compare?a=nav-a&b=nav-b&limit=2");
    assert_eq!(cut["tests"]["newly_failed"]["total"], 7);
    assert_eq!(
        cut["tests"]["newly_failed"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // By run number too; the other way round, what failed is fixed.
    let (na, nb) = (c["a"]["number"].clone(), c["b"]["number"].clone());
    let back = s.api(&format!("/api/compare?a=%23{nb}&b={na}"));
    assert_eq!(back["tests"]["fixed"]["total"], 7);
    assert_eq!(
        names(&back["tests"]["newly_failed"]["items"], "name"),
        ["t/fixed"]
    );
    assert_eq!(s.get("/api/compare?a=nav-a").status, 400);
    assert_eq!(s.get("/api/compare?a=nav-a&b=no-such-run").status, 404);
    let r = s.get(&format!("/compare?a=nav-a&b={}", enc("<script>x")));
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("<script>x"));

    let page = s.page("/compare?a=nav-a&b=nav-b");
    assert!(
        page.contains(&format!("<h1>Run #{na} → run #{nb}</h1>")),
        "{page}"
    );
    assert!(
        page.contains(r#"<section class="changes tests-newly-failed" id="tests-newly-failed"><h3>Newly failed <span class="count">(7)</span></h3>"#),
        "{page}"
    );
    assert!(page.contains(&escaped(HOSTILE_NAV)), "{page}");
    assert!(
        page.contains(r#"href="/test?name=t%2Ffixed">t/fixed</a>"#),
        "{page}"
    );
    assert!(
        page.contains("at least 1.5 times as long as A and at least 1 s more"),
        "{page}"
    );
}

/// The log route takes the batch's name, percent-encoded.
fn check_log_by_name(s: &Server) {
    let run = s.api("/api/runs/nav-b");
    let odd = run["batches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == ODD_BATCH)
        .unwrap()
        .clone();
    let url = odd["log_url"].as_str().unwrap();
    assert_eq!(url, format!("/runs/nav-b/log/{}", enc(ODD_BATCH)));
    let log = s.get(url);
    assert_eq!(log.status, 200);
    assert_eq!(
        log.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(log.body, ODD_LOG);
    let page = s.page("/runs/nav-b");
    assert!(
        page.contains(&format!(r#"<a href="{url}">log</a>"#)),
        "{page}"
    );
    // Names only: not a batch of another run, not a path.
    assert_eq!(s.get("/runs/nav-a/log/odd").status, 404);
    assert_eq!(
        s.get(&format!("/runs/nav-a/log/{}", enc(ODD_BATCH))).status,
        404
    );
    assert_eq!(s.get("/runs/nav-b/log/..%2F..%2Fetc%2Fpasswd").status, 404);
    assert_eq!(s.get("/runs/nav-b/log/alpha").status, 404);
}

#[tokio::test]
async fn navigation_on_sqlite() {
    let s = Server::sqlite().await;
    check_runs_list(&s);
    check_search(&s);
    check_durations(&s);
    check_compare(&s);
    check_log_by_name(&s);
}

/// The same on PostgreSQL (the shared throwaway server; skipped, saying
/// why, without PostgreSQL binaries): name order, case folding and LIKE
/// escapes must agree with SQLite's.
#[tokio::test]
async fn navigation_on_postgres() {
    let pg = require_postgres!(shared);
    let url = pg.url(&pg.fresh_database());
    let s = Server::seeded(tempfile::tempdir().unwrap(), &url).await;
    check_runs_list(&s);
    check_search(&s);
    check_durations(&s);
    check_compare(&s);
    check_log_by_name(&s);
}

#[tokio::test]
async fn new_pages_are_read_only() {
    let s = Server::sqlite().await;
    for path in [
        "/search?q=x",
        "/durations",
        "/compare?a=nav-a&b=nav-b",
        "/api/search?q=x",
    ] {
        for method in ["POST", "PUT", "DELETE"] {
            let r = http::request(method, &format!("{}{path}", s.url), Some("{}"), &[]);
            assert_eq!(r.status, 405, "{method} {path}");
        }
        let r = http::request(
            "GET",
            &format!("{}{path}", s.url),
            None,
            &[("Host", "evil.example")],
        );
        assert_eq!(r.status, 421, "{path}");
    }
}
