//! The CLI edge: arguments in, exit code out. Library errors become
//! messages here (`anyhow` lives only at this edge).
//!
//! A module per command (`run`, `check`, `reap`, `import`, `queries`,
//! `serve`, `hunt`, `prune`, `report`, `init`, `completions`, `man`), and what they share: `exit` (the
//! exit codes, and the one the run's outcomes make), `store` (where the
//! history is, for the commands that read or import), `containment` (the
//! run id and the containment layers, for `run` and `check`), `plan`
//! (config + command line → plan), `schedule` (durations, shard, order,
//! prediction) and `queue` (joining a queue-mode run's queue, for `run`).

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command, ImportCommand};

/// `println!` that ignores a closed stdout: a reader that went away (`| head`)
/// must not turn into a panic halfway through a run.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that ignores a closed stderr.
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod check;
mod completions;
mod containment;
mod exit;
mod hunt;
mod import;
mod init;
mod man;
mod plan;
mod prune;
mod queries;
mod queue;
mod reap;
mod report;
mod rerun;
mod run;
mod schedule;
mod serve;
mod store;

pub use exit::{EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PASSED};

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // clap uses 2 for usage errors and 0 for --help/--version.
            return ExitCode::from(if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_PASSED
            });
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::check(args),
        Command::Init(args) => init::init(args),
        Command::Reap(args) => Ok(reap::reap(args)),
        Command::Import(ImportCommand::Junit(args)) => import::junit(args),
        Command::Flaky(args) => queries::flaky(args),
        Command::History(args) => queries::history(args),
        Command::Regressed(args) => queries::regressed(args),
        Command::Failures(args) => queries::failures(args),
        Command::Durations(args) => queries::durations(args),
        Command::Serve(args) => serve::serve(args),
        Command::Hunt(args) => hunt::hunt(args),
        Command::Prune(args) => prune::prune(args),
        Command::Report(args) => report::report(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => man::man(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            err!("warden: {e:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
