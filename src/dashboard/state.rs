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
    /// The tests `/metrics` gives series of their own
    /// (`--metrics-test`): exact names.
    pub(super) metrics_tests: Vec<String>,
}

impl Dashboard {
    pub fn new(db: Db) -> Dashboard {
        Dashboard {
            db,
            host: crate::history::origin::host(),
            metrics_tests: Vec::new(),
        }
    }

    /// `/metrics` also counts the results of these tests (exact names),
    /// one series per test, label set and status.
    pub fn with_metrics_tests(mut self, tests: Vec<String>) -> Dashboard {
        self.metrics_tests = tests;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }
}

pub(super) type App = State<Arc<Dashboard>>;
