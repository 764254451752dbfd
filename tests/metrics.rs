//! `warden serve`'s `/metrics`: the Prometheus text format over a history
//! made by real `warden run`s, read as text (every line parsed, values
//! checked against the runs), the same answer from PostgreSQL as from
//! SQLite, and scraped by a real Prometheus server (Debian's
//! `prometheus`; skipped, saying why, without it) queried through its
//! HTTP API.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use common::http;
use common::{Warden, history_seed};
use warden::history::{Access, Db, Location};

/// A label value with what the text format must escape (`"`, `\`) and
/// what HTML would (label values cannot hold spaces or newlines).
const NOTE: &str = r#"a"b\c<x>"#;

/// Runs of the history: 1–6 `arch=x86_64`, 7 `arch=arm64`, 8
/// `arch=arm64 note=NOTE`.
const RUNS: usize = 8;

/// A store written by eight `warden run`s: `steady` passes, `down`
/// fails, `flip` fails in odd runs and passes in even ones, `slow` takes
/// 1.1 s in the first run only. Every run fails (`down`).
struct History {
    dir: TempDir,
    location: String,
}

fn history() -> History {
    let dir = tempfile::tempdir().unwrap();
    let location = format!("sqlite:{}", dir.path().join("history.db").display());
    for i in 1..=RUNS {
        let mut w = Warden::pgroup()
            .run_section(r#"labels = { arch = "x86_64" }"#)
            .shell("steady", "true", "")
            .shell("down", "echo down; exit 1", "")
            .shell("flip", &format!("exit {}", i % 2), "")
            .shell("slow", if i == 1 { "sleep 1.1" } else { "true" }, "")
            .arg("--history")
            .arg(&location);
        if i > 6 {
            w = w.arg("--label").arg("arch=arm64");
        }
        if i == 8 {
            w = w.arg("--label").arg(format!("note={NOTE}"));
        }
        w.run().assert_code(1);
    }
    History { dir, location }
}

/// A `warden serve` on a free loopback port; killed and reaped on drop.
struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn start(location: &str, cwd: &Path, extra: &[&str]) -> Serve {
        let (child, url) = http::spawn_serve_with(location, cwd, extra);
        Serve { child, url }
    }

    /// `/metrics`: 200, the text format's content type.
    fn metrics(&self) -> String {
        let r = http::get(&format!("{}/metrics", self.url));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        r.body
    }
}

/// A sample's labels, sorted.
type LabelPairs = Vec<(String, String)>;

/// One sample: its metric name and labels, and value.
type Samples = BTreeMap<(String, LabelPairs), f64>;

/// Parses the text format strictly: `# HELP`/`# TYPE` lines, then
/// `name{label="value",…} value` samples whose family was typed before,
/// label values with `\\`, `\"` and `\n` escapes; panics on anything else.
fn parse(text: &str) -> Samples {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "line {line:?}");
        let name_end = line.find(['{', ' ']).expect(line);
        let name = &line[..name_end];
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "{name}: no TYPE before it");
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            loop {
                let (key, r) = rest.split_once("=\"").expect(line);
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && !key.starts_with(|c: char| c.is_ascii_digit()),
                    "label name {key:?} in {line}"
                );
                let mut value = String::new();
                let mut chars = r.char_indices();
                let end = loop {
                    let (i, c) = chars.next().expect(line);
                    match c {
                        '"' => break i,
                        '\\' => match chars.next().expect(line).1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            other => panic!("escape \\{other} in {line}"),
                        },
                        c => value.push(c),
                    }
                };
                labels.push((key.to_owned(), value));
                rest = &r[end + 1..];
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r;
                } else {
                    rest = rest.strip_prefix('}').expect(line);
                    break;
                }
            }
        }
        let value = rest.strip_prefix(' ').expect(line);
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line}")),
        };
        labels.sort();
        let key = (name.to_owned(), labels);
        assert!(!samples.contains_key(&key), "{line}: twice");
        samples.insert(key, value);
    }
    samples
}

/// The value of the sample `name` with exactly `labels`.
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut l: LabelPairs = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.sort();
    *samples
        .get(&(name.to_owned(), l))
        .unwrap_or_else(|| panic!("no {name} {labels:?}"))
}

/// The number of rows of a JSON array answer.
fn rows(url: &str) -> usize {
    let r = http::get(url);
    assert_eq!(r.status, 200, "{url}: {}", r.body);
    r.json().as_array().unwrap().len()
}

const X86: (&str, &str) = ("arch", "x86_64");

/// What the eight runs must show, from the text (and the same numbers
/// through Prometheus below).
#[test]
fn metrics_count_the_runs_in_the_text_format() {
    let h = history();
    let s = Serve::start(&h.location, h.dir.path(), &["--metrics-test", "flip"]);
    let text = s.metrics();
    let m = parse(&text);

    let arm = ("arch", "arm64");
    let note = ("note", NOTE);
    assert_eq!(
        value(&m, "warden_runs_total", &[X86, ("status", "failed")]),
        6.0
    );
    assert_eq!(
        value(&m, "warden_runs_total", &[arm, ("status", "failed")]),
        1.0
    );
    assert_eq!(
        value(&m, "warden_runs_total", &[arm, note, ("status", "failed")]),
        1.0
    );
    // Every run ended: no gauge of unfinished ones.
    assert!(!m.keys().any(|(n, _)| n == "warden_runs_incomplete"));
    let batches = |batch: &str, status: &str| {
        value(
            &m,
            "warden_batches_total",
            &[X86, ("batch", batch), ("status", status)],
        )
    };
    assert_eq!(batches("flip", "failed"), 3.0);
    assert_eq!(batches("flip", "passed"), 3.0);
    assert_eq!(batches("down", "failed"), 6.0);
    assert_eq!(batches("steady", "passed"), 6.0);

    // Histograms: `slow` took 1.1 s once, well under 1 s five times.
    let slow = |suffix: &str, le: Option<&str>| {
        let mut l = vec![X86, ("batch", "slow")];
        l.extend(le.map(|le| ("le", le)));
        value(&m, &format!("warden_batch_duration_seconds{suffix}"), &l)
    };
    assert_eq!(slow("_bucket", Some("1")), 5.0);
    assert_eq!(slow("_bucket", Some("5")), 6.0);
    assert_eq!(slow("_bucket", Some("+Inf")), 6.0);
    assert_eq!(slow("_count", None), 6.0);
    let sum = slow("_sum", None);
    assert!((1.1..3.0).contains(&sum), "sum {sum}");
    // Buckets are cumulative in every series, up to the count.
    let mut series: BTreeMap<LabelPairs, Vec<(f64, f64)>> = BTreeMap::new();
    for ((name, labels), v) in &m {
        if name == "warden_batch_duration_seconds_bucket" {
            let le = &labels.iter().find(|(k, _)| k == "le").unwrap().1;
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            let rest: Vec<_> = labels.iter().filter(|(k, _)| k != "le").cloned().collect();
            series.entry(rest).or_default().push((le, *v));
        }
    }
    assert!(series.len() >= 4, "{series:?}");
    for (labels, mut buckets) in series {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(buckets.len(), 13, "{labels:?}");
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{labels:?}: {buckets:?}"
        );
        let count = m[&(
            "warden_batch_duration_seconds_count".to_owned(),
            labels.clone(),
        )];
        assert_eq!(buckets[12].1, count, "{labels:?}");
    }

    // Results: steady and slow pass every time, flip in even runs; down
    // and flip in odd runs fail.
    let results = |status| value(&m, "warden_test_results_total", &[("status", status)]);
    assert_eq!(results("passed"), (2 * RUNS + RUNS / 2) as f64);
    assert_eq!(results("failed"), (RUNS + RUNS / 2) as f64);
    assert_eq!(results("flaky"), 0.0);
    assert_eq!(results("skipped"), 0.0);

    // The named test, and no other test named anywhere.
    assert_eq!(
        value(
            &m,
            "warden_named_test_results_total",
            &[X86, ("test", "flip"), ("status", "failed")]
        ),
        3.0
    );
    for (name, labels) in m.keys() {
        if labels.iter().any(|(k, _)| k == "test") {
            assert_eq!(name, "warden_named_test_results_total");
            assert!(labels.contains(&("test".into(), "flip".into())));
        }
    }

    // The gauges: as /flaky and /regressed classify.
    let tests = |labels: &[(&str, &str)], verdict| {
        let mut l = labels.to_vec();
        l.push(("verdict", verdict));
        value(&m, "warden_tests", &l)
    };
    assert_eq!(tests(&[X86], "flaky"), 1.0);
    assert_eq!(tests(&[X86], "broken"), 1.0);
    assert_eq!(tests(&[X86], "regressed"), 0.0);
    let flaky_rows = rows(&format!("{}/api/flaky?by=arch,note&limit=0", s.url));
    let flaky_sum: f64 = m
        .iter()
        .filter(|((n, l), _)| {
            n == "warden_tests" && l.contains(&("verdict".into(), "flaky".into()))
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(flaky_sum, flaky_rows as f64);
    let regressed_rows = rows(&format!("{}/api/regressed?limit=0", s.url));
    let failing_sum: f64 = m
        .iter()
        .filter(|((n, l), _)| {
            n == "warden_tests" && !l.contains(&("verdict".into(), "flaky".into()))
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(failing_sum, regressed_rows as f64);
    assert_eq!(value(&m, "warden_window_seconds", &[]), 30.0 * 86_400.0);
    // A shorter window through /flaky's parameter.
    let r = http::get(&format!("{}/metrics?since=7d", s.url));
    assert_eq!(
        value(&parse(&r.body), "warden_window_seconds", &[]),
        7.0 * 86_400.0
    );
    let r = http::get(&format!("{}/metrics?since=soon", s.url));
    assert_eq!(r.status, 400, "{}", r.body);

    // The last run's start, to the second.
    let last = value(&m, "warden_last_run_timestamp_seconds", &[arm, note]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(now - last < 120.0 && last <= now, "{last} vs {now}");
}

/// The same seeded history answers the same from SQLite and PostgreSQL
/// (the shared throwaway server; skipped, saying why, without it).
#[tokio::test]
async fn postgres_answers_as_sqlite_does() {
    let pg = require_postgres!(shared);
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("history.db").display());
    let postgres = pg.url(&pg.fresh_database());
    let mut answers = Vec::new();
    for location in [&sqlite, &postgres] {
        let db = Db::open(&location.parse::<Location>().unwrap(), Access::Write)
            .await
            .unwrap();
        let seeded = history_seed::seed(&db).await;
        let logs = dir.path().join(format!("logs-{}", answers.len()));
        std::fs::create_dir(&logs).unwrap();
        history_seed::seed_hostile(&db, &seeded, &logs).await;
        db.close().await;
        let s = Serve::start(
            location,
            dir.path(),
            &[
                "--metrics-test",
                "bpf/maps/hash_race",
                "--metrics-test",
                "absent",
            ],
        );
        let mut m = parse(&s.metrics());
        // Seeded relative to now: the runs' start times differ.
        m.retain(|(name, _), _| name != "warden_last_run_timestamp_seconds");
        answers.push(m);
    }
    assert_eq!(answers[0], answers[1]);
    let m = &answers[0];
    assert!(
        m.keys()
            .any(|(n, _)| n == "warden_named_test_results_total")
    );
    assert!(m.keys().any(|(n, l)| n == "warden_tests" && !l.is_empty()));
    assert!(
        m.keys()
            .any(|(n, _)| n == "warden_batch_duration_seconds_bucket")
    );
}

/// A free loopback port (bound, then let go: the server told it binds it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Prometheus binary: `/usr/bin/prometheus` (Debian's package), or
/// `PROMETHEUS` to use another.
fn prometheus_bin() -> Result<PathBuf, String> {
    let path = std::env::var_os("PROMETHEUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no Prometheus at {} (apt-get install prometheus, or set PROMETHEUS)",
            path.display()
        ))
    }
}

/// A Prometheus server with its own config, data directory and port;
/// killed and reaped on drop (the directory goes with it).
struct Prometheus {
    child: Child,
    url: String,
    dir: TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Scraping `target` (`127.0.0.1:PORT`) every second.
    fn start(bin: &Path, target: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: warden\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // Another process may take the port between our look and its
        // bind: try again on a new one.
        for _ in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
            let mut child = Command::new(bin)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let url = format!("http://127.0.0.1:{port}");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                    && http::get(&format!("{url}/-/ready")).status == 200
                {
                    return Prometheus { child, url, dir };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "Prometheus did not start:\n{}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `/api/v1/…`'s `data`, after checking `status` is `success`.
    fn api(&self, path: &str) -> Value {
        let r = http::get(&format!("{}/api/v1/{path}", self.url));
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let v = r.json();
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }

    /// An instant query's vector: (labels, value) per series.
    fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api(&format!("query?query={}", enc(promql)));
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = s["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                (labels, s["value"][1].as_str().unwrap().parse().unwrap())
            })
            .collect()
    }

    /// The value of a query answered by exactly one series.
    fn one(&self, promql: &str) -> f64 {
        let r = self.query(promql);
        assert_eq!(r.len(), 1, "{promql}: {r:?}");
        r[0].1
    }
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

/// A real Prometheus scrapes `warden serve` on loopback every second;
/// its query API gives back what the runs did.
#[test]
fn prometheus_scrapes_the_metrics() {
    let bin = match prometheus_bin() {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("skipping: {why}");
            return;
        }
    };
    let h = history();
    let s = Serve::start(&h.location, h.dir.path(), &["--metrics-test", "flip"]);
    let target = s.url.trim_start_matches("http://").to_owned();
    let p = Prometheus::start(&bin, &target);

    // Up once it has scraped.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let targets = p.api("targets");
        let active = targets["activeTargets"].as_array().unwrap();
        let up = active.iter().any(|t| {
            t["health"] == "up" && t["scrapeUrl"] == format!("{}/metrics", s.url).as_str()
        });
        if up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "target never up: {targets}\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    assert_eq!(p.one(r#"up{job="warden"}"#), 1.0);
    assert_eq!(
        p.one(r#"warden_runs_total{arch="x86_64",status="failed"}"#),
        6.0
    );
    assert_eq!(p.one(r#"sum(warden_runs_total)"#), RUNS as f64);
    assert_eq!(
        p.one(r#"sum(warden_batches_total{batch="flip",status="failed"})"#),
        4.0
    );
    assert_eq!(
        p.one(r#"warden_batch_duration_seconds_bucket{arch="x86_64",batch="slow",le="1"}"#),
        5.0
    );
    assert_eq!(
        p.one(r#"sum(warden_batch_duration_seconds_count{batch="slow"})"#),
        RUNS as f64
    );
    assert_eq!(
        p.one(r#"warden_test_results_total{status="failed"}"#),
        (RUNS + RUNS / 2) as f64
    );
    assert_eq!(
        p.one(r#"warden_tests{arch="x86_64",verdict="flaky",note=""}"#),
        1.0
    );
    assert_eq!(
        p.one(r#"sum(warden_named_test_results_total{test="flip"})"#),
        RUNS as f64
    );
    // The escaped label value comes back whole.
    let noted = p.query(r#"warden_runs_total{note!=""}"#);
    assert_eq!(noted.len(), 1, "{noted:?}");
    assert_eq!(noted[0].0["note"], NOTE);
    assert_eq!(noted[0].0["arch"], "arm64");
    // No series names a test but the one asked for.
    let named = p.query(r#"count by (__name__) ({test!=""})"#);
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0].0["__name__"], "warden_named_test_results_total");

    // Both processes we started end with the test, and nothing is left.
    let (prom_pid, serve_pid) = (p.child.id(), s.child.id());
    drop(p);
    drop(s);
    assert!(!common::postgres::alive(prom_pid));
    assert!(!common::postgres::alive(serve_pid));
}
