//! A root batch escapes every layer but its PID namespace: it moves itself
//! into another cgroup (the root cgroup, a sibling one), clears its
//! environment and leaves its session; or it double-forks. warden still
//! names it in the report and kills it: afterwards nothing is left.
//!
//! Each escapee writes its pid and start time (as the host sees them) to a
//! file; the test checks that exact process is gone, and kills it itself
//! (then fails) if it is not.

#[macro_use]
mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{Containment, Kind, Run, Warden, cgroup2, wait_until};

/// Why these tests can't run here (they need root, a writable cgroup2 and
/// PID namespaces), or `None`.
fn unavailable() -> Option<String> {
    if let Some(why) = common::cgroup_unavailable() {
        return Some(why);
    }
    if cgroup2().is_none() {
        return Some("no cgroup2 mount".into());
    }
    None
}

macro_rules! skip_unless_possible {
    () => {
        if let Some(why) = unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

/// The process an escapee recorded: `(pid, start time)`.
fn escapee(run: &Run, file: &str) -> (i32, u64) {
    let text = fs::read_to_string(run.path(file))
        .unwrap_or_else(|e| panic!("no pid file {file}: {e}\n{}", run.context));
    let mut f = text.split_whitespace();
    let pid = f.next().and_then(|s| s.parse().ok()).expect("pid");
    let start = f.next().and_then(|s| s.parse().ok()).expect("start time");
    (pid, start)
}

/// The start time of a live (non-zombie) process.
fn live_start(pid: i32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether the escapee is gone; if not, kills it (it is ours: the same
/// pid and start time). Called before any other assertion, so that a
/// failing test leaves nothing behind.
fn ensure_gone(run: &Run, file: &str) -> bool {
    let (pid, start) = escapee(run, file);
    // warden has exited: the kernel may still be tearing the namespace down.
    let gone = wait_until(Duration::from_secs(2), || live_start(pid) != Some(start));
    if !gone {
        // SAFETY: kill has no memory preconditions; the pid and start time
        // say it is the process this test's batch started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    gone
}

#[track_caller]
fn assert_gone(run: &Run, file: &str) {
    assert!(
        ensure_gone(run, file),
        "the escaped process is still alive (now SIGKILLed)\n{}",
        run.context
    );
}

/// The batch `escape` failed as leaked, and its report names `pid`.
#[track_caller]
fn assert_leak_names(r: &Run, pid: i32) {
    let case = r.case("escape");
    case.assert_status(Kind::Failure, Some("leaked"));
    assert!(
        case.message().contains(&pid.to_string()),
        "the leak report names the escaped process {pid}: {}\n{}",
        case.message(),
        r.context
    );
}

fn escape_batch(w: Warden, how: &str, to: &Path, session: &str, extra: &str) -> Warden {
    let pidfile = w.path_str("escapee.pid");
    let to = to.to_str().expect("UTF-8 path").to_string();
    w.fixture("escape", "escape.sh", &[how, &to, &pidfile, session], extra)
}

fn child_escapes_to_root(containment: Containment, session: &str) {
    skip_unless_possible!();
    let (root, _) = cgroup2().expect("checked");
    let w = Warden::with(containment);
    let r = escape_batch(
        w,
        "child",
        &root,
        session,
        "leak = \"fail\"\ndrain = \"200ms\"\ngrace = \"200ms\"",
    )
    .run();
    let (pid, _) = escapee(&r, "escapee.pid");
    assert_gone(&r, "escapee.pid");
    r.assert_code(1);
    assert_leak_names(&r, pid);
}

#[test]
fn child_moves_to_root_cgroup_clears_env() {
    child_escapes_to_root(Containment::Default, "nosetsid");
}

#[test]
fn child_moves_to_root_cgroup_clears_env_setsid() {
    child_escapes_to_root(Containment::Default, "setsid");
}

#[test]
fn child_moves_to_root_cgroup_clears_env_setsid_pgroup() {
    // No cgroup tracking at all: only the namespace holds it.
    child_escapes_to_root(Containment::Pgroup, "setsid");
}

#[test]
fn main_process_moves_to_root_cgroup() {
    skip_unless_possible!();
    let (root, _) = cgroup2().expect("checked");
    let w = Warden::new();
    let r = escape_batch(
        w,
        "main",
        &root,
        "setsid",
        "timeout = \"1s\"\ngrace = \"200ms\"",
    )
    .run();
    let (pid, _) = escapee(&r, "escapee.pid");
    assert_gone(&r, "escapee.pid");
    r.assert_code(1);
    let case = r.case("escape");
    case.assert_status(Kind::Error, Some("timed-out"));
    let msg = case.message();
    assert!(
        !msg.contains("all exited within"),
        "the escaped main process was still running: {msg}\n{}",
        r.context
    );
    assert!(
        msg.contains(&pid.to_string()),
        "the report names the killed main process {pid}: {msg}\n{}",
        r.context
    );
}

#[test]
fn main_process_moves_to_root_cgroup_without_namespace() {
    // Without a PID namespace the main process is still tracked (pidfd):
    // killed and reported, never "all exited".
    skip_unless_possible!();
    let (root, _) = cgroup2().expect("checked");
    let w = Warden::new().arg("--pid-namespace").arg("off");
    // No setsid: a process-group leader's `setsid` would fork, and the
    // main process would simply exit.
    let r = escape_batch(
        w,
        "main",
        &root,
        "nosetsid",
        "timeout = \"1s\"\ngrace = \"200ms\"",
    )
    .run();
    let (pid, _) = escapee(&r, "escapee.pid");
    assert_gone(&r, "escapee.pid");
    let case = r.case("escape");
    case.assert_status(Kind::Error, Some("timed-out"));
    let msg = case.message();
    assert!(!msg.contains("all exited within"), "{msg}\n{}", r.context);
    assert!(msg.contains(&pid.to_string()), "{msg}\n{}", r.context);
}

#[test]
fn child_moves_to_sibling_cgroup() {
    skip_unless_possible!();
    let (_, parent) = cgroup2().expect("checked");
    let w = Warden::new();
    let sibling = parent.join(format!("escape-sibling-{}", w.mark()));
    fs::create_dir(&sibling).expect("create the sibling cgroup");
    let r = escape_batch(
        w,
        "child",
        &sibling,
        "setsid",
        "leak = \"fail\"\ndrain = \"200ms\"\ngrace = \"200ms\"",
    )
    .run();
    let (pid, _) = escapee(&r, "escapee.pid");
    let gone = ensure_gone(&r, "escapee.pid");
    let emptied = wait_until(Duration::from_secs(2), || {
        fs::read_to_string(sibling.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
    });
    let removed = emptied && fs::remove_dir(&sibling).is_ok();
    assert!(
        gone,
        "the escaped process is still alive (now SIGKILLed)\n{}",
        r.context
    );
    assert!(removed, "the sibling cgroup emptied and was removed");
    assert_leak_names(&r, pid);
}

#[test]
fn double_fork_inside_the_namespace() {
    // A grandchild re-parented to the namespace's init, with its own
    // session, no cookie, and out of warden's cgroup: caught under both
    // containments, and the init reaps it without hanging the batch.
    skip_unless_possible!();
    let (root, _) = cgroup2().expect("checked");
    for containment in [Containment::Default, Containment::Pgroup] {
        let w = Warden::with(containment);
        let r = escape_batch(
            w,
            "double-fork",
            &root,
            "setsid",
            "leak = \"fail\"\ndrain = \"200ms\"\ngrace = \"200ms\"",
        )
        .run();
        let (pid, _) = escapee(&r, "escapee.pid");
        assert_gone(&r, "escapee.pid");
        assert_leak_names(&r, pid);
        assert!(r.elapsed < Duration::from_secs(5), "{}", r.context);
    }
}

#[test]
fn zombies_inside_the_namespace_are_reaped() {
    // Orphans that exit are reaped by the init; the batch ends at once,
    // and its exit code is the program's.
    skip_unless_possible!();
    let r = Warden::new()
        .shell(
            "orphans",
            "for i in 1 2 3 4 5; do (sleep 0.05 &) ; done; sleep 0.2; exit 3",
            "leak = \"fail\"",
        )
        .shell("signalled", "kill -TERM $$", "")
        .run();
    r.assert_code(1);
    r.case("orphans")
        .assert_status(Kind::Failure, Some("failed"));
    assert!(
        r.case("orphans").message().contains("exit code 3"),
        "{}",
        r.context
    );
    assert!(
        r.case("signalled").message().contains("SIGTERM"),
        "{}",
        r.context
    );
    assert!(r.elapsed < Duration::from_secs(3), "{}", r.context);
}

#[test]
fn check_and_run_name_the_layers() {
    skip_unless_possible!();
    let r = Warden::new().shell("t", "true", "").check().run();
    r.assert_code(0);
    r.assert_stdout_contains("containment: cgroup v2 + PID namespace per batch\n");
    let r = Warden::new()
        .shell("t", "true", "")
        .arg("--pid-namespace")
        .arg("off")
        .arg("-v")
        .run();
    r.assert_code(0);
    r.assert_stdout_contains("(no PID namespace: turned off by --pid-namespace off)");
}

/// The uid and gid an unprivileged warden runs as: `nobody`'s.
const NOBODY: (u32, u32) = (65534, 65534);

/// Why an unprivileged warden with `--pid-namespace user` can't be tried
/// here (the test must be root to become `nobody`, and the kernel must let
/// unprivileged users make user namespaces), or `None`.
fn user_ns_unavailable() -> Option<String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Some("the test must run as root to start warden as nobody".into());
    }
    let ok = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["unshare", "--user", "--pid", "--fork", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| "unprivileged users cannot make user+PID namespaces here".into())
}

#[test]
fn unprivileged_warden_contains_with_a_user_namespace() {
    // A warden without root has only the process group and the cookie,
    // which `setsid env -i` escapes; `--pid-namespace user` still catches
    // the escapee, and the batch keeps warden's uid and gid.
    if let Some(why) = user_ns_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let w = Warden::new().run_as(NOBODY.0, NOBODY.1);
    let r = escape_batch(
        w,
        "child",
        Path::new("-"),
        "setsid",
        "leak = \"fail\"\ndrain = \"200ms\"\ngrace = \"200ms\"",
    )
    .shell("ids", "id -u; id -g; echo \"pid $$\"", "")
    .args(["--pid-namespace", "user", "-v"])
    .run();
    let (pid, _) = escapee(&r, "escapee.pid");
    assert_gone(&r, "escapee.pid");
    r.assert_code(1);
    r.assert_stdout_contains("+ PID namespace per batch (in a user namespace");
    assert_leak_names(&r, pid);
    // Its own uid and gid, and PID 2 (under warden's init).
    assert_eq!(r.log_text("ids"), "65534\n65534\npid 2\n", "{}", r.context);
}

#[test]
fn unprivileged_warden_says_why_there_is_no_namespace() {
    if let Some(why) = user_ns_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let r = Warden::new()
        .run_as(NOBODY.0, NOBODY.1)
        .shell("t", "true", "")
        .run();
    r.assert_code(0);
    r.assert_stderr_contains("(needs root; see --pid-namespace user)");
}
