//! Leftovers of dead runs: `warden reap`, and the same before every run.

use super::exit::EXIT_PASSED;
use crate::cli::ReapArgs;
use crate::supervisor::leftovers;

pub(super) fn reap(args: ReapArgs) -> u8 {
    let found = leftovers::find();
    let lines = leftovers::describe(&found);
    if lines.is_empty() {
        out!("warden: no leftovers of dead runs");
        return EXIT_PASSED;
    }
    let verb = if args.dry_run {
        "would reap"
    } else {
        "reaping"
    };
    for line in &lines {
        out!("warden: {verb} {line}");
    }
    if !args.dry_run {
        for problem in leftovers::reap(&found) {
            err!("warden: {problem}");
        }
    }
    EXIT_PASSED
}

/// Leftovers of earlier runs whose warden was killed would compete with
/// this run (and hold VMs, ports, disk), so they go first.
pub(super) fn reap_before_run() {
    let found = leftovers::find();
    if found.is_empty() {
        return;
    }
    for line in leftovers::describe(&found) {
        out!("warden: reaping {line}");
    }
    for problem in leftovers::reap(&found) {
        err!("warden: {problem}");
    }
}
