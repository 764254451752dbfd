//! Reporters: they turn [`Event`](crate::event::Event)s and
//! [`Outcome`](crate::outcome::Outcome)s into a JUnit file, a summary (text and
//! Markdown) and terminal lines. They observe the run; they never drive it.

pub mod junit;
pub mod live;
pub mod log_tail;
pub mod summary;
pub mod table;
pub mod terminal;

pub use junit::JunitWriter;
pub use live::LiveReport;
pub use summary::{Counts, Makespan, Summary};
pub use terminal::{Terminal, TerminalMode};

/// Decodes bytes lossily and makes the text safe for XML 1.0: colour escape
/// sequences (CSI) are dropped, and every other character XML forbids becomes U+FFFD.
pub fn xml_safe_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            skip_csi(&mut chars);
        } else if is_xml_char(c) {
            out.push(c);
        } else {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

/// Skips `[`, parameter/intermediate bytes and the final byte of an `ESC [` sequence.
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    chars.next(); // the '['
    for c in chars.by_ref() {
        if ('\x40'..='\x7e').contains(&c) {
            return;
        }
        if !('\x20'..='\x3f').contains(&c) {
            // Malformed: stop here; the rest is ordinary text.
            return;
        }
    }
}

/// XML 1.0 `Char`, restricted to what a Rust `char` can hold (no surrogates).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use crate::config::BatchName;
    use crate::outcome::Outcome;
    use crate::status::{Exit, Status};

    pub fn outcome(name: &str, status: Status, reason: &str) -> Outcome {
        let mut o = Outcome::new(
            BatchName::new(name).expect("test names are valid"),
            crate::outcome::Phase::Batch,
            None,
            PathBuf::from(format!("/nonexistent/warden-test/{name}.log")),
            status,
            reason.to_string(),
        );
        o.exit = Some(Exit::Code(i32::from(!status.is_success())));
        o.started = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        o.duration = Duration::from_millis(1234);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_safe_replaces_forbidden_chars() {
        let input = b"a\x00b\x07c\td\r\ne\xff\xfef\x1b[1;31mred\x1b[0m g\x1bh";
        let s = xml_safe_text(input);
        assert_eq!(
            s,
            "a\u{FFFD}b\u{FFFD}c\td\r\ne\u{FFFD}\u{FFFD}fred g\u{FFFD}h"
        );
        assert_eq!(
            xml_safe_text("\u{FFFE}\u{FFFF}".as_bytes()),
            "\u{FFFD}\u{FFFD}"
        );
    }
}
