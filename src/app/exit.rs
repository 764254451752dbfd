//! Exit codes (DESIGN.md), and the one a run's outcomes make.

use crate::config::FlakyPolicy;
use crate::outcome::Outcome;
use crate::runner;
use crate::watchdog::StopCause;

pub const EXIT_PASSED: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

/// 130/143 when warden was interrupted; else 1 if any setup step, batch or
/// required post step did not pass; else 0. A deadline counts only through
/// what it stopped: one that fires while post steps run fails nothing.
pub(super) fn exit_code(
    outcomes: &[Outcome],
    stopped: Option<StopCause>,
    flaky: FlakyPolicy,
) -> u8 {
    if let Some(code) = stopped.and_then(StopCause::exit_code) {
        return code;
    }
    if outcomes.iter().any(|o| runner::fails_run(o, flaky)) {
        EXIT_FAILED
    } else {
        EXIT_PASSED
    }
}
