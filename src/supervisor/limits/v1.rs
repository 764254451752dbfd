//! cgroup v1 hierarchies, for the controllers a hybrid host keeps out of
//! the unified one (`memory`, `cpu`, `blkio`, `pids` under
//! `/sys/fs/cgroup/<controller>/`). Each has a group of warden's own
//! (`/proc/self/cgroup`: here memory is `/process_api/<hash>`), and under
//! it, as in v2, `warden-<run>` for the run (locked with `flock` for the
//! run's life, the rule `leftovers` judges by) and `batch-<name>` per
//! batch that needs the controller. The batch's first process writes
//! itself into those groups' `cgroup.procs` before exec (`spawn`).

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::supervisor::containment::RUN_PREFIX;

/// One mounted v1 hierarchy and warden's own group in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers bound to it (`cpu`, `cpuacct` when co-mounted).
    pub controllers: Vec<String>,
    /// Warden's own group's directory.
    pub own_dir: PathBuf,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The v1 hierarchies mounted here with warden's group in each.
pub fn hierarchies() -> Vec<Hierarchy> {
    let (Ok(info), Ok(own)) = (
        fs::read_to_string("/proc/self/mountinfo"),
        fs::read_to_string("/proc/self/cgroup"),
    ) else {
        return Vec::new();
    };
    parse_hierarchies(&info, &own)
}

fn parse_hierarchies(mountinfo: &str, own: &str) -> Vec<Hierarchy> {
    // `4:memory:/process_api/86e0…`, `2:cpu,cpuacct:/`.
    let groups: Vec<(Vec<&str>, &str)> = own
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            let ctrls = f.next()?;
            let path = f.next()?;
            (!ctrls.is_empty()).then(|| (ctrls.split(',').collect(), path))
        })
        .collect();
    let mut found: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split_whitespace();
        if post.next() != Some("cgroup") {
            continue;
        }
        let Some(opts) = post.nth(1) else { continue };
        let controllers: Vec<String> = opts
            .split(',')
            .filter(|o| {
                !matches!(*o, "rw" | "ro") && !o.contains('=') && !o.starts_with("noprefix")
            })
            .map(str::to_string)
            .collect();
        if controllers.is_empty() {
            continue;
        }
        let mut f = pre.split_whitespace();
        let (Some(root), Some(mount)) = (f.nth(3), f.next()) else {
            continue;
        };
        let Some((_, path)) = groups.iter().find(|(c, _)| {
            c.len() == controllers.len() && controllers.iter().all(|x| c.contains(&x.as_str()))
        }) else {
            continue;
        };
        // Our group must be inside what is mounted here.
        let inside = if root == "/" {
            *path
        } else {
            match path.strip_prefix(root) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
                _ => continue,
            }
        };
        if found.iter().any(|h| h.controllers == controllers) {
            continue;
        }
        found.push(Hierarchy {
            controllers,
            own_dir: Path::new(mount).join(inside.trim_start_matches('/')),
        });
    }
    found
}

/// A run's group in one hierarchy: created on first need, locked for the
/// run's life, removed at its end.
#[derive(Debug)]
pub struct RunGroup {
    pub dir: PathBuf,
    _lock: OwnedFd,
}

impl RunGroup {
    pub fn create(h: &Hierarchy, run_id: &str) -> io::Result<RunGroup> {
        let dir = h.own_dir.join(format!("{RUN_PREFIX}{run_id}"));
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", dir.display()),
                ));
            }
            _ => {}
        }
        let lock = crate::supervisor::containment::lock_dir(&dir).map_err(|e| {
            let _ = fs::remove_dir(&dir);
            io::Error::other(format!("cannot lock {}: {e}", dir.display()))
        })?;
        Ok(RunGroup { dir, _lock: lock })
    }

    /// A batch's group in this run's (prefixed like the v2 one, so a batch
    /// named like an interface file is still a directory).
    /// One an earlier attempt could not remove (still busy) is taken over.
    pub fn batch(&self, unit: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(format!("batch-{unit}"));
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", dir.display()),
            )),
            _ => Ok(dir),
        }
    }

    pub fn remove(&self) {
        let _ = crate::supervisor::containment::remove_tree(&self.dir);
    }
}

/// The controllers whose hierarchies warden makes groups in.
pub const USED: [&str; 4] = ["memory", "cpu", "blkio", "pids"];

/// Run groups (`warden-<id>`, with the id) in the hierarchies warden uses.
pub fn run_groups() -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for h in hierarchies() {
        if !USED.iter().any(|c| h.has(c)) {
            continue;
        }
        let Ok(entries) = fs::read_dir(&h.own_dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_prefix(RUN_PREFIX)
                && e.file_type().is_ok_and(|t| t.is_dir())
            {
                found.push((e.path(), id.to_string()));
            }
        }
    }
    found
}

/// How long a dead run's v1 group gets to empty once its processes are
/// killed.
const LEFTOVER_KILL_WAIT: Duration = Duration::from_secs(5);

/// Kills what is left in a dead run's group and below (v1 has no
/// `cgroup.kill`: each listed process, pinned by a pidfd and checked to be
/// still in the group), waits for it to empty, and removes the groups.
pub fn kill_and_remove(dir: &Path) -> io::Result<()> {
    let deadline = Instant::now() + LEFTOVER_KILL_WAIT;
    loop {
        let pids = members(dir);
        if pids.is_empty() || Instant::now() >= deadline {
            break;
        }
        for pid in pids {
            let Some(fd) = rustix::process::Pid::from_raw(pid).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            }) else {
                continue;
            };
            if in_group(pid, dir) {
                let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::supervisor::containment::remove_tree(dir)
}

/// Every process in the group at `dir` and below.
fn members(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(members(&e.path()));
            }
        }
    }
    pids
}

/// Whether `pid` is (still) in the group at `dir` or below: its
/// `/proc/<pid>/cgroup` names a path ending in the group's own path.
fn in_group(pid: i32, dir: &Path) -> bool {
    // The group's path inside its hierarchy ends with `/warden-<id>`.
    let Some(name) = dir.file_name().map(|n| format!("/{}", n.to_string_lossy())) else {
        return false;
    };
    let below = format!("{name}/");
    fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|t| {
        t.lines().any(|l| {
            let path = l.splitn(3, ':').nth(2).unwrap_or("");
            path.ends_with(&name) || path.contains(&below)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 /outer /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const OWN: &str = "\
9:name=systemd:/
7:blkio:/outer/inner
4:memory:/process_api/86e0
2:cpu,cpuacct:/
0::/
";

    #[test]
    fn hierarchies_and_own_groups() {
        let h = parse_hierarchies(MOUNTINFO, OWN);
        assert_eq!(
            h,
            vec![
                Hierarchy {
                    controllers: vec!["cpu".into(), "cpuacct".into()],
                    own_dir: "/sys/fs/cgroup/cpu,cpuacct".into(),
                },
                Hierarchy {
                    controllers: vec!["memory".into()],
                    own_dir: "/sys/fs/cgroup/memory/process_api/86e0".into(),
                },
                Hierarchy {
                    controllers: vec!["blkio".into()],
                    own_dir: "/sys/fs/cgroup/blkio/inner".into(),
                },
            ]
        );
        assert!(h[0].has("cpu") && !h[0].has("memory"));
    }
}
