//! The system calls a child makes between clone and exec, as bare `syscall`
//! instructions.
//!
//! A child cloned with `CLONE_VM` runs in warden's memory with the thread
//! pointer of the thread that cloned it. libc's wrappers write `errno`
//! through that pointer, into the *spawning thread's* thread-local storage,
//! and some (cancellation points) update its thread descriptor. With
//! `CLONE_VFORK` that thread is suspended, so it does not matter; a
//! namespace's init shares warden's memory for the batch's whole life while
//! the spawning thread runs on (see `init.rs`). So the child code calls
//! these instead: each returns the kernel's result, a negated errno on
//! failure, and touches nothing but its arguments: no `errno`, no TLS, no
//! allocation, no locks.
//!
//! On architectures without the assembly here, children are copies of
//! warden (`spawn/clone.rs`), where libc's `syscall` writing `errno` into the
//! copy is harmless; it is used instead.

#![allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

use std::ffi::CStr;

/// `syscall(nr, a..f)`: the kernel's return value (`-errno` on failure).
///
/// # Safety
/// As for the system call `nr` with these arguments.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn syscall6(
    nr: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the call; the kernel clobbers only
    // rax (the result), rcx and r11; memory may be read or written by it.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") e,
            in("r9") f,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
unsafe fn syscall6(
    nr: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    let ret: isize;
    // SAFETY: the caller vouches for the call; the kernel returns in x0 and
    // preserves every other register.
    unsafe {
        std::arch::asm!(
            "svc #0",
            in("x8") nr,
            inlateout("x0") a as isize => ret,
            in("x1") b,
            in("x2") c,
            in("x3") d,
            in("x4") e,
            in("x5") f,
            options(nostack)
        );
    }
    ret
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn syscall6(
    nr: libc::c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    // SAFETY: the caller vouches for the call. Here every child is a copy
    // of warden (no CLONE_VM without this file's assembly), so the errno
    // libc writes is the copy's own.
    unsafe {
        let r = libc::syscall(nr, a, b, c, d, e, f);
        if r == -1 {
            -(*libc::__errno_location() as isize)
        } else {
            r as isize
        }
    }
}

/// A kernel `struct sigaction` (x86_64 and aarch64 both have `sa_restorer`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The kernel's signal set size (`_NSIG / 8`); signals are 1 to 64.
const SIGSET_SIZE: usize = 8;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const NSIG: i32 = 64;

/// Opens `path` (relative to the working directory).
///
/// # Safety
/// A plain system call; the caller owns what it does with the fd.
pub unsafe fn open(path: &CStr, flags: i32) -> isize {
    // SAFETY: a NUL-terminated path that lives across the call.
    unsafe {
        syscall6(
            libc::SYS_openat,
            libc::AT_FDCWD as usize,
            path.as_ptr() as usize,
            flags as usize,
            0,
            0,
            0,
        )
    }
}

/// # Safety
/// A plain system call on an fd of the caller's.
pub unsafe fn write(fd: i32, bytes: &[u8]) -> isize {
    // SAFETY: reads `bytes`, which live across the call.
    unsafe {
        syscall6(
            libc::SYS_write,
            fd as usize,
            bytes.as_ptr() as usize,
            bytes.len(),
            0,
            0,
            0,
        )
    }
}

/// # Safety
/// Closes whatever `fd` is in this process.
pub unsafe fn close(fd: i32) -> isize {
    // SAFETY: integers only.
    unsafe { syscall6(libc::SYS_close, fd as usize, 0, 0, 0, 0, 0) }
}

/// `close_range(first, last, 0)`.
///
/// # Safety
/// Closes whatever the range holds in this process.
pub unsafe fn close_range(first: u32, last: u32) -> isize {
    // SAFETY: integers only.
    unsafe {
        syscall6(
            libc::SYS_close_range,
            first as usize,
            last as usize,
            0,
            0,
            0,
            0,
        )
    }
}

/// The soft `RLIMIT_NOFILE`, or `-errno`.
///
/// # Safety
/// A plain system call.
pub unsafe fn nofile_limit() -> isize {
    let mut limit = [0u64; 2];
    // SAFETY: prlimit64 of this process writes two u64s into `limit`.
    let r = unsafe {
        syscall6(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NOFILE as usize,
            0,
            limit.as_mut_ptr() as usize,
            0,
            0,
        )
    };
    if r < 0 {
        r
    } else {
        limit[0].min(isize::MAX as u64) as isize
    }
}

/// Makes `to` a copy of `from` (which must differ), without CLOEXEC.
///
/// # Safety
/// Replaces whatever `to` was in this process.
pub unsafe fn dup2(from: i32, to: i32) -> isize {
    // SAFETY: integers only.
    unsafe { syscall6(libc::SYS_dup3, from as usize, to as usize, 0, 0, 0, 0) }
}

/// Clears `fd`'s CLOEXEC flag.
///
/// # Safety
/// A plain system call.
pub unsafe fn clear_cloexec(fd: i32) -> isize {
    // SAFETY: integers only.
    unsafe {
        syscall6(
            libc::SYS_fcntl,
            fd as usize,
            libc::F_SETFD as usize,
            0,
            0,
            0,
            0,
        )
    }
}

/// # Safety
/// Changes this process's working directory.
pub unsafe fn chdir(path: &CStr) -> isize {
    // SAFETY: a NUL-terminated path that lives across the call.
    unsafe { syscall6(libc::SYS_chdir, path.as_ptr() as usize, 0, 0, 0, 0, 0) }
}

/// `setpgid(0, 0)`: a process group of its own.
///
/// # Safety
/// A plain system call.
pub unsafe fn own_process_group() -> isize {
    // SAFETY: integers only.
    unsafe { syscall6(libc::SYS_setpgid, 0, 0, 0, 0, 0, 0) }
}

/// `prctl(PR_SET_PDEATHSIG, SIGKILL)`.
///
/// # Safety
/// A plain system call.
pub unsafe fn kill_on_parent_death() -> isize {
    // SAFETY: integers only.
    unsafe {
        syscall6(
            libc::SYS_prctl,
            libc::PR_SET_PDEATHSIG as usize,
            libc::SIGKILL as usize,
            0,
            0,
            0,
            0,
        )
    }
}

/// # Safety
/// A plain system call.
pub unsafe fn getppid() -> isize {
    // SAFETY: no arguments.
    unsafe { syscall6(libc::SYS_getppid, 0, 0, 0, 0, 0, 0) }
}

/// Whether `fd` polls readable right now (1), not (0), or `-errno`.
///
/// # Safety
/// A plain system call.
pub unsafe fn readable(fd: i32) -> isize {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let zero = [0i64; 2];
    // SAFETY: ppoll (aarch64 has no poll) on one pollfd and a zero timeout,
    // both locals; no signal mask.
    unsafe {
        syscall6(
            libc::SYS_ppoll,
            &raw mut pfd as usize,
            1,
            zero.as_ptr() as usize,
            0,
            SIGSET_SIZE,
            0,
        )
    }
}

/// Resets every caught signal to its default action, and SIGPIPE (which
/// Rust ignores) too: a handler of warden's must not run in the child, and
/// a fresh program expects SIGPIPE's default.
///
/// # Safety
/// Changes this process's signal dispositions (not warden's: the child is
/// cloned without `CLONE_SIGHAND`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub unsafe fn reset_signals() {
    for sig in 1..=NSIG {
        let mut old = KernelSigaction::default();
        // SAFETY: reads the disposition into a local.
        let r = unsafe {
            syscall6(
                libc::SYS_rt_sigaction,
                sig as usize,
                0,
                &raw mut old as usize,
                SIGSET_SIZE,
                0,
                0,
            )
        };
        if r == 0
            && old.handler != libc::SIG_DFL
            && (old.handler != libc::SIG_IGN || sig == libc::SIGPIPE)
        {
            let default = KernelSigaction::default();
            // SAFETY: installs SIG_DFL (all zero) from a local.
            unsafe {
                syscall6(
                    libc::SYS_rt_sigaction,
                    sig as usize,
                    &raw const default as usize,
                    0,
                    SIGSET_SIZE,
                    0,
                    0,
                );
            }
        }
    }
}

/// Elsewhere the child is a copy of warden (see the module doc): libc's
/// `sigaction`, whose `struct sigaction` matches the architecture's.
///
/// # Safety
/// As above.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub unsafe fn reset_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        // SAFETY: reads and sets this (copied) process's dispositions
        // through locals.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction != libc::SIG_DFL
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
            {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// Unblocks every signal.
///
/// # Safety
/// Handlers of warden's must be reset first ([`reset_signals`]).
pub unsafe fn unblock_signals() -> isize {
    let empty = 0u64;
    // SAFETY: sets this thread's mask from a local.
    unsafe {
        syscall6(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &raw const empty as usize,
            0,
            SIGSET_SIZE,
            0,
            0,
        )
    }
}

/// Returns only on failure, with `-errno`.
///
/// # Safety
/// NULL-terminated arrays of C strings that live across the call.
pub unsafe fn execve(
    program: &CStr,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> isize {
    // SAFETY: as the caller promised.
    unsafe {
        syscall6(
            libc::SYS_execve,
            program.as_ptr() as usize,
            argv as usize,
            envp as usize,
            0,
            0,
            0,
        )
    }
}

/// `waitpid(-1, &status, 0)`: `(pid or -errno, raw status)`.
///
/// # Safety
/// A plain system call.
pub unsafe fn wait_any() -> (isize, i32) {
    let mut status = 0i32;
    // SAFETY: wait4 writes the status into a local; no rusage.
    let pid = unsafe {
        syscall6(
            libc::SYS_wait4,
            usize::MAX, // -1: any child
            &raw mut status as usize,
            0,
            0,
            0,
            0,
        )
    };
    (pid, status)
}

/// Ends this process (`exit_group`; a child cloned without `CLONE_THREAD`
/// is a group of its own).
///
/// # Safety
/// Runs no destructors or atexit handlers, as `_exit`.
pub unsafe fn exit(code: i32) -> ! {
    loop {
        // SAFETY: integers only; does not return.
        unsafe { syscall6(libc::SYS_exit_group, code as usize, 0, 0, 0, 0, 0) };
    }
}
