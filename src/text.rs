//! Untrusted text: cut to a bound at a character boundary ([`head`],
//! [`tail`], [`clip`], [`clip_message`]), and made inert for display.
//!
//! Test names, reasons, messages and output come from the code under test.
//! Shown raw, an `ESC ]0;…` sets a terminal's title, `ESC [2J` clears it, a
//! CR or backspace overwrites what was printed before, and a bidi override
//! (U+202E) makes `txt.exe` read as `exe.txt` in a terminal, a Markdown
//! table or a web page. Every place that shows such text to a person (live
//! lines, the progress display, the summary, the query tables, the summary
//! Markdown, the dashboard's HTML) passes it through [`inert`] or
//! [`inert_lines`]; the places that keep it as data (JUnit, with its own XML
//! rules; the logs; the store; JSON) keep the bytes.
//!
//! Such characters are made visible, not dropped: `\e` for ESC, `\r`, `\t`,
//! `\n`, `\xNN` for the other C0 controls and DEL, `\u{NN}` for C1 controls
//! and the invisible formatting characters that reorder or hide text. A
//! backslash itself is left alone: this is for reading, not for decoding.

use std::borrow::Cow;

/// The longest message kept for a test (the JUnit `message` attribute, the
/// history's message column): enough for the assertion line, small enough
/// that a million results stay a small database; the whole output goes to
/// the failure text.
pub const MAX_MESSAGE: usize = 512;

/// The longest start of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn head(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

/// The longest end of `s` of at most `max` bytes that starts on a
/// character boundary.
pub fn tail(s: &str, max: usize) -> &str {
    &s[s.ceil_char_boundary(s.len().saturating_sub(max))..]
}

/// `s` cut to at most `max` bytes at a character boundary (a name or a
/// message on a megabyte line is not kept whole), with `…` when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    format!("{}…", head(s, max))
}

/// A test's message: [`clip`]ped to [`MAX_MESSAGE`].
pub fn clip_message(s: &str) -> String {
    clip(s, MAX_MESSAGE)
}

/// `s` on one line, with every control character (line breaks and tabs
/// included) and every bidi or invisible formatting character escaped: for
/// names and table cells.
pub fn inert(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` with its line breaks (`\n`, and `\r\n` as one) and tabs kept as
/// layout, and everything else [`inert`] escapes escaped: a lone CR or an
/// ESC inside a line shows as `\r`, `\e`.
pub fn inert_lines(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, keep_layout: bool) -> Cow<'_, str> {
    let layout = |c: char, next: Option<char>| {
        keep_layout && (c == '\n' || c == '\t' || (c == '\r' && next == Some('\n')))
    };
    let mut chars = s.chars().peekable();
    let mut clean = true;
    while let Some(c) = chars.next() {
        if needs_escape(c) && !layout(c, chars.peek().copied()) {
            clean = false;
            break;
        }
    }
    if clean {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if !needs_escape(c) || layout(c, chars.peek().copied()) {
            out.push(c);
            continue;
        }
        match c {
            '\x1b' => out.push_str("\\e"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the formatting characters that
/// reorder text or hide it: bidi embeddings, overrides, isolates and marks,
/// line and paragraph separators (line breaks to some terminals), zero-width
/// spaces and joiners' invisible relatives, the byte-order mark, and
/// interlinear annotations. ZWJ and ZWNJ (U+200C, U+200D) are left alone:
/// several scripts and emoji need them, and they move nothing.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // "é" is two bytes: a cut inside one moves out of it.
        assert_eq!(head("aéb", 2), "a");
        assert_eq!(head("aéb", 3), "aé");
        assert_eq!(head("ab", 9), "ab");
        assert_eq!(tail("aéb", 2), "b");
        assert_eq!(tail("aéb", 3), "éb");
        assert_eq!(tail("ab", 9), "ab");
        assert_eq!(clip("aéb", 2), "a…");
        assert_eq!(clip("ab", 2), "ab");
        let long = "é".repeat(MAX_MESSAGE);
        let m = clip_message(&long);
        assert!(m.len() <= MAX_MESSAGE + '…'.len_utf8() && m.ends_with('…'));
    }

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(inert("net/tcp [x86_64] é ✓"), Cow::Borrowed(_)));
        assert!(matches!(inert_lines("a\n\tb\r\nc"), Cow::Borrowed(_)));
        // ZWJ emoji survive.
        assert_eq!(inert("👩\u{200d}💻"), "👩\u{200d}💻");
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            inert("a\x1b]0;pwned\x07b\x1b[2Jc\rd\x08e\x00\x7f"),
            "a\\e]0;pwned\\x07b\\e[2Jc\\rd\\x08e\\x00\\x7f"
        );
        assert_eq!(inert("a\nb\tc"), "a\\nb\\tc");
        assert_eq!(inert("\u{85}\u{9b}31m"), "\\u{85}\\u{9b}31m");
    }

    #[test]
    fn bidi_and_invisible_formatting_are_escaped() {
        assert_eq!(inert("test_\u{202e}txt.exe"), "test_\\u{202e}txt.exe");
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2067}', '\u{2068}',
            '\u{2069}', '\u{200e}', '\u{200f}', '\u{061c}', '\u{2028}', '\u{2029}', '\u{feff}',
        ] {
            let s = c.to_string();
            assert_eq!(inert(&s), format!("\\u{{{:x}}}", c as u32));
        }
    }

    #[test]
    fn lines_keep_their_layout_only() {
        assert_eq!(
            inert_lines("one\r\n\ttwo\rthree\x1b[1m\n\u{202e}"),
            "one\r\n\ttwo\\rthree\\e[1m\n\\u{202e}"
        );
        assert_eq!(inert_lines("end\r"), "end\\r");
    }
}
