//! Creating the child process.
//!
//! Like glibc's `posix_spawn`, the child shares warden's memory and runs on
//! its own small stack until it execs (`CLONE_VM | CLONE_VFORK`): no page
//! tables are copied and warden's other threads take no copy-on-write faults
//! (with their TLB-shootdown interrupts), which made up most of the cost of
//! starting a short batch. Unlike `posix_spawn`, it can arm PDEATHSIG, and
//! `CLONE_INTO_CGROUP` starts the child in its batch's cgroup.
//!
//! Returning from the clone syscall on a fresh stack needs a few
//! instructions of assembly, written for x86_64 and aarch64; elsewhere the
//! child is a plain copy of warden (`clone3` without `CLONE_VM`, or `fork`).

use std::io;
use std::os::fd::RawFd;
use std::sync::Mutex;

/// `CLONE_INTO_CGROUP` (Linux 5.7), absent from the libc crate.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// The child's stack until exec. It only calls a few libc wrappers.
const STACK_SIZE: usize = 128 * 1024;

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What the child runs: never returns (it execs or `_exit`s).
pub type ChildFn = unsafe extern "C" fn(arg: *mut libc::c_void) -> !;

/// One stack, reused: spawns are serialised (the reaper's lock), and with
/// `CLONE_VFORK` the clone returns only once the child has exec'd or exited.
static STACK: Mutex<Option<Box<[u8]>>> = Mutex::new(None);

/// Where the child starts, as the child reads it (in `arg`'s memory, set
/// before each clone attempt).
#[derive(Debug, Default, Clone, Copy)]
pub struct Placed {
    /// Already in the cgroup (else it must move itself there).
    pub in_cgroup: bool,
    /// PID 1 of a new PID namespace.
    pub in_pid_ns: bool,
    /// In a new user namespace too, whose id maps it must write itself.
    pub in_user_ns: bool,
}

/// Starts `child(arg)` in a new process; returns its pid in the parent once
/// the child has exec'd or exited. Before each attempt `*placed` (which
/// must point into `arg`'s memory) says whether the child will already run
/// in `cgroup_dir`, or must move itself there, and whether it is the init
/// of new namespaces (asked for with `ns_flags`, `CLONE_NEWPID` and maybe
/// `CLONE_NEWUSER`, or 0; not had where the kernel refuses them, or on the
/// fork fallback).
///
/// # Safety
/// `child` must only make async-signal-safe calls and must exec or `_exit`;
/// with a shared address space it must not touch what other threads use.
pub unsafe fn spawn(
    cgroup_dir: Option<RawFd>,
    ns_flags: libc::c_int,
    child: ChildFn,
    arg: *mut libc::c_void,
    placed: *mut Placed,
) -> io::Result<i32> {
    let mut stack = STACK.lock().unwrap_or_else(|p| p.into_inner());
    let stack = stack.get_or_insert_with(|| vec![0u8; STACK_SIZE].into_boxed_slice());
    // Handlers of warden's (tokio's) must not run in the child on warden's
    // memory: block everything across the clone; the child resets handlers
    // to default before it unblocks.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    let mut result = unsafe { spawn_blocked(cgroup_dir, ns_flags, child, arg, placed, stack) };
    // A namespace the kernel won't make here (nesting or count limits, a
    // seccomp policy): this batch goes without.
    if ns_flags != 0
        && let Err(e) = &result
        && matches!(
            e.raw_os_error(),
            Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOMEM)
        )
    {
        result = unsafe { spawn_blocked(cgroup_dir, 0, child, arg, placed, stack) };
    }
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

unsafe fn spawn_blocked(
    cgroup_dir: Option<RawFd>,
    ns_flags: libc::c_int,
    child: ChildFn,
    arg: *mut libc::c_void,
    placed: *mut Placed,
    stack: &mut [u8],
) -> io::Result<i32> {
    let mut flags = 0u64;
    if let Some(_dir) = cgroup_dir {
        flags |= CLONE_INTO_CGROUP;
    }
    flags |= ns_flags as u64;
    let pid_ns = ns_flags != 0;
    unsafe {
        *placed = Placed {
            in_cgroup: cgroup_dir.is_some(),
            in_pid_ns: pid_ns,
            in_user_ns: ns_flags & libc::CLONE_NEWUSER != 0,
        }
    };
    if SHARED_VM {
        // The stack grows down from its 16-byte-aligned top.
        let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
        let base = stack.as_mut_ptr() as u64;
        let mut args = CloneArgs {
            flags: flags | libc::CLONE_VM as u64 | libc::CLONE_VFORK as u64,
            exit_signal: libc::SIGCHLD as u64,
            stack: base,
            stack_size: (top as u64) - base,
            cgroup: cgroup_dir.map_or(0, |fd| fd as u64),
            ..CloneArgs::default()
        };
        let pid = unsafe { clone3_on_stack(&mut args, child, arg) };
        if pid > 0 {
            return Ok(pid as i32);
        }
        if !clone3_missing(-pid as i32) || (pid_ns && -pid as i32 == libc::EINVAL) {
            return Err(io::Error::from_raw_os_error(-pid as i32));
        }
    } else if cgroup_dir.is_some() || pid_ns {
        let mut args = CloneArgs {
            flags,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: cgroup_dir.map_or(0, |fd| fd as u64),
            ..CloneArgs::default()
        };
        // SAFETY: without CLONE_VM this duplicates the process like fork.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &mut args as *mut CloneArgs,
                size_of::<CloneArgs>(),
            )
        };
        match pid {
            0 => unsafe { child(arg) },
            p if p > 0 => return Ok(p as i32),
            _ => {
                let err = io::Error::last_os_error();
                if !clone3_missing(err.raw_os_error().unwrap_or(0)) {
                    return Err(err);
                }
            }
        }
    }
    // A plain fork: neither in the cgroup nor in a namespace of its own.
    unsafe { *placed = Placed::default() };
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => unsafe { child(arg) },
        pid => Ok(pid),
    }
}

/// Kernels before 5.3 lack clone3; before 5.7, CLONE_INTO_CGROUP.
fn clone3_missing(errno: i32) -> bool {
    matches!(errno, libc::ENOSYS | libc::E2BIG | libc::EINVAL)
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const SHARED_VM: bool = true;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const SHARED_VM: bool = false;

/// clone3 whose child starts on `args.stack` and calls `child(arg)`.
/// Returns the pid, or a negated errno.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_on_stack(args: &mut CloneArgs, child: ChildFn, arg: *mut libc::c_void) -> isize {
    let ret: isize;
    // SAFETY: the syscall preserves every register but rax, rcx and r11, so
    // the child finds `child` and `arg` in r12/r13 on its new, 16-byte
    // aligned stack; `call` leaves it aligned as the ABI wants at entry.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r13",
            "call r12",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") args as *mut CloneArgs,
            in("rsi") size_of::<CloneArgs>(),
            in("r12") child,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn clone3_on_stack(args: &mut CloneArgs, child: ChildFn, arg: *mut libc::c_void) -> isize {
    let ret: isize;
    // SAFETY: as for x86_64: every register but x0 survives the syscall,
    // so the child finds `child` and `arg` in x9/x10.
    unsafe {
        std::arch::asm!(
            "svc #0",
            "cbnz x0, 2f",
            "mov x29, #0",
            "mov x30, #0",
            "mov x0, x10",
            "blr x9",
            "brk #0",
            "2:",
            inlateout("x0") args as *mut CloneArgs as isize => ret,
            in("x1") size_of::<CloneArgs>(),
            in("x8") libc::SYS_clone3,
            in("x9") child,
            in("x10") arg,
            options(nostack)
        );
    }
    ret
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn clone3_on_stack(_: &mut CloneArgs, _: ChildFn, _: *mut libc::c_void) -> isize {
    -(libc::ENOSYS as isize)
}
