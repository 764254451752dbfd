//! `warden serve`: every page and API route over HTTP, against the seeded
//! history (`common::history_seed`) plus runs with a hostile test name,
//! label, branch, message and log, which must show as text everywhere.

#[macro_use]
mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use common::history_seed::{
    self, FLAKY_30D, HOSTILE, HOSTILE_BROKEN, HOSTILE_LABEL, HOSTILE_LOG, HOSTILE_MARKS,
    HOSTILE_MESSAGE, LONG, RUNS, Seeded, TESTS,
};
use common::http::{self, Response};
use warden::history::query::rfc3339;
use warden::history::{Access, Db, Location};

/// A `warden serve` on a free loopback port over a seeded SQLite store.
struct Server {
    child: Child,
    url: String,
    seeded: Seeded,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Over a fresh SQLite store.
    async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let location = format!("sqlite:{}", path.display());
        Server::seeded(dir, &location).await
    }

    /// Seeds the (empty) store at `location`, then serves it.
    async fn seeded(dir: TempDir, location: &str) -> Server {
        let db = Db::open(&location.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        let seeded = history_seed::seed(&db).await;
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        history_seed::seed_hostile(&db, &seeded, &logs).await;
        db.close().await;
        let (child, url) = common::http::spawn_serve(location, dir.path());
        Server {
            child,
            url,
            seeded,
            _dir: dir,
        }
    }

    fn get(&self, path: &str) -> Response {
        http::get(&format!("{}{path}", self.url))
    }

    /// A page: 200, HTML, the security headers, nothing hostile unescaped.
    fn page(&self, path: &str) -> String {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.body.starts_with("<!DOCTYPE html>"), "{path}");
        no_raw_hostile(path, &r.body);
        r.body
    }

    /// An API route: 200, JSON.
    fn api(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        r.json()
    }
}

/// Markup the hostile values would inject if printed raw. The pages have
/// no script and no image of their own.
fn no_raw_hostile(path: &str, body: &str) {
    for raw in ["<img", "<script", "<b>", "\u{1b}"] {
        assert!(!body.contains(raw), "{path}: raw {raw:?} in\n{body}");
    }
}

/// `s` as maud escapes it in text and attributes.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].as_str().unwrap().to_owned())
        .collect()
}

/// `s` percent-encoded for a URL.
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

#[tokio::test]
async fn pages_and_api_routes_answer() {
    let s = Server::start().await;
    for path in [
        "/",
        "/runs",
        "/runs?since=90d&limit=0",
        "/runs/run-03",
        "/flaky",
        "/flaky?sort=flip&dir=asc&arch=x86_64&since=30d&by=compiler",
        "/test?name=bpf/maps/hash_race",
        "/test?name=bpf/verifier/loop&since=7d",
        "/regressed",
        "/regressed?min_failures=4&compiler=gcc",
        "/failures",
        "/failures?arch=x86_64&since=7d&limit=1",
    ] {
        s.page(path);
    }
    for path in [
        "/api/runs",
        "/api/runs/run-03",
        "/api/flaky",
        "/api/test?name=bpf/maps/hash_race",
        "/api/regressed",
        "/api/failures",
        "/api/labels",
    ] {
        s.api(path);
    }
    let css = s.get("/static/style.css");
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
}

#[tokio::test]
async fn flaky_numbers_sorting_and_filters() {
    let s = Server::start().await;
    let rows = s.api("/api/flaky");
    let rows = rows.as_array().unwrap();
    let seeded: Vec<&Value> = rows.iter().filter(|r| r["test"] != HOSTILE).collect();
    let got: Vec<(&str, u64, u64, u64, u64)> = seeded
        .iter()
        .map(|r| {
            (
                r["test"].as_str().unwrap(),
                r["runs"].as_u64().unwrap(),
                r["failures"].as_u64().unwrap(),
                r["flaky"].as_u64().unwrap(),
                r["hits"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: Vec<_> = FLAKY_30D
        .iter()
        .map(|&(t, runs, f, fl, h, _, _)| (t, runs, f, fl, h))
        .collect();
    assert_eq!(got, want);
    let race = &seeded[0];
    assert_eq!(race["first_seen"], rfc3339(s.seeded.time(3)));
    let flip = race["flip_rate"].as_f64().unwrap();
    assert!((flip - history_seed::rate(8, 14)).abs() < 1e-12);
    // The hostile test (.F.FFF): six runs are too few to call its last
    // three failures a break.
    let evil = rows.iter().find(|r| r["test"] == HOSTILE).unwrap();
    assert_eq!(
        (&evil["hits"], &evil["verdict"]),
        (&4.into(), &"flaky".into())
    );

    // Sorted by name, ascending; by flip rate, descending.
    let names = strings(&s.api("/api/flaky?sort=test&dir=asc"), "test");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let flips: Vec<f64> = s
        .api("/api/flaky?sort=flip&dir=desc")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["flip_rate"].as_f64().unwrap())
        .collect();
    assert!(flips.windows(2).all(|w| w[0] >= w[1]), "{flips:?}");
    // The hostile test's .F.FFF: 3 flips in 5 pairs.
    assert_eq!(flips[0], 0.6);
    let r = s.get("/api/flaky?sort=nope");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));

    // Label filters: x86_64 leaves out aarch64 and the hostile runs.
    let names = strings(&s.api("/api/flaky?arch=x86_64"), "test");
    assert_eq!(
        names,
        [
            "bpf/maps/hash_race",
            "net/udp/connect",
            LONG,
            "bpf/xdp/redirect"
        ]
    );
    assert_eq!(
        s.api("/api/flaky?label=arch%3Dx86_64"),
        s.api("/api/flaky?arch=x86_64")
    );
    let rows = s.api("/api/flaky?arch=x86_64&compiler=llvm");
    assert_eq!(strings(&rows, "test"), ["bpf/xdp/redirect"]);
    // One row per test and arch.
    let rows = s.api("/api/flaky?by=arch&arch=x86_64&since=90d");
    let race = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["test"] == "bpf/maps/hash_race")
        .unwrap();
    assert_eq!(race["labels"]["arch"], "x86_64");
    // Its flaky label set only (A: 8 runs and the 60-day-old one); B
    // never failed it.
    assert_eq!(race["runs"], 9);
    assert!(s.api("/api/flaky?since=1h").as_array().unwrap().is_empty());
    assert_eq!(s.api("/api/flaky?limit=2").as_array().unwrap().len(), 2);

    // The page: the same rows; headers link to sorting, the current one reversed.
    let page = s.page("/flaky?sort=hits&dir=desc");
    assert!(
        page.contains(
            r#"<th class="num" aria-sort="descending"><a class="sort" href="/flaky?sort=hits&amp;dir=asc" data-sort="hits" title="sorted descending: click for ascending">Hits ▼</a></th>"#
        ),
        "{page}"
    );
    // The others say they sort, without an arrow of their own.
    assert!(page.contains(r#"href="/flaky?sort=flip&amp;dir=desc" data-sort="flip" title="sort by this column">Flip %<span class="sort-hint" aria-hidden="true"> ↕</span></a>"#), "{page}");
    assert!(page.contains(&format!(
        r#"href="/test?name={}">bpf/maps/hash_race</a>"#,
        "bpf%2Fmaps%2Fhash_race"
    )));
    // hash_race's rate (4 of 16) and its 95% interval.
    assert!(
        page.contains("<td class=\"num\">25.0<small> (10–49)</small></td>"),
        "{page}"
    );
    // The form offers every label value, the hostile one escaped.
    assert!(
        page.contains(&format!(
            r#"<option value="{}">{}</option>"#,
            escaped(HOSTILE_LABEL),
            escaped(HOSTILE_LABEL)
        )),
        "{page}"
    );
    let page = s.page("/flaky?arch=x86_64");
    assert!(page.contains(r#"<option value="x86_64" selected>x86_64</option>"#));
    assert!(!page.contains(&escaped(HOSTILE)));
}

#[tokio::test]
async fn runs_and_one_run() {
    let s = Server::start().await;
    let runs = s.api("/api/runs");
    let runs = runs.as_array().unwrap();
    // 24 seeded and 6 hostile runs in 30 days; the 60-day-old one is out.
    assert_eq!(runs.len(), RUNS + 6);
    assert_eq!(runs[0]["uuid"], "run-23");
    assert_eq!(runs[0]["started"], rfc3339(s.seeded.time(23)));
    let uuids = strings(&Value::Array(runs.clone()), "uuid");
    let started: Vec<&str> = runs
        .iter()
        .map(|r| r["started"].as_str().unwrap())
        .collect();
    assert!(started.windows(2).all(|w| w[0] >= w[1]), "{uuids:?}");
    // Run 3: every seeded test but those not run in label set A.
    let r3 = runs.iter().find(|r| r["uuid"] == "run-03").unwrap();
    let count = |c: char| {
        TESTS
            .iter()
            .filter(|(n, _)| history_seed::mark(n, 3) == c)
            .count() as u64
    };
    let (passed, failed, flaky, skipped) = (count('.'), count('F'), count('R'), count('s'));
    assert_eq!(r3["passed"], passed);
    assert_eq!(r3["failed"], failed);
    assert_eq!(r3["flaky"], flaky);
    assert_eq!(r3["skipped"], skipped);
    let rate = (passed + flaky) as f64 / (passed + failed + flaky) as f64;
    assert!((r3["pass_rate"].as_f64().unwrap() - rate).abs() < 1e-12);
    assert_eq!(r3["duration_ms"], 600_000);
    assert_eq!(r3["status"], "failed");
    assert_eq!(r3["labels"], "arch=x86_64 compiler=gcc");
    assert_eq!(r3["commit"], Seeded::commit(3));
    assert_eq!(s.api("/api/runs?limit=5").as_array().unwrap().len(), 5);
    assert_eq!(
        s.api("/api/runs?since=90d&limit=0")
            .as_array()
            .unwrap()
            .len(),
        RUNS + 7
    );
    let old = s.api("/api/runs?since=90d&limit=0");
    assert_eq!(
        old.as_array().unwrap().last().unwrap()["status"],
        "incomplete"
    );

    let run = s.api("/api/runs/run-03");
    assert_eq!(run["run"]["uuid"], "run-03");
    let batches: Vec<&str> = run["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(batches, ["prepare", "bpf", "net"]);
    let failing = run["failing"].as_array().unwrap();
    assert_eq!(failing.len() as u64, failed + flaky);
    let race = failing
        .iter()
        .find(|t| t["test"] == "bpf/maps/hash_race")
        .unwrap();
    assert_eq!(race["status"], "failed");
    assert_eq!(race["message"], "assertion failed in run 3");
    // Recorded on another host ("seed"): no log here.
    assert!(
        run["batches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["log_url"].is_null())
    );

    let page = s.page("/runs");
    assert!(page.contains(r#"<a href="/runs/run-03">"#), "{page}");
    assert!(page.contains("<svg class=\"sparkline\""));
    let page = s.page("/runs/run-03");
    assert!(page.contains("assertion failed in run 3"));
    assert!(page.contains(r#"href="/test?name=bpf%2Fmaps%2Fhash_race""#));

    let r = s.get("/runs/no-such-run");
    assert_eq!(r.status, 404);
    assert!(r.body.contains("no run no-such-run"), "{}", r.body);
    assert_eq!(s.get("/api/runs/no-such-run").status, 404);
}

#[tokio::test]
async fn one_test_and_regressions() {
    let s = Server::start().await;
    // The verdict under each label set, and the break marked on the strip.
    let t = s.api("/api/test?name=bpf/maps/broken_lately");
    let verdicts: Vec<(&str, &str)> = t["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["labels"].as_str().unwrap(),
                v["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("arch=aarch64 compiler=gcc", "healthy"),
            ("arch=x86_64 compiler=gcc", "regressed"),
            ("arch=x86_64 compiler=llvm", "healthy"),
        ]
    );
    let broke = &t["verdicts"][1];
    assert_eq!(broke["change"]["before"]["run"], "run-06");
    assert_eq!(broke["change"]["after"]["run"], "run-09");
    assert_eq!((&broke["runs"], &broke["failures"]), (&8.into(), &5.into()));
    let page = s.page("/test?name=bpf/maps/broken_lately");
    assert!(
        page.contains(r#"<span class="badge regressed">regressed</span>"#),
        "{page}"
    );
    assert_eq!(page.matches(r#"<rect class="change""#).count(), 1, "{page}");
    assert!(page.contains("regressed: broke here (74% sure)"), "{page}");
    let t = s.api("/api/test?name=hash_race");
    assert_eq!(t["test"], "bpf/maps/hash_race");
    let marks: String = t["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["status"].as_str().unwrap() {
            "passed" => '.',
            "failed" => 'F',
            "flaky" => 'R',
            _ => 's',
        })
        .collect();
    assert_eq!(marks, "...F.......FF.....R.....");
    assert_eq!(t["results"][3]["commit"], Seeded::commit(3));
    assert_eq!(t["total"], 24);

    // bpf/verifier/loop takes (k+1)·10 ms in run k.
    let t = s.api("/api/test?name=bpf/verifier/loop");
    assert_eq!(
        t["durations"],
        serde_json::json!({"name": "bpf/verifier/loop", "count": 24, "p50_ms": 120, "p90_ms": 220, "max_ms": 240})
    );
    let rolling = t["rolling"].as_array().unwrap();
    assert_eq!(rolling.len(), 24);
    // The last ten: 150…240 ms.
    assert_eq!(rolling[23]["p50_ms"], 190);
    assert_eq!(rolling[23]["p90_ms"], 230);
    let t = s.api("/api/test?name=bpf/verifier/loop&limit=5");
    assert_eq!(t["results"].as_array().unwrap().len(), 5);
    assert_eq!(t["total"], 24);

    let page = s.page("/test?name=bpf/verifier/loop");
    assert!(page.contains(r#"<svg class="strip""#));
    assert_eq!(page.matches("<rect class=\"cell passed\"").count(), 24);
    assert!(page.contains(r#"<polyline class="p90" points=""#));
    assert_eq!(page.matches("<circle class=\"point\"").count(), 24);
    assert!(page.contains("p50 0.12s, p90 0.22s, max 0.24s"), "{page}");

    let r = s.get("/test?name=connect");
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("net/tcp/connect, net/udp/connect"),
        "{}",
        r.body
    );
    assert_eq!(s.get("/api/test?name=no/such").status, 404);
    assert_eq!(s.get("/api/test").status, 400);

    let rows = s.api("/api/regressed");
    let got: Vec<(String, String, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["test"].as_str().unwrap().to_owned(),
                r["labels"].as_str().unwrap().to_owned(),
                r["failures"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "bpf/maps/broken_always".into(),
                "arch=aarch64 compiler=gcc".into(),
                8
            ),
            (HOSTILE_BROKEN.into(), format!("arch={HOSTILE_LABEL}"), 6),
            (
                "bpf/maps/broken_lately".into(),
                "arch=x86_64 compiler=gcc".into(),
                5
            ),
            (
                "net/tcp/connect".into(),
                "arch=aarch64 compiler=gcc".into(),
                3
            ),
        ]
    );
    assert_eq!(rows[2]["first_bad"]["run"], "run-09");
    assert_eq!(
        s.api("/api/regressed?min_failures=4")
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let page = s.page("/regressed");
    assert!(page.contains(r#"<a href="/runs/run-09">"#), "{page}");
}

/// The failures page and API: the seeded failures' messages differ only
/// by the run's number, one cluster; the hostile runs' message another;
/// a test's page lists its clusters and links to them.
#[tokio::test]
async fn failures_grouped_by_cause() {
    let s = Server::start().await;
    let rows = s.api("/api/failures");
    let rows = rows.as_array().unwrap();
    let patterns = strings(&Value::Array(rows.clone()), "pattern");
    let hostile_pattern = "</code><script>alert(<N>)</script>";
    assert_eq!(patterns, ["assertion failed in run <N>", hostile_pattern]);
    // Every failed and flaky result of the seeded runs in the window.
    let runs = s.api("/api/runs?limit=0");
    let seeded: u64 = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["uuid"].as_str().unwrap().starts_with("run-"))
        .map(|r| r["failed"].as_u64().unwrap() + r["flaky"].as_u64().unwrap())
        .sum();
    assert!(seeded > 10, "{runs}");
    assert_eq!(rows[0]["failures"], seeded);
    assert!(
        rows[0]["example"]
            .as_str()
            .unwrap()
            .starts_with("assertion failed in run "),
        "{}",
        rows[0]
    );
    let tests: Vec<&str> = rows[0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tests.contains(&"bpf/maps/hash_race"), "{tests:?}");
    let mut sorted = tests.clone();
    sorted.sort();
    assert_eq!(tests, sorted);
    // The hostile message: HOSTILE's failures and HOSTILE_BROKEN's six.
    assert_eq!(
        rows[1]["failures"],
        HOSTILE_MARKS.matches('F').count() as u64 + 6
    );
    assert_eq!(
        rows[1]["tests"],
        serde_json::json!([HOSTILE, HOSTILE_BROKEN])
    );
    assert_eq!(
        rows[1]["labels"],
        serde_json::json!({"arch": [HOSTILE_LABEL]})
    );

    // One cluster by its pattern; labels filter.
    let one = s.api(&format!("/api/failures?pattern={}", enc(hostile_pattern)));
    assert_eq!(strings(&one, "pattern"), [hostile_pattern]);
    let x86 = s.api("/api/failures?arch=x86_64");
    assert_eq!(strings(&x86, "pattern"), ["assertion failed in run <N>"]);
    assert!(x86[0]["failures"].as_u64().unwrap() < seeded);

    let page = s.page("/failures");
    assert!(page.contains("<h1>Failures by cause</h1>"), "{page}");
    assert!(
        page.contains(r#"<a href="/failures" aria-current="page">Failures</a>"#),
        "{page}"
    );
    assert!(
        page.contains("<code>assertion failed in run &lt;N&gt;</code>"),
        "{page}"
    );
    assert!(page.contains(&escaped(hostile_pattern)), "{page}");
    assert!(
        page.contains(r#"href="/test?name=bpf%2Fmaps%2Fhash_race""#),
        "{page}"
    );

    // hash_race failed three times and flaked once, all "assertion failed".
    let t = s.api("/api/test?name=bpf/maps/hash_race");
    assert_eq!(
        t["clusters"].as_array().unwrap().len(),
        1,
        "{}",
        t["clusters"]
    );
    assert_eq!(t["clusters"][0]["pattern"], "assertion failed in run <N>");
    assert_eq!(t["clusters"][0]["failures"], 4);
    let page = s.page("/test?name=bpf/maps/hash_race");
    assert!(page.contains("<h2>Failure clusters</h2>"), "{page}");
    assert!(
        page.contains(r#"href="/failures?pattern=assertion+failed+in+run+%3CN%3E""#),
        "{page}"
    );
    let page = s.page("/test?name=bpf/verifier/loop");
    assert!(!page.contains("Failure clusters"));
}

#[tokio::test]
async fn hostile_text_is_text_on_every_page() {
    let s = Server::start().await;
    let name = escaped(HOSTILE);
    let q = enc(HOSTILE);
    // Every page that shows test names shows this one, as text.
    for path in [
        "/flaky".to_owned(),
        "/regressed".to_owned(),
        "/failures".to_owned(),
        "/runs/hostile-1".to_owned(),
        format!("/test?name={q}"),
    ] {
        let page = s.page(&path);
        assert!(page.contains(&name), "{path}: no {name} in\n{page}");
        if !path.starts_with("/test") {
            // Linked to its page.
            assert!(
                page.contains("name=%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E"),
                "{path}: {page}"
            );
        }
    }
    // The runs page shows the hostile branch and label.
    let page = s.page("/runs");
    assert!(page.contains(&name));
    assert!(
        page.contains(&escaped(&format!("arch={HOSTILE_LABEL}"))),
        "{page}"
    );
    // The test page's title, heading and strip tooltips.
    let page = s.page(&format!("/test?name={q}"));
    assert!(
        page.contains(&format!("<title>{name} · warden</title>")),
        "{page}"
    );
    assert!(page.contains(&format!(r#"<h1 class="test-name">{name}</h1>"#)));
    assert!(page.contains(&escaped(HOSTILE_MESSAGE)));
    // An error page repeating the request's own text.
    let r = s.get(&format!("/runs/{q}"));
    assert_eq!(r.status, 404);
    no_raw_hostile("/runs/<hostile>", &r.body);
    assert!(r.body.contains(&name));
    let r = s.get(&format!("/test?name={}", enc("<script>")));
    assert_eq!(r.status, 404);
    no_raw_hostile("/test?name=<script>", &r.body);
    // A parameter's value echoed in an error.
    let r = s.get(&format!("/flaky?since={}", enc("<script>")));
    assert_eq!(r.status, 400);
    no_raw_hostile("/flaky?since=<script>", &r.body);

    // The run page: failing test, message and the log excerpt, all text;
    // the log on this machine is linked, `/etc/hostname` is not.
    let run = s.api("/api/runs/hostile-1");
    let batches = run["batches"].as_array().unwrap();
    let evil = batches.iter().find(|b| b["name"] == "evil").unwrap();
    let secret = batches.iter().find(|b| b["name"] == "secret").unwrap();
    let log_url = evil["log_url"].as_str().unwrap();
    // The log route names the batch.
    assert_eq!(log_url, "/runs/hostile-1/log/evil");
    assert!(
        evil["log_excerpt"]
            .as_str()
            .unwrap()
            .contains("<script>alert(3)</script>")
    );
    assert!(!evil["log_excerpt"].as_str().unwrap().contains('\u{1b}'));
    assert!(secret["log_url"].is_null() && secret["log_excerpt"].is_null());
    let page = s.page("/runs/hostile-1");
    assert!(
        page.contains("output &lt;script&gt;alert(3)&lt;/script&gt;"),
        "{page}"
    );
    assert!(page.contains(&format!(r#"<a href="{log_url}">log</a>"#)));
    assert!(page.contains(&escaped(HOSTILE_MESSAGE)));

    let log = s.get(log_url);
    assert_eq!(log.status, 200);
    assert_eq!(
        log.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(log.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        log.body,
        HOSTILE_LOG
            .replace("\u{1b}[31m", "")
            .replace("\u{1b}[0m", "")
    );
    // Only logs the store lists for that run, of this host, named *.log.
    assert_eq!(s.get("/runs/hostile-1/log/secret").status, 404);
    assert_eq!(
        s.get(&format!("/runs/hostile-1/log/{}", evil["id"])).status,
        404
    );
    assert_eq!(s.get("/runs/run-03/log/bpf").status, 404);
    assert_eq!(
        s.get("/runs/hostile-1/log/..%2F..%2Fetc%2Fpasswd").status,
        404
    );
}

#[tokio::test]
async fn read_only_loopback_only() {
    let s = Server::start().await;
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = http::request(method, &format!("{}/flaky", s.url), Some("{}"), &[]);
        assert_eq!(r.status, 405, "{method}");
    }
    let r = http::request("HEAD", &format!("{}/flaky", s.url), None, &[]);
    assert_eq!(r.status, 200);
    // DNS rebinding: a page elsewhere that resolves its name to 127.0.0.1.
    let r = http::request(
        "GET",
        &format!("{}/api/flaky", s.url),
        None,
        &[("Host", "evil.example:8080")],
    );
    assert_eq!(r.status, 421);
    let r = http::request(
        "GET",
        &format!("{}/api/flaky", s.url),
        None,
        &[("Host", "localhost:1234")],
    );
    assert_eq!(r.status, 200);
    let r = s.get("/nothing/here");
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let r = s.get("/api/nothing");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no page at /api/nothing");
}

/// The same pages from PostgreSQL (the shared throwaway server; skipped,
/// saying why, without PostgreSQL binaries).
#[tokio::test]
async fn serves_postgres_too() {
    let pg = require_postgres!(shared);
    let url = pg.url(&pg.fresh_database());
    let s = Server::seeded(tempfile::tempdir().unwrap(), &url).await;
    let names = strings(&s.api("/api/flaky?arch=x86_64"), "test");
    assert_eq!(
        names,
        [
            "bpf/maps/hash_race",
            "net/udp/connect",
            LONG,
            "bpf/xdp/redirect"
        ]
    );
    let runs = s.api("/api/runs");
    assert_eq!(runs.as_array().unwrap().len(), RUNS + 6);
    let run = s.api("/api/runs/run-03");
    assert_eq!(run["failing"][0]["test"], "bpf/maps/hash_race");
    let t = s.api("/api/test?name=bpf/verifier/loop");
    assert_eq!(t["durations"]["p90_ms"], 220);
    assert_eq!(s.api("/api/regressed").as_array().unwrap().len(), 4);
    for path in [
        "/runs",
        "/runs/hostile-1",
        "/flaky",
        "/regressed",
        "/failures",
    ] {
        assert!(s.page(path).contains(&escaped(HOSTILE)), "{path}");
    }
    let clusters = s.api("/api/failures");
    assert_eq!(clusters[0]["pattern"], "assertion failed in run <N>");
    s.page("/test?name=bpf/verifier/loop");
}

#[test]
fn serve_without_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let absent = format!("sqlite:{}", dir.path().join("absent.db").display());
    let out = Command::new(common::warden_bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--history", &absent])
        .env_remove("WARDEN_HISTORY")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no history at"),
        "{out:?}"
    );
    assert!(!dir.path().join("absent.db").exists());
}

#[tokio::test]
async fn sigterm_stops_the_server() {
    let mut s = Server::start().await;
    assert_eq!(s.get("/flaky").status, 200);
    // Our own child, by its pid.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still serving after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A chromedriver of our own on a free loopback port, and one headless
/// Chromium session driven through it with fantoccini (W3C WebDriver).
struct Browser {
    client: fantoccini::Client,
    driver: Child,
    base: String,
    session: String,
    _profile: TempDir,
}

/// `name` on `PATH`, else in `/usr/bin`.
fn program(names: &[&str]) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path).chain([std::path::PathBuf::from("/usr/bin")]) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

impl Browser {
    /// `Err(reason)` when there is no browser or driver on this machine.
    async fn start() -> Result<Browser, String> {
        let chromium = program(&["chromium", "chromium-browser", "google-chrome"])
            .ok_or("no chromium on PATH (Debian: apt-get install chromium)")?;
        let driver = program(&["chromedriver"])
            .ok_or("no chromedriver on PATH (Debian: apt-get install chromium-driver)")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", driver.display()));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http::get(&format!("{base}/status")).json()["value"]["ready"] == true;
            if up {
                break;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromedriver not ready in 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1100",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let mut caps = fantoccini::wd::Capabilities::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({"binary": chromium, "args": args}),
        );
        // Plain HTTP to a driver on loopback: no TLS connector needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let connected = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&base)
            .await;
        let client = match connected {
            Ok(client) => client,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no WebDriver session: {e}");
            }
        };
        let session = client.session_id().await.ok().flatten().unwrap_or_default();
        Ok(Browser {
            client,
            driver: child,
            base,
            session,
            _profile: profile,
        })
    }

    async fn go(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("go to {url}: {e}"));
    }

    async fn click(&self, css: &str) {
        self.client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The URL once it contains `part` (a click's navigation may still be
    /// under way when the click returns); fails after 10 s.
    async fn url_with(&self, part: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url().await;
            let ready = self.js("return document.readyState").await == "complete";
            if url.contains(part) && ready {
                return url;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "still at {url}, not {part}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, to: &std::path::Path) {
        let bytes = self.client.screenshot().await.unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
        std::fs::write(to, bytes).unwrap();
    }
}

impl Drop for Browser {
    /// Ends the session (which quits Chromium) with a plain request, since
    /// a drop can't await, then the driver.
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let url = format!("{}/session/{}", self.base, self.session);
            let _ = std::panic::catch_unwind(|| http::request("DELETE", &url, None, &[]));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// End to end in headless Chromium: the flaky page, sorted by a click on
/// a header; a click through to a test's page, whose chart is drawn; the
/// hostile name rendered as text. Screenshots land in cargo's test temp
/// directory (`target/tmp/`). Skipped, saying why, without a browser.
#[tokio::test]
async fn browser_sorts_follows_and_draws() {
    let browser = match Browser::start().await {
        Ok(b) => b,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let s = Server::start().await;
    browser.go(&format!("{}/flaky", s.url)).await;
    // The stylesheet loaded under the Content-Security-Policy.
    assert_eq!(
        browser
            .js("return getComputedStyle(document.querySelector('header')).backgroundColor")
            .await,
        "rgb(33, 37, 41)"
    );
    let names = "return Array.from(document.querySelectorAll('table.flaky tbody td.test a')).map(a => a.textContent)";
    let before = browser.js(names).await;
    // Impact order: the hostile test and hash_race both have 4 hits; the
    // hostile one flips more (3 in 5 pairs against 8 in 14).
    assert_eq!(before[0], HOSTILE);
    assert_eq!(before[1], "bpf/maps/hash_race");
    browser.click("th a.sort[data-sort='test']").await;
    let url = browser.url().await;
    assert!(url.contains("sort=test"), "{url}");
    let after: Vec<String> = serde_json::from_value(browser.js(names).await).unwrap();
    let mut sorted = after.clone();
    sorted.sort();
    assert_eq!(after, sorted);
    assert_eq!(after.len(), before.as_array().unwrap().len());
    // Click again: descending.
    browser.click("th a.sort[data-sort='test']").await;
    let desc: Vec<String> = serde_json::from_value(browser.js(names).await).unwrap();
    assert_eq!(desc, sorted.iter().rev().cloned().collect::<Vec<_>>());
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("dashboard-flaky-page.png"))
        .await;

    browser.click("td.test a[href*='hash_race']").await;
    let url = browser.url().await;
    assert!(url.contains("/test?name=bpf%2Fmaps%2Fhash_race"), "{url}");
    let chart = browser
        .js("const svg = document.querySelector('svg.duration-chart');
         const p90 = svg.querySelector('polyline.p90');
         return {
           width: svg.getBoundingClientRect().width,
           p90: p90.getAttribute('points').trim().split(/\\s+/).length,
           p90_drawn: p90.getBBox().width,
           points: svg.querySelectorAll('circle.point').length,
           cells: document.querySelectorAll('svg.strip rect.cell').length,
           failed: document.querySelectorAll('svg.strip rect.cell.failed').length,
         }")
        .await;
    assert_eq!(chart["points"], 24, "{chart}");
    assert_eq!(chart["p90"], 24, "{chart}");
    assert_eq!(chart["cells"], 24, "{chart}");
    assert_eq!(chart["failed"], 3, "{chart}");
    assert!(chart["width"].as_f64().unwrap() > 700.0, "{chart}");
    assert!(chart["p90_drawn"].as_f64().unwrap() > 600.0, "{chart}");
    let shot = shots.join("dashboard-test-page.png");
    browser.screenshot(&shot).await;
    eprintln!("screenshot: {}", shot.display());

    // The hostile name is a heading's text, not an image.
    browser
        .go(&format!("{}/test?name={}", s.url, enc(HOSTILE)))
        .await;
    let page = browser
        .js(
            "return {h1: document.querySelector('h1').textContent, images: document.images.length,
                 scripts: document.scripts.length}",
        )
        .await;
    assert_eq!(page["h1"], HOSTILE, "{page}");
    assert_eq!(page["images"], 0, "{page}");
    assert_eq!(page["scripts"], 0, "{page}");
    browser.go(&format!("{}/runs/hostile-1", s.url)).await;
    assert_eq!(
        browser
            .js("return document.images.length + document.scripts.length")
            .await,
        0
    );
    assert_eq!(
        browser
            .js("return document.querySelector('section.excerpt pre').textContent")
            .await,
        "output <script>alert(3)</script>\nred\n"
    );
    browser
        .screenshot(&shots.join("dashboard-run-page.png"))
        .await;
    browser.go(&format!("{}/runs", s.url)).await;
    assert_eq!(
        browser
            .js("return document.images.length + document.scripts.length")
            .await,
        0
    );
    browser
        .screenshot(&shots.join("dashboard-runs-page.png"))
        .await;

    // The failures page: from the navigation, one cluster by a click on
    // its pattern.
    browser.click("header nav a[href='/failures']").await;
    let clusters = "return Array.from(document.querySelectorAll('table.failures td.pattern code')).map(c => c.textContent)";
    assert_eq!(
        browser.js(clusters).await,
        serde_json::json!([
            "assertion failed in run <N>",
            "</code><script>alert(<N>)</script>"
        ])
    );
    assert_eq!(
        browser
            .js("return document.images.length + document.scripts.length")
            .await,
        0
    );
    browser
        .screenshot(&shots.join("dashboard-failures-page.png"))
        .await;
    browser.click("table.failures td.pattern a").await;
    let url = browser.url().await;
    assert!(url.contains("/failures?pattern=assertion"), "{url}");
    assert_eq!(
        browser.js(clusters).await,
        serde_json::json!(["assertion failed in run <N>"])
    );

    // The search box in the header: type a part of a name in any case,
    // submit, follow the result.
    browser
        .client
        .find(fantoccini::Locator::Css(
            "header form.search input[name='q']",
        ))
        .await
        .unwrap()
        .send_keys("HASH_r")
        .await
        .unwrap();
    browser.click("header form.search button").await;
    browser.url_with("/search?q=HASH_r").await;
    let results = "return Array.from(document.querySelectorAll('ul.search-results a')).map(a => a.textContent)";
    assert_eq!(
        browser.js(results).await,
        serde_json::json!(["bpf/maps/hash_race"])
    );
    browser
        .screenshot(&shots.join("dashboard-search-page.png"))
        .await;
    browser.click("ul.search-results a").await;
    browser.url_with("/test?name=bpf%2Fmaps%2Fhash_race").await;
    assert_eq!(
        browser
            .js("return document.querySelector('h1').textContent")
            .await,
        "bpf/maps/hash_race"
    );
    // The hostile name found, shown as text.
    browser
        .go(&format!("{}/search?q={}", s.url, enc("<img")))
        .await;
    let found = browser.js(results).await;
    assert_eq!(found[0], HOSTILE, "{found}");
    assert_eq!(
        browser
            .js("return document.images.length + document.scripts.length")
            .await,
        0
    );

    // The durations page, from the navigation: slowest p90 first; a click
    // on a header sorts by it and says so.
    browser.click("header nav a[href='/durations']").await;
    browser.url_with("/durations").await;
    let first = "return [document.querySelector('table.durations.tests td.name').textContent,
                        document.querySelector('table.durations.batches td.name').textContent]";
    assert_eq!(
        browser.js(first).await,
        serde_json::json!(["bpf/verifier/loop", "bpf"])
    );
    browser
        .screenshot(&shots.join("dashboard-durations-page.png"))
        .await;
    browser
        .click("table.durations.tests th a.sort[data-sort='name']")
        .await;
    browser.url_with("sort=name").await;
    let sorted = browser
        .js("const th = document.querySelector('table.durations.tests th[aria-sort]');
             return [th.getAttribute('aria-sort'), th.textContent,
                     Array.from(document.querySelectorAll('table.durations.tests td.name')).map(td => td.textContent)]")
        .await;
    assert_eq!(sorted[0], "ascending", "{sorted}");
    assert_eq!(sorted[1], "Name ▲", "{sorted}");
    let names: Vec<String> = serde_json::from_value(sorted[2].clone()).unwrap();
    let mut by_name = names.clone();
    by_name.sort();
    assert_eq!(names, by_name);

    // Two runs compared: A and B picked on the runs list.
    browser.go(&format!("{}/runs", s.url)).await;
    assert_eq!(
        browser
            .js("return document.querySelector(\"a.vs-previous[href*='b=run-06']\").getAttribute('href')")
            .await,
        "/compare?a=run-03&b=run-06"
    );
    browser.click("input[name='a'][value='run-03']").await;
    browser.click("input[name='b'][value='run-06']").await;
    browser.click("form.compare button[type='submit']").await;
    // The newer run's row comes first: its choice is sent first.
    browser.url_with("/compare?b=run-06&a=run-03").await;
    let changes = browser
        .js("const names = id => Array.from(document.querySelectorAll('#' + id + ' td.name')).map(td => td.textContent);
             return {newly: names('tests-newly-failed'), fixed: names('tests-fixed'),
                     slower: names('tests-slower'), batches: names('batches-newly-failed')}")
        .await;
    assert_eq!(
        changes,
        serde_json::json!({"newly": ["net/udp/connect"], "fixed": ["bpf/maps/hash_race"], "slower": [], "batches": []})
    );
    browser
        .screenshot(&shots.join("dashboard-compare-page.png"))
        .await;
}

#[tokio::test]
async fn eighty_concurrent_requests_all_answer() {
    let s = Server::start().await;
    let paths = [
        "/flaky",
        "/api/flaky",
        "/regressed",
        "/runs",
        "/api/runs",
        "/flaky?sort=flip",
    ];
    let start = std::sync::Arc::new(std::sync::Barrier::new(80));
    let threads: Vec<_> = (0..80)
        .map(|i| {
            let url = format!("{}{}", s.url, paths[i % paths.len()]);
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (url.clone(), http::get(&url).status)
            })
        })
        .collect();
    for t in threads {
        let (url, status) = t.join().unwrap();
        assert_eq!(status, 200, "{url}");
    }
}

/// A connection that sent half a request, and one idle after a whole one
/// (keep-alive): neither holds `warden serve` up after SIGTERM.
#[tokio::test]
async fn sigterm_stops_the_server_whatever_clients_hold_open() {
    use std::io::{Read, Write};
    let mut s = Server::start().await;
    let authority = s.url.trim_start_matches("http://").to_owned();
    let mut half = std::net::TcpStream::connect(&authority).unwrap();
    half.write_all(format!("GET /flaky HTTP/1.1\r\nHost: {authority}\r\n").as_bytes())
        .unwrap();
    let mut idle = std::net::TcpStream::connect(&authority).unwrap();
    idle.write_all(
        format!("GET /static/style.css HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut first = [0; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    // Our own child, by its pid.
    // SAFETY: kill(2) on a pid we spawned and have not reaped.
    unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
    let sent = std::time::Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(2),
            "still serving {:?} after SIGTERM",
            sent.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop((half, idle));
}

/// A name past SQLite's LIKE pattern limit (50,000 bytes) is looked up,
/// not a failed query: unknown is 404, page and API alike.
#[tokio::test]
async fn a_very_long_test_name_is_not_found_not_an_error() {
    let s = Server::start().await;
    let long = "a".repeat(60_000);
    for path in [
        format!("/test?name={long}"),
        format!("/api/test?name={long}"),
    ] {
        let r = s.get(&path);
        assert_eq!(r.status, 404, "{}", &r.body[..r.body.len().min(300)]);
    }
    // A long name containing a known one's tail is still just unknown.
    let r = s.get(&format!("/test?name={}{}", enc(LONG), "b".repeat(60_000)));
    assert_eq!(r.status, 404);
}
