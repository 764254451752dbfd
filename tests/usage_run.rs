//! A real `warden run` reports what each batch used, everywhere: the
//! summary (a `used:` line under a failing batch, the slowest batch that
//! passed), the JUnit properties and the history's columns; measured from
//! the batch's cgroup, or from `wait4`'s rusage (partial) without one.

mod common;

use common::{Containment, Run, Warden, block_on};
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

/// 64 MiB: what `hog` touches (a `dd` buffer of that size, filled).
const HOG: u64 = 64 << 20;

/// `hog` fills a 64 MiB buffer, then fails; `ok` fills 8 MiB and passes;
/// `extra`: more keys of both batches.
fn run(w: Warden, extra: &str) -> Run {
    let r = w
        .shell(
            "hog",
            "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; exit 3",
            extra,
        )
        .shell(
            "ok",
            "dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null",
            extra,
        )
        .run();
    r.assert_code(1);
    r
}

/// (peak_memory, cpu_ms, usage_partial) of batch `name` in the run's store.
fn stored(r: &Run, name: &str) -> (Option<i64>, Option<i64>, Option<i64>) {
    let db = r.path(".warden/history.db");
    block_on(async {
        let p = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&db))
            .await
            .expect("open the history");
        let row =
            sqlx::query("SELECT peak_memory, cpu_ms, usage_partial FROM batches WHERE name = $1")
                .bind(name)
                .fetch_one(&p)
                .await
                .expect("the batch's row");
        p.close().await;
        (row.get(0), row.get(1), row.get(2))
    })
}

/// The value of JUnit property `name` on the testcase of batch `batch`.
fn property(r: &Run, batch: &str, name: &str) -> Option<String> {
    let xml = std::fs::read_to_string(r.artifacts().join("junit.xml")).expect("JUnit");
    let case = &xml[xml.find(&format!("<testcase name=\"{batch}\""))?..];
    let case = &case[..case.find("</testcase>")?];
    let at = case.find(&format!("<property name=\"{name}\" value=\""))?;
    case[at..].split('"').nth(3).map(str::to_owned)
}

fn check(r: &Run, partial: bool) {
    let summary = r
        .stdout
        .split_once("\nSuccess: ")
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no summary\n{}", r.context));
    let lines: Vec<&str> = summary.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("  failed hog ("))
        .unwrap_or_else(|| panic!("no hog line\n{}", r.context));
    assert!(
        lines[at + 1].starts_with("    used: peak "),
        "{}",
        r.context
    );
    assert_eq!(
        lines[at + 1].ends_with(" (partial: the largest process's peak)"),
        partial,
        "{}",
        r.context
    );
    assert!(lines[at + 2].starts_with("    log: "), "{}", r.context);
    assert_eq!(
        lines[at + 3],
        "Slowest batches that passed:",
        "{}",
        r.context
    );
    assert!(
        lines[at + 4].starts_with("  ok (") && lines[at + 4].contains("): used: peak "),
        "{}",
        r.context
    );

    // The peak: at least the buffer, and not absurdly more.
    let peak: u64 = property(r, "hog", "warden.peak-memory")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no peak in JUnit\n{}", r.context));
    assert!((HOG..HOG * 4).contains(&peak), "peak {peak}\n{}", r.context);
    assert!(
        property(r, "hog", "warden.cpu-ms").is_some(),
        "{}",
        r.context
    );
    assert_eq!(
        property(r, "hog", "warden.usage-partial"),
        partial.then(|| "true".to_owned()),
        "{}",
        r.context
    );

    let (stored_peak, cpu, stored_partial) = stored(r, "hog");
    assert_eq!(stored_peak, Some(peak as i64), "{}", r.context);
    assert!(cpu.is_some(), "{}", r.context);
    assert_eq!(stored_partial, Some(i64::from(partial)), "{}", r.context);
    let (ok_peak, _, _) = stored(r, "ok");
    assert!(ok_peak.is_some_and(|p| p < peak as i64), "{}", r.context);
}

/// Without a cgroup: rusage, marked partial.
#[test]
fn usage_reported_without_cgroups() {
    let r = run(Warden::pgroup(), "");
    check(&r, true);
}

/// In cgroups: the whole batch's figures. A memory limit, so that a host
/// whose memory controller is v1 only (this project's build machine) gives
/// each batch a memory group to read the peak from.
#[test]
fn usage_reported_from_cgroups() {
    let Some(w) = Warden::cgroup() else {
        return;
    };
    assert_eq!(w.containment(), Containment::Cgroup);
    let r = run(w, "limits = { memory = \"1G\" }");
    check(&r, false);
}

/// In cgroups without a memory group for the batch (no memory limit on a
/// host whose memory controller is v1 only): the peak is the largest
/// process's, from rusage, marked partial; a pure v2 host with the memory
/// controller gives the whole batch's.
#[test]
fn peak_without_a_memory_group_comes_from_rusage() {
    let Some(w) = Warden::cgroup() else {
        return;
    };
    let v2_memory = common::cgroup_parent()
        .and_then(|d| std::fs::read_to_string(d.join("cgroup.controllers")).ok())
        .is_some_and(|c| c.split_whitespace().any(|c| c == "memory"));
    let r = run(w, "");
    check(&r, !v2_memory);
}

/// A batch the OOM killer killed: its kills in the summary's `used:` line,
/// in JUnit (`warden.oom-kills`) and in the history (`oom_kills`), and its
/// peak near its limit everywhere.
#[test]
fn oom_kills_reported_everywhere() {
    let Some(w) = Warden::cgroup() else {
        return;
    };
    // `tail` keeps its whole input in memory: 300M of zeros has no newline.
    let r = w
        .shell(
            "hog",
            "head -c 300M /dev/zero | tail > /dev/null",
            r#"limits = { memory = "64M" }"#,
        )
        .run();
    r.assert_code(1);
    let used = r
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("  crashed hog ("))
        .nth(1)
        .unwrap_or_else(|| panic!("no hog in the summary\n{}", r.context));
    assert!(
        used.starts_with("    used: peak ") && used.ends_with(", 1 OOM kill(s)"),
        "{used}\n{}",
        r.context
    );
    assert_eq!(
        property(&r, "hog", "warden.oom-kills").as_deref(),
        Some("1"),
        "{}",
        r.context
    );
    let peak: u64 = property(&r, "hog", "warden.peak-memory")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no peak in JUnit\n{}", r.context));
    assert!((60 << 20..=64 << 20).contains(&peak), "peak {peak}");
    let db = r.path(".warden/history.db");
    let oom_kills: i64 = block_on(async {
        let p = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&db))
            .await
            .expect("open the history");
        let n = sqlx::query_scalar("SELECT oom_kills FROM batches WHERE name = 'hog'")
            .fetch_one(&p)
            .await
            .expect("the batch's row");
        p.close().await;
        n
    });
    assert_eq!(oom_kills, 1, "{}", r.context);
}
