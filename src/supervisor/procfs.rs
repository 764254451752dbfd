//! Small readers of `/proc/<pid>/…`. Every reader tolerates the process
//! vanishing mid-read: a gone process is simply `None`/empty.

use std::fs;
use std::io::Read;

use crate::outcome::ProcessInfo;

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgid: i32,
    /// Clock ticks after boot; with the pid it names a process uniquely.
    pub starttime: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

pub fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses the part after the command name, which is in parentheses and may
/// itself contain spaces and parentheses: hence `rfind(')')`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    // starttime is field 22 of the line; we are at field 6 now.
    let starttime = fields.nth(16)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgid,
        starttime,
    })
}

/// The command line with NULs as spaces; `[comm]` for kernel threads and zombies.
pub fn cmdline(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let trimmed = raw.strip_suffix(b"\0").unwrap_or(&raw);
    if trimmed.is_empty() {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        return format!("[{}]", comm.trim_end());
    }
    let spaced: Vec<u8> = trimmed
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    String::from_utf8_lossy(&spaced).into_owned()
}

pub fn info(pid: i32) -> ProcessInfo {
    ProcessInfo {
        pid,
        cmdline: cmdline(pid),
    }
}

/// `/proc/<pid>/environ`: `KEY=value` entries separated by NULs; `None`
/// when it can't be read (the process is gone, or not ours to read).
fn environ(pid: i32) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    fs::File::open(format!("/proc/{pid}/environ"))
        .ok()?
        .read_to_end(&mut raw)
        .ok()?;
    Some(raw)
}

/// Whether the process's environment holds every one of `entries` exactly
/// (`KEY=value` byte for byte, never a substring).
pub fn environ_has_all(pid: i32, entries: &[&[u8]]) -> bool {
    let Some(raw) = environ(pid) else {
        return false;
    };
    entries
        .iter()
        .all(|want| raw.split(|&b| b == 0).any(|have| have == *want))
}

/// The value of `key` in the process's environment (its first entry
/// `key=…`, lossily decoded), if it has one.
pub fn environ_var(pid: i32, key: &str) -> Option<String> {
    let raw = environ(pid)?;
    raw.split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(key.as_bytes())?.strip_prefix(b"="))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Now, in the unit of [`Stat::starttime`] (clock ticks since boot), rounded
/// down: every process started from now on has a `starttime` at least this.
pub fn now_ticks() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .unwrap_or(100)
        .max(1);
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs * hz + nanos * hz / 1_000_000_000
}

/// Every numeric entry of `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let line =
            "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 98765 1000 100";
        // fields 3..=22: state ppid pgrp session tty tpgid flags minflt cminflt majflt
        // cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgid, 1234);
        assert_eq!(s.starttime, 98765);
    }

    #[test]
    fn ticks_are_after_our_start() {
        let me = stat(std::process::id() as i32).unwrap();
        assert!(now_ticks() >= me.starttime);
    }

    #[test]
    fn self_is_visible() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(!s.is_zombie());
        assert!(cmdline(me).len() > 1);
        assert!(all_pids().contains(&me));
    }

    #[test]
    fn environment_entries_are_read_whole() {
        let me = std::process::id() as i32;
        let path = std::env::var("PATH").unwrap();
        assert_eq!(environ_var(me, "PATH"), Some(path.clone()));
        // A prefix of a key is not the key.
        assert_eq!(environ_var(me, "PAT"), None);
        let entry = format!("PATH={path}");
        assert!(environ_has_all(me, &[entry.as_bytes()]));
        assert!(!environ_has_all(me, &[b"PATH"]));
    }
}
