//! The leak scan: live processes carrying one run's marker
//! (`MARK_VAR=<value>` in `/proc/<pid>/environ`, exactly), and killing
//! exactly those, each pinned with a pidfd first.

use std::fs;
use std::time::Duration;

use super::{MARK_VAR, wait_until};

/// A live process found carrying a run's marker.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub pid: i32,
    pub state: char,
    pub cmdline: String,
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} state {} cmdline {:?}",
            self.pid, self.state, self.cmdline
        )
    }
}

/// `PF_EXITING` in `/proc/<pid>/stat`'s flags: the process is being torn down.
const PF_EXITING: u64 = 0x4;

/// State and flags from `/proc/<pid>/stat`.
fn stat_of(pid: i32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // After state: ppid pgrp session tty_nr tpgid flags.
    let flags = fields.nth(5)?.parse().ok()?;
    Some((state, flags))
}

/// Whether `/proc/<pid>/environ` holds exactly `MARK_VAR=mark` as one entry.
fn has_mark(pid: i32, mark: &str) -> bool {
    let want = format!("{MARK_VAR}={mark}");
    match fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env.split(|&b| b == 0).any(|e| e == want.as_bytes()),
        Err(_) => false,
    }
}

/// Whether a SIGKILL is queued for the process (e.g. its PDEATHSIG, sent as
/// its parent died): it is dead as soon as it is next scheduled.
fn sigkill_pending(pid: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let bit = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| {
        let mask = l
            .strip_prefix("SigPnd:")
            .or_else(|| l.strip_prefix("ShdPnd:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & bit != 0)
    })
}

/// Alive: exists, not a zombie, not already exiting, no SIGKILL pending.
fn is_alive(pid: i32) -> Option<char> {
    let (state, flags) = stat_of(pid)?;
    if matches!(state, 'Z' | 'X' | 'x') || flags & PF_EXITING != 0 || sigkill_pending(pid) {
        return None;
    }
    Some(state)
}

pub(super) fn is_live_marked(pid: i32, mark: &str) -> bool {
    is_alive(pid).is_some() && has_mark(pid, mark)
}

/// Live processes carrying exactly `MARK_VAR=mark`.
pub fn marked_processes(mark: &str) -> Vec<Leftover> {
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me || !has_mark(pid, mark) {
            continue;
        }
        let Some(state) = is_alive(pid) else { continue };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|raw| {
                String::from_utf8_lossy(&raw)
                    .trim_end_matches('\0')
                    .replace('\0', " ")
            })
            .unwrap_or_default();
        found.push(Leftover {
            pid,
            state,
            cmdline,
        });
    }
    found
}

/// Finds the live processes carrying the marker, then SIGKILLs exactly those
/// (each pinned with a pidfd and re-checked before the signal) and waits for
/// them to go. Returns what was found.
pub fn kill_marked(mark: &str) -> Vec<Leftover> {
    let found = marked_processes(mark);
    for p in &found {
        // SAFETY: plain syscalls with valid arguments.
        unsafe {
            let fd = libc::syscall(libc::SYS_pidfd_open, p.pid, 0) as libc::c_int;
            if fd < 0 {
                continue;
            }
            if has_mark(p.pid, mark) {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            }
            libc::close(fd);
        }
    }
    // Wait until they are really gone (reaped or zombies), not just dying,
    // so their cgroups can be removed.
    let gone = |pid: i32| stat_of(pid).is_none_or(|(state, _)| matches!(state, 'Z' | 'X' | 'x'));
    wait_until(Duration::from_secs(10), || {
        found.iter().all(|p| gone(p.pid)) && marked_processes(mark).is_empty()
    });
    found
}
