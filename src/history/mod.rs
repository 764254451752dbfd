//! The history store: every run, batch, attempt and test result, in SQLite
//! (one machine, the default) or PostgreSQL (a fleet of runners writing to
//! one database), and the questions asked of it: what flakes, what
//! regressed, how long things take.

pub mod classify;
mod copy_in;
pub mod db;
pub mod hunts;
pub mod import;
mod keyed;
pub mod location;
pub mod mask;
pub mod model;
pub mod origin;
mod partition;
pub mod prune;
pub mod query;
pub mod recorder;
pub mod results;
pub mod rollup;

pub use db::{Access, Db, HistoryError, RunId};
pub use location::Location;
