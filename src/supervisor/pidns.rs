//! A PID namespace per batch: the containment layer nothing inside can leave.
//!
//! A process can leave its cgroup (root writes its pid into another
//! `cgroup.procs`), its process group (`setsid`) and its cookie (`env -i`),
//! but not its PID namespace. When the namespace's init dies, the kernel
//! SIGKILLs every process left in it, so killing one process (the init)
//! kills the whole batch, however it hid.
//!
//! **Who is PID 1.** Not the batch's own program: PID 1 ignores every
//! signal it has no handler for (SIGTERM would do nothing to a shell
//! script), must reap the orphans re-parented to it (a test binary won't,
//! so zombies would pile up), and its exit kills the rest of the namespace
//! at once, so a batch's leftover processes could no longer be seen and
//! reported as leaked. Instead the namespace's init is warden itself,
//! re-executed in the hidden `warden __init` mode ([`init_main`]): it forks
//! the batch's program (PID 2), reaps everything re-parented to it, writes
//! the program's wait status to a pipe warden reads (the init's own exit
//! can't carry a signal: PID 1 can't be killed by most signals), and exits
//! once it has no child left. warden's other layers (cgroup or process
//! group + cookie) still see the batch as before; the init is one more
//! member that is never reported.
//!
//! Only a PID namespace is made: the batch sees the host's filesystem,
//! network, devices and `/proc` (so `/proc` lists host pids, and
//! `/proc/self` is the process itself; a pid from `getpid()` is the
//! namespace's number). Making one needs CAP_SYS_ADMIN, so by default
//! (`--pid-namespace auto`) only a root warden makes them.
//!
//! **Without root** (`--pid-namespace user`), the PID namespace is made
//! inside a new user namespace, which any user may create where the kernel
//! allows unprivileged user namespaces. That namespace maps just warden's
//! own uid and gid to themselves ([`Kind::User`]), so the batch keeps its
//! identity and file access, but it is not the default: the kernel forbids
//! `setgroups` in it and ignores the set-user-ID bit of programs whose
//! owner is not mapped, so `sudo` and other setuid helpers stop working in
//! the batch, and every other user's files show as owned by `nobody`. A
//! CI job on an unprivileged runner whose tests need none of that opts in.

use std::ffi::{CString, OsString};
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;

use crate::supervisor::procfs;

/// The hidden first argument that makes warden a namespace's init.
pub const INIT_ARG: &str = "__init";

/// How a batch's PID namespace is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A PID namespace alone: needs CAP_SYS_ADMIN (root).
    Privileged,
    /// A PID namespace owned by a new user namespace that maps warden's own
    /// uid and gid only: for a warden without root (see the module doc).
    User,
}

impl Kind {
    /// The clone/unshare flags that make this kind of namespace.
    pub fn clone_flags(self) -> libc::c_int {
        match self {
            Kind::Privileged => libc::CLONE_NEWPID,
            Kind::User => libc::CLONE_NEWUSER | libc::CLONE_NEWPID,
        }
    }

    /// How `warden check` and the verbose run line name it.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Privileged => "PID namespace per batch",
            Kind::User => {
                "PID namespace per batch (in a user namespace mapping only warden's uid/gid)"
            }
        }
    }
}

/// What a child in a new user namespace writes to its own
/// `/proc/self/{setgroups,uid_map,gid_map}` before it execs: a user may map
/// its own effective ids (one line each) once `setgroups` is denied.
/// Built before the clone; the child only writes the bytes.
#[derive(Clone)]
pub struct IdMaps {
    pub uid_map: std::ffi::CString,
    pub gid_map: std::ffi::CString,
}

impl IdMaps {
    /// Maps warden's effective uid and gid to themselves.
    pub fn own() -> IdMaps {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        // Digits and spaces only: never contains a NUL.
        let line = |id: u32| CString::new(format!("{id} {id} 1\n")).unwrap_or_default();
        IdMaps {
            uid_map: line(uid),
            gid_map: line(gid),
        }
    }
}

/// Whether this process can give a child a PID namespace of this kind,
/// decided by trying it: a forked child calls `unshare` with its flags
/// (and, for a user namespace, writes its own id maps, as a batch's first
/// process will). Must run before the reaper starts (it waits for its own
/// child).
pub fn probe(kind: Kind) -> Result<(), String> {
    let maps = IdMaps::own();
    if fs::metadata("/proc/self/exe").is_err() {
        return Err("/proc/self/exe is not readable".into());
    }
    // SAFETY: the child only calls unshare and _exit, both async-signal-safe,
    // so forking a multi-threaded process is fine.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
        // SAFETY: in the forked child, which only unshares, writes its own
        // id maps (open/write/close on memory built before the fork) and
        // _exits: async-signal-safe calls, as a forked multi-threaded
        // process must make.
        0 => unsafe {
            let code = if libc::unshare(kind.clone_flags()) == 0
                && (kind == Kind::Privileged || write_id_maps(&maps) == 0)
            {
                0
            } else {
                *libc::__errno_location() & 0xff
            };
            libc::_exit(code)
        },
        _ => {}
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for the child we just forked; `status` is ours.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
    }
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, errno) => Err(match kind {
            Kind::Privileged => format!(
                "cannot create a PID namespace: {}{}",
                std::io::Error::from_raw_os_error(errno),
                if rustix::process::geteuid().is_root() {
                    ""
                } else {
                    " (needs root; see --pid-namespace user)"
                }
            ),
            Kind::User => format!(
                "cannot create a user and PID namespace: {}",
                std::io::Error::from_raw_os_error(errno)
            ),
        }),
        _ => Err("the PID namespace probe died".into()),
    }
}

/// In a child just cloned into a new user namespace: denies `setgroups`
/// and maps its own uid and gid, as an unprivileged process may. Returns 0,
/// or -1 with errno set.
///
/// # Safety
/// Async-signal-safe: only open/write/close on memory built beforehand.
pub unsafe fn write_id_maps(maps: &IdMaps) -> i32 {
    let files: [(&std::ffi::CStr, &[u8]); 3] = [
        (c"/proc/self/setgroups", b"deny"),
        (c"/proc/self/gid_map", maps.gid_map.as_bytes()),
        (c"/proc/self/uid_map", maps.uid_map.as_bytes()),
    ];
    for (path, bytes) in files {
        // SAFETY: plain syscalls on a NUL-terminated path and a live buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd == -1 {
                return -1;
            }
            let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            libc::close(fd);
            if n != bytes.len() as isize {
                return -1;
            }
        }
    }
    0
}

/// The identity of a process's PID namespace: the inode of `/proc/<pid>/ns/pid`.
pub fn ns_of(pid: i32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// This process's PID namespace.
pub fn own_ns() -> Option<u64> {
    fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino())
}

/// Live processes in the namespace `ns` but `init`, by their pids as this
/// process sees them. Scans all of `/proc`: only for terminating and
/// reporting, never on the hot path.
pub fn members(ns: u64, init: i32) -> Vec<i32> {
    procfs::all_pids()
        .into_iter()
        .filter(|&pid| pid != init && is_member(ns, pid))
        .collect()
}

pub fn is_member(ns: u64, pid: i32) -> bool {
    ns_of(pid) == Some(ns) && procfs::stat(pid).is_some_and(|s| !s.is_zombie())
}

/// The init's arguments after `warden`: `__init ERR_FD STATUS_FD PROGRAM ARGV…`.
pub fn init_args(err_fd: i32, status_fd: i32, program: &CString, argv: &[CString]) -> Vec<CString> {
    let num = |n: i32| CString::new(n.to_string()).unwrap_or_default();
    let mut args = vec![
        c"warden".to_owned(),
        CString::new(INIT_ARG).unwrap_or_default(),
        num(err_fd),
        num(status_fd),
        program.clone(),
    ];
    args.extend(argv.iter().cloned());
    args
}

/// `warden __init ERR_FD STATUS_FD PROGRAM ARGV…`: the namespace's PID 1.
/// Forks and execs the batch's program (a failed exec is reported on
/// ERR_FD, as warden's own spawn does), reaps every child, writes the
/// program's raw wait status (4 bytes, native order) to STATUS_FD when it
/// ends, and exits once no child is left. Never returns.
pub fn init_main(args: Vec<OsString>) -> ! {
    let fd = |i: usize| {
        args.get(i)
            .and_then(|a| a.to_str())
            .and_then(|s| s.parse::<i32>().ok())
    };
    let (Some(err_fd), Some(status_fd)) = (fd(2), fd(3)) else {
        eprintln!("warden {INIT_ARG}: internal mode, started by warden only");
        std::process::exit(2);
    };
    let cstrings: Option<Vec<CString>> = args[4.min(args.len())..]
        .iter()
        .map(|a| CString::new(a.clone().into_vec()).ok())
        .collect();
    let Some(cstrings) = cstrings.filter(|c| c.len() >= 2) else {
        std::process::exit(2);
    };
    let program = &cstrings[0];
    let mut argv: Vec<*const libc::c_char> = cstrings[1..].iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: plain libc calls on fds we were given and memory we own; the
    // forked child (this process is single-threaded) only makes
    // async-signal-safe calls before exec or _exit.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            libc::fcntl(err_fd, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::close(status_fd);
            // Rust's runtime ignores SIGPIPE; a fresh program expects the default.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::execv(program.as_ptr(), argv.as_ptr());
            report_errno(err_fd);
            libc::_exit(127);
        }
        if child == -1 {
            report_errno(err_fd);
            libc::_exit(127);
        }
        libc::close(err_fd);
        // The init must not hold the batch's output open: only the batch's
        // own processes decide when its output ends.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for to in 0..3 {
                libc::dup2(null, to);
            }
            if null > 2 {
                libc::close(null);
            }
        }
        let mut status_fd = status_fd;
        loop {
            let mut status = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == child && status_fd >= 0 {
                let bytes = status.to_ne_bytes();
                libc::write(status_fd, bytes.as_ptr().cast(), bytes.len());
                libc::close(status_fd);
                status_fd = -1;
            } else if pid == -1 && *libc::__errno_location() != libc::EINTR {
                // ECHILD: the namespace is empty but for us.
                libc::_exit(0);
            }
        }
    }
}

/// Writes errno to `fd`, as warden's spawn reads a failed exec.
///
/// # Safety
/// Async-signal-safe; `fd` may be any number.
unsafe fn report_errno(fd: i32) {
    // SAFETY: reads this thread's errno and writes 4 bytes of a local
    // buffer; a bad `fd` only makes the write fail.
    unsafe {
        let bytes = (*libc::__errno_location()).to_ne_bytes();
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    }
}

/// The exit of a raw wait status as the init reported it.
pub fn exit_of_raw(status: i32) -> crate::status::Exit {
    if libc::WIFSIGNALED(status) {
        crate::status::Exit::Signal(libc::WTERMSIG(status))
    } else {
        crate::status::Exit::Code(libc::WEXITSTATUS(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_statuses() {
        assert_eq!(exit_of_raw(0), crate::status::Exit::Code(0));
        assert_eq!(exit_of_raw(3 << 8), crate::status::Exit::Code(3));
        assert_eq!(exit_of_raw(libc::SIGKILL), crate::status::Exit::Signal(9));
    }

    #[test]
    fn own_namespace_is_known() {
        let me = std::process::id() as i32;
        assert_eq!(ns_of(me), own_ns());
        assert!(own_ns().is_some());
    }
}
