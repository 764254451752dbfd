//! warden: a supervisor for CI test jobs. See DESIGN.md and docs/ARCHITECTURE.md.

pub mod app;
pub mod artifacts;
pub mod atomic_write;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod duration;
pub mod event;
pub mod history;
pub mod input;
pub mod message;
pub mod outcome;
pub mod parsers;
pub mod phase;
pub mod plan;
pub mod quarantine;
pub mod report;
pub mod retry;
pub mod runner;
pub mod scheduler;
pub mod scratch;
pub mod status;
pub mod supervisor;
pub mod text;
pub mod verdict;
pub mod watchdog;
