//! The end of a batch's log file, read with a fixed bound whatever the log's size.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// How many lines of a log reporters show.
pub const TAIL_LINES: usize = 200;
/// How many bytes at most are read from the end of a log.
pub const TAIL_BYTES: u64 = 256 * 1024;

/// The last `max_lines` lines within the last `max_bytes` bytes of `path`, raw.
/// A missing file gives no bytes. The second value is true when something was cut.
pub fn read_tail(path: &Path, max_lines: usize, max_bytes: u64) -> io::Result<(Vec<u8>, bool)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    // One byte before the window tells whether the window starts on a whole line.
    let peek = u64::from(start > 0);
    file.seek(SeekFrom::Start(start - peek))?;
    let mut buf = Vec::new();
    // `take`: the file may still be growing (a leaked writer); never read past the bound.
    file.take(max_bytes + peek).read_to_end(&mut buf)?;

    let mut cut = start > 0;
    let from = if cut {
        match buf.iter().position(|&b| b == b'\n') {
            // Whole lines start after the first newline (the peeked byte, if it is one).
            Some(nl) if nl + 1 < buf.len() => nl + 1,
            // One line longer than the window: keep its end.
            _ => buf.len().min(1),
        }
    } else {
        0
    };
    let kept = last_lines(&buf[from..], max_lines);
    cut |= kept < buf.len() - from;
    buf.drain(..buf.len() - kept);
    Ok((buf, cut))
}

/// The byte length of the suffix of `data` holding its last `n` lines; a final
/// newline does not start another line.
fn last_lines(data: &[u8], n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, &b) in body.iter().enumerate().rev() {
        if b == b'\n' {
            seen += 1;
            if seen == n {
                return data.len() - (i + 1);
            }
        }
    }
    data.len()
}

/// The default tail of a log as XML-safe text, for reporters: a note first when
/// the log was cut, and a note instead of the tail when it could not be read.
pub fn tail_text(path: &Path) -> String {
    match read_tail(path, TAIL_LINES, TAIL_BYTES) {
        Ok((bytes, cut)) => {
            let text = super::xml_safe_text(&bytes);
            if cut {
                let path = super::xml_safe_text(path.as_os_str().as_encoded_bytes());
                format!("[warden: last lines only; full log: {path}]\n{text}")
            } else {
                text
            }
        }
        Err(e) => {
            let note = format!("[warden: could not read log {}: {e}]", path.display());
            super::xml_safe_text(note.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tail_of(content: &[u8], lines: usize, bytes: u64) -> (String, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, content).unwrap();
        let (b, cut) = read_tail(&path, lines, bytes).unwrap();
        (String::from_utf8(b).unwrap(), cut)
    }

    #[test]
    fn missing_log_is_empty() {
        let (b, cut) = read_tail(Path::new("/nonexistent/warden/log"), 200, 1024).unwrap();
        assert!(b.is_empty() && !cut);
        assert_eq!(tail_text(Path::new("/nonexistent/warden/log")), "");
    }

    #[test]
    fn keeps_last_lines() {
        assert_eq!(tail_of(b"a\nb\nc\n", 2, 1024), ("b\nc\n".into(), true));
        assert_eq!(tail_of(b"a\nb\nc", 2, 1024), ("b\nc".into(), true));
        assert_eq!(tail_of(b"a\nb\n", 2, 1024), ("a\nb\n".into(), false));
        assert_eq!(tail_of(b"", 2, 1024), ("".into(), false));
    }

    #[test]
    fn drops_partial_first_line_when_seeking() {
        // Last 6 bytes are "45\nxy\n": "45" is a fragment of "12345".
        assert_eq!(tail_of(b"12345\nxy\n", 200, 6), ("xy\n".into(), true));
        // The window starts right after a newline: its first line is whole.
        assert_eq!(tail_of(b"12\n45\nxy\n", 200, 6), ("45\nxy\n".into(), true));
        // A single line longer than the bound: keep the fragment.
        assert_eq!(tail_of(b"1234567890", 200, 4), ("7890".into(), true));
    }

    #[test]
    fn ten_megabyte_log_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut f = std::io::BufWriter::new(File::create(&path).unwrap());
        let mut n = 0;
        while n < 10 * 1024 * 1024 {
            let line = format!("line {n:>10} {}\n", "x".repeat(60));
            f.write_all(line.as_bytes()).unwrap();
            n += line.len();
        }
        drop(f);

        let (b, cut) = read_tail(&path, TAIL_LINES, TAIL_BYTES).unwrap();
        assert!(cut);
        assert!(b.len() as u64 <= TAIL_BYTES);
        let text = String::from_utf8(b).unwrap();
        assert_eq!(text.lines().count(), TAIL_LINES);
        assert!(text.lines().all(|l| l.starts_with("line ")));

        // Long lines: the byte bound wins over the line count.
        let path = dir.path().join("wide.log");
        let wide = format!("{}\n", "y".repeat(10_000)).repeat(1000);
        std::fs::write(&path, wide).unwrap();
        let (b, _) = read_tail(&path, TAIL_LINES, TAIL_BYTES).unwrap();
        assert!(b.len() as u64 <= TAIL_BYTES);
        assert_eq!(
            b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count(),
            26
        );
    }
}
