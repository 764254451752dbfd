//! The throwaway PostgreSQL server of `common::postgres`: it serves sqlx,
//! keeps each test's database apart, and leaves no process or directory
//! behind, whether it is dropped or the test binary just exits.

#[macro_use]
mod common;

use std::process::Command;
use std::time::Duration;

use common::postgres::{alive, children_of};
use common::wait_until;

#[tokio::test]
async fn owned_server_serves_sqlx_and_is_gone_after_drop() {
    let pg = require_postgres!();
    pg.create_database("harness");
    let pool = sqlx::PgPool::connect(&pg.url("harness"))
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}\nlog:\n{}", pg.url("harness"), pg.log()));
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&pool)
        .await
        .expect("SELECT 1");
    assert_eq!(one, 1);
    let db: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .expect("current_database()");
    assert_eq!(db, "harness");
    pool.close().await;

    let pid = pg.pid();
    let dir = pg.dir().to_owned();
    let children = children_of(pid);
    assert!(alive(pid));
    assert!(
        !children.is_empty(),
        "a postmaster without its helper processes?"
    );
    drop(pg);
    assert!(!alive(pid), "postmaster {pid} still running after drop");
    for c in children {
        assert!(!alive(c), "postgres process {c} still running after drop");
    }
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
}

#[tokio::test]
async fn shared_server_gives_each_test_its_own_database() {
    let pg = require_postgres!(shared);
    let (a, b) = (pg.fresh_database(), pg.fresh_database());
    assert_ne!(a, b);
    let pa = sqlx::PgPool::connect(&pg.url(&a)).await.expect("connect a");
    let pb = sqlx::PgPool::connect(&pg.url(&b)).await.expect("connect b");
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&pa)
        .await
        .expect("create in a");
    sqlx::query("CREATE TABLE t (x text)")
        .execute(&pb)
        .await
        .expect("the same name in b");

    // Several concurrent connections per pool.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let pool = if i % 2 == 0 { pa.clone() } else { pb.clone() };
        tasks.push(tokio::spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("SELECT pg_sleep(0.05)")
                .execute(&mut *tx)
                .await
                .expect("sleep");
            tx.commit().await.expect("commit");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    pa.close().await;
    pb.close().await;
}

/// Run by `shared_server_dies_with_the_test_binary` in a child process:
/// starts the shared server, prints its pid and directory, and exits with
/// the server still held by a `static`.
#[test]
#[ignore = "helper: run in a child process by shared_server_dies_with_the_test_binary"]
fn helper_start_shared_and_exit() {
    let pg = require_postgres!(shared);
    // On a line of its own: libtest has already written "test ... " there.
    println!("\nPG {} {}", pg.pid(), pg.dir().display());
}

#[test]
fn shared_server_dies_with_the_test_binary() {
    if let Err(why) = common::postgres::bin_dir() {
        eprintln!("skipping: {why}");
        return;
    }
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "helper_start_shared_and_exit",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .expect("run the helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PG "))
        .unwrap_or_else(|| panic!("no PG line in the helper's output:\n{stdout}"));
    let (pid, dir) = line.split_once(' ').expect("pid and dir");
    let pid: u32 = pid.parse().expect("pid");
    let dir = std::path::PathBuf::from(dir);
    assert!(
        wait_until(Duration::from_secs(30), || !alive(pid) && !dir.exists()),
        "after the test binary exited: postmaster {pid} alive: {}, {} exists: {}",
        alive(pid),
        dir.display(),
        dir.exists()
    );
}
