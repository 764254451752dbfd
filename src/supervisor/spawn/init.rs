//! PID 1 of a batch's namespace, in place: a copy of warden that never
//! execs.
//!
//! The namespace's first process is cloned *without* sharing warden's
//! memory (a copy, as `fork` makes), and it stays that copy: it starts the
//! batch's program as PID 2, reaps every orphan re-parented to it, writes
//! the program's raw wait status (4 bytes, native order) to the status
//! pipe, and exits once no child is left. Why an init of warden's and not
//! the program itself is in `supervisor::pidns`.
//!
//! Not exec'ing anything saves what re-executing warden's 16 MB binary
//! cost (dynamic loading, relocations, the runtime's start: about 2.5 ms a
//! batch here). The price: the init is a copy of a multi-threaded process,
//! so like any child between fork and exec it may only make
//! async-signal-safe calls (no allocation, no locks), and it holds a
//! copy-on-write view of warden's memory for the batch's life.
//!
//! **Descriptors.** The copy starts with every fd warden had open,
//! including other batches' output pipes and logs; holding one would keep
//! that batch's output from ending. So the init's first act is to close
//! all but stdio (already the batch's) and its two pipes.

use super::{ChildArgs, EXEC_FAILED, clone, program_child};

/// Runs the init. `a.placed.vfork_stack` is a stack of warden's the copy
/// does not use (the spawning thread's clone stack) for PID 2.
///
/// # Safety
/// Only in the namespace's first process, a copy of warden (not sharing
/// its memory), with `a` pointing at its copy of the `ChildArgs`; stdio,
/// working directory, process group and signal state already set up.
pub(super) unsafe fn run(a: &ChildArgs) -> ! {
    // SAFETY: raw syscall wrappers on fds this process owns and memory of
    // its own copy; see the function's contract.
    unsafe {
        close_all_but(&[a.err_fd, a.status_fd]);
        let arg = std::ptr::from_ref(a).cast_mut().cast::<libc::c_void>();
        let mut child = clone::vfork_child(a.placed.vfork_stack, program_child, arg);
        if child == -libc::ENOSYS as isize {
            // No clone3-on-a-stack for this architecture: a plain fork (of
            // the init's copy: page tables copied once more).
            child = match libc::fork() {
                0 => program_child(arg),
                -1 => -(*libc::__errno_location() as isize),
                pid => pid as isize,
            };
        }
        if child < 0 {
            let bytes = (-child as i32).to_ne_bytes();
            libc::write(a.err_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(EXEC_FAILED);
        }
        let child = child as i32;
        // PID 2 has exec'd (or reported why not): the error pipe ends with
        // its copy. The init must not hold the batch's output open either:
        // only the batch's own processes decide when it ends.
        libc::close(a.err_fd);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for to in 0..3 {
                libc::dup2(null, to);
            }
            if null > 2 {
                libc::close(null);
            }
        }
        let mut status_fd = a.status_fd;
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

/// Closes every fd from 3 up but those in `keep`.
///
/// # Safety
/// Async-signal-safe; only for a process about to own nothing else.
unsafe fn close_all_but(keep: &[i32]) {
    let mut keep: [i32; 2] = [keep[0], keep[1]];
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
/// Async-signal-safe; closes whatever the range holds.
unsafe fn close_range(first: u32, last: u32) {
    if first > last {
        return;
    }
    // SAFETY: the syscall takes plain integers.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r == 0 {
        return;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: writes the limit into a local.
    let cap = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur.min(1 << 20) as u32
    } else {
        1024
    };
    for fd in first..=last.min(cap.saturating_sub(1)) {
        // SAFETY: closing an fd number; EBADF where none is open.
        unsafe { libc::close(fd as i32) };
    }
}
