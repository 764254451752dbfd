//! `[[setup]]`, `[[batch]]` and `[[post]]` entries: the supervised units,
//! which share their keys (the scheduling keys only in `[[batch]]`,
//! `required` only in `[[post]]`) and one namespace of names.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use toml::Spanned;

use super::defaults::Defaults;
use super::output;
use super::raw::RawBatch;
use super::span::Source;
use super::value::{duration, leak, non_empty, path, patterns, retry};
use super::{BatchConfig, BatchName, Command, ConfigError};

/// The three kinds of supervised unit, which share keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Section {
    Setup,
    Batch,
    Post,
}

impl Section {
    fn header(self) -> &'static str {
        match self {
            Section::Setup => "[[setup]]",
            Section::Batch => "[[batch]]",
            Section::Post => "[[post]]",
        }
    }
}

/// Validates one section's entries; `names` maps every name seen so far (in
/// any section) to where it is (a byte offset). Returns each entry with its `required` flag.
pub(super) fn units(
    cx: &Source,
    section: Section,
    raw: Vec<Spanned<RawBatch>>,
    defaults: &Defaults,
    resources: &[super::Resource],
    names: &mut HashMap<BatchName, usize>,
) -> Result<Vec<(BatchConfig, bool)>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (index, raw) in raw.into_iter().enumerate() {
        let table_span = raw.span();
        let raw = raw.into_inner();
        let name_value = raw.name.as_ref().ok_or_else(|| {
            let msg = format!(
                "{} #{}: missing required key `name`",
                section.header(),
                index + 1
            );
            cx.error(table_span, msg)
        })?;
        let name = BatchName::new(name_value.get_ref())
            .map_err(|e| cx.key_error("name", name_value.span(), e))?;
        // Byte offsets, turned into a line only for the error: counting lines
        // for every batch would make a long file quadratic to check.
        if let Some(first) = names.insert(name.clone(), name_value.span().start) {
            let first = cx.line(first..first);
            let msg = format!("duplicate batch name \"{name}\" (first defined at line {first})");
            return Err(cx.key_error("name", name_value.span(), msg));
        }
        let required = match (&raw.required, section) {
            (Some(r), Section::Post) => *r.get_ref(),
            (Some(r), _) => {
                let msg = format!(
                    "only [[post]] steps take `required`, not {}",
                    section.header()
                );
                return Err(cx.key_error("required", r.span(), msg));
            }
            (None, _) => false,
        };
        if section != Section::Batch {
            let keys = [
                (
                    "needs",
                    raw.needs
                        .as_ref()
                        .map(|n| n.keys().next().map(|k| k.span()).unwrap_or(0..0)),
                ),
                ("threads", raw.threads.as_ref().map(Spanned::span)),
                (
                    "locks",
                    raw.locks
                        .as_ref()
                        .and_then(|l| l.first())
                        .map(Spanned::span),
                ),
                ("priority", raw.priority.as_ref().map(Spanned::span)),
                ("memory", raw.memory.as_ref().map(Spanned::span)),
            ];
            if let Some((key, span)) = keys.into_iter().find_map(|(k, s)| s.map(|s| (k, s))) {
                let span = if span == (0..0) {
                    name_value.span()
                } else {
                    span
                };
                let msg = format!(
                    "only [[batch]] entries take `{key}`: {} steps run one at a time",
                    section.header()
                );
                return Err(cx.key_error(key, span, msg));
            }
        }
        let command = command(cx, &name, name_value.span(), &raw)?;
        out.push((
            batch(cx, name, command, raw, defaults, resources)?,
            required,
        ));
    }
    Ok(out)
}

fn batch(
    cx: &Source,
    name: BatchName,
    command: Command,
    mut raw: RawBatch,
    defaults: &Defaults,
    resources: &[super::Resource],
) -> Result<BatchConfig, ConfigError> {
    let scheduling = super::resources::scheduling(
        cx,
        super::resources::RawScheduling {
            needs: raw.needs.take(),
            threads: raw.threads.take(),
            locks: raw.locks.take(),
            priority: raw.priority.take(),
            memory: raw.memory.take(),
        },
        resources,
    )?;
    Ok(BatchConfig {
        scheduling,
        name,
        command,
        env: raw.env.map(|e| env(cx, e)).transpose()?.unwrap_or_default(),
        cwd: raw.cwd.map(|v| path(cx, "cwd", v)).transpose()?,
        timeout: duration(cx, "timeout", raw.timeout.as_ref())?.unwrap_or(defaults.timeout),
        grace: duration(cx, "grace", raw.grace.as_ref())?.unwrap_or(defaults.grace),
        leak: leak(cx, raw.leak.as_ref())?.unwrap_or(defaults.leak),
        drain: duration(cx, "drain", raw.drain.as_ref())?.unwrap_or(defaults.drain),
        kind: raw.kind.map(|v| non_empty(cx, "kind", v)).transpose()?,
        // The batch's list replaces the defaults' (an empty list turns them off).
        fatal_patterns: patterns(cx, raw.fatal_patterns)?
            .unwrap_or_else(|| defaults.fatal_patterns.clone()),
        retry: raw
            .retry
            .map(|r| retry(cx, r))
            .transpose()?
            .unwrap_or_else(|| defaults.retry.clone()),
        rerun: output::rerun(cx, raw.rerun.clone(), raw.format.is_some())?,
        format: output::format(cx, raw.format, raw.junit_files, raw.json_summary)?,
        store_success_output: raw
            .store_success_output
            .map(Spanned::into_inner)
            .unwrap_or(defaults.store_success_output),
        // Key by key over `[defaults]`: a batch that sets `cpu` keeps the
        // defaults' `memory`.
        limits: raw
            .limits
            .map(|l| super::limits::limits(cx, l))
            .transpose()?
            .unwrap_or_default()
            .over(&defaults.limits),
    })
}

fn command(
    cx: &Source,
    name: &BatchName,
    name_span: Range<usize>,
    raw: &RawBatch,
) -> Result<Command, ConfigError> {
    match (&raw.command, &raw.shell) {
        (Some(command), None) => argv(cx, command),
        (None, Some(shell)) => {
            let script = non_empty(cx, "shell", shell.clone())?;
            if script.contains('\0') {
                let msg = "script must not contain a NUL character";
                return Err(cx.key_error("shell", shell.span(), msg));
            }
            Ok(Command::Shell(script))
        }
        (command, _) => {
            let both = if command.is_some() { ", not both" } else { "" };
            let msg =
                format!("batch \"{name}\": exactly one of `command` or `shell` is required{both}");
            Err(cx.error(name_span, msg))
        }
    }
}

fn argv(cx: &Source, raw: &Spanned<Vec<String>>) -> Result<Command, ConfigError> {
    let problem = match raw.get_ref().as_slice() {
        [] => "command must not be empty",
        [program, ..] if program.is_empty() => "the program (first element) must not be empty",
        args if args.iter().any(|a| a.contains('\0')) => {
            "arguments must not contain a NUL character"
        }
        args => return Ok(Command::Argv(args.to_vec())),
    };
    Err(cx.key_error("command", raw.span(), problem))
}

fn env(
    cx: &Source,
    raw: BTreeMap<Spanned<String>, Spanned<String>>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    raw.into_iter()
        .map(|(k, v)| {
            let problem = if k.get_ref().is_empty() {
                Some("variable names must not be empty")
            } else if k.get_ref().contains(['=', '\0']) {
                Some("variable names must not contain '=' or NUL")
            } else {
                None
            };
            if let Some(problem) = problem {
                let msg = format!("invalid variable name {:?}: {problem}", k.get_ref());
                return Err(cx.key_error("env", k.span(), msg));
            }
            if v.get_ref().contains('\0') {
                let msg = format!("value of {:?} must not contain NUL", k.get_ref());
                return Err(cx.key_error("env", v.span(), msg));
            }
            Ok((k.into_inner(), v.into_inner()))
        })
        .collect()
}
