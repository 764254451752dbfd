//! A regular expression from the config, compared by its source text (so
//! configs stay comparable values).

use std::fmt;

use regex::bytes::Regex;

#[derive(Clone)]
pub struct Pattern(Regex);

impl Pattern {
    /// The error is regex's own message, for the config error.
    pub fn new(source: &str) -> Result<Pattern, String> {
        Regex::new(source).map(Pattern).map_err(|e| {
            // regex draws a caret diagram over several lines; its last line
            // says what is wrong.
            let text = e.to_string();
            let last = text.lines().last().unwrap_or_default();
            let why = last.trim().trim_start_matches("error: ");
            format!("invalid regex {source:?}: {why}")
        })
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// Output is bytes: a pattern matches whatever the encoding around it.
    pub fn is_match(&self, line: &[u8]) -> bool {
        self.0.is_match(line)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Pattern {}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}
