//! Starting a batch's main process inside its containment.
//!
//! `std::process::Command` can only fork and then move the child into its
//! cgroup by writing `cgroup.procs`; that migration takes the kernel's
//! cgroup threadgroup lock for writing and waits for an RCU grace period,
//! several milliseconds per batch. `clone3(CLONE_INTO_CGROUP)` creates the
//! child in the cgroup directly, so warden does its own fork/exec: every
//! allocation happens before the clone, and the child only makes raw
//! syscalls until `execve`. Kernels without clone3 get a plain fork and the
//! `cgroup.procs` write. A batch with limits on a hybrid host also has v1
//! groups (`limits`), which no clone flag reaches: the child writes "0"
//! into each one's `cgroup.procs` (paths built before the clone); a batch
//! without limits has none and pays nothing.
//!
//! In the child, before exec: stdin from /dev/null, stdout and stderr to the
//! one output pipe (so the log interleaves them in arrival order), the
//! working directory, a new process group (a Ctrl-C at the terminal reaches
//! warden, not the batch), SIGKILL on warden's death (PDEATHSIG), and the
//! signal mask and SIGPIPE disposition a fresh program expects.
//!
//! All of it runs on warden's spawner threads ([`spawner`]), never on the
//! runtime thread: resolving the program and exec'ing it can block
//! (a binary on a stalled NFS or FUSE mount), and the runtime thread runs
//! the watchdog and every other batch.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::config;
use crate::supervisor::containment::Containment;
use crate::supervisor::pidns;
use crate::supervisor::raw;

mod clone;
mod init;
pub mod spawner;

/// What the child exits with when it cannot exec, as shells do.
const EXEC_FAILED: i32 = 127;

/// What a batch's first process is to be, owned, so that a spawner thread
/// can take it: built on the runtime thread from the batch's config and
/// containment, without touching the filesystem.
pub struct Request {
    command: config::Command,
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    /// The containment cookie's variables.
    cookie: Vec<(String, String)>,
    /// A duplicate of the batch cgroup's directory fd, for CLONE_INTO_CGROUP.
    cgroup_dir: Option<OwnedFd>,
    cgroup_procs: Option<PathBuf>,
    /// The batch's v1 groups' `cgroup.procs` (`limits`), written by the
    /// child whatever way it was started.
    v1_procs: Vec<PathBuf>,
    pid_ns: Option<pidns::Kind>,
    output: OwnedFd,
}

impl Request {
    pub fn new(
        command: &config::Command,
        env: &BTreeMap<String, String>,
        cwd: &Path,
        containment: &Containment,
        v1_procs: Vec<PathBuf>,
        pid_ns: Option<pidns::Kind>,
        output: OwnedFd,
    ) -> io::Result<Request> {
        let cgroup_dir = containment
            .cgroup_dir_fd()
            // SAFETY: the containment's fd, open for the containment's life,
            // which spans this call; duplicated, so the request owns its own.
            .map(|fd| unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned())
            .transpose()?;
        Ok(Request {
            command: command.clone(),
            env: env.clone(),
            cwd: cwd.to_owned(),
            cookie: containment
                .cookie()
                .env()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cgroup_dir,
            cgroup_procs: containment.procs_path(),
            v1_procs,
            pid_ns,
            output,
        })
    }
}

/// A spawn in progress as other threads see it: the child's pidfd, from
/// the moment the kernel made it, so that a child whose exec blocks can be
/// killed (which ends the spawn).
#[derive(Debug)]
pub struct Pending {
    pidfd: AtomicI32,
    /// Set once the spawner owns the pidfd again: `kill` must not touch it.
    done: Mutex<bool>,
}

impl Pending {
    pub fn new() -> Pending {
        Pending {
            pidfd: AtomicI32::new(-1),
            done: Mutex::new(false),
        }
    }

    /// SIGKILLs the child being spawned, if there is one yet and the spawn
    /// has not finished. Returns whether a signal was sent.
    pub fn kill(&self) -> bool {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let fd = self.pidfd.load(Ordering::SeqCst);
        if *done || fd < 0 {
            return false;
        }
        // SAFETY: until `done` is set (under the lock we hold) the spawner
        // neither closes nor hands out this fd, which the kernel made.
        let pidfd = unsafe { BorrowedFd::borrow_raw(fd) };
        rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL).is_ok()
    }

    /// Ends the spawn for `kill`; returns the pidfd, now the caller's.
    fn finish(&self) -> Option<OwnedFd> {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        *done = true;
        let fd = self.pidfd.swap(-1, Ordering::SeqCst);
        // SAFETY: a pidfd the kernel installed for this spawn (clone3 wrote
        // its number), owned by nobody else: `kill` no longer uses it.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl Default for Pending {
    fn default() -> Self {
        Pending::new()
    }
}

/// Everything the child needs, allocated before the clone.
pub struct Prepared<'a> {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
    stdin: BorrowedFd<'a>,
    output: OwnedFd,
    /// The batch cgroup's directory, for CLONE_INTO_CGROUP.
    cgroup_dir: Option<RawFd>,
    /// Its `cgroup.procs`, for the fork fallback (opened by the child).
    cgroup_procs: Option<CString>,
    /// The batch's v1 groups' `cgroup.procs`, written by the child always.
    v1_procs: Vec<CString>,
    /// Keeps `cgroup_dir` open.
    _cgroup_dir_owned: Option<OwnedFd>,
    /// Start the batch in a PID namespace of its own, under warden's init.
    pid_ns: Option<pidns::Kind>,
    /// The id maps a child in a new user namespace writes.
    id_maps: pidns::IdMaps,
}

/// A started batch: the pid of its first process (the program, or the
/// namespace's init), and where the init reports the program's end.
pub struct Spawned {
    pub pid: i32,
    /// Read end of the init's status pipe: 4 bytes (a raw wait status)
    /// when the program ends, EOF if the init died first. `None` without
    /// a namespace: the reaper's status of `pid` is the program's.
    pub status: Option<OwnedFd>,
}

/// A program name as looked up: (name, `PATH`, working directory).
type ProgramKey = (OsString, Option<OsString>, PathBuf);

/// What stays the same from one spawn to the next within a run.
pub struct SpawnCache {
    devnull: OwnedFd,
    /// warden's own pidfd: a child in a new PID namespace sees a parent
    /// pid of 0, so it polls this to learn whether warden died before
    /// PDEATHSIG was armed.
    own_pidfd: Option<OwnedFd>,
    /// The file `execvp` would run for each key.
    programs: Mutex<HashMap<ProgramKey, PathBuf>>,
    /// warden's own uid and gid, as a user namespace maps them.
    id_maps: pidns::IdMaps,
}

impl SpawnCache {
    pub fn new() -> io::Result<SpawnCache> {
        Ok(SpawnCache {
            devnull: OwnedFd::from(std::fs::File::open("/dev/null")?),
            own_pidfd: rustix::process::pidfd_open(
                rustix::process::getpid(),
                rustix::process::PidfdFlags::empty(),
            )
            .ok(),
            programs: Mutex::default(),
            id_maps: pidns::IdMaps::own(),
        })
    }

    fn program(&self, name: &OsStr, path: Option<&OsString>, cwd: &Path) -> io::Result<PathBuf> {
        let key = (name.to_owned(), path.cloned(), cwd.to_owned());
        // A poisoned cache is still a valid cache: entries are inserted whole.
        let mut programs = self.programs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = programs.get(&key) {
            return Ok(found.clone());
        }
        let found = resolve_program(name, path, cwd)?;
        programs.insert(key, found.clone());
        Ok(found)
    }
}

/// Turns a request into what the child needs: the program looked up on
/// `PATH`, the environment, C strings. Touches the filesystem (may block).
pub fn prepare(cache: &SpawnCache, request: Request) -> io::Result<Prepared<'_>> {
    let Request {
        command: what,
        env,
        cwd,
        cookie,
        cgroup_dir,
        cgroup_procs,
        v1_procs,
        pid_ns,
        output,
    } = request;
    let cwd = cwd.as_path();
    let args: Vec<OsString> = match &what {
        config::Command::Argv(argv) => argv.iter().map(OsString::from).collect(),
        config::Command::Shell(script) => vec!["/bin/sh".into(), "-c".into(), script.into()],
    };
    let mut vars: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    vars.extend(env.iter().map(|(k, v)| (k.into(), v.into())));
    for (k, v) in cookie {
        vars.insert(k.into(), v.into());
    }
    if !cwd.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("working directory {} does not exist", cwd.display()),
        ));
    }
    let program = cache.program(&args[0], vars.get(OsStr::new("PATH")), cwd)?;
    let envp = vars
        .into_iter()
        .map(|(mut k, v)| {
            k.push("=");
            k.push(v);
            cstring(k.into_vec())
        })
        .collect::<io::Result<_>>()?;
    let stdin = cache.devnull.as_fd();
    Ok(Prepared {
        program: cstring(program.into_os_string().into_vec())?,
        argv: args
            .into_iter()
            .map(|a| cstring(a.into_vec()))
            .collect::<io::Result<_>>()?,
        envp,
        cwd: cstring(cwd.as_os_str().as_bytes().to_vec())?,
        stdin,
        output,
        cgroup_dir: cgroup_dir.as_ref().map(|fd| fd.as_raw_fd()),
        cgroup_procs: cgroup_procs
            .map(|p| cstring(p.into_os_string().into_vec()))
            .transpose()?,
        v1_procs: v1_procs
            .into_iter()
            .map(|p| cstring(p.into_os_string().into_vec()))
            .collect::<io::Result<_>>()?,
        _cgroup_dir_owned: cgroup_dir,
        pid_ns: pid_ns.filter(|_| cache.own_pidfd.is_some()),
        id_maps: cache.id_maps.clone(),
    })
}

fn cstring(bytes: Vec<u8>) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "NUL byte in argument or environment",
        )
    })
}

/// Finds `name` the way `execvp` would, but in the parent, where we may
/// allocate: a name with a slash is taken as is (relative to the batch's
/// working directory, since the child chdirs before exec); otherwise the
/// first executable file of that name on the batch's `PATH`.
fn resolve_program(name: &OsStr, path: Option<&OsString>, cwd: &Path) -> io::Result<PathBuf> {
    if name.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(name));
    }
    let default = OsString::from("/usr/local/bin:/usr/bin:/bin");
    for dir in std::env::split_paths(path.unwrap_or(&default)) {
        let dir = if dir.is_relative() {
            cwd.join(dir)
        } else {
            dir
        };
        let candidate = dir.join(name);
        if rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok()
            && candidate.is_file()
        {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found on PATH", name.to_string_lossy()),
    ))
}

/// What the child reads, in warden's memory: shared until exec, and by a
/// namespace's init until its PID 2 has exec'd (the error pipe's EOF).
struct ChildArgs<'a> {
    p: &'a Prepared<'a>,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    err_fd: RawFd,
    parent: i32,
    /// warden's pidfd, or -1.
    parent_pidfd: RawFd,
    /// Write end of the init's status pipe (in a namespace), or -1.
    status_fd: RawFd,
    placed: clone::Placed,
}

/// Forks and execs; returns the child's pid once it has exec'd (in a
/// namespace: once the program has). An exec failure (missing program, bad
/// cwd) comes back as an error, with the child already exited (its status
/// goes to the reaper like any other). Blocks as long as the exec does;
/// `pending` lets another thread kill the child meanwhile.
pub fn spawn(p: &Prepared, cache: &SpawnCache, pending: &Pending) -> io::Result<Spawned> {
    let argv = null_terminated(&p.argv);
    let envp = null_terminated(&p.envp);
    // The child reports a failed exec through this pipe; a successful exec
    // closes it (CLOEXEC), so the parent reads EOF. In a namespace, the
    // init passes it on to the program's exec.
    let (err_rx, err_tx) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let status = if p.pid_ns.is_some() {
        Some(rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?)
    } else {
        None
    };
    let status_fd = status.as_ref().map_or(-1, |(_, tx)| tx.as_raw_fd());
    let mut args = ChildArgs {
        p,
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        err_fd: err_tx.as_raw_fd(),
        parent: rustix::process::getpid().as_raw_nonzero().get(),
        parent_pidfd: cache.own_pidfd.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
        status_fd,
        placed: clone::Placed::default(),
    };
    // SAFETY: `child` only makes bare syscalls on `args`, which outlive the
    // child's use of them: with CLONE_VFORK the clone returns only after the
    // child has exec'd or exited; a namespace's init (no CLONE_VFORK) reads
    // them until its PID 2 has exec'd, and this function returns (freeing
    // `args`, `argv`, `envp`) only after the error pipe's EOF, which the
    // init's and PID 2's copies of its write end hold off until then; on
    // the fork path the child has its own copy.
    let pid = unsafe {
        let arg = &raw mut args;
        clone::spawn(
            p.cgroup_dir,
            p.pid_ns.map_or(0, pidns::Kind::clone_flags),
            child,
            arg.cast(),
            &raw mut (*arg).placed,
            &pending.pidfd,
        )?
    };
    drop(err_tx);
    // Our copy of the write end: EOF must come when the init is gone.
    let status = match status {
        Some((rx, tx)) if args.placed.in_pid_ns => {
            drop(tx);
            Some(rx)
        }
        _ => None,
    };
    // Read to EOF even after an errno: a namespace's init may still be
    // running on `args` until its copy of the write end is closed.
    let mut errno = [0u8; 4];
    let mut got = 0;
    let mut rest = [0u8; 4];
    loop {
        let buf = if got < errno.len() {
            &mut errno[got..]
        } else {
            &mut rest[..]
        };
        match rustix::io::read(&err_rx, buf) {
            Ok(0) => break,
            Ok(n) => got = (got + n).min(errno.len()),
            Err(rustix::io::Errno::INTR) => continue,
            // A blocking read of our own pipe fails with nothing else.
            Err(e) => return Err(e.into()),
        }
    }
    match got {
        0 => Ok(Spawned { pid, status }),
        _ => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno))),
    }
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The child between clone and exec. Never returns.
///
/// Every call is a bare system call ([`raw`]): the child may share warden's
/// memory while the thread that cloned it runs on (a namespace's init), so
/// it must not write `errno` or anything else of that thread's.
///
/// # Safety
/// Only for a freshly cloned child, with `arg` pointing at live `ChildArgs`.
unsafe extern "C" fn child(arg: *mut libc::c_void) -> ! {
    // SAFETY: as the caller promised, `arg` points at `ChildArgs` that stay
    // valid and unchanged until exec: with CLONE_VFORK the parent thread is
    // suspended; a namespace's init shares them, and the parent keeps them
    // until the error pipe's EOF, which comes only once this process and
    // its PID 2 are done with them (see `init.rs`); after a fork this is our
    // own copy. Every call below is a bare system call (no errno, no
    // allocation, no locks), on fds and C strings built before the clone.
    unsafe {
        let a = &*arg.cast::<ChildArgs>();
        let p = a.p;
        let err_fd = a.err_fd;
        let fail = |r: isize| -> ! {
            let bytes = (-r as i32).to_ne_bytes();
            raw::write(err_fd, &bytes);
            raw::exit(EXEC_FAILED)
        };
        // First, while it holds every capability in its new user namespace
        // (an exec would drop them): map its own ids, so the batch keeps
        // warden's uid and gid.
        if a.placed.in_user_ns {
            let r = pidns::write_id_maps(&p.id_maps);
            if r < 0 {
                fail(r);
            }
        }
        // Handlers installed by warden must not run here, on warden's memory;
        // signals stay blocked (as the parent set them) until that is so.
        raw::reset_signals();
        // Into its cgroups: the v2 one unless clone3 already put it there,
        // and its v1 groups (limits on a hybrid host). Writing "0" moves
        // the writer; whatever it starts inherits the groups.
        let v2 = p.cgroup_procs.as_ref().filter(|_| !a.placed.in_cgroup);
        for procs in v2.into_iter().chain(&p.v1_procs) {
            let fd = raw::open(procs, libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                fail(fd);
            }
            let n = raw::write(fd as i32, b"0");
            if n != 1 {
                fail(if n < 0 { n } else { -(libc::EIO as isize) });
            }
            raw::close(fd as i32);
        }
        for (from, to) in [
            (p.stdin.as_raw_fd(), 0),
            (p.output.as_raw_fd(), 1),
            (p.output.as_raw_fd(), 2),
        ] {
            // dup2 onto itself keeps CLOEXEC set; clear it instead.
            let r = if from == to {
                raw::clear_cloexec(to)
            } else {
                raw::dup2(from, to)
            };
            if r < 0 {
                fail(r);
            }
        }
        // PDEATHSIG fires when the *thread* that cloned us exits, not when
        // warden does. That is only "warden died" because spawns happen on
        // spawner threads that never exit (spawner.rs); a spawn from a
        // short-lived thread (tokio's blocking pool) would have its batch
        // SIGKILLed when that thread retired.
        for r in [
            raw::chdir(&p.cwd),
            raw::own_process_group(),
            raw::kill_on_parent_death(),
        ] {
            if r < 0 {
                fail(r);
            }
        }
        // warden may have died before PDEATHSIG was armed. In a new PID
        // namespace the parent's pid reads 0, so ask warden's pidfd instead
        // (readable once warden has exited).
        let orphaned = if a.placed.in_pid_ns {
            raw::readable(a.parent_pidfd) != 0
        } else {
            raw::getppid() != a.parent as isize
        };
        if orphaned {
            raw::exit(EXEC_FAILED);
        }
        raw::unblock_signals();
        if a.placed.in_pid_ns {
            // PID 1 of the namespace, in warden's memory: it starts the
            // program as PID 2 and reaps until the namespace is empty.
            init::run(a)
        }
        fail(raw::execve(&p.program, a.argv, a.envp))
    }
}

/// PID 2 of a namespace, between the init's clone and exec: only the exec
/// is left (the init did the rest). Never returns.
///
/// # Safety
/// Only for a child the init just cloned, with `arg` pointing at the
/// init's live `ChildArgs`.
unsafe extern "C" fn program_child(arg: *mut libc::c_void) -> ! {
    // SAFETY: `arg` is the init's `ChildArgs`, alive until the error pipe's
    // EOF, which our copy of its write end holds off until we exec or exit;
    // execve, write and exit are bare system calls.
    unsafe {
        let a = &*arg.cast::<ChildArgs>();
        let r = raw::execve(&a.p.program, a.argv, a.envp);
        raw::write(a.err_fd, &(-r as i32).to_ne_bytes());
        raw::exit(EXEC_FAILED)
    }
}
