use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // Not a `source`: the message already says it, and anyhow would repeat it.
    #[error("{}: cannot read config: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// `line` and `column` are 1-based.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}
