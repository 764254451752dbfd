//! What each batch used, in the history: the columns of migration 0004 as
//! the writer fills them (NULL where unmeasured, and for imported suites),
//! and `history::query::peak_memory_p90`, the scheduler's memory
//! expectation, on SQLite and PostgreSQL.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use warden::history::db::Pool;
use warden::history::model::{BatchRecord, Labels, RunRecord, RunSource};
use warden::history::query::{self, peak_memory_p90};
use warden::history::{Access, Db, Location};
use warden::phase::Phase;
use warden::status::{RunStatus, Status};
use warden::usage::Usage;

const DAY: Duration = Duration::from_secs(86_400);

fn batch(name: &str, phase: Phase, started: SystemTime, usage: Option<Usage>) -> BatchRecord {
    BatchRecord {
        name: name.into(),
        phase,
        status: Status::Passed,
        reason: "exit code 0".into(),
        started,
        duration: Duration::from_secs(3),
        log: None,
        attempts: Vec::new(),
        tests: Vec::new(),
        usage,
    }
}

fn peak(bytes: u64, partial: bool) -> Option<Usage> {
    Some(Usage {
        partial,
        peak_memory: Some(bytes),
        ..Usage::default()
    })
}

/// Records one run at `at` holding `batches`.
async fn run(db: &Db, uuid: &str, at: SystemTime, batches: &[BatchRecord]) {
    let id = db
        .begin_run(&RunRecord {
            uuid: uuid.into(),
            started: at,
            commit: None,
            branch: None,
            host: "usage".into(),
            labels: Labels::default(),
            source: RunSource::Run,
        })
        .await
        .expect("begin_run");
    db.record_batches(id, batches).await.expect("record");
    db.finish_run(id, RunStatus::Passed, at + Duration::from_secs(60))
        .await
        .expect("finish_run");
}

/// Every usage column of batch `name`, in migration order.
type Columns = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    Option<i64>,
);

async fn columns(db: &Db, name: &str) -> Vec<Columns> {
    const SELECT: &str = "SELECT peak_memory, cpu_ms, read_bytes, written_bytes, \
         cpu_stall_ms, memory_stall_ms, io_stall_ms, oom_kills, usage_partial \
         FROM batches WHERE name = $1 ORDER BY id";
    match &db.pool {
        Pool::Sqlite(p) => sqlx::query_as(SELECT).bind(name).fetch_all(p).await,
        Pool::Postgres(p) => sqlx::query_as(SELECT).bind(name).fetch_all(p).await,
    }
    .expect("read the usage columns")
}

/// The writes and the query, on whichever backend `db` is.
async fn check(db: &Db) {
    let now = SystemTime::now();
    // Every figure measured, then none measured, then no usage at all.
    let full = Usage {
        partial: false,
        peak_memory: Some(1536 << 20),
        cpu: Some(Duration::from_millis(3400)),
        read_bytes: Some(10 << 20),
        written_bytes: Some(2 << 20),
        cpu_stall: Some(Duration::from_millis(100)),
        memory_stall: Some(Duration::ZERO),
        io_stall: Some(Duration::from_millis(2300)),
        oom_kills: 2,
    };
    let sparse = Usage {
        partial: true,
        cpu: Some(Duration::from_millis(7)),
        ..Usage::default()
    };
    run(
        db,
        "cols",
        now - DAY,
        &[
            batch("cols", Phase::Batch, now - DAY, Some(full.clone())),
            batch("cols", Phase::Batch, now - DAY, Some(sparse.clone())),
            batch("cols", Phase::Batch, now - DAY, None),
        ],
    )
    .await;
    // Read back as the run page does.
    let detail = query::run(db, "cols").await.expect("run").expect("found");
    let read: Vec<Option<Usage>> = detail.batches.into_iter().map(|b| b.usage).collect();
    assert_eq!(read, [Some(full), Some(sparse), None]);
    assert_eq!(
        columns(db, "cols").await,
        [
            (
                Some(1536 << 20),
                Some(3400),
                Some(10 << 20),
                Some(2 << 20),
                Some(100),
                Some(0),
                Some(2300),
                2,
                Some(0)
            ),
            (None, Some(7), None, None, None, None, None, 0, Some(1)),
            (None, None, None, None, None, None, None, 0, None),
        ]
    );

    // `vm`: 25 whole peaks in the window, k MiB for k = 1..=25, the
    // newest largest; one huge older than the window; a partial one, which
    // does not count beside whole ones. The newest 20 are 6..=25 MiB:
    // nearest rank 18 is 23 MiB.
    // `small`: only partial peaks: they count. `none`: no peak recorded.
    // `setup`: a setup step's peak, not a batch's.
    for k in 1..=25_u64 {
        let at = now - DAY * 26 + DAY * k as u32;
        run(
            db,
            &format!("vm-{k}"),
            at,
            &[
                batch("vm", Phase::Batch, at, peak(k << 20, false)),
                batch("small", Phase::Batch, at, peak(k * 1000, true)),
                batch("none", Phase::Batch, at, None),
                batch("setup", Phase::Setup, at, peak(1 << 30, false)),
            ],
        )
        .await;
    }
    let at = now - DAY * 2;
    run(
        db,
        "vm-partial",
        at,
        &[batch("vm", Phase::Batch, at, peak(1 << 40, true))],
    )
    .await;
    let old = now - DAY * 40;
    run(
        db,
        "vm-old",
        old,
        &[batch("vm", Phase::Batch, old, peak(1 << 40, false))],
    )
    .await;

    let all = peak_memory_p90(db, &[]).await.expect("p90 of all");
    let want: HashMap<String, u64> = [
        ("vm".to_owned(), 23 << 20),
        // Partial only: the newest 20 are 6000..=25000; rank 18 of them.
        ("small".to_owned(), 23_000),
        ("cols".to_owned(), 1536 << 20),
    ]
    .into_iter()
    .collect();
    assert_eq!(all, want);

    let some = peak_memory_p90(db, &["vm".into(), "none".into(), "unknown".into()])
        .await
        .expect("p90 of some");
    assert_eq!(some, [("vm".to_owned(), 23 << 20)].into_iter().collect());
}

#[tokio::test]
async fn usage_recorded_and_p90_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        &Location::Sqlite(dir.path().join("history.db")),
        Access::Write,
    )
    .await
    .unwrap();
    check(&db).await;
    db.close().await;
}

#[tokio::test]
async fn usage_recorded_and_p90_on_postgres() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let db = Db::open(&Location::Postgres(url), Access::Write)
        .await
        .unwrap();
    check(&db).await;
    db.close().await;
}

/// An imported suite has no usage: its columns stay NULL (and no OOM kill).
#[test]
fn import_leaves_usage_null() {
    let w = common::Warden::new().no_config();
    let db = w.path("h.db");
    let junit = w.path("r.xml");
    std::fs::write(
        &junit,
        r#"<testsuites><testsuite name="suite" tests="1"><testcase classname="c" name="t" time="0.5"/></testsuite></testsuites>"#,
    )
    .unwrap();
    // Holds the directory: it goes with the run.
    let imported = w
        .subcommand("import")
        .arg("junit")
        .arg("--history")
        .arg(format!("sqlite:{}", db.display()))
        .arg(&junit)
        .run();
    imported.assert_code(0);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let db = Db::open(&Location::Sqlite(db), Access::Read).await.unwrap();
            assert_eq!(
                columns(&db, "suite").await,
                [(None, None, None, None, None, None, None, 0, None)]
            );
            assert!(peak_memory_p90(&db, &[]).await.unwrap().is_empty());
            db.close().await;
        });
}
