//! [`ClipRuns`]: a reader that keeps an XML reader's memory bounded.
//!
//! quick-xml reads a whole text node (or tag) into one buffer before it
//! hands it over, so a JUnit file with a 1 GiB `<system-out>` would cost
//! 1 GiB. This reader sits under it and clips every run of bytes between
//! two markup delimiters (`<` or `>`) longer than `2 × keep`: it passes the
//! first `keep` bytes, drops the middle, and passes a marker saying how
//! much was dropped and the last `keep` bytes. What readers keep of a text
//! (a message's beginning, an output's end) is unchanged; the rest was
//! going to be dropped anyway.
//!
//! Delimiters are never dropped, so the markup around a clipped run stays
//! intact; the cut avoids splitting an `&…;` reference. Positions the XML
//! reader reports are in the clipped stream: [`ClipRuns::original`] maps
//! them back to the file's offsets for messages.

use std::collections::VecDeque;
use std::io::{self, Read};

/// How many bytes of a run are kept at each end by default: more than any
/// reader keeps of a text ([`super::MAX_TEST_OUTPUT`], [`crate::text::MAX_MESSAGE`]).
pub const KEEP: usize = 64 * 1024;

/// The longest `&…;` reference looked for at a cut.
const MAX_REF: usize = 32;

const CHUNK: usize = 64 * 1024;

pub struct ClipRuns<R> {
    inner: R,
    keep: usize,
    /// Bytes of the current run seen so far.
    run: usize,
    /// Of the current run, dropped so far.
    dropped: u64,
    /// The current run's last bytes, once past its head.
    tail: VecDeque<u8>,
    /// Bytes ready for the caller, from `pos`.
    staged: Vec<u8>,
    pos: usize,
    /// Where the current run starts in `staged` (0: before this refill).
    run_start: usize,
    chunk: Vec<u8>,
    eof: bool,
    /// Bytes passed on so far.
    out: u64,
    /// (offset in the clipped stream, original − clipped from there on),
    /// one per clipped run.
    shifts: Vec<(u64, i64)>,
}

impl<R: Read> ClipRuns<R> {
    pub fn new(inner: R) -> Self {
        Self::with_keep(inner, KEEP)
    }

    pub fn with_keep(inner: R, keep: usize) -> Self {
        ClipRuns {
            inner,
            keep: keep.max(MAX_REF * 2),
            run: 0,
            dropped: 0,
            tail: VecDeque::new(),
            staged: Vec::new(),
            pos: 0,
            run_start: 0,
            chunk: vec![0; CHUNK],
            eof: false,
            out: 0,
            shifts: Vec::new(),
        }
    }

    /// The file offset of `pos`, an offset in what this reader passed on.
    pub fn original(&self, pos: u64) -> u64 {
        let i = self.shifts.partition_point(|&(at, _)| at <= pos);
        match i {
            0 => pos,
            i => pos.saturating_add_signed(self.shifts[i - 1].1),
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        self.staged.clear();
        self.pos = 0;
        self.run_start = 0;
        let mut chunk = std::mem::take(&mut self.chunk);
        let result = (|| {
            while self.staged.is_empty() && !self.eof {
                let n = match self.inner.read(&mut chunk) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    self.eof = true;
                    self.end_run();
                    break;
                }
                let mut data = &chunk[..n];
                while !data.is_empty() {
                    match data.iter().position(|&b| b == b'<' || b == b'>') {
                        Some(i) => {
                            self.take_run(&data[..i]);
                            self.end_run();
                            self.staged.push(data[i]);
                            self.run_start = self.staged.len();
                            data = &data[i + 1..];
                        }
                        None => {
                            self.take_run(data);
                            data = &[];
                        }
                    }
                }
            }
            Ok(())
        })();
        self.chunk = chunk;
        self.out += self.staged.len() as u64;
        result
    }

    /// More bytes of the current run.
    fn take_run(&mut self, seg: &[u8]) {
        let room = self.keep.saturating_sub(self.run).min(seg.len());
        let (head, rest) = seg.split_at(room);
        self.staged.extend_from_slice(head);
        self.run += seg.len();
        if rest.is_empty() {
            return;
        }
        if self.tail.is_empty() && self.dropped == 0 {
            // The head just ended: don't leave a reference cut in two.
            if let Some(cut) = open_ref(&self.staged[self.run_start..]) {
                let moved = self.staged.split_off(self.run_start + cut);
                self.tail.extend(moved);
            }
        }
        self.tail.extend(rest);
        let excess = self.tail.len().saturating_sub(self.keep);
        if excess > 0 {
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// The run ended (a delimiter or the end): pass on its tail.
    fn end_run(&mut self) {
        if self.dropped > 0 {
            // A reference cut at the tail's start: drop its remains.
            let skip = self
                .tail
                .iter()
                .take(MAX_REF)
                .position(|&b| b == b';' || b == b'&')
                .filter(|&i| self.tail[i] == b';')
                .map_or(0, |i| i + 1);
            self.tail.drain(..skip);
            self.dropped += skip as u64;
            let marker = format!(" [... {} bytes not read ...] ", self.dropped);
            self.staged.extend_from_slice(marker.as_bytes());
            let clipped_at = self.out + self.staged.len() as u64;
            let shift =
                self.shifts.last().map_or(0, |s| s.1) + self.dropped as i64 - marker.len() as i64;
            self.shifts.push((clipped_at, shift));
        }
        self.staged.extend(self.tail.drain(..));
        self.run = 0;
        self.dropped = 0;
    }
}

/// Where an `&…` reference without its `;` starts in the last bytes of
/// `head`, if one does.
fn open_ref(head: &[u8]) -> Option<usize> {
    let from = head.len().saturating_sub(MAX_REF);
    let amp = head[from..].iter().rposition(|&b| b == b'&')? + from;
    (!head[amp..].contains(&b';')).then_some(amp)
}

impl<R: Read> Read for ClipRuns<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.staged.len() {
            self.refill()?;
        }
        let n = buf.len().min(self.staged.len() - self.pos);
        buf[..n].copy_from_slice(&self.staged[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(input: &[u8], keep: usize) -> (String, ClipRuns<&[u8]>) {
        let mut r = ClipRuns::with_keep(input, keep);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        (String::from_utf8_lossy(&out).into_owned(), r)
    }

    #[test]
    fn short_runs_pass_unchanged() {
        let xml = b"<a x=\"1\">text &amp; more</a>";
        assert_eq!(clip(xml, 64).0.as_bytes(), xml);
    }

    #[test]
    fn a_long_run_keeps_both_ends_and_says_what_was_dropped() {
        let mut xml = b"<out>".to_vec();
        xml.extend(b"HEAD");
        xml.extend(std::iter::repeat_n(b'x', 10_000));
        xml.extend(b"TAIL</out><next/>");
        let (out, r) = clip(&xml, 64);
        assert!(out.starts_with("<out>HEADxxx"), "{out}");
        assert!(out.ends_with("xxxTAIL</out><next/>"), "{out}");
        assert!(out.contains(" [... 9880 bytes not read ...] "), "{out}");
        // `<next/>` is at the same place in the file as reported.
        let at = out.find("<next").unwrap() as u64;
        let want = xml.windows(5).position(|w| w == b"<next").unwrap() as u64;
        assert_eq!(r.original(at), want);
        assert_eq!(r.original(3), 3);
    }

    #[test]
    fn references_are_not_cut() {
        let mut xml = b"<o>".to_vec();
        xml.extend(std::iter::repeat_n(b'x', 60));
        xml.extend(b"&amp;");
        xml.extend(std::iter::repeat_n(b'y', 1000));
        xml.extend(b"&quot;");
        xml.extend(std::iter::repeat_n(b'z', 62));
        xml.extend(b"</o>");
        let (out, _) = clip(&xml, 64);
        let text = &out[3..out.len() - 4];
        // No `&` without its `;`, and no stray `…;` remains.
        for (i, _) in text.match_indices('&') {
            assert!(
                text[i..].starts_with("&amp;") || text[i..].starts_with("&quot;"),
                "{text}"
            );
        }
        assert!(!text.contains("uot;") || text.contains("&quot;"), "{text}");
    }

    #[test]
    fn memory_stays_bounded_on_a_huge_run() {
        // 64 MiB without a delimiter, read through: nothing grows past keep.
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = (buf.len() as u64).min(self.0) as usize;
                buf[..n].fill(b'a');
                self.0 -= n as u64;
                Ok(n)
            }
        }
        let mut r = ClipRuns::with_keep(Endless(64 << 20), 1024);
        let mut buf = vec![0; 8192];
        let mut total = 0;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            assert!(r.tail.len() <= 1024 && r.staged.len() <= CHUNK + 2048);
        }
        assert!(total < 4096, "{total}");
    }
}
