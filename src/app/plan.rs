//! The plan `run` and `check` work from: the config file, with what the
//! command line overrides.

use crate::config::Config;
use crate::plan::{Overrides, Plan};

pub(super) fn load_plan(path: &std::path::Path, overrides: Overrides) -> anyhow::Result<Plan> {
    let config = Config::load(path)?;
    Ok(Plan::new(config, overrides)?)
}
