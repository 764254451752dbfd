//! Quarantine: known-broken batches and tests whose failures warn instead
//! of failing the run, each with a reason, a link and an expiry so the
//! list can't rot. Everything about it is here:
//!
//! - [`list`]: the file (`[run] quarantine`), its entries, which one a
//!   name matches;
//! - [`marks`]: what a finished batch's outcome is marked with (the
//!   failing tests and the batch the list covers), which the reports show
//!   and [`verdict`](crate::verdict) honours;
//! - [`notes`]: what the end of a run says about the list (entries that
//!   pass again, entries past their `until`, which fail the run).

pub mod list;
pub mod marks;
pub mod notes;

pub use list::{Quarantine, QuarantineEntry, load, parse};
pub use notes::Notes;
