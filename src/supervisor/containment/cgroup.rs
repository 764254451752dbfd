//! cgroup v2: one cgroup per run under warden's own, one per batch under
//! that. `cgroup.kill` kills every member atomically, forks included, and
//! `cgroup.events` tells us (POLLPRI) when the last one is gone: one kill
//! ([`kill_dir`]) and one wait ([`wait_empty_dir`]) for batches and for a
//! dead run's leftovers alike.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Directory-name prefix of a run's cgroup; the rest is the run id.
pub const RUN_PREFIX: &str = "warden-";

#[derive(Debug)]
pub struct CgroupRoot {
    /// Absolute path of the run's cgroup directory.
    dir: PathBuf,
    /// Its path inside the cgroup2 hierarchy, as `/proc/<pid>/cgroup` shows it.
    rel: String,
    /// An exclusive `flock` on the directory, held for the run's life: how
    /// a warden in another PID namespace, which can't check our pid, knows
    /// the run is alive (see `leftovers`). The kernel drops it when we die.
    _lock: OwnedFd,
}

impl CgroupRoot {
    /// Creates `<our cgroup>/warden-<run_id>`; fails when there is no
    /// writable cgroup2 mount or it lacks `cgroup.kill` (Linux < 5.14).
    pub fn create(run_id: &str) -> io::Result<CgroupRoot> {
        let (parent, own) = runs_parent()?;
        let name = format!("{RUN_PREFIX}{run_id}");
        let dir = parent.join(&name);
        fs::create_dir(&dir).map_err(|e| annotate(e, "cannot create cgroup", &dir))?;
        if !dir.join("cgroup.kill").exists() {
            let _ = fs::remove_dir(&dir);
            return Err(io::Error::other("cgroup.kill is missing (Linux < 5.14)"));
        }
        // Blocking: another warden checking whether we are alive holds it
        // only for a moment (a directory this new is never taken for dead).
        let lock = lock_dir(&dir).map_err(|e| {
            let _ = fs::remove_dir(&dir);
            annotate(e, "cannot lock cgroup", &dir)
        })?;
        let rel = format!("{}/{name}", own.trim_end_matches('/'));
        Ok(CgroupRoot {
            dir,
            rel,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub(super) fn child(&self, unit: &str) -> io::Result<BatchCgroup> {
        // Prefixed: a batch may be named like a cgroup interface file
        // (`cgroup.procs`, `cpu.stat`), and no such file starts with this.
        let unit = format!("batch-{unit}");
        let dir = self.dir.join(&unit);
        fs::create_dir(&dir).map_err(|e| annotate(e, "cannot create cgroup", &dir))?;
        let dir_fd = rustix::fs::open(
            &dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(BatchCgroup {
            rel: format!("{}/{unit}", self.rel),
            dir,
            dir_fd,
        })
    }

    pub(super) fn remove(&self) {
        let _ = remove_tree(&self.dir);
    }
}

/// An exclusive `flock` on a run's group directory (its v2 cgroup, or its
/// group in a v1 hierarchy), held for the run's life: how another warden,
/// which may not see our pid, tells a live run's groups from a dead one's.
pub fn lock_dir(dir: &Path) -> io::Result<OwnedFd> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(fd)
}

fn annotate(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Where run cgroups are created (our own cgroup's directory), and our
/// cgroup's path as `/proc/<pid>/cgroup` shows it.
pub fn runs_parent() -> io::Result<(PathBuf, String)> {
    let (mount, root) = cgroup2_mount()?;
    let own = own_cgroup()?;
    let inside = match own.strip_prefix(&root) {
        Some(rest) if root != "/" => rest.to_string(),
        _ => own.clone(),
    };
    Ok((mount.join(inside.trim_start_matches('/')), own))
}

/// How long a dead run's cgroup gets to empty once killed.
const LEFTOVER_KILL_WAIT: Duration = Duration::from_secs(5);

/// Kills everything in a cgroup directory and below it, waits for it to
/// empty, and removes the directories: for leftovers of dead runs. The same
/// kill and wait as a batch's ([`kill_dir`], [`wait_empty_dir`]), run on a
/// runtime of its own, since reaping happens outside the run's.
pub fn kill_and_remove(dir: &Path) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _ = kill_dir(dir);
    runtime.block_on(wait_empty_dir(dir, LEFTOVER_KILL_WAIT));
    remove_tree(dir)
}

/// Kills every process in the cgroup at `dir` and in every cgroup below it,
/// forks included, in one write (`cgroup.kill`).
fn kill_dir(dir: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .open(dir.join("cgroup.kill"))?
        .write_all(b"1")
}

fn populated_dir(dir: &Path) -> bool {
    match fs::read_to_string(dir.join("cgroup.events")) {
        Ok(text) => events_say_populated(&text),
        Err(_) => false,
    }
}

/// Waits up to `limit` for `populated 0` in the `cgroup.events` of `dir`;
/// returns whether it came. Usually the cgroup is already empty and no
/// watch is needed. Otherwise we poll the file for POLLPRI, which kernfs
/// raises on every change: no sleep loop, and no inotify instance, whose
/// teardown costs an SRCU grace period (~10 ms). Where the file can't be
/// watched, it is read with [`super::poll_until`]'s backoff.
async fn wait_empty_dir(dir: &Path, limit: Duration) -> bool {
    if !populated_dir(dir) {
        return true;
    }
    let deadline = tokio::time::Instant::now() + limit;
    let Ok(events) = watch_events(dir) else {
        return super::poll_until(deadline, || !populated_dir(dir)).await;
    };
    loop {
        if !populated_at(events.get_ref()) {
            return true;
        }
        match tokio::time::timeout_at(deadline, events.ready(Interest::PRIORITY)).await {
            Err(_) => return !populated_at(events.get_ref()),
            Ok(Ok(mut guard)) => guard.clear_ready(),
            Ok(Err(_)) => return super::poll_until(deadline, || !populated_dir(dir)).await,
        }
    }
}

fn watch_events(dir: &Path) -> io::Result<AsyncFd<OwnedFd>> {
    let fd = rustix::fs::open(
        dir.join("cgroup.events"),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )?;
    // SAFETY: the AsyncFd owns the OwnedFd, so the fd stays open and the
    // same for the AsyncFd's whole life.
    Ok(unsafe { AsyncFd::register_with_interest(fd, Interest::PRIORITY) }?)
}

/// The cgroup2 mount point and the hierarchy path mounted there.
fn cgroup2_mount() -> io::Result<(PathBuf, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    let mut found: Vec<(PathBuf, String)> = info
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            if post.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut f = pre.split_whitespace();
            let root = f.nth(3)?.to_string();
            let mount = PathBuf::from(f.next()?);
            Some((mount, root))
        })
        .collect();
    // Prefer the conventional places, pure v2 first, then hybrid.
    found.sort_by_key(|(m, _)| match m.to_str() {
        Some("/sys/fs/cgroup") => 0,
        Some("/sys/fs/cgroup/unified") => 1,
        _ => 2,
    });
    found
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup2 mount"))
}

fn own_cgroup() -> io::Result<String> {
    let text = fs::read_to_string("/proc/self/cgroup")?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not in a cgroup2 hierarchy"))
}

#[derive(Debug)]
pub(super) struct BatchCgroup {
    dir: PathBuf,
    rel: String,
    /// For `clone3(CLONE_INTO_CGROUP)`.
    dir_fd: OwnedFd,
}

impl BatchCgroup {
    pub(super) fn dir_fd(&self) -> BorrowedFd<'_> {
        self.dir_fd.as_fd()
    }

    pub(super) fn path(&self) -> &Path {
        &self.dir
    }

    /// Where a forked child writes itself, where clone3 is missing.
    pub(super) fn procs_path(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Every process in the batch's cgroup and in any cgroup the batch made
    /// below it (a nested warden, systemd-run, a container runtime).
    pub(super) fn members(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        collect_members(&self.dir, &mut pids);
        pids
    }

    pub(super) fn contains(&self, pid: i32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map(|t| {
                t.lines().filter_map(|l| l.strip_prefix("0::")).any(|path| {
                    path.strip_prefix(self.rel.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
                })
            })
            .unwrap_or(false)
    }

    pub(super) fn kill(&self) -> io::Result<()> {
        kill_dir(&self.dir)
    }

    /// Waits up to `limit` for the batch's cgroup to empty.
    pub(super) async fn wait_empty(&self, limit: Duration) -> bool {
        wait_empty_dir(&self.dir, limit).await
    }

    /// Removes the batch's cgroup and any the batch made below it.
    pub(super) fn remove(&self) {
        let _ = remove_tree(&self.dir);
    }
}

fn collect_members(dir: &Path, pids: &mut Vec<i32>) {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    pids.extend(procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for child in child_cgroups(dir) {
        collect_members(&child, pids);
    }
}

fn child_cgroups(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes an emptied cgroup and every cgroup below it, deepest first. An
/// emptied cgroup stays busy for a moment, and another warden may be
/// removing the same leftovers: EBUSY is retried for up to half a second,
/// a directory already gone is success. For v1 groups too (`limits`).
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    if fs::remove_dir(dir).is_ok() {
        return Ok(());
    }
    for child in child_cgroups(dir) {
        let _ = remove_tree(&child);
    }
    for _ in 0..250 {
        match fs::remove_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                std::thread::sleep(Duration::from_millis(2));
            }
            other => return other,
        }
    }
    fs::remove_dir(dir)
}

fn populated_at(fd: &OwnedFd) -> bool {
    let mut buf = [0u8; 256];
    match rustix::io::pread(fd, &mut buf, 0) {
        Ok(n) => events_say_populated(&String::from_utf8_lossy(&buf[..n])),
        Err(_) => false,
    }
}

fn events_say_populated(text: &str) -> bool {
    text.lines().any(|l| l == "populated 1")
}
