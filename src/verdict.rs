//! How the run ended — whether it failed, its status, its exit code —
//! decided here and nowhere else: the dispatcher asks before the post
//! steps (`WARDEN_RUN_STATUS`), `warden run` at the end (the exit code,
//! the history's run status, `<artifacts>/exit-code`).

use crate::config::FlakyPolicy;
use crate::outcome::Outcome;
use crate::status::RunStatus;
use crate::watchdog::StopCause;

/// Nothing failed the run.
pub const EXIT_PASSED: u8 = 0;
/// Something failed the run.
pub const EXIT_FAILED: u8 = 1;
/// warden was stopped by SIGINT (128 + 2, as a shell reports it).
const EXIT_SIGINT: u8 = 130;
/// warden was stopped by SIGTERM or SIGHUP (reported as 128 + SIGTERM).
const EXIT_SIGTERM: u8 = 143;

/// Whether a unit's outcome fails the run: a setup step, batch or
/// required post step that did not pass (a flaky one only under `flaky =
/// "fail"`), unless the quarantine list covers it.
pub fn fails_run(o: &Outcome, flaky: FlakyPolicy) -> bool {
    let failed = match o.status {
        crate::status::Status::Flaky => flaky == FlakyPolicy::Fail,
        status => !status.is_success(),
    };
    o.phase.counts_for_run() && failed && o.quarantined.is_none()
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: RunStatus,
    pub exit_code: u8,
}

/// The run's verdict, from why it stopped early (if it did) and whether
/// anything failed it (an outcome that [`fails_run`], or the run's own
/// failure: results it could not write, an expired quarantine entry):
/// - stopped by a signal: `interrupted`, 130 for SIGINT, else 143;
/// - stopped by the deadline: `deadline`; 1 if anything failed, else 0
///   (a deadline counts only through what it stopped: one that fires
///   while post steps run fails nothing);
/// - else `failed` and 1, or `passed` and 0.
pub fn decide(stopped: Option<StopCause>, failed: bool) -> Verdict {
    let exit_code = if failed { EXIT_FAILED } else { EXIT_PASSED };
    match stopped {
        Some(StopCause::Signal(sig)) => Verdict {
            status: RunStatus::Interrupted,
            exit_code: if sig == libc::SIGINT {
                EXIT_SIGINT
            } else {
                EXIT_SIGTERM
            },
        },
        Some(StopCause::Deadline { .. }) => Verdict {
            status: RunStatus::Deadline,
            exit_code,
        },
        // Lease: only ever one batch's stop (queue mode), never the run's;
        // max-fail: the run failed (its failed batches), and says so.
        Some(StopCause::Lease | StopCause::MaxFail { .. }) | None => Verdict {
            status: if failed {
                RunStatus::Failed
            } else {
                RunStatus::Passed
            },
            exit_code,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::phase::Phase;
    use crate::report::test_support::outcome;
    use crate::status::Status;

    #[test]
    fn what_fails_the_run() {
        let pass = FlakyPolicy::Pass;
        assert!(!fails_run(&outcome("a", Status::Passed, ""), pass));
        assert!(fails_run(&outcome("a", Status::Failed, ""), pass));
        assert!(fails_run(&outcome("a", Status::NotRun, ""), pass));
        assert!(!fails_run(&outcome("a", Status::Flaky, ""), pass));
        assert!(fails_run(
            &outcome("a", Status::Flaky, ""),
            FlakyPolicy::Fail
        ));
        let mut quarantined = outcome("a", Status::Failed, "");
        quarantined.quarantined = Some("known".into());
        assert!(!fails_run(&quarantined, pass));
        let mut post = outcome("a", Status::Failed, "");
        post.phase = Phase::Post { required: false };
        assert!(!fails_run(&post, pass));
        post.phase = Phase::Post { required: true };
        assert!(fails_run(&post, pass));
    }

    #[test]
    fn status_and_exit_code() {
        let v = |status, exit_code| Verdict { status, exit_code };
        assert_eq!(decide(None, false), v(RunStatus::Passed, 0));
        assert_eq!(decide(None, true), v(RunStatus::Failed, 1));
        let deadline = StopCause::Deadline {
            deadline: Duration::from_secs(60),
            reserve: Duration::from_secs(5),
        };
        assert_eq!(decide(Some(deadline), false), v(RunStatus::Deadline, 0));
        assert_eq!(decide(Some(deadline), true), v(RunStatus::Deadline, 1));
        let int = StopCause::Signal(libc::SIGINT);
        assert_eq!(decide(Some(int), false), v(RunStatus::Interrupted, 130));
        let term = StopCause::Signal(libc::SIGTERM);
        assert_eq!(decide(Some(term), true), v(RunStatus::Interrupted, 143));
        let hup = StopCause::Signal(libc::SIGHUP);
        assert_eq!(decide(Some(hup), true), v(RunStatus::Interrupted, 143));
    }
}
