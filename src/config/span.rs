//! Byte spans → `file:line:column`: every config-language error (the
//! config file's and the quarantine file's) names where it is, and the key,
//! recovered from the span where serde does not say it.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::ConfigError;

/// Where errors point: the file's name and text, to turn byte spans into
/// line and column.
pub(crate) struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

impl<'a> Source<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Source<'a> {
        Source { path, text }
    }

    pub(crate) fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    pub(super) fn key_error(
        &self,
        key: &str,
        span: Range<usize>,
        message: impl AsRef<str>,
    ) -> ConfigError {
        self.error(span, format!("key `{key}`: {}", message.as_ref()))
    }

    pub(super) fn line(&self, span: Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    pub(super) fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        // message() is toml's one-line description; Display adds a snippet.
        let mut message = e.message().trim().replace('\n', "; ");
        let span = e.span().unwrap_or(0..0);
        // toml names the duplicate only in its snippet; keep it in the one-liner.
        if message == "duplicate key"
            && let Some(key) = self.text.get(span.clone())
        {
            message = format!("duplicate key `{key}`");
        }
        self.error(span, message)
    }

    /// serde's messages don't say which key failed; recover it from the span.
    pub(super) fn serde_error(&self, root: &DeTable, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim();
        let Some(keys) = key_path(root, &span) else {
            return self.error(span, message);
        };
        let message = match message.strip_prefix("unknown field ") {
            Some(rest) => unknown_key_message(&keys, rest),
            None => format!("key `{}`: {message}", relative_key(&keys)),
        };
        self.error(span, message)
    }
}

/// 1-based line and character column of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let current = &before[line_start..];
    let column = std::str::from_utf8(current).map_or(current.len(), |s| s.chars().count());
    (line, column + 1)
}

/// The keys leading to the key or value at exactly `span`, deepest match.
fn key_path(table: &DeTable, span: &Range<usize>) -> Option<Vec<String>> {
    table.iter().find_map(|(k, v)| {
        let inner = value_path(v.get_ref(), span);
        let here = k.span() == *span || v.span() == *span;
        inner.or_else(|| here.then(Vec::new)).map(|mut rest| {
            rest.insert(0, k.get_ref().to_string());
            rest
        })
    })
}

fn value_path(value: &DeValue, span: &Range<usize>) -> Option<Vec<String>> {
    match value {
        DeValue::Table(t) => key_path(t, span),
        // An array element has no key of its own: report the array's key.
        DeValue::Array(items) => items.iter().find_map(|item| {
            let inner = value_path(item.get_ref(), span);
            inner.or_else(|| (item.span() == *span).then(Vec::new))
        }),
        _ => None,
    }
}

/// The key as a user would name it inside its section (`timeout`, `env.FOO`).
fn relative_key(keys: &[String]) -> String {
    match keys {
        [only] => only.clone(),
        [_, rest @ ..] => rest.join("."),
        [] => String::new(),
    }
}

/// Rewrites serde's "unknown field `x`, expected ..." to say where it was.
fn unknown_key_message(keys: &[String], serde_rest: &str) -> String {
    let key = keys.last().map_or("", String::as_str);
    let place = match keys {
        [section, _, ..] if section == "batch" => "in [[batch]]".to_owned(),
        [section, _, ..] => format!("in [{section}]"),
        _ => "at the top level".to_owned(),
    };
    match serde_rest.split_once("`, ") {
        Some((_, expected)) => format!("unknown key `{key}` {place}, {expected}"),
        None => format!("unknown key `{key}` {place}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        // "é" is two bytes but one column.
        assert_eq!(line_column("é = 1\nab", 3), (1, 3));
        assert_eq!(line_column("é = 1\nab", 8), (2, 2));
        assert_eq!(line_column("ab", 2), (1, 3));
    }
}
