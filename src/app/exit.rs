//! The exit codes of warden's commands (DESIGN.md). A run's own, from its
//! outcomes, is [`verdict`](crate::verdict)'s.

pub use crate::verdict::{EXIT_FAILED, EXIT_PASSED};

/// A command line, config, quarantine file or input file that can't be
/// used; a store that can't be read where one is needed.
pub const EXIT_BAD_INPUT: u8 = 2;
