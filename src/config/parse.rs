//! Config text → [`Config`]: TOML parsed with spans, read into the raw
//! structs, then each section validated, every error naming
//! `file:line:column` and the key.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

use super::defaults::defaults;
use super::raw::RawFile;
use super::resources::resources;
use super::run::run;
use super::span::Source;
use super::unit::{Section, units};
use super::{Config, ConfigError, PostConfig};

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::input::read_to_string(path, crate::input::MAX_CONFIG_BYTES).map_err(
            |error| ConfigError::Read {
                path: path.to_path_buf(),
                error,
            },
        )?;
        Config::parse(path, &text)
    }

    /// Validates config text; `path` is used in messages and to resolve relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cx = Source::new(path, text);
        let root = DeTable::parse(text).map_err(|e| cx.toml_error(&e))?;
        let raw = RawFile::deserialize(toml::de::Deserializer::from(root.clone()))
            .map_err(|e| cx.serde_error(root.get_ref(), &e))?;
        let run = run(&cx, raw.run)?;
        let defaults = defaults(&cx, raw.defaults)?;
        let resources = resources(&cx, raw.resources)?;
        // Setup steps, batches and post steps share the logs directory, so
        // their names share one namespace.
        let mut names = HashMap::new();
        let mut units = |section, raw| units(&cx, section, raw, &defaults, &resources, &mut names);
        let setup = units(Section::Setup, raw.setup)?;
        let batches = units(Section::Batch, raw.batch)?;
        let post = units(Section::Post, raw.post)?
            .into_iter()
            .map(|(step, required)| PostConfig { step, required })
            .collect();
        Ok(Config {
            path: path.to_path_buf(),
            run,
            resources,
            setup: setup.into_iter().map(|(b, _)| b).collect(),
            batches: batches.into_iter().map(|(b, _)| b).collect(),
            post,
        })
    }
}
