//! Two CI containers on one host: wardens in different PID namespaces
//! under one cgroup parent. Neither may take the other's live run for a
//! dead one (its pid means nothing in the other namespace), and a run whose
//! warden really died is still reaped by the next warden of its namespace.

#[macro_use]
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{MARK_VAR, cgroup_parent, kill_marked, wait_until, warden_bin};

/// Why wardens in their own PID namespaces can't be run here, or `None`.
fn unavailable() -> Option<String> {
    if let Some(why) = common::cgroup_unavailable() {
        return Some(why);
    }
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| "`unshare --pid --fork --mount-proc` does not work here".to_string())
}

/// `sh -c script` as PID 1's child in a new PID namespace, in `dir`.
fn in_new_pid_ns(dir: &Path, mark: &str, script: &str) -> Child {
    Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "sh", "-c", script])
        .current_dir(dir)
        .env("WARDEN", warden_bin())
        .env(MARK_VAR, mark)
        .env_remove("WARDEN_CONTAINMENT")
        .env_remove("WARDEN_PID_NAMESPACE")
        .env_remove("WARDEN_RUN")
        .env_remove("WARDEN_BATCH")
        .env("WARDEN_HISTORY", "none")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn unshare")
}

/// The PID namespace `unshare`'s child runs in (once `unshare` has made
/// it: until then its children's namespace is its own).
fn child_ns(unshare: &Child) -> u64 {
    let ino = |link: &str| {
        fs::metadata(format!("/proc/{}/ns/{link}", unshare.id()))
            .ok()
            .map(|m| m.ino())
    };
    let mut found = None;
    wait_until(Duration::from_secs(5), || {
        found = ino("pid_for_children").filter(|&c| Some(c) != ino("pid"));
        found.is_some()
    });
    found.expect("unshare's new namespace")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn batch(name: &str, script: &str) -> String {
    format!(
        "[[batch]]\nname = \"{name}\"\nshell = {}\ntimeout = \"30s\"\n",
        common::q(script)
    )
}

#[test]
fn two_wardens_in_two_pid_namespaces() {
    if let Some(why) = unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let parent = cgroup_parent().expect("cgroup parent");
    let tmp = tempfile::Builder::new()
        .prefix("warden-ns-")
        .tempdir()
        .expect("temp dir");
    let dir = tmp.path();
    let mark = format!("pidns-{}", std::process::id());
    // A: a live run that must survive everything the others do.
    fs::write(
        dir.join("a.toml"),
        batch("long", "echo started > started_a; sleep 3; echo survived"),
    )
    .unwrap();
    fs::write(dir.join("b.toml"), batch("quick", "echo quick")).unwrap();
    // C: its warden is SIGKILLed mid-run; D, next in the same namespace, reaps it.
    fs::write(
        dir.join("c.toml"),
        batch(
            "victim",
            "read -r pid c s pp pg sid tty tp fl a b cc d e f g h i j k l start rest < /proc/self/stat; \
             echo \"$pid $start\" > victim.tmp; mv victim.tmp victim; exec sleep 1000",
        ),
    )
    .unwrap();
    fs::write(dir.join("d.toml"), batch("after", "true")).unwrap();

    let a = in_new_pid_ns(
        dir,
        &mark,
        "exec \"$WARDEN\" run -c a.toml --artifacts art-a",
    );
    let ns_a = child_ns(&a);
    assert!(
        wait_until(Duration::from_secs(10), || dir.join("started_a").exists()),
        "A's batch started"
    );
    let c = in_new_pid_ns(
        dir,
        &mark,
        "\"$WARDEN\" run -c c.toml --artifacts art-c & w=$!
         while [ ! -s victim ]; do sleep 0.01; done
         kill -KILL $w; wait $w
         exec \"$WARDEN\" run -c d.toml --artifacts art-d",
    );
    let ns_c = child_ns(&c);
    let b = in_new_pid_ns(
        dir,
        &mark,
        "exec \"$WARDEN\" run -c b.toml --artifacts art-b",
    );
    let ns_b = child_ns(&b);
    let (a, b, c) = (
        a.wait_with_output().unwrap(),
        b.wait_with_output().unwrap(),
        c.wait_with_output().unwrap(),
    );

    // Clean up before asserting: processes of this test, run cgroups of
    // the three namespaces.
    let leftovers = kill_marked(&mark);
    let mut cgroups = Vec::new();
    for e in fs::read_dir(&parent).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("warden-")
            && [ns_a, ns_b, ns_c]
                .iter()
                .any(|ns| name.ends_with(&format!("-{ns}")))
        {
            let _ = Command::new("sh")
                .args(["-c", "echo 1 > \"$1/cgroup.kill\" 2>/dev/null; find \"$1\" -depth -type d -exec rmdir {} + 2>/dev/null", "sh"])
                .arg(e.path())
                .status();
            cgroups.push(name);
        }
    }
    let victim = fs::read_to_string(dir.join("victim")).expect("victim pid");
    let mut f = victim.split_whitespace();
    let vpid: i32 = f.next().unwrap().parse().unwrap();
    let vstart: u64 = f.next().unwrap().parse().unwrap();
    let victim_alive = fs::read_to_string(format!("/proc/{vpid}/stat")).is_ok_and(|s| {
        let rest = &s[s.rfind(')').unwrap() + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[0] != "Z" && f[19].parse::<u64>().ok() == Some(vstart)
    });
    if victim_alive {
        // SAFETY: same pid and start time: the process our batch started.
        unsafe { libc::kill(vpid, libc::SIGKILL) };
    }

    let all = format!("A:\n{}\nB:\n{}\nC/D:\n{}", text(&a), text(&b), text(&c));
    assert!(leftovers.is_empty(), "processes left: {leftovers:?}\n{all}");
    assert!(cgroups.is_empty(), "run cgroups left: {cgroups:?}\n{all}");
    assert!(
        !victim_alive,
        "the dead run's batch was left running\n{all}"
    );
    // Neither live run was disturbed.
    assert_eq!(a.status.code(), Some(0), "{all}");
    assert_eq!(
        fs::read_to_string(dir.join("art-a/logs/long.log")).unwrap(),
        "survived\n",
        "{all}"
    );
    assert_eq!(b.status.code(), Some(0), "{all}");
    // (Other wardens on this machine are not ours to judge: only runs of
    // this test's namespaces are looked for.)
    for out in [&a, &b] {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let reaped_ours = stdout.lines().any(|l| {
            l.starts_with("warden: reaping")
                && [ns_a, ns_b, ns_c]
                    .iter()
                    .any(|ns| l.contains(&format!("-{ns}")))
        });
        assert!(
            !reaped_ours,
            "a warden reaped a run of another namespace\n{all}"
        );
    }
    // The dead run was reaped by the next warden of its own namespace.
    let d = String::from_utf8_lossy(&c.stdout);
    assert_eq!(c.status.code(), Some(0), "{all}");
    assert!(
        d.lines()
            .any(|l| l.starts_with("warden: reaping cgroup") && l.ends_with(&format!("-{ns_c}"))),
        "D reaped C's cgroup\n{all}"
    );
}
