//! `warden run` recording into a real PostgreSQL (a throwaway server from
//! the machine's PostgreSQL binaries, see tests/common/postgres.rs): the
//! same records as SQLite, and a fleet of wardens writing at once loses
//! nothing.

#[macro_use]
mod common;

use common::{Warden, block_on, fixture, q};
use sqlx::postgres::PgPool;

fn count(url: &str, sql: &'static str) -> i64 {
    block_on(async {
        let p = PgPool::connect(url).await.expect("connect");
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&p).await.expect(sql);
        p.close().await;
        n
    })
}

/// A batch whose TAP output gives five results (three tests, two subtests).
fn tap_batch(name: &str) -> String {
    format!(
        "name = {}\ncommand = [{}]\nformat = \"tap\"",
        q(name),
        q(&fixture("kselftest_tap.sh"))
    )
}

#[test]
fn a_run_is_recorded_in_postgres() {
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let r = Warden::pgroup()
        .shell("ok", "true", "")
        .batch(&tap_batch("kselftest"))
        .arg("--history")
        .arg(&url)
        .arg("--label")
        .arg("arch=x86_64")
        .run();
    r.assert_code(1);
    r.assert_stdout_contains("History: run ");
    r.assert_stdout_contains(" recorded in postgres://");
    assert_eq!(
        count(
            &url,
            "SELECT COUNT(*) FROM runs WHERE ended_at IS NOT NULL AND status = 'failed' AND labels = 'arch=x86_64'"
        ),
        1
    );
    assert_eq!(count(&url, "SELECT COUNT(*) FROM batches"), 2);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM results"), 6);
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM results WHERE status = 2"),
        1
    );
}

/// Eight wardens record into one database at once, their batches sharing
/// test names (so they race to create the same test rows), on a database
/// none of them has migrated yet (so they race to migrate it too).
#[test]
fn eight_concurrent_wardens_lose_nothing() {
    const WARDENS: usize = 8;
    const BATCHES: usize = 12;
    let server = require_postgres!(shared);
    let url = server.url(&server.fresh_database());
    let running: Vec<_> = (0..WARDENS)
        .map(|i| {
            let mut w = Warden::pgroup()
                .run_section("max-parallel = 4")
                .arg("--history")
                .arg(&url)
                .arg("--label")
                .arg(format!("runner=r{i}"));
            for b in 0..BATCHES {
                w = w.batch(&tap_batch(&format!("b{b}")));
            }
            w.spawn()
        })
        .collect();
    for r in running {
        let r = r.wait();
        r.assert_code(1);
        r.assert_stdout_contains(" recorded in postgres://");
        assert!(!r.stdout.contains("History: warning"), "{}", r.context);
    }
    let n = WARDENS as i64;
    let b = BATCHES as i64;
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM runs WHERE ended_at IS NOT NULL"),
        n
    );
    assert_eq!(count(&url, "SELECT COUNT(DISTINCT labels) FROM runs"), n);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM batches"), n * b);
    assert_eq!(count(&url, "SELECT COUNT(*) FROM results"), n * b * 5);
    // One row per test name, however many wardens created it at once.
    assert_eq!(count(&url, "SELECT COUNT(*) FROM tests"), b * 5);
    assert_eq!(
        count(&url, "SELECT COUNT(*) FROM results WHERE status = 2"),
        n * b
    );
}
