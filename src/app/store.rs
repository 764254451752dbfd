//! Where the history is for the commands that only read or import it, and
//! the runtime they wait on it with.

use anyhow::Context;

use crate::cli::StoreArgs;
use crate::config::Config;
use crate::history::Location;
use crate::history::model::Labels;

/// The history location for commands that only read or import:
/// `--history`/`WARDEN_HISTORY`, else the config's `[run] history` (the
/// given config, or warden.toml when it exists), else the default.
pub(super) fn history_location(store: &StoreArgs) -> anyhow::Result<Location> {
    if let Some(l) = &store.history {
        return Ok(l.clone());
    }
    let from_config = store_config(store)?.and_then(|c| c.history());
    Ok(Location::resolve(None, from_config.as_ref()))
}

/// The config's `[run] labels`, for an import (none without a config).
pub(super) fn config_labels(store: &StoreArgs) -> anyhow::Result<Labels> {
    Ok(store_config(store)?
        .map(|c| c.run.labels)
        .unwrap_or_default())
}

/// The config the history commands read: `-c`, else warden.toml when it exists.
fn store_config(store: &StoreArgs) -> anyhow::Result<Option<Config>> {
    let default = std::path::Path::new("warden.toml");
    let path = match &store.config {
        Some(p) => Some(p.as_path()),
        None => default.exists().then_some(default),
    };
    Ok(path.map(Config::load).transpose()?)
}

/// A runtime for the history commands: they only wait on the store.
pub(super) fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(f))
}
