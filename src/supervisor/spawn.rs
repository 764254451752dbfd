//! Starting a batch's main process inside its containment.
//!
//! The argv is exec'd directly (a shell only for `shell = "…"`). Before exec
//! the child joins the batch's cgroup, leads a new process group (so a
//! Ctrl-C at the terminal reaches warden, not the batch) and asks to be
//! SIGKILLed if warden dies, so a SIGKILLed warden leaves no direct child.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use rustix::process::Signal;

use crate::config;
use crate::supervisor::containment::Containment;

/// The child's half of the output pipe, for stdout and stderr both, so the
/// log interleaves them in arrival order.
pub fn command(
    what: &config::Command,
    env: &[(String, String)],
    cwd: &Path,
    containment: &Containment,
    output: OwnedFd,
) -> std::io::Result<Command> {
    let mut cmd = match what {
        config::Command::Argv(argv) => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        config::Command::Shell(script) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(script);
            c
        }
    };
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::from(output.try_clone()?))
        .stdout(Stdio::from(output));
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (k, v) in containment.cookie().env() {
        cmd.env(k, v);
    }

    let procs_fd = containment.procs_fd();
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs between fork and exec and only makes raw
    // syscalls (no allocation, no locks). `procs_fd` stays open until spawn
    // returns because the parent's `Containment` owns it.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = procs_fd {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::write(fd.as_fd(), b"0")?;
            }
            rustix::process::setpgid(None, None)?;
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
            // warden may have died before the line above took effect.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("warden exited during spawn"));
            }
            Ok(())
        });
    }
    Ok(cmd)
}
