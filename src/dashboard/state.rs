//! What every handler shares: the store, and this machine's name.

use std::sync::Arc;

use axum::extract::State;

use crate::history::Db;

/// What every handler shares.
pub struct Dashboard {
    pub(super) db: Db,
    /// This machine's host name: log files are read only for runs recorded
    /// on it.
    pub(super) host: String,
}

impl Dashboard {
    pub fn new(db: Db) -> Dashboard {
        Dashboard {
            db,
            host: crate::history::origin::host(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

pub(super) type App = State<Arc<Dashboard>>;
