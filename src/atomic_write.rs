//! Files replaced whole: a sibling temp file written, then renamed over the
//! target, so a reader (a CI step, a person, a crash's aftermath) finds the
//! old file or the new one, never a partial one.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// `.<name>.<pid>.<suffix>` beside `path` (hidden, and one per process),
/// its directory created if missing.
pub fn hidden_sibling(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file path: {}", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let mut name = std::ffi::OsString::from(".");
    name.push(file_name);
    name.push(format!(".{}.{suffix}", std::process::id()));
    Ok(dir.join(name))
}

/// Writes a sibling temp file, then renames it over `path`: readers see the old
/// file or the new one, never a partial one. Creates missing parent directories.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = hidden_sibling(path, "tmp")?;

    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        w.flush()?;
        drop(w);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/exit-code");
        write_atomically(&path, |w| w.write_all(b"1\n")).unwrap();
        write_atomically(&path, |w| w.write_all(b"0\n")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"0\n");
        let failed = write_atomically(&path, |_| Err(io::Error::other("no")));
        assert!(failed.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"0\n");
        let names: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
