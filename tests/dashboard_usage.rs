//! The run page of `warden serve` shows what each batch used: peak memory,
//! CPU, I/O and stalls, empty cells where unmeasured, a `partial` mark and
//! OOM kills highlighted; `/api/runs/ID` has the same as numbers. Over
//! HTTP, against a store written through the library.

#[macro_use]
mod common;

use std::time::{Duration, SystemTime};

use common::http;
use warden::history::model::{BatchRecord, Labels, RunRecord, RunSource};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status};
use warden::usage::Usage;

fn batch(name: &str, status: Status, usage: Option<Usage>) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        phase: Phase::Batch,
        status,
        reason: "why".into(),
        started: SystemTime::now() - Duration::from_secs(3600),
        duration: Duration::from_secs(5),
        log: None,
        attempts: Vec::new(),
        tests: Vec::new(),
        usage,
    }
}

/// The text of each cell of the batches table's row for `name` (tags
/// dropped), and the row's markup.
fn row<'a>(page: &'a str, name: &str) -> (Vec<String>, &'a str) {
    let table = &page[page
        .find("<table class=\"batches\">")
        .expect("batches table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let start = table
        .find(&format!("<tr><td>{name}</td>"))
        .unwrap_or_else(|| panic!("no row for {name} in\n{table}"));
    let row = &table[start..];
    let row = &row[..row.find("</tr>").unwrap()];
    let cells = row
        .split("<td")
        .skip(1)
        .map(|cell| {
            let mut text = String::new();
            let mut in_tag = true; // The rest of the `<td …>` tag first.
            for c in cell.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect();
    (cells, row)
}

#[tokio::test]
async fn run_page_shows_what_batches_used() {
    let dir = tempfile::tempdir().unwrap();
    let location = format!("sqlite:{}", dir.path().join("history.db").display());
    let db = Db::open(&location.parse::<Location>().unwrap(), Access::Write)
        .await
        .unwrap();
    let id = db
        .begin_run(&RunRecord {
            uuid: "run-usage".into(),
            started: SystemTime::now() - Duration::from_secs(3600),
            commit: None,
            branch: None,
            host: "elsewhere".into(),
            labels: Labels::default(),
            source: RunSource::Run,
        })
        .await
        .unwrap();
    let oom = Usage {
        partial: false,
        peak_memory: Some(4 << 30),
        cpu: Some(Duration::from_millis(3400)),
        read_bytes: Some(10 << 20),
        written_bytes: Some(2 << 20),
        cpu_stall: Some(Duration::from_millis(100)),
        memory_stall: Some(Duration::from_millis(1500)),
        io_stall: Some(Duration::from_millis(2300)),
        oom_kills: 1,
    };
    let partial = Usage {
        partial: true,
        peak_memory: Some(24 << 20),
        cpu: Some(Duration::from_millis(90)),
        ..Usage::default()
    };
    db.record_batches(
        id,
        &[
            batch("vm", Status::Crashed, Some(oom)),
            batch("unit", Status::Passed, Some(partial)),
            batch("old", Status::Passed, None),
        ],
    )
    .await
    .unwrap();
    db.finish_run(id, RunStatus::Failed, SystemTime::now())
        .await
        .unwrap();
    db.close().await;

    let (mut child, url) = http::spawn_serve(&location, dir.path());
    let page = http::get(&format!("{url}/runs/run-usage"));
    let api = http::get(&format!("{url}/api/runs/run-usage"));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.body;

    assert!(
        page.contains(
            "<th class=\"num\">Peak memory</th><th class=\"num\">CPU</th>\
             <th class=\"num\">Read</th><th class=\"num\">Written</th><th>Stalled</th>"
        ),
        "{page}"
    );
    // Batch, phase, status, reason, duration, attempts, then usage, then log.
    let (cells, markup) = row(&page, "vm");
    assert_eq!(
        cells[6..11],
        [
            "4.0G 1 OOM kill",
            "3.40s",
            "10.0M",
            "2.0M",
            "cpu 0.10s, memory 1.50s, io 2.30s"
        ],
        "{markup}"
    );
    assert!(markup.contains("<span class=\"status oom\""), "{markup}");
    assert!(!markup.contains("partial"), "{markup}");

    let (cells, markup) = row(&page, "unit");
    assert_eq!(
        cells[6..11],
        ["24.0M partial", "0.09s", "", "", ""],
        "{markup}"
    );
    assert!(markup.contains("<span class=\"partial\""), "{markup}");
    assert!(!markup.contains("oom"), "{markup}");

    let (cells, markup) = row(&page, "old");
    assert_eq!(cells[6..11], ["", "", "", "", ""], "{markup}");

    assert_eq!(api.status, 200, "{}", api.body);
    let api = api.json();
    let batches = api["batches"].as_array().unwrap();
    let by_name = |n: &str| batches.iter().find(|b| b["name"] == n).unwrap();
    assert_eq!(
        by_name("vm")["usage"],
        serde_json::json!({
            "peak_memory": 4_u64 << 30, "cpu_ms": 3400, "read_bytes": 10 << 20,
            "written_bytes": 2 << 20, "cpu_stall_ms": 100, "memory_stall_ms": 1500,
            "io_stall_ms": 2300, "oom_kills": 1, "partial": false,
        })
    );
    assert_eq!(
        by_name("unit")["usage"],
        serde_json::json!({
            "peak_memory": 24 << 20, "cpu_ms": 90, "read_bytes": null,
            "written_bytes": null, "cpu_stall_ms": null, "memory_stall_ms": null,
            "io_stall_ms": null, "oom_kills": 0, "partial": true,
        })
    );
    assert!(by_name("old")["usage"].is_null());
}
