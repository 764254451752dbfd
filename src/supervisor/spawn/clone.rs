//! Creating the child process.
//!
//! Like glibc's `posix_spawn`, the child shares warden's memory and runs on
//! its own small stack until it execs (`CLONE_VM | CLONE_VFORK`): no page
//! tables are copied and warden's other threads take no copy-on-write faults
//! (with their TLB-shootdown interrupts), which made up most of the cost of
//! starting a short batch. Unlike `posix_spawn`, it can arm PDEATHSIG, and
//! `CLONE_INTO_CGROUP` starts the child in its batch's cgroup.
//!
//! The stack is each spawner thread's own mapping with an inaccessible
//! guard region below it, so a child that overflowed it would fault instead
//! of corrupting warden's memory. `CLONE_VFORK` suspends only the spawning
//! thread, a spawner thread (see `spawner.rs`), never the runtime.
//!
//! A PID namespace's init (`init.rs`) shares warden's memory too, but lives
//! as long as its batch, so it is cloned without `CLONE_VFORK`, on a stack
//! of its own from a pool. The kernel says when the init is gone: with
//! `CLONE_CHILD_CLEARTID` it zeroes the stack's `busy` word (in warden's
//! memory) once the init has exited, as it does for a thread's stack; only
//! then is the stack handed out again. Stacks are never unmapped: the pool
//! holds as many as inits ever ran at once.
//!
//! Returning from the clone syscall on a fresh stack needs a few
//! instructions of assembly, written for x86_64 and aarch64; elsewhere the
//! child is a plain copy of warden (`clone3` without `CLONE_VM`, or `fork`).

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// `CLONE_INTO_CGROUP` (Linux 5.7), absent from the libc crate.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// The child's stack until exec. It only calls a few libc wrappers.
const STACK_SIZE: usize = 128 * 1024;
/// Below the stack, never mapped readable: an overflow faults (and kills
/// only the child) instead of writing into whatever lies below.
const GUARD_SIZE: usize = 64 * 1024;

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

/// A child stack: an anonymous mapping whose lowest `GUARD_SIZE` bytes are
/// inaccessible.
struct Stack {
    map: *mut libc::c_void,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                GUARD_SIZE + STACK_SIZE,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { map };
        // SAFETY: the range lies inside the mapping just made (GUARD_SIZE is
        // a multiple of every page size Linux uses, up to 64 KiB).
        let usable = unsafe { stack.map.cast::<u8>().add(GUARD_SIZE) };
        // SAFETY: changes the protection of our own fresh mapping only.
        if unsafe {
            libc::mprotect(
                usable.cast(),
                STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The lowest usable address and the usable length.
    fn usable(&self) -> (u64, u64) {
        (self.map as u64 + GUARD_SIZE as u64, STACK_SIZE as u64)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once; no child runs on it (the
        // clone returned, so its child has exec'd or exited).
        unsafe { libc::munmap(self.map, GUARD_SIZE + STACK_SIZE) };
    }
}

thread_local! {
    /// Each spawning thread's stack, reused: with `CLONE_VFORK` the clone
    /// returns only once the child has exec'd or exited, so one spawn per
    /// thread uses it at a time.
    static STACK: RefCell<Option<Stack>> = const { RefCell::new(None) };
}

/// A stack in the init pool, and whether an init may still run on it.
struct InitStack {
    stack: Stack,
    /// Nonzero from just before the clone until the kernel zeroes it when
    /// the init exits (`CLONE_CHILD_CLEARTID`). Never freed, like the pool.
    busy: &'static AtomicU32,
}

// SAFETY: the mapping belongs to the pool, not to a thread; it is used by
// one init at a time, as `busy` says.
unsafe impl Send for InitStack {}

/// The stacks of namespace inits; entries are never removed.
static INIT_STACKS: Mutex<Vec<InitStack>> = Mutex::new(Vec::new());

/// A free stack from the pool, marked busy: `(base, size, busy)`. Maps a
/// new one when every stack is in use.
fn take_init_stack() -> io::Result<(u64, u64, &'static AtomicU32)> {
    // A poisoned pool is still a valid pool: entries are pushed whole.
    let mut pool = INIT_STACKS.lock().unwrap_or_else(|p| p.into_inner());
    // Acquire: the exited init's last uses of the stack happen before the
    // kernel's store of 0.
    let free = match pool.iter().find(|s| s.busy.load(Ordering::Acquire) == 0) {
        Some(free) => free,
        None => {
            let stack = Stack::new()?;
            pool.push(InitStack {
                stack,
                busy: Box::leak(Box::new(AtomicU32::new(0))),
            });
            &pool[pool.len() - 1]
        }
    };
    free.busy.store(1, Ordering::Relaxed);
    let (base, size) = free.stack.usable();
    Ok((base, size, free.busy))
}

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
    /// The spawning thread's clone stack, which a namespace's init (on a
    /// stack of its own) lends to its PID 2 until that execs: the spawning
    /// thread does not use it before the spawn ends, after PID 2's exec.
    /// `(lowest address, size)`.
    pub vfork_stack: (u64, u64),
}

/// Starts `child(arg)` in a new process; returns its pid in the parent once
/// the child has exec'd or exited. Before each attempt `*placed` (which
/// must point into `arg`'s memory) says whether the child will already run
/// in `cgroup_dir`, or must move itself there, and whether it is the init
/// of new namespaces (asked for with `ns_flags`, `CLONE_NEWPID` and maybe
/// `CLONE_NEWUSER`, or 0; not had where the kernel refuses them, or on the
/// fork fallback). Where the kernel makes one (clone3), the child's pidfd
/// is written to `pidfd` *before the child runs*, so another thread may
/// use it to kill a child whose exec blocks; it stays -1 on the fork path.
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
    pidfd: &AtomicI32,
) -> io::Result<i32> {
    STACK.with(|cell| {
        let mut slot = cell.borrow_mut();
        let stack = match slot.as_mut() {
            Some(stack) => stack,
            None => slot.insert(Stack::new()?),
        };
        // SAFETY: passed on as the caller promised.
        unsafe { spawn_on(stack, cgroup_dir, ns_flags, child, arg, placed, pidfd) }
    })
}

unsafe fn spawn_on(
    stack: &mut Stack,
    cgroup_dir: Option<RawFd>,
    ns_flags: libc::c_int,
    child: ChildFn,
    arg: *mut libc::c_void,
    placed: *mut Placed,
    pidfd: &AtomicI32,
) -> io::Result<i32> {
    // Handlers of warden's (tokio's) must not run in the child on warden's
    // memory: block everything across the clone; the child resets handlers
    // to default before it unblocks.
    // SAFETY: sigset_t is plain data; all-zero is a valid (empty) value.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: sets and reads this thread's mask through valid pointers.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: the caller's promises, passed on; signals are blocked.
    let mut result =
        unsafe { spawn_blocked(cgroup_dir, ns_flags, child, arg, placed, stack, pidfd) };
    // A namespace the kernel won't make here (nesting or count limits, a
    // seccomp policy): this batch goes without.
    if ns_flags != 0
        && let Err(e) = &result
        && matches!(
            e.raw_os_error(),
            Some(libc::EPERM | libc::EINVAL | libc::ENOSPC | libc::EUSERS | libc::ENOMEM)
        )
    {
        // SAFETY: as above.
        result = unsafe { spawn_blocked(cgroup_dir, 0, child, arg, placed, stack, pidfd) };
    }
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

unsafe fn spawn_blocked(
    cgroup_dir: Option<RawFd>,
    ns_flags: libc::c_int,
    child: ChildFn,
    arg: *mut libc::c_void,
    placed: *mut Placed,
    stack: &mut Stack,
    pidfd: &AtomicI32,
) -> io::Result<i32> {
    pidfd.store(-1, std::sync::atomic::Ordering::SeqCst);
    let mut flags = libc::CLONE_PIDFD as u64;
    if let Some(_dir) = cgroup_dir {
        flags |= CLONE_INTO_CGROUP;
    }
    flags |= ns_flags as u64;
    let pid_ns = ns_flags != 0;
    // SAFETY: the caller says `placed` points into live memory of `arg`'s.
    unsafe {
        *placed = Placed {
            in_cgroup: cgroup_dir.is_some(),
            in_pid_ns: pid_ns,
            in_user_ns: ns_flags & libc::CLONE_NEWUSER != 0,
            vfork_stack: stack.usable(),
        }
    };
    // A namespace's init lives as long as its batch: it shares warden's
    // memory without suspending this thread, on a stack of its own that
    // the kernel marks free when the init exits (see init.rs).
    if SHARED_VM && pid_ns {
        let (base, size, busy) = take_init_stack()?;
        let mut args = CloneArgs {
            flags: flags | libc::CLONE_VM as u64 | libc::CLONE_CHILD_CLEARTID as u64,
            pidfd: pidfd.as_ptr() as u64,
            child_tid: busy.as_ptr() as u64,
            exit_signal: libc::SIGCHLD as u64,
            stack: base,
            stack_size: size,
            cgroup: cgroup_dir.map_or(0, |fd| fd as u64),
            ..CloneArgs::default()
        };
        // SAFETY: `child` and `arg` are as the caller promised (the caller
        // keeps `arg` alive until the child and its PID 2 are done with it,
        // see init.rs); the stack is the init's alone until the kernel
        // zeroes `busy` at its exit.
        let pid = unsafe { clone3_on_stack(&mut args, child, arg) };
        if pid > 0 {
            return Ok(pid as i32);
        }
        // No child: nothing runs on the stack.
        busy.store(0, Ordering::Release);
        if !clone3_missing(-pid as i32) || -pid as i32 == libc::EINVAL {
            return Err(io::Error::from_raw_os_error(-pid as i32));
        }
    } else if SHARED_VM {
        // The kernel starts the child at the top (base + size, page
        // aligned, so 16-byte aligned as both ABIs want); it grows down
        // toward the guard.
        let (base, size) = stack.usable();
        let mut args = CloneArgs {
            flags: flags | libc::CLONE_VM as u64 | libc::CLONE_VFORK as u64,
            pidfd: pidfd.as_ptr() as u64,
            exit_signal: libc::SIGCHLD as u64,
            stack: base,
            stack_size: size,
            cgroup: cgroup_dir.map_or(0, |fd| fd as u64),
            ..CloneArgs::default()
        };
        // SAFETY: `child` and `arg` are as the caller promised; the stack is
        // ours alone until the clone returns (CLONE_VFORK).
        let pid = unsafe { clone3_on_stack(&mut args, child, arg) };
        if pid > 0 {
            return Ok(pid as i32);
        }
        if !clone3_missing(-pid as i32) {
            return Err(io::Error::from_raw_os_error(-pid as i32));
        }
    }
    if !SHARED_VM && (cgroup_dir.is_some() || pid_ns) {
        let mut args = CloneArgs {
            flags,
            pidfd: pidfd.as_ptr() as u64,
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
            // SAFETY: in the child, a copy of this process: `arg` is valid.
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
    // SAFETY: as above, `placed` points into `arg`'s live memory.
    unsafe { *placed = Placed::default() };
    pidfd.store(-1, std::sync::atomic::Ordering::SeqCst);
    // SAFETY: the child only runs `child`, which makes async-signal-safe
    // calls before exec or _exit, as a forked multi-threaded process must.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: in the child, a copy of this process: `arg` is valid.
        0 => unsafe { child(arg) },
        pid => Ok(pid),
    }
}

/// In a namespace's init: starts `child(arg)` on `stack` sharing the
/// init's memory (warden's), as `vfork` would, and returns its pid once it
/// has exec'd or exited, or a negated errno (`-ENOSYS` where no assembly
/// exists for this architecture, where the init is a copy of warden).
///
/// # Safety
/// As for [`spawn`]; `stack` must be a mapping nothing else in this process
/// uses.
pub unsafe fn vfork_child(stack: (u64, u64), child: ChildFn, arg: *mut libc::c_void) -> isize {
    let mut args = CloneArgs {
        flags: libc::CLONE_VM as u64 | libc::CLONE_VFORK as u64,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.0,
        stack_size: stack.1,
        ..CloneArgs::default()
    };
    // SAFETY: the caller's promises; the init is suspended until the child
    // execs or exits, and `arg` and the stack stay the init's until then
    // (see init.rs). A bare system call: no errno.
    unsafe { clone3_on_stack(&mut args, child, arg) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    unsafe extern "C" fn exit_at_once(_: *mut libc::c_void) -> ! {
        // SAFETY: a bare exit_group; the child shares the test's memory.
        unsafe { crate::supervisor::raw::exit(7) }
    }

    /// The pool's contract with the kernel: a stack stays busy while the
    /// child sharing our memory lives and is free once it has exited.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn an_init_stack_is_free_again_once_its_child_exits() {
        let (base, size, busy) = take_init_stack().expect("a stack");
        let (other, _, other_busy) = take_init_stack().expect("a second stack");
        assert_ne!(base, other, "a busy stack was handed out again");
        other_busy.store(0, Ordering::Release);
        let mut args = CloneArgs {
            flags: libc::CLONE_VM as u64 | libc::CLONE_CHILD_CLEARTID as u64,
            child_tid: busy.as_ptr() as u64,
            exit_signal: libc::SIGCHLD as u64,
            stack: base,
            stack_size: size,
            ..CloneArgs::default()
        };
        // SAFETY: the child only makes a bare exit_group on its own stack.
        let pid = unsafe { clone3_on_stack(&mut args, exit_at_once, std::ptr::null_mut()) };
        assert!(pid > 0, "clone3: {}", -pid);
        let mut status = 0;
        // SAFETY: waits for our own child into a local.
        assert_eq!(
            unsafe { libc::waitpid(pid as i32, &mut status, 0) },
            pid as i32
        );
        assert_eq!(libc::WEXITSTATUS(status), 7);
        assert_eq!(
            busy.load(Ordering::Acquire),
            0,
            "the kernel did not free the stack"
        );
        busy.store(0, Ordering::Release);
    }
}
