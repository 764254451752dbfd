//! Batch logs, when they are still on this machine.
//!
//! The store records each batch's log path as written on the machine that
//! ran it. A path is only ever taken from the store, never from a request,
//! and it is read only when all of these hold: the run was recorded on this
//! host (the same path elsewhere is another file), the path is absolute and
//! ends in `.log` (warden names its logs `<batch>.log` and
//! `<batch>.attempt-N.log`), and it is a regular file, opened without
//! following a symlink. Only the end is read, within a fixed bound.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How much of a log's end the log route serves.
pub const FILE_BYTES: u64 = 1024 * 1024;
/// How much of a log's end a run page shows inline.
pub const EXCERPT_BYTES: u64 = 16 * 1024;
pub const EXCERPT_LINES: usize = 40;

/// The log at `path`, recorded by a run on `run_host`, opened if this
/// machine may show it.
pub fn open(path: Option<&str>, run_host: &str, this_host: &str) -> Option<File> {
    let path = Path::new(path?);
    if run_host != this_host || !path.is_absolute() || path.extension().is_none_or(|e| e != "log") {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        // No symlinks; a FIFO must not block the server.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    file.metadata().ok()?.is_file().then_some(file)
}

/// The last `max_bytes` of `file` (starting on a whole line when cut), as
/// text (invalid UTF-8 and terminal colour codes made harmless), and whether
/// something was cut.
pub fn tail(mut file: File, max_bytes: u64, max_lines: usize) -> Option<(String, bool)> {
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(max_bytes);
    // One byte before the window tells whether it starts on a whole line.
    let peek = u64::from(start > 0);
    file.seek(SeekFrom::Start(start - peek)).ok()?;
    let mut buf = Vec::new();
    // The file may still grow: never read past the bound.
    file.take(max_bytes + peek).read_to_end(&mut buf).ok()?;
    let mut cut = start > 0;
    let mut from = 0;
    if cut
        && let Some(nl) = buf.iter().position(|&b| b == b'\n')
        && nl + 1 < buf.len()
    {
        from = nl + 1;
    }
    let body = &buf[from..];
    let trimmed = body.strip_suffix(b"\n").unwrap_or(body);
    let mut keep = body.len();
    let mut lines = 0;
    for (i, &b) in trimmed.iter().enumerate().rev() {
        if b == b'\n' {
            lines += 1;
            if lines == max_lines {
                keep = body.len() - (i + 1);
                cut = true;
                break;
            }
        }
    }
    let text = crate::report::xml_safe_text(&body[body.len() - keep..]);
    Some((text, cut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_logs_of_this_host_that_are_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("net.log");
        std::fs::write(&log, "a\nb\nc\n").unwrap();
        let p = log.to_str().unwrap();
        assert!(open(Some(p), "here", "here").is_some());
        assert!(open(Some(p), "there", "here").is_none());
        assert!(open(None, "here", "here").is_none());
        assert!(open(Some("net.log"), "here", "here").is_none());
        let other = dir.path().join("secret.txt");
        std::fs::write(&other, "x").unwrap();
        assert!(open(other.to_str(), "here", "here").is_none());
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        assert!(open(link.to_str(), "here", "here").is_none());
        let sub = dir.path().join("dir.log");
        std::fs::create_dir(&sub).unwrap();
        assert!(open(sub.to_str(), "here", "here").is_none());

        let (text, cut) = tail(open(Some(p), "h", "h").unwrap(), 100, 10).unwrap();
        assert_eq!((text.as_str(), cut), ("a\nb\nc\n", false));
        let (text, cut) = tail(open(Some(p), "h", "h").unwrap(), 100, 2).unwrap();
        assert_eq!((text.as_str(), cut), ("b\nc\n", true));
        let (text, cut) = tail(open(Some(p), "h", "h").unwrap(), 3, 10).unwrap();
        assert_eq!((text.as_str(), cut), ("c\n", true));
        let (text, cut) = tail(open(Some(p), "h", "h").unwrap(), 2, 10).unwrap();
        assert_eq!((text.as_str(), cut), ("c\n", true));
    }
}
