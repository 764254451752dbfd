//! What contains a run's batches, for `run` and `check` alike: the run's
//! id, whether batches get a PID namespace each, and the line that says
//! which layers are in use.

use crate::cli::PidNsChoice;
use crate::supervisor::{leftovers, pidns, procfs};

/// A run id unique on this machine, whatever PID namespace we are in:
/// our pid, its start time and our PID namespace (see `leftovers`).
pub(super) fn run_id() -> String {
    let pid = std::process::id() as i32;
    let start = procfs::stat(pid).map(|s| s.starttime).unwrap_or(0);
    leftovers::RunId::new(pid, start, pidns::own_ns().unwrap_or(0)).to_string()
}

/// Whether batches get a PID namespace each: how it is made, or why not.
pub(super) fn pid_ns_layer(choice: PidNsChoice) -> Result<pidns::Kind, String> {
    let kind = match choice {
        PidNsChoice::Off => return Err("turned off by --pid-namespace off".into()),
        PidNsChoice::Auto | PidNsChoice::Required => pidns::Kind::Privileged,
        PidNsChoice::User => pidns::Kind::User,
    };
    pidns::probe(kind).map(|()| kind)
}

/// The containment layers in use: the tracking layer (`mode`, described
/// as `describe` says), then the PID namespace on top, or why there is none.
pub(super) fn layers_line(describe: &str, pid_ns: &Result<pidns::Kind, String>) -> String {
    match pid_ns {
        Ok(kind) => format!("{describe} + {}", kind.describe()),
        Err(why) => format!("{describe} (no PID namespace: {why})"),
    }
}
