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
//! reported as leaked. Instead the namespace's init is warden's own
//! (`spawn/init.rs`: sharing warden's memory, never exec'd): it starts the
//! batch's program (PID 2), reaps everything re-parented to it, writes the
//! program's wait status to a pipe warden reads (the init's own exit can't
//! carry a signal: PID 1 can't be killed by most signals), and exits once
//! it has no child left. warden's other layers (cgroup or process
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

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::supervisor::procfs;
use crate::supervisor::raw;

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
            let r = if libc::unshare(kind.clone_flags()) == -1 {
                -(*libc::__errno_location() as isize)
            } else if kind == Kind::User {
                write_id_maps(&maps)
            } else {
                0
            };
            libc::_exit((-r) as i32 & 0xff)
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
/// or a negated errno.
///
/// # Safety
/// Bare open/write/close system calls on memory built beforehand: fit for
/// a child sharing warden's memory (no errno, no allocation, no locks).
pub unsafe fn write_id_maps(maps: &IdMaps) -> isize {
    let files: [(&std::ffi::CStr, &[u8]); 3] = [
        (c"/proc/self/setgroups", b"deny"),
        (c"/proc/self/gid_map", maps.gid_map.as_bytes()),
        (c"/proc/self/uid_map", maps.uid_map.as_bytes()),
    ];
    for (path, bytes) in files {
        // SAFETY: bare system calls (no errno: the caller may share warden's
        // memory) on a NUL-terminated path and a live buffer.
        unsafe {
            let fd = raw::open(path, libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return fd;
            }
            let n = raw::write(fd as i32, bytes);
            raw::close(fd as i32);
            if n < 0 {
                return n;
            }
            if n != bytes.len() as isize {
                return -(libc::EIO as isize);
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
