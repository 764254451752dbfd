//! Memory-aware admission's two inputs: the run's budget (`[run]
//! memory-budget`) and what each batch is expected to use (`memory`, else
//! its p90 peak in the history, else nothing counted). The scheduler
//! counts the expectations against the budget like any other capacity.
//!
//! `memory-budget = "auto"` is what the machine can give when the run
//! starts: `MemAvailable` from `/proc/meminfo` or, when lower, what is left
//! below the limit of warden's own memory cgroup (cgroup v2 `memory.max`,
//! or v1 `memory.limit_in_bytes` on a hybrid host, for warden's group and
//! each group above it; "left" is the limit less the group's working set:
//! its usage less its inactive file cache, which the kernel reclaims
//! first, as kubelet counts it). Less a margin for warden, the page cache
//! and whatever else the machine runs: a tenth of it, at least 1 GiB. So
//! 24 GiB available gives a budget of 21.6 GiB; 4 GiB gives 3 GiB.
//!
//! A batch with no expectation is not counted (it is admitted as if it
//! used nothing): guessing wrong in either direction would be worse than
//! saying nothing, and `warden check` shows which batches are uncounted.

use std::path::Path;

use crate::size;

/// The margin is this share of what is available…
pub const MARGIN_PERCENT: u64 = 10;
/// …and at least this.
pub const MARGIN_MIN: u64 = 1 << 30;

/// Where a batch's expected memory comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The batch's `memory` key.
    Explicit,
    /// Its p90 peak memory in the history.
    History,
    /// Neither: not counted.
    None,
}

/// What a batch is expected to use, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// 0 when not counted.
    pub bytes: u64,
    pub source: Source,
}

impl Expectation {
    /// `memory` first, then the history's p90 peak, else nothing.
    pub fn new(explicit: Option<u64>, p90: Option<u64>) -> Expectation {
        match (explicit, p90) {
            (Some(bytes), _) => Expectation {
                bytes,
                source: Source::Explicit,
            },
            (None, Some(bytes)) => Expectation {
                bytes,
                source: Source::History,
            },
            (None, None) => Expectation {
                bytes: 0,
                source: Source::None,
            },
        }
    }

    /// `memory 3G (explicit)`, `memory 1.2G (p90 peak in the history)`,
    /// `memory not counted (no expectation)`.
    pub fn describe(&self) -> String {
        match self.source {
            Source::Explicit => format!("memory {} (explicit)", size::exact(self.bytes)),
            Source::History => format!(
                "memory {} (p90 peak in the history)",
                size::human(self.bytes)
            ),
            Source::None => "memory not counted (no expectation)".to_owned(),
        }
    }
}

/// The run's memory budget, and why it is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub bytes: u64,
    pub source: BudgetSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    /// `[run] memory-budget = "16G"`.
    Config,
    /// `"auto"`: measured at the run's start.
    Auto {
        /// `MemAvailable`.
        available: u64,
        /// Left below warden's memory cgroup's limit, if it has one.
        cgroup_room: Option<u64>,
        margin: u64,
    },
}

impl Budget {
    pub fn configured(bytes: u64) -> Budget {
        Budget {
            bytes,
            source: BudgetSource::Config,
        }
    }

    /// The budget for `available` bytes of `MemAvailable` and, if warden's
    /// memory cgroup has a limit, `cgroup_room` left below it.
    pub fn auto_from(available: u64, cgroup_room: Option<u64>) -> Budget {
        let room = cgroup_room.map_or(available, |c| c.min(available));
        let margin = (room / 100 * MARGIN_PERCENT).max(MARGIN_MIN);
        Budget {
            bytes: room.saturating_sub(margin),
            source: BudgetSource::Auto {
                available,
                cgroup_room,
                margin,
            },
        }
    }

    /// `memory-budget = "auto"` on this machine, now.
    pub fn auto() -> Result<Budget, String> {
        let meminfo = std::fs::read_to_string("/proc/meminfo")
            .map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
        let available = mem_available(&meminfo)
            .ok_or("/proc/meminfo has no MemAvailable line (Linux 3.14 or later has)")?;
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let room = cgroup_room(&cgroups, Path::new("/sys/fs/cgroup"));
        Ok(Budget::auto_from(available, room))
    }

    /// `16G ([run] memory-budget)`, `21.6G (auto: 24.0G available less a
    /// 2.4G margin)`.
    pub fn describe(&self) -> String {
        match self.source {
            BudgetSource::Config => format!("{} ([run] memory-budget)", size::exact(self.bytes)),
            BudgetSource::Auto {
                available,
                cgroup_room,
                margin,
            } => {
                let from = match cgroup_room {
                    Some(c) if c < available => format!(
                        "{} left in warden's memory cgroup ({} available on the machine)",
                        size::human(c),
                        size::human(available)
                    ),
                    _ => format!("{} available", size::human(available)),
                };
                format!(
                    "{} (auto: {from} less a {} margin)",
                    size::human(self.bytes),
                    size::human(margin)
                )
            }
        }
    }
}

/// `MemAvailable:   24058412 kB`, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemAvailable:")?;
        let kib: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
        kib.checked_mul(1024)
    })
}

/// What is left below the tightest memory limit on the way from warden's
/// memory cgroup (per `/proc/self/cgroup`) up to the hierarchy's root,
/// under `root` (`/sys/fs/cgroup`); `None` when no group has a limit.
/// cgroup v1's `memory` controller where a v1 line names it, else v2 at
/// `root` or, on a hybrid host, `root/unified`.
fn cgroup_room(proc_self_cgroup: &str, root: &Path) -> Option<u64> {
    let mut v1 = None;
    let mut v2 = None;
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.is_empty() {
            v2 = Some(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            // The v1 mount is named after its controllers: `memory`,
            // or `cpu,memory` where they are mounted together.
            v1 = Some((controllers.to_owned(), path));
        }
    }
    let (mount, path, v1) = match (v1, v2) {
        (Some((controllers, path)), _) => (root.join(controllers), path, true),
        (None, Some(path)) if root.join("cgroup.controllers").exists() => {
            (root.to_path_buf(), path, false)
        }
        (None, Some(path)) => (root.join("unified"), path, false),
        (None, None) => return None,
    };
    let (limit_file, usage_file, inactive_key) = if v1 {
        (
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "total_inactive_file",
        )
    } else {
        ("memory.max", "memory.current", "inactive_file")
    };
    let mut room: Option<u64> = None;
    let mut dir = mount.join(path.trim_start_matches('/'));
    // Up to the mount itself: v2's root has no limit file; v1's has none
    // worth reading (it cannot be set).
    while dir.starts_with(&mount) && dir != mount {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
        if let Some(limit) = read(limit_file).and_then(|t| limit_value(&t)) {
            let usage: u64 = read(usage_file)
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            let inactive = read("memory.stat")
                .and_then(|t| stat_value(&t, inactive_key))
                .unwrap_or(0);
            let left = limit.saturating_sub(usage.saturating_sub(inactive));
            room = Some(room.map_or(left, |r| r.min(left)));
        }
        if !dir.pop() {
            break;
        }
    }
    room
}

/// A limit file's value; `None` when unlimited (`max`, or v1's page-rounded
/// `LONG_MAX`).
fn limit_value(text: &str) -> Option<u64> {
    let v: u64 = text.trim().parse().ok()?;
    (v < 1 << 62).then_some(v)
}

fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;

    #[test]
    fn expectation_explicit_then_history_then_none() {
        assert_eq!(
            Expectation::new(Some(3 * G), Some(G)),
            Expectation {
                bytes: 3 * G,
                source: Source::Explicit
            }
        );
        assert_eq!(Expectation::new(None, Some(G)).source, Source::History);
        assert_eq!(Expectation::new(None, None).bytes, 0);
        assert_eq!(
            Expectation::new(Some(3 * G), None).describe(),
            "memory 3G (explicit)"
        );
        assert_eq!(
            Expectation::new(None, Some(G + G / 5)).describe(),
            "memory 1.2G (p90 peak in the history)"
        );
        assert_eq!(
            Expectation::new(None, None).describe(),
            "memory not counted (no expectation)"
        );
    }

    #[test]
    fn auto_margin_is_a_tenth_at_least_a_gib() {
        let b = Budget::auto_from(24 * G, None);
        assert_eq!(b.bytes, 24 * G - 24 * G / 100 * 10);
        assert_eq!(
            b.describe(),
            "21.6G (auto: 24.0G available less a 2.4G margin)"
        );
        assert_eq!(Budget::auto_from(4 * G, None).bytes, 3 * G);
        // Less than the margin: nothing to give (batches that expect
        // memory run alone).
        assert_eq!(Budget::auto_from(G / 2, None).bytes, 0);
        // A tighter cgroup wins.
        let b = Budget::auto_from(24 * G, Some(5 * G));
        assert_eq!(b.bytes, 4 * G);
        assert_eq!(
            b.describe(),
            "4.0G (auto: 5.0G left in warden's memory cgroup (24.0G available on the machine) less a 1.0G margin)"
        );
        assert_eq!(Budget::auto_from(2 * G, Some(5 * G)).bytes, G);
        assert_eq!(
            Budget::configured(16 * G).describe(),
            "16G ([run] memory-budget)"
        );
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:       24683784 kB\nMemFree:  1 kB\nMemAvailable:   24058412 kB\n";
        assert_eq!(mem_available(text), Some(24058412 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn cgroup_v1_hybrid_takes_the_tightest_ancestor() {
        let root = tempfile::tempdir().unwrap();
        let mem = root.path().join("memory");
        let group = mem.join("ci/job");
        write(&mem, "memory.limit_in_bytes", "9223372036854771712\n");
        write(
            &mem.join("ci"),
            "memory.limit_in_bytes",
            &format!("{}\n", 8 * G),
        );
        write(
            &mem.join("ci"),
            "memory.usage_in_bytes",
            &format!("{}\n", 2 * G),
        );
        write(&group, "memory.limit_in_bytes", &format!("{}\n", 4 * G));
        write(&group, "memory.usage_in_bytes", &format!("{}\n", G));
        // Inactive file cache is reclaimed first: not counted as used.
        write(
            &group,
            "memory.stat",
            &format!("cache 5\ntotal_inactive_file {}\n", G / 2),
        );
        let cgroups = "4:memory:/ci/job\n0::/\n";
        assert_eq!(cgroup_room(cgroups, root.path()), Some(4 * G - G / 2));
        // The parent's room (8G − 5G) is tighter than the group's.
        write(
            &mem.join("ci"),
            "memory.usage_in_bytes",
            &format!("{}\n", 5 * G),
        );
        assert_eq!(cgroup_room(cgroups, root.path()), Some(3 * G));
        // Unlimited everywhere: no room to speak of.
        let free = "4:memory:/\n";
        assert_eq!(cgroup_room(free, root.path()), None);
    }

    #[test]
    fn cgroup_v2_pure_and_hybrid() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "cgroup.controllers", "cpu memory\n");
        let group = root.path().join("a.slice/job");
        write(&group, "memory.max", &format!("{}\n", 2 * G));
        write(&group, "memory.current", &format!("{}\n", G));
        write(&group, "memory.stat", "anon 1\ninactive_file 0\n");
        write(&root.path().join("a.slice"), "memory.max", "max\n");
        assert_eq!(cgroup_room("0::/a.slice/job\n", root.path()), Some(G));
        // Hybrid without a v1 memory line: the unified mount.
        let root = tempfile::tempdir().unwrap();
        let group = root.path().join("unified/job");
        write(&group, "memory.max", &format!("{}\n", 3 * G));
        assert_eq!(cgroup_room("1:cpu:/\n0::/job\n", root.path()), Some(3 * G));
        assert_eq!(cgroup_room("", root.path()), None);
    }

    #[test]
    fn auto_here() {
        // Whatever this machine has: a budget, described.
        let b = Budget::auto().expect("Linux has /proc/meminfo");
        assert!(b.describe().contains("auto: "), "{}", b.describe());
    }
}
