//! cgroup v2 for the tests: whether cgroup containment can be tested
//! here, where warden's run cgroups go, and removing those a run left.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::builder::{Containment, Warden};
use super::wait_until;

/// Why cgroup containment can't be tested here, or `None` if it can.
/// Decided once per test binary by running warden on a trivial config.
pub fn cgroup_unavailable() -> Option<String> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not running as root".into());
        }
        let r = Warden::with(Containment::Cgroup)
            .batch(
                r#"name = "probe"
                      shell = "true""#,
            )
            .run();
        if r.code == Some(2) && r.stderr.contains("cgroup") {
            return Some(format!(
                "cgroup containment unavailable: {}",
                r.stderr.trim()
            ));
        }
        None
    })
    .clone()
}

/// The cgroup2 mount point (`/sys/fs/cgroup`, else `/sys/fs/cgroup/unified`,
/// as warden probes them) and our own cgroup's directory under it.
pub fn cgroup2() -> Option<(PathBuf, PathBuf)> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut mounts: Vec<(String, String)> = info
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            if post.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            let mut f = pre.split_whitespace();
            let root = f.nth(3)?.to_string();
            Some((f.next()?.to_string(), root))
        })
        .collect();
    mounts.sort_by_key(|(m, _)| match m.as_str() {
        "/sys/fs/cgroup" => 0,
        "/sys/fs/cgroup/unified" => 1,
        _ => 2,
    });
    let (mount, root) = mounts.into_iter().next()?;
    let inside = match own.strip_prefix(&root) {
        Some(rest) if root != "/" => rest.to_string(),
        _ => own,
    };
    let mount = PathBuf::from(mount);
    let parent = mount.join(inside.trim_start_matches('/'));
    Some((mount, parent))
}

/// The directory under which warden (inheriting our cgroup) creates its run's
/// cgroup, if there is a cgroup2 hierarchy.
pub fn cgroup_parent() -> Option<PathBuf> {
    cgroup2().map(|(_, parent)| parent)
}

/// cgroup directories of the warden run with this pid that still exist
/// (run ids are `<pid>-<start time>`): its v2 cgroup and, on a hybrid host,
/// its groups in each v1 hierarchy warden limits batches through.
pub fn leftover_cgroups(warden_pid: i32) -> Vec<PathBuf> {
    let mut dirs = run_dirs(cgroup_parent(), warden_pid);
    dirs.extend(v1_leftovers(warden_pid));
    dirs
}

/// The groups of the warden run with this pid still in the v1 hierarchies.
pub fn v1_leftovers(warden_pid: i32) -> Vec<PathBuf> {
    run_dirs(v1_parents(), warden_pid)
}

fn run_dirs(parents: impl IntoIterator<Item = PathBuf>, warden_pid: i32) -> Vec<PathBuf> {
    let prefix = format!("warden-{warden_pid}-");
    parents
        .into_iter()
        .flat_map(|d| fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Our group in each cgroup v1 hierarchy warden creates per-batch groups
/// in (memory, cpu, blkio, pids), where one is mounted (a hybrid host);
/// warden inherits these, and puts its run's groups under them.
pub fn v1_parents() -> Vec<PathBuf> {
    let (Ok(own), Ok(info)) = (
        fs::read_to_string("/proc/self/cgroup"),
        fs::read_to_string("/proc/self/mountinfo"),
    ) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for ctrl in ["memory", "cpu", "blkio", "pids"] {
        let Some(path) = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let _ = f.next();
            let c = f.next()?;
            c.split(',').any(|x| x == ctrl).then(|| f.next())?
        }) else {
            continue;
        };
        let Some(mount) = info.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut post = post.split_whitespace();
            if post.next() != Some("cgroup") || !post.nth(1)?.split(',').any(|o| o == ctrl) {
                return None;
            }
            let mut f = pre.split_whitespace();
            (f.nth(3)? == "/").then(|| f.next().map(str::to_string))?
        }) else {
            continue;
        };
        let dir = PathBuf::from(mount).join(path.trim_start_matches('/'));
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// Removes a cgroup directory and the ones below it (bottom-up). Only called
/// on the run cgroup of a warden we started, after its processes were killed.
pub(super) fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    // A cgroup stays busy for a moment after its last process is gone.
    wait_until(Duration::from_secs(5), || match fs::remove_dir(dir) {
        Err(e) => e.raw_os_error() != Some(libc::EBUSY),
        Ok(()) => true,
    });
}
