//! Why `warden init` could make no starter config (its own module: the
//! parent only declares and re-exports).

/// Why no starter config could be made.
#[derive(Debug, thiserror::Error)]
pub enum StarterError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "--selftests names {0}, which the tree has no directory for (under tools/testing/selftests)"
    )]
    UnknownTargets(String),
    #[error("--selftests is for kernel trees, and there is no tools/testing/selftests here")]
    NotAKernelTree,
}
