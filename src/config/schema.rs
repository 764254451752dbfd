//! TODO(config helper)
use super::{Config, ConfigError};
use std::path::Path;

pub(super) fn parse(_path: &Path, _text: &str) -> Result<Config, ConfigError> {
    todo!()
}
