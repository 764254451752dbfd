//! A batch whose program can't even be exec'd: its binary lies on a FUSE
//! mount whose server never answers (a stalled NFS or FUSE mount on a CI
//! host). The exec blocks in the kernel; warden must not block with it:
//! the batch's timeout and the run's deadline still fire on time, and the
//! other batches start and finish meanwhile.
//!
//! The mount is made here, as root: `/dev/fuse` opened and mounted, and
//! then never read, so every request on the mount waits (killably) forever.

#[macro_use]
mod common;

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Kind, Warden};

/// A FUSE mount nobody serves. Dropped, it is detached and its connection
/// closed, which fails every request still waiting on it.
struct DeadMount {
    dir: PathBuf,
    _fuse: OwnedFd,
}

impl DeadMount {
    fn new(dir: &Path) -> Result<DeadMount, String> {
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } != 0 {
            return Err("mounting FUSE needs root".into());
        }
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let fuse = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/fuse")
            .map_err(|e| format!("cannot open /dev/fuse: {e}"))?;
        let fuse = OwnedFd::from(fuse);
        let target = CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let opts = CString::new(format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            fuse.as_raw_fd()
        ))
        .map_err(|e| e.to_string())?;
        // SAFETY: all pointers are NUL-terminated strings that outlive the call.
        let r = unsafe {
            libc::mount(
                c"warden-dead".as_ptr(),
                target.as_ptr(),
                c"fuse".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                opts.as_ptr().cast(),
            )
        };
        if r != 0 {
            return Err(format!(
                "cannot mount FUSE: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(DeadMount {
            dir: dir.to_owned(),
            _fuse: fuse,
        })
    }
}

impl Drop for DeadMount {
    fn drop(&mut self) {
        if let Ok(target) = CString::new(self.dir.as_os_str().as_bytes()) {
            // SAFETY: a NUL-terminated path; MNT_DETACH never blocks on the
            // unanswered requests (closing the fd afterwards aborts them).
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

macro_rules! dead_mount_or_skip {
    ($w:expr) => {
        match DeadMount::new(&$w.path("stalled")) {
            Ok(m) => m,
            Err(why) => {
                eprintln!("skipping: {why}");
                return;
            }
        }
    };
}

/// One stalled batch beside six quick ones, with warden's `args`.
fn stalled_beside_quick(args: &[&str]) {
    let w = Warden::new();
    let mount = dead_mount_or_skip!(w);
    let program = mount.dir.join("tests").display().to_string();
    let mut w = w
        .run_section("max-parallel = 2")
        .batch(&format!(
            "name = \"stalled\"\ncommand = [{}]\ntimeout = \"1s\"\ngrace = \"200ms\"",
            common::q(&program)
        ))
        .args(args);
    for i in 0..6 {
        w = w.shell(&format!("quick{i}"), "sleep 0.1", "");
    }
    let r = w.run();
    drop(mount);
    r.assert_code(1);
    let stalled = r.case("stalled");
    stalled.assert_status(Kind::Error, Some("timed-out"));
    assert!(
        stalled
            .message()
            .contains("never started (the exec was still blocked"),
        "{}\n{}",
        stalled.message(),
        r.context
    );
    for i in 0..6 {
        r.case(&format!("quick{i}"))
            .assert_status(Kind::Success, None);
    }
    // 1 s timeout, a short grace, six 0.1 s batches beside it: a frozen
    // runtime would sit here until the test's watchdog.
    assert!(
        r.elapsed < Duration::from_secs(6),
        "took {:?}\n{}",
        r.elapsed,
        r.context
    );
}

#[test]
fn blocked_exec_times_out_and_others_finish() {
    // As root: cgroup + PID namespace (the init's child is the one stuck).
    stalled_beside_quick(&[]);
}

#[test]
fn blocked_exec_without_namespace() {
    stalled_beside_quick(&["--pid-namespace", "off"]);
}

#[test]
fn blocked_exec_pgroup() {
    stalled_beside_quick(&["--containment", "pgroup", "--pid-namespace", "off"]);
}

#[test]
fn blocked_exec_is_stopped_by_the_run_deadline() {
    let w = Warden::new();
    let mount = dead_mount_or_skip!(w);
    let program = mount.dir.join("tests").display().to_string();
    let r = w
        .run_section("deadline = \"2s\"\nreserve = \"1s\"")
        .batch(&format!(
            "name = \"stalled\"\ncommand = [{}]\ngrace = \"200ms\"",
            common::q(&program)
        ))
        .shell("quick", "true", "")
        .run();
    drop(mount);
    r.assert_code(1);
    r.case("quick").assert_status(Kind::Success, None);
    let stalled = r.case("stalled");
    assert!(
        stalled.message().contains("deadline"),
        "{}\n{}",
        stalled.message(),
        r.context
    );
    assert!(
        r.elapsed < Duration::from_secs(6),
        "took {:?}\n{}",
        r.elapsed,
        r.context
    );
}
