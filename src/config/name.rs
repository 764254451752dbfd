//! TODO(config helper)
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchName(String);

impl BatchName {
    // TODO(config): validated version lands from the config branch
    pub fn new(s: &str) -> Result<BatchName, String> {
        Ok(BatchName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BatchName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
