//! TAP placeholder.

use super::{MAX_TEST_OUTPUT, OutputTail};

/// The note [`OutputTail::text`] starts with when it dropped output.
const DROPPED_NOTE: &str = "[warden: earlier output of this test dropped]\n";

/// [`OutputTail::text`], bounded again after decoding: lossy decoding turns
/// each invalid byte into a 3-byte U+FFFD, so 64 KiB of garbage would
/// otherwise come out as 192 KiB.
pub(super) fn tail_text(tail: &OutputTail) -> String {
    let text = tail.text();
    if text.len() <= MAX_TEST_OUTPUT + DROPPED_NOTE.len() {
        return text;
    }
    let mut start = text.len() - MAX_TEST_OUTPUT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{DROPPED_NOTE}{}", &text[start..])
}
