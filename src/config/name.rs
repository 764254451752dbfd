//! Batch names. They become file and directory names under the artifacts
//! directory, so they are restricted to a portable, path-safe alphabet.
use std::fmt;
use std::str::FromStr;

const MAX_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchName(String);

impl BatchName {
    /// Validates `s`: 1..=100 characters of `[A-Za-z0-9._-]`, starting with
    /// a letter or digit (which rules out `.`, `..` and hidden files).
    pub fn new(s: &str) -> Result<BatchName, String> {
        let starts_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
        let chars_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if starts_ok && chars_ok && s.len() <= MAX_LEN {
            Ok(BatchName(s.to_owned()))
        } else {
            Err(format!(
                "invalid batch name {s:?}: names must be 1 to {MAX_LEN} characters of \
                 letters, digits, '.', '_' or '-', starting with a letter or digit"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BatchName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BatchName::new(s)
    }
}

impl AsRef<str> for BatchName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BatchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for s in ["unit", "a", "0", "ut-1.2_x", "A.b", &"x".repeat(100)] {
            let name = BatchName::new(s).unwrap();
            assert_eq!(name.as_str(), s);
            assert_eq!(name.to_string(), s);
            assert_eq!(s.parse::<BatchName>().unwrap(), name);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        let too_long = "x".repeat(101);
        for s in [
            "", ".", "..", ".hidden", "-x", "_x", "a/b", "a b", "a\\b", "é", "a\0", &too_long,
        ] {
            let err = BatchName::new(s).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid batch name {s:?}: ")),
                "{err}"
            );
            assert!(s.parse::<BatchName>().is_err());
        }
    }
}
