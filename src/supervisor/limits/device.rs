//! The block device an I/O limit applies to: the whole disk holding a
//! directory. `io.max` and `blkio.throttle.*` take a disk's `MAJ:MIN`, not
//! a partition's, and only a device with a block queue can be throttled:
//! a directory on overlay, tmpfs or another filesystem without one (an
//! anonymous device, major 0) cannot be limited, and that is said.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// A block device as cgroups name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Device {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// The whole disk under `path`'s filesystem, or why there is none.
pub fn disk_of(path: &Path) -> Result<Device, String> {
    // A directory made only when the run starts (the scratch root) will be
    // on its nearest existing ancestor's filesystem.
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let st = rustix::fs::stat(existing)
        .map_err(|e| format!("cannot stat {}: {e}", existing.display()))?;
    let dev = Device {
        major: rustix::fs::major(st.st_dev),
        minor: rustix::fs::minor(st.st_dev),
    };
    let sys = PathBuf::from(format!("/sys/dev/block/{dev}"));
    let no_queue = || {
        format!(
            "{} is on device {dev}, which is not a block device with a queue \
             (overlay, tmpfs, a network filesystem?): its I/O cannot be throttled",
            path.display()
        )
    };
    if !sys.exists() {
        return Err(no_queue());
    }
    // A partition's directory sits inside its disk's, which has the queue.
    let disk = if sys.join("partition").exists() {
        fs::canonicalize(&sys)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .ok_or_else(no_queue)?
    } else {
        sys
    };
    if !disk.join("queue").is_dir() {
        return Err(no_queue());
    }
    let text = fs::read_to_string(disk.join("dev")).map_err(|_| no_queue())?;
    parse_dev(text.trim()).ok_or_else(no_queue)
}

/// `254:0` as the kernel's `dev` files write it.
fn parse_dev(s: &str) -> Option<Device> {
    let (major, minor) = s.split_once(':')?;
    Some(Device {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

/// The disks of `dirs`, each once, or the first reason one has none.
pub fn disks_of(dirs: &[PathBuf]) -> Result<Vec<Device>, String> {
    let mut disks = Vec::new();
    for dir in dirs {
        let disk = disk_of(dir)?;
        if !disks.contains(&disk) {
            disks.push(disk);
        }
    }
    Ok(disks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_numbers_parse() {
        assert_eq!(
            parse_dev("254:0"),
            Some(Device {
                major: 254,
                minor: 0
            })
        );
        assert_eq!(parse_dev("254"), None);
        assert_eq!(parse_dev("a:b"), None);
    }

    #[test]
    fn an_anonymous_device_has_no_queue() {
        // /proc is on an anonymous device (major 0) everywhere.
        let e = disk_of(Path::new("/proc")).unwrap_err();
        assert!(e.contains("cannot be throttled"), "{e}");
    }
}
