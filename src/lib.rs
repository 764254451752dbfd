//! warden: a supervisor for CI test jobs. See DESIGN.md and docs/ARCHITECTURE.md.

pub mod config;
pub mod event;
pub mod outcome;
pub mod report;
pub mod status;
