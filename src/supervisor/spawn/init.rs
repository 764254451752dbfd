//! PID 1 of a batch's namespace, in place: a process that shares warden's
//! memory and never execs.
//!
//! The namespace's first process is cloned with `CLONE_VM` but without
//! `CLONE_VFORK`: it runs in warden's address space, on a stack of its own
//! (`clone.rs`, [`super::clone::spawn`]), while warden goes on. It starts
//! the batch's program as PID 2, reaps every orphan re-parented to it,
//! writes the program's raw wait status (4 bytes, native order) to the
//! status pipe, and exits once no child is left. Why an init of warden's
//! and not the program itself is in `supervisor::pidns`.
//!
//! **Why shared, not copied or exec'd.** Re-executing warden's 16 MB binary
//! (`warden __init`, before issue 14) cost dynamic loading, relocations and
//! the runtime's start: about 2.5 ms a batch. A fork-style copy that never
//! execs avoided that but write-protected all of warden's memory at every
//! batch: warden then took ~95 copy-on-write faults a batch (~145 with the
//! history's SQLite and sqlx threads), and the clone copied its page tables
//! (bench/ANALYSIS.md). Sharing the memory costs neither.
//!
//! **What sharing demands.** The init runs alongside warden's threads with
//! the thread pointer of the spawner thread that cloned it, so it makes
//! only bare system calls ([`crate::supervisor::raw`]): no `errno` (it would land in
//! that thread's TLS), no allocation, no locks, nothing of warden's but
//! its `ChildArgs`. Those it reads only until its PID 2 has exec'd; the
//! parent keeps them alive until then (the error pipe's EOF, which the
//! init's copy of the write end holds off: it closes it only after its last
//! read of them). Its stack stays mapped until the kernel reports the init
//! gone (`CLONE_CHILD_CLEARTID`, see `clone.rs`). Its signal handlers are
//! its own (no `CLONE_SIGHAND`), reset to the defaults before anything
//! else unblocks.
//!
//! **Descriptors.** The init has its own fd table, a copy of warden's with
//! every fd warden had open, including other batches' output pipes and
//! logs; holding one would keep that batch's output from ending. So the
//! init's first act is to close all but stdio (already the batch's) and
//! its two pipes.

use super::{ChildArgs, EXEC_FAILED, clone, program_child};
use crate::supervisor::raw;

/// Runs the init. `a.placed.vfork_stack` is the spawning thread's clone
/// stack, unused until the spawn ends (the error pipe's EOF): PID 2 runs
/// on it until it execs.
///
/// # Safety
/// Only in the namespace's first process, with `a` pointing at the
/// `ChildArgs` the parent keeps alive until the error pipe's EOF; stdio,
/// working directory, process group and signal state already set up.
pub(super) unsafe fn run(a: &ChildArgs) -> ! {
    // Everything read from `a` after PID 2 has exec'd, copied now.
    let (err_fd, status_fd) = (a.err_fd, a.status_fd);
    // SAFETY: bare system calls on fds this process owns; `a` and the
    // spawning thread's stack are the parent's until the error pipe's EOF,
    // which cannot come before our `close(err_fd)` below; PID 2 shares our
    // memory but we are suspended until it execs or exits (CLONE_VFORK).
    unsafe {
        close_all_but(&[err_fd, status_fd]);
        let arg = std::ptr::from_ref(a).cast_mut().cast::<libc::c_void>();
        let mut child = clone::vfork_child(a.placed.vfork_stack, program_child, arg);
        if child == -libc::ENOSYS as isize {
            // No clone3-on-a-stack for this architecture, where the init is
            // a copy of warden (clone.rs): a plain fork of that copy.
            child = match libc::fork() {
                0 => program_child(arg),
                -1 => -(*libc::__errno_location() as isize),
                pid => pid as isize,
            };
        }
        if child < 0 {
            raw::write(err_fd, &(-child as i32).to_ne_bytes());
            raw::exit(EXEC_FAILED);
        }
        // PID 2 has exec'd (or reported why not): the error pipe ends with
        // its copy. From here on nothing of warden's memory is read. The
        // init must not hold the batch's output open either: only the
        // batch's own processes decide when it ends.
        raw::close(err_fd);
        let null = raw::open(c"/dev/null", libc::O_RDWR);
        if null >= 0 {
            let null = null as i32;
            for to in 0..3 {
                if to != null {
                    raw::dup2(null, to);
                }
            }
            if null > 2 {
                raw::close(null);
            }
        }
        let mut status_fd = status_fd;
        loop {
            let (pid, status) = raw::wait_any();
            if pid == child && status_fd >= 0 {
                raw::write(status_fd, &status.to_ne_bytes());
                raw::close(status_fd);
                status_fd = -1;
            } else if pid < 0 && pid != -(libc::EINTR as isize) {
                // ECHILD: the namespace is empty but for us.
                raw::exit(0);
            }
        }
    }
}

/// Closes every fd from 3 up but those in `keep`.
///
/// # Safety
/// Bare system calls; only for a process about to own nothing else.
unsafe fn close_all_but(keep: &[i32; 2]) {
    let mut keep = *keep;
    keep.sort_unstable();
    let mut from = 3u32;
    for k in keep.into_iter().filter(|&k| k >= 3).map(|k| k as u32) {
        // SAFETY: closes a range of this process's fds.
        unsafe { close_range(from, k - 1) };
        from = k + 1;
    }
    // SAFETY: as above.
    unsafe { close_range(from, u32::MAX) };
}

/// `close_range(first, last)`, or a loop of `close` where the kernel lacks
/// it (before 5.9).
///
/// # Safety
/// Bare system calls; closes whatever the range holds.
unsafe fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: the syscall takes plain integers.
    if unsafe { raw::close_range(first, last) } == 0 {
        return;
    }
    // SAFETY: reads this process's limit.
    let limit = unsafe { raw::nofile_limit() };
    let cap = if limit > 0 {
        limit.min(1 << 20) as u32
    } else {
        1024
    };
    for fd in first..=last.min(cap.saturating_sub(1)) {
        // SAFETY: closing an fd number; EBADF where none is open.
        unsafe { raw::close(fd as i32) };
    }
}
