//! What the streaming-parser fuzz targets share: an input is a header
//! (how the batch ended, and a seed for the lines' arrival times) and the
//! batch's output, fed line by line as the capture thread feeds it.

use std::time::Duration;

use warden::parsers::{Ended, MAX_TEST_OUTPUT, Parser};
use warden::status::Status;

/// Bytes before the output: one for the ending, eight of time seed.
/// `seed.sh` puts zeros there before each real recording.
pub const HEADER: usize = 9;

/// The longest a batch runs (a timeout is at most a year): arrival
/// times stay below, as they do in `warden run`.
const MAX_AT: Duration = Duration::from_secs(2 * 366 * 24 * 3600);

/// Feeds `data` (header, then output) to `parser`, finishes it, and checks
/// what must hold of any output: no panic, and each test's kept output
/// bounded.
pub fn drive(mut parser: Box<dyn Parser>, data: &[u8]) {
    let mut header = [0u8; HEADER];
    let n = data.len().min(HEADER);
    header[..n].copy_from_slice(&data[..n]);
    let output = &data[n..];
    let ended = ending(header[0]);
    let mut seed = u64::from_le_bytes(header[1..].try_into().expect("8 bytes"));
    let mut at = Duration::ZERO;
    let mut done = Vec::new();
    for line in output.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        at = (at + step(&mut seed)).min(MAX_AT);
        parser.line(line, at, &mut done);
    }
    let (rest, _verdict) = parser.finish(&ended);
    for r in done.iter().chain(&rest) {
        // The kept tail, plus the note that its start was dropped.
        assert!(
            r.output.len() <= MAX_TEST_OUTPUT + 256,
            "{}: {} bytes of output kept",
            r.name(),
            r.output.len()
        );
    }
}

/// How the batch ended, by one byte: exited, or cut off by each status.
fn ending(b: u8) -> Ended {
    const CUT: [Status; 6] = [
        Status::Crashed,
        Status::TimedOut,
        Status::Aborted,
        Status::Deadline,
        Status::Interrupted,
        Status::Leaked,
    ];
    match b as usize % (CUT.len() + 1) {
        0 => Ended::exited(),
        i => Ended::batch(CUT[i - 1], "timed out after 5s; \u{1b}[31mred\u{1b}[0m"),
    }
}

/// The time between two lines: mostly none or milliseconds, sometimes
/// seconds or days (a test that hung), from a xorshift of `seed`
/// (zero: every line at once).
fn step(seed: &mut u64) -> Duration {
    if *seed == 0 {
        return Duration::ZERO;
    }
    let mut x = *seed;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *seed = x;
    match x % 16 {
        0..=7 => Duration::ZERO,
        8..=12 => Duration::from_micros((x >> 8) % 1_000_000),
        13 | 14 => Duration::from_millis((x >> 8) % 600_000),
        _ => Duration::from_secs((x >> 8) % (40 * 24 * 3600)),
    }
}
