//! Per-batch limits with the real binary: each limit visible in the batch's
//! cgroup files (v2 where the unified hierarchy has the controller, v1
//! groups otherwise), an OOM kill reported as such with its peak, I/O
//! throttling of direct writes, `warden check` naming limits that cannot
//! be applied, the pgroup fallback, and no group left in any hierarchy,
//! even after a SIGKILLed warden (`warden reap`).

#[macro_use]
mod common;

use std::time::Duration;

use common::{Kind, Warden, q, wait_until};

/// Prints, for each cgroup the batch is in, the limit files there as
/// `file=value` lines (v2: the unified hierarchy's; v1: each controller's).
const SHOW_LIMITS: &str = r#"
v2=/sys/fs/cgroup; [ -f /sys/fs/cgroup/unified/cgroup.procs ] && v2=/sys/fs/cgroup/unified
while IFS=: read -r _ ctrl path; do
  case "$ctrl" in
    "") d=$v2$path; files="memory.max memory.high cpu.max pids.max io.max" ;;
    memory) d=/sys/fs/cgroup/memory$path; files="memory.limit_in_bytes memory.soft_limit_in_bytes" ;;
    cpu|cpu,cpuacct|cpuacct,cpu) d=/sys/fs/cgroup/$ctrl$path; files="cpu.cfs_quota_us cpu.cfs_period_us" ;;
    pids) d=/sys/fs/cgroup/pids$path; files="pids.max" ;;
    blkio) d=/sys/fs/cgroup/blkio$path; files="blkio.throttle.read_bps_device blkio.throttle.write_bps_device" ;;
    *) continue ;;
  esac
  for f in $files; do [ -f "$d/$f" ] && echo "$f=$(cat "$d/$f" | tr '\n' ' ')"; done
done < /proc/self/cgroup
true
"#;

#[test]
fn each_limit_is_in_the_batch_cgroup_files() {
    let Some(w) = Warden::cgroup() else { return };
    let w = w.shell(
        "limited",
        SHOW_LIMITS,
        r#"limits = { cpu = "50%", memory = "64M", memory-high = "48M", pids = 100, io-read = "8M", io-write = "4M" }"#,
    );
    let r = w.run();
    r.assert_code(0);
    let log = r.log_text("limited");
    let has = |alternatives: &[&str]| {
        assert!(
            alternatives
                .iter()
                .any(|a| log.lines().any(|l| l.starts_with(a))),
            "none of {alternatives:?} in the batch's cgroup files:\n{log}\n{}",
            r.context
        );
    };
    has(&["memory.max=67108864", "memory.limit_in_bytes=67108864"]);
    has(&[
        "memory.high=50331648",
        "memory.soft_limit_in_bytes=50331648",
    ]);
    has(&["cpu.max=50000 100000", "cpu.cfs_quota_us=50000"]);
    has(&["pids.max=100"]);
    has(&["io.max=", "blkio.throttle.write_bps_device="]);
    let io = log
        .lines()
        .filter(|l| l.starts_with("io.max=") || l.starts_with("blkio.throttle"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        io.contains("wbps=4194304") || io.contains(" 4194304"),
        "{io}"
    );
    assert!(
        io.contains("rbps=8388608") || io.contains(" 8388608"),
        "{io}"
    );
}

#[test]
fn a_batch_without_limits_gets_no_v1_groups() {
    let Some(w) = Warden::cgroup() else { return };
    let r = w.shell("plain", "cat /proc/self/cgroup", "").run();
    r.assert_code(0);
    let log = r.log_text("plain");
    assert!(
        log.lines()
            .filter(|l| !l.starts_with("0::"))
            .all(|l| !l.contains("/warden-")),
        "{log}"
    );
}

#[test]
fn past_its_memory_limit_a_batch_is_crashed_by_the_oom_killer() {
    let Some(w) = Warden::cgroup() else { return };
    // `tail` keeps its whole input in memory: 300M of zeros has no newline.
    let w = w.shell(
        "hog",
        "head -c 300M /dev/zero | tail > /dev/null",
        r#"limits = { memory = "64M" }"#,
    );
    let r = w.run();
    r.assert_code(1);
    let line = r.finish_line("hog");
    assert!(
        line.trim_start().starts_with("CRASH"),
        "{line}\n{}",
        r.context
    );
    let want = "hog: killed by the OOM killer at its 64M memory limit (peak ";
    assert!(line.contains(want), "{line}\n{}", r.context);
    assert!(!line.contains("SIGKILL"), "{line}");
    // The peak is a size near the limit: `(peak 64.0M)`, `(peak 63.9M)`.
    let peak = line.split("(peak ").nth(1).unwrap_or("");
    assert!(peak.ends_with("M)"), "{line}");
    let case = r.case("hog");
    assert!(
        case.message()
            .contains("killed by the OOM killer at its 64M memory limit"),
        "{}",
        case.message()
    );
}

#[test]
fn io_write_limit_throttles_direct_writes() {
    let Some(w) = Warden::cgroup() else { return };
    let script = "s=$(date +%s%N); \
         dd if=/dev/zero of=\"$WARDEN_SCRATCH/f\" bs=1M count=8 oflag=direct 2>/dev/null || exit 3; \
         e=$(date +%s%N); echo elapsed_ms=$(( (e - s) / 1000000 ))";
    let w = w
        .shell("throttled", script, r#"limits = { io-write = "4M" }"#)
        .shell("free", script, "");
    let r = w.run();
    r.assert_code(0);
    let ms = |name: &str| -> u64 {
        let log = r.log_text(name);
        log.lines()
            .find_map(|l| l.strip_prefix("elapsed_ms="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no elapsed_ms in {name}'s log: {log}"))
    };
    // 8 MiB at 4 MiB/s is 2 s; loosely, allowing the throttle's first slice.
    let (throttled, free) = (ms("throttled"), ms("free"));
    assert!(
        throttled >= 1_400,
        "8M of direct writes at io-write=4M took {throttled} ms (unthrottled: {free} ms)\n{}",
        r.context
    );
}

#[test]
fn check_names_limits_the_pgroup_fallback_cannot_apply() {
    let r = Warden::pgroup()
        .shell(
            "vm",
            "true",
            r#"limits = { memory = "64M", io-write = "4M" }"#,
        )
        .shell("plain", "true", "")
        .env("WARDEN_CONTAINMENT", "pgroup")
        .check()
        .run();
    r.assert_code(2);
    r.assert_stderr_contains(
        "error: batch `vm`: limit memory=64M cannot be applied: batches have no cgroup",
    );
    r.assert_stderr_contains("error: batch `vm`: limit io-write=4M cannot be applied");
    assert!(!r.stderr.contains("`plain`"), "{}", r.context);
    r.assert_stdout_contains("limits: none can be applied without a cgroup");
    r.assert_stdout_contains("    limits memory=64M io-write=4M");
}

#[test]
fn check_names_an_io_limit_on_a_device_without_a_queue() {
    let Some(w) = Warden::cgroup() else { return };
    if !std::path::Path::new("/dev/shm").is_dir() {
        return;
    }
    let r = w
        .shell(
            "shm",
            "true",
            &format!("cwd = {}\nlimits = {{ io-read = \"1M\" }}", q("/dev/shm")),
        )
        .check()
        .run();
    r.assert_code(2);
    r.assert_stderr_contains(
        "error: batch `shm`: limit io-read=1M cannot be applied: /dev/shm is on device",
    );
    r.assert_stderr_contains("cannot be throttled");
}

#[test]
fn check_says_where_limits_go() {
    let Some(w) = Warden::cgroup() else { return };
    let r = w
        .shell("vm", "true", r#"limits = { memory = "64M", pids = 10 }"#)
        .check()
        .run();
    r.assert_code(0);
    let line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("limits: "))
        .unwrap_or_else(|| panic!("no limits line\n{}", r.context));
    assert!(
        line.contains("memory: cgroup v") && line.contains("pids: cgroup v"),
        "{line}"
    );
}

both_containments! {
    fn a_limit_that_cannot_be_applied_fails_the_batch_unstarted(w) {
        let limited = w.path_str("started");
        let cwd = if w.containment() == common::Containment::Pgroup {
            String::new()
        } else {
            // With cgroups, only the device can be missing.
            format!("cwd = {}\n", q("/dev/shm"))
        };
        let (limit, why) = if w.containment() == common::Containment::Pgroup {
            (r#"limits = { memory = "64M" }"#, "memory=64M: batches have no cgroup")
        } else {
            (r#"limits = { io-write = "1M" }"#, "io-write=1M: /dev/shm is on device")
        };
        let r = w
            .shell("limited", &format!("touch {}", q(&limited)), &format!("{cwd}{limit}"))
            .shell("plain", "true", "")
            .run();
        r.assert_code(1);
        let case = r.case("limited");
        assert_eq!(case.kind, Kind::Failure, "{case:#?}");
        assert!(
            case.message().contains(&format!("cannot apply its limits: {why}")),
            "{}\n{}",
            case.message(),
            r.context
        );
        assert!(!std::path::Path::new(&limited).exists(), "the batch ran");
        r.case("plain").assert_status(Kind::Success, None);
    }
}

#[test]
fn a_dead_runs_v1_groups_are_reaped() {
    let Some(w) = Warden::cgroup() else { return };
    if common::v1_parents().is_empty() {
        eprintln!("skipping: no cgroup v1 hierarchies here");
        return;
    }
    let started = w.path("started");
    let w = w.shell(
        "held",
        &format!(
            "touch {}; exec sleep 1000",
            q(&started.display().to_string())
        ),
        r#"limits = { memory = "256M", pids = 50 }"#,
    );
    let running = w.spawn();
    let pid = running.pid();
    assert!(
        wait_until(Duration::from_secs(10), || started.exists()),
        "the batch never started"
    );
    assert!(
        !common::v1_leftovers(pid).is_empty(),
        "no v1 groups while it runs"
    );
    running.signal(libc::SIGKILL);
    // Whoever reaps first (this, or another test's warden starting), the
    // dead run's groups go.
    let reap = Warden::pgroup().no_config().subcommand("reap").run();
    reap.assert_code(0);
    assert!(
        wait_until(Duration::from_secs(10), || common::v1_leftovers(pid)
            .is_empty()),
        "the dead run's v1 groups stayed: {:?}\n{}",
        common::v1_leftovers(pid),
        reap.context
    );
    let dead = running.wait();
    assert_eq!(dead.signal, Some(libc::SIGKILL));
}
