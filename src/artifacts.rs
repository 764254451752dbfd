//! The artifacts directory: every path warden writes under it
//! ([`Artifacts`]), one run per directory ([`ArtifactsLock`]), and what the
//! run knows about the directory's filesystem.
//!
//! The layout (CI steps after warden read these paths, so they are stable):
//!
//! ```text
//! <artifacts>/
//!   .warden.lock            who holds the directory (ArtifactsLock)
//!   junit.xml               the report, unless --junit / [run] junit say elsewhere
//!   logs/<name>.log         each unit's log (the last attempt's)
//!   logs/<name>.attempt-N.log  a failed attempt's log, kept for a retry
//!   shared/                 WARDEN_SHARED_DIR, emptied at the start of a run
//!   trace.json              the run's timeline (Chrome/Perfetto trace events), at its end
//!   exit-code               written last: a warden that finished leaves it
//! ```
//!
//! Two wardens writing one artifacts directory interleave their logs and
//! the last JUnit writer wins, so the second is refused at start: each run
//! holds an exclusive `flock` on `<artifacts>/.warden.lock` for its whole
//! life, and the file says who holds it. Refusing (exit 2) rather than
//! moving the second run to a subdirectory of its own: the CI steps after
//! warden read `junit.xml` and `exit-code` at the paths they configured; a
//! run that quietly wrote elsewhere would leave them reading the other
//! run's results. A `flock` is released by the kernel when its holder dies
//! however it dies (no stale lock to clean), and it holds across PID
//! namespaces (two containers sharing a directory).

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::config::BatchName;

/// The lock file's name in the artifacts directory.
pub const LOCK_FILE: &str = ".warden.lock";

/// The artifacts directory when neither the command line nor the config
/// names one (relative to the current directory).
pub const DEFAULT_DIR: &str = "warden-artifacts";

/// Where a run's files go, below one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifacts {
    dir: PathBuf,
}

impl Artifacts {
    /// `dir` should be absolute: batches see these paths from their own
    /// working directories.
    pub fn new(dir: PathBuf) -> Artifacts {
        Artifacts { dir }
    }

    /// The directory itself (`WARDEN_ARTIFACTS`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the units' logs go.
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The log of the unit `name` (its last attempt's, when retried).
    pub fn log(&self, name: &BatchName) -> PathBuf {
        self.logs().join(format!("{name}.log"))
    }

    /// The JUnit report when no other place is configured.
    pub fn default_junit(&self) -> PathBuf {
        self.dir.join("junit.xml")
    }

    /// One directory for the whole run (`WARDEN_SHARED_DIR`).
    pub fn shared(&self) -> PathBuf {
        self.dir.join("shared")
    }

    /// The run's timeline, written at its end (`report::trace`).
    pub fn trace(&self) -> PathBuf {
        self.dir.join("trace.json")
    }

    /// The run's exit code, written as its last act.
    pub fn exit_code(&self) -> PathBuf {
        self.dir.join("exit-code")
    }

    /// The file [`ArtifactsLock`] holds.
    pub fn lock(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }
}

/// `<dir>/<name>.attempt-N.log` beside a unit's `<dir>/<name>.log`: where
/// a failed attempt's log is kept when the unit is retried.
pub fn attempt_log(log: &Path, attempt: u32) -> PathBuf {
    let stem = log.file_stem().unwrap_or_default().to_string_lossy();
    log.with_file_name(format!("{stem}.attempt-{attempt}.log"))
}

/// The most of the lock file read for the message.
const MAX_HOLDER: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "artifacts directory {} is in use by another warden run ({holder}); \
         give this run its own --artifacts",
        dir.display()
    )]
    Busy { dir: PathBuf, holder: String },
    #[error("cannot lock {}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
}

/// The held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct ArtifactsLock {
    _file: File,
}

impl ArtifactsLock {
    /// Takes the lock on the directory (which must exist) without waiting,
    /// and writes `holder` (who this run is) into the lock file.
    pub fn take(artifacts: &Artifacts, holder: &str) -> Result<ArtifactsLock, LockError> {
        let dir = artifacts.dir();
        let path = artifacts.lock();
        let io_error = |error| LockError::Io {
            path: path.clone(),
            error,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_error(error));
            }
            let mut text = String::new();
            let _ = (&file).take(MAX_HOLDER).read_to_string(&mut text);
            let holder = match text.trim() {
                "" => "it has not said who it is yet".to_owned(),
                t => t.to_owned(),
            };
            return Err(LockError::Busy {
                dir: dir.to_path_buf(),
                holder,
            });
        }
        // Ours now: say who we are (best effort; the lock is what counts).
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = writeln!(file, "{holder}");
        Ok(ArtifactsLock { _file: file })
    }
}

/// Whether `error` says the filesystem cannot take writes: full, over
/// quota, or read-only.
pub fn is_unwritable(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EROFS)
    )
}

/// Why the filesystem holding `dir` cannot take writes now, if it cannot:
/// no block left for an ordinary process, no inode, or mounted read-only.
/// `None` too when that cannot be told.
pub fn unwritable(dir: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is NUL-terminated and `st` is a valid out-pointer that
    // statvfs fills on success (checked before it is read).
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    if st.f_flag & libc::ST_RDONLY != 0 {
        Some("the filesystem is read-only")
    } else if st.f_blocks > 0 && st.f_bavail == 0 {
        Some("the filesystem is full")
    } else if st.f_files > 0 && st.f_favail == 0 {
        Some("the filesystem has no inode left")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_then_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts = Artifacts::new(dir.path().to_path_buf());
        let first = ArtifactsLock::take(&artifacts, "run 1-2 (pid 1)").unwrap();
        let e = ArtifactsLock::take(&artifacts, "run 3-4").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("in use by another warden run (run 1-2 (pid 1))"),
            "{msg}"
        );
        drop(first);
        ArtifactsLock::take(&artifacts, "run 3-4").unwrap();
    }

    #[test]
    fn the_layout() {
        let a = Artifacts::new(PathBuf::from("/a"));
        let name = BatchName::new("net").unwrap();
        assert_eq!(a.log(&name), Path::new("/a/logs/net.log"));
        assert_eq!(
            attempt_log(&a.log(&name), 2),
            Path::new("/a/logs/net.attempt-2.log")
        );
        assert_eq!(a.default_junit(), Path::new("/a/junit.xml"));
        assert_eq!(a.shared(), Path::new("/a/shared"));
        assert_eq!(a.exit_code(), Path::new("/a/exit-code"));
        assert_eq!(a.lock(), Path::new("/a/.warden.lock"));
    }
}
