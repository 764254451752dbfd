//! Files warden reads that someone else wrote: the config, the quarantine
//! list, a batch's JUnit files, files given to `warden import`. Each is
//! opened without blocking, checked to be a regular file (after following
//! symlinks), and read with a size bound.
//!
//! Why: a FIFO given as a config would block `open` forever, `/dev/zero`
//! (or a symlink to it) would be read until memory runs out, and a file
//! that keeps growing would be read for as long as its writer writes.
//! Every refusal is an `io::Error` whose message says what the file is;
//! callers name the file.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest config or quarantine file read whole: a config of 100,000
/// batches is about 5 MB.
pub const MAX_CONFIG_BYTES: u64 = 64 << 20;

/// The largest XML file read (streamed, so memory does not grow with it):
/// far above any real report, far below a disk filled by a runaway writer.
pub const MAX_XML_BYTES: u64 = 4 << 30;

/// Opens `path` for reading if it is a regular file of at most `max`
/// bytes; returns the file and its size. Never blocks on a FIFO.
pub fn open_regular(path: &Path, max: u64) -> io::Result<(File, u64)> {
    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer.
    // It does not change how a regular file reads.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}, not a regular file: refused"),
        ));
    }
    too_large(meta.len(), max)?;
    Ok((file, meta.len()))
}

fn too_large(size: u64, max: u64) -> io::Result<()> {
    if size > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{size} bytes, more than the {max} this file may have"),
        ));
    }
    Ok(())
}

/// A reader of at most `max` bytes of `file` that fails, rather than
/// ending quietly, when the file grew past `max` since it was checked.
pub fn bounded(file: File, max: u64) -> Bounded {
    Bounded {
        inner: file.take(max.saturating_add(1)),
        read: 0,
        max,
    }
}

pub struct Bounded {
    inner: io::Take<File>,
    read: u64,
    max: u64,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        too_large(self.read, self.max)?;
        Ok(n)
    }
}

/// The whole of a regular file of at most `max` bytes, as UTF-8 text.
pub fn read_to_string(path: &Path, max: u64) -> io::Result<String> {
    let (file, size) = open_regular(path, max)?;
    let mut text = String::with_capacity(size as usize);
    bounded(file, max).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_devices_fifos_directories_and_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_to_string(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let e = read_to_string(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read_to_string(&link, 100).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let e = read_to_string(dir.path(), 100).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, [b'x'; 101]).unwrap();
        let e = read_to_string(&big, 100).unwrap_err();
        assert!(
            e.to_string().contains("101 bytes, more than the 100"),
            "{e}"
        );
        assert_eq!(read_to_string(&big, 101).unwrap().len(), 101);
    }

    #[test]
    fn a_file_that_grows_past_the_bound_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        let (file, _) = open_regular(&path, 8).unwrap();
        std::fs::write(&path, b"123456789012").unwrap();
        let mut s = String::new();
        let e = bounded(file, 8).read_to_string(&mut s).unwrap_err();
        assert!(e.to_string().contains("more than the 8"), "{e}");
    }
}
