//! Live lines on stdout: one per start and finish in plain mode, or a spinner per
//! running batch with finish lines printed above them in progress mode. Batch
//! output is never printed here.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::BatchName;
use crate::event::{Event, Reporter, RunResult};
use crate::outcome::Outcome;
use crate::status::Status;
use crate::text::{inert, inert_lines};

/// Width the status words are right-aligned to (`TIMEOUT` plus one space).
const WORD_WIDTH: usize = 8;
const SPINNER_TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalMode {
    /// Plain lines, no colour, no cursor movement: logs and dumb terminals.
    Plain,
    /// Spinners for running batches and coloured status words.
    Progress,
}

impl TerminalMode {
    /// `Progress` only when stdout is a terminal, `NO_COLOR` is unset or empty,
    /// and `TERM` is not `dumb`.
    pub fn detect() -> TerminalMode {
        choose_mode(
            io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
            std::env::var_os("TERM").as_deref(),
        )
    }
}

fn choose_mode(stdout_tty: bool, no_color: Option<&OsStr>, term: Option<&OsStr>) -> TerminalMode {
    let no_color = no_color.is_some_and(|v| !v.is_empty());
    let dumb = term == Some(OsStr::new("dumb"));
    if stdout_tty && !no_color && !dumb {
        TerminalMode::Progress
    } else {
        TerminalMode::Plain
    }
}

pub struct Terminal {
    progress: Option<Progress>,
}

struct Progress {
    multi: MultiProgress,
    bars: HashMap<BatchName, ProgressBar>,
}

impl Terminal {
    pub fn new(mode: TerminalMode) -> Self {
        let progress = match mode {
            TerminalMode::Plain => None,
            TerminalMode::Progress => Some(Progress::new(ProgressDrawTarget::stdout())),
        };
        Terminal { progress }
    }

    /// Colour only where spinners are actually drawn (a terminal).
    fn colour(&self) -> bool {
        self.progress.as_ref().is_some_and(|p| !p.multi.is_hidden())
    }

    /// Prints a line as it is: one built here, its untrusted parts already
    /// made inert and its colour our own.
    fn write_line(&self, line: &str) {
        if let Some(p) = &self.progress
            && !p.multi.is_hidden()
        {
            // A failing terminal must not stop supervision: drop the line.
            let _ = p.multi.println(line);
            return;
        }
        let _ = writeln!(io::stdout().lock(), "{line}");
    }

    /// Removes any spinners left; safe to call more than once.
    fn clear(&mut self) {
        if let Some(p) = &mut self.progress {
            for (_, bar) in p.bars.drain() {
                bar.finish_and_clear();
            }
            let _ = p.multi.clear();
        }
    }
}

impl Reporter for Terminal {
    fn on_event(&mut self, event: &Event) {
        match (event, &mut self.progress) {
            (Event::Started { name, at, .. }, Some(p)) => p.start(name, at.elapsed()),
            (Event::Finished(outcome), Some(p)) => p.stop(&outcome.name),
            _ => {}
        }
        // Spinners show what started; plain mode says it in a line.
        let starts = self.progress.is_none();
        for line in lines(event, starts, self.colour()) {
            self.write_line(&line);
        }
    }

    /// The summary follows on stdout: no spinner may be left above it.
    fn finish(&mut self, _run: &RunResult) {
        self.clear();
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        self.clear();
    }
}

impl Progress {
    fn new(target: ProgressDrawTarget) -> Progress {
        Progress {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
        }
    }

    fn start(&mut self, name: &BatchName, elapsed: Duration) {
        let style = ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner()
            .with_style(style)
            .with_message(inert(name.as_ref()).into_owned())
            .with_elapsed(elapsed);
        let bar = self.multi.add(bar);
        bar.enable_steady_tick(SPINNER_TICK);
        if let Some(old) = self.bars.insert(name.clone(), bar) {
            self.remove(&old);
        }
    }

    fn stop(&mut self, name: &BatchName) {
        if let Some(bar) = self.bars.remove(name) {
            self.remove(&bar);
        }
    }

    fn remove(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.multi.remove(bar);
    }
}

/// The lines `event` prints, untrusted parts made inert: `START` lines
/// only with `starts` (plain mode), colour only with `colour`.
pub(super) fn lines(event: &Event, starts: bool, colour: bool) -> Vec<String> {
    match event {
        Event::Started { name, .. } if starts => {
            let line = format!("{:>WORD_WIDTH$} {}", "START", inert(name.as_ref()));
            vec![inert_lines(&line).into_owned()]
        }
        // A retry: the note that follows says it.
        Event::Started { .. } | Event::Retrying(_) | Event::TestResult { .. } => Vec::new(),
        Event::Finished(outcome) => std::iter::once(finish_line(outcome, colour))
            .chain(
                outcome
                    .warnings
                    .iter()
                    .map(|w| warning_line(&outcome.name, w, colour)),
            )
            .collect(),
        Event::Note(line) => vec![inert_lines(line).into_owned()],
    }
}

/// `    FAIL [  1.002s] unit: exit code 1`; no reason for passing batches.
fn finish_line(o: &Outcome, colour: bool) -> String {
    let (word, code) = status_word(o.status);
    let word = paint(&format!("{word:>WORD_WIDTH$}"), code, colour);
    let secs = o.duration.as_secs_f64();
    let mut line = format!("{word} [{secs:>7.3}s] {}", inert(o.name.as_ref()));
    if !o.status.is_success() {
        line.push_str(": ");
        line.push_str(&inert(&o.reason));
    }
    line
}

fn warning_line(name: &BatchName, warning: &str, colour: bool) -> String {
    let word = paint(&format!("{:>WORD_WIDTH$}", "WARN"), YELLOW, colour);
    format!("{word} {}: {}", inert(name.as_ref()), inert(warning))
}

const GREEN: &str = "32";
const RED: &str = "1;31";
const YELLOW: &str = "33";

fn status_word(status: Status) -> (&'static str, &'static str) {
    match status {
        Status::Passed => ("PASS", GREEN),
        Status::Failed => ("FAIL", RED),
        Status::Crashed => ("CRASH", RED),
        Status::TimedOut => ("TIMEOUT", RED),
        Status::Leaked => ("LEAK", RED),
        Status::Aborted => ("ABORT", RED),
        Status::Deadline => ("DEADLINE", RED),
        Status::Interrupted => ("INTR", RED),
        Status::NotRun => ("NOT RUN", YELLOW),
        Status::Flaky => ("FLAKY", YELLOW),
    }
}

/// Wraps already-padded text in an SGR colour, so escapes don't break alignment.
fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::outcome;
    use std::time::Instant;

    #[test]
    fn mode_detection() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert_eq!(choose_mode(true, None, s("xterm")), TerminalMode::Progress);
        assert_eq!(choose_mode(true, s(""), None), TerminalMode::Progress);
        assert_eq!(choose_mode(false, None, s("xterm")), TerminalMode::Plain);
        assert_eq!(choose_mode(true, s("1"), s("xterm")), TerminalMode::Plain);
        assert_eq!(choose_mode(true, None, s("dumb")), TerminalMode::Plain);
    }

    #[test]
    fn plain_lines_are_aligned() {
        let mut o = outcome("unit", Status::Passed, "exit code 0");
        o.duration = Duration::from_millis(12);
        assert_eq!(finish_line(&o, false), "    PASS [  0.012s] unit");
        o.status = Status::Failed;
        o.reason = "exit code 1".into();
        o.duration = Duration::from_millis(1002);
        assert_eq!(
            finish_line(&o, false),
            "    FAIL [  1.002s] unit: exit code 1"
        );
        o.status = Status::TimedOut;
        o.reason = "timed out after 5s".into();
        assert_eq!(
            finish_line(&o, false),
            " TIMEOUT [  1.002s] unit: timed out after 5s"
        );
        o.status = Status::Crashed;
        assert!(finish_line(&o, false).starts_with("   CRASH ["));
        o.status = Status::Leaked;
        assert!(finish_line(&o, false).starts_with("    LEAK ["));
        assert_eq!(
            warning_line(&o.name, "left 1 process behind", false),
            "    WARN unit: left 1 process behind"
        );
    }

    #[test]
    fn colour_only_wraps_the_padded_word() {
        let o = outcome("unit", Status::Failed, "exit code 1");
        assert_eq!(
            finish_line(&o, true),
            "\x1b[1;31m    FAIL\x1b[0m [  1.234s] unit: exit code 1"
        );
    }

    #[test]
    fn progress_tracks_running_batches() {
        // Hidden target: exercises the bookkeeping without drawing.
        let mut t = Terminal {
            progress: Some(Progress::new(ProgressDrawTarget::hidden())),
        };
        let a = outcome("a", Status::Passed, "ok");
        let b = outcome("b", Status::Failed, "exit code 1");
        for o in [&a, &b] {
            t.on_event(&Event::Started {
                name: o.name.clone(),
                at: Instant::now(),
                slot: Some(0),
                attempt: 1,
                attempts: 1,
            });
        }
        assert_eq!(t.progress.as_ref().unwrap().bars.len(), 2);
        t.on_event(&Event::Finished(Box::new(a)));
        assert_eq!(t.progress.as_ref().unwrap().bars.len(), 1);
        t.clear();
        assert!(t.progress.as_ref().unwrap().bars.is_empty());
        t.clear();

        let mut plain = Terminal::new(TerminalMode::Plain);
        plain.on_event(&Event::Finished(Box::new(b)));
        plain.clear();
    }
}
