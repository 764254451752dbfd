//! The raw serde view of the file (with spans) and its validation into
//! [`Config`]. Spans never leave this module.
use super::{
    BatchConfig, BatchName, Command, Config, ConfigError, DEFAULT_DRAIN, DEFAULT_GRACE,
    DEFAULT_TIMEOUT, FlakyPolicy, LeakPolicy, OutputFormat, Pattern, PostConfig, RetryPolicy,
    RunConfig,
};
use crate::duration;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    run: RawRun,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    setup: Vec<Spanned<RawBatch>>,
    #[serde(default)]
    batch: Vec<Spanned<RawBatch>>,
    #[serde(default)]
    post: Vec<Spanned<RawBatch>>,
    resources: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
struct RawRun {
    max_parallel: Option<Spanned<toml::Value>>,
    artifacts: Option<Spanned<String>>,
    junit: Option<Spanned<String>>,
    deadline: Option<Spanned<toml::Value>>,
    reserve: Option<Spanned<toml::Value>>,
    flaky: Option<Spanned<String>>,
    quarantine: Option<Spanned<String>>,
    history: Option<Spanned<String>>,
    labels: Option<std::collections::BTreeMap<Spanned<String>, Spanned<String>>>,
    scratch_root: Option<Spanned<String>>,
    keep_scratch: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
struct RawRetry {
    attempts: Option<Spanned<i64>>,
    when: Option<Vec<Spanned<String>>>,
    backoff: Option<Spanned<toml::Value>>,
}

/// Durations are taken as any value so a TOML integer gets the
/// "needs a unit" hint instead of a bare type error.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
struct RawDefaults {
    timeout: Option<Spanned<toml::Value>>,
    grace: Option<Spanned<toml::Value>>,
    leak: Option<Spanned<String>>,
    drain: Option<Spanned<toml::Value>>,
    fatal_patterns: Option<Vec<Spanned<String>>>,
    retry: Option<Spanned<RawRetry>>,
    store_success_output: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", expecting = "a table")]
struct RawBatch {
    // Optional here so a missing name gets our message and location.
    name: Option<Spanned<String>>,
    command: Option<Spanned<Vec<String>>>,
    shell: Option<Spanned<String>>,
    env: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    cwd: Option<Spanned<String>>,
    timeout: Option<Spanned<toml::Value>>,
    grace: Option<Spanned<toml::Value>>,
    leak: Option<Spanned<String>>,
    drain: Option<Spanned<toml::Value>>,
    kind: Option<Spanned<String>>,
    fatal_patterns: Option<Vec<Spanned<String>>>,
    retry: Option<Spanned<RawRetry>>,
    format: Option<Spanned<String>>,
    junit_files: Option<Spanned<Vec<String>>>,
    json_summary: Option<Spanned<String>>,
    rerun: Option<Spanned<Vec<String>>>,
    store_success_output: Option<Spanned<bool>>,
    /// Only in `[[post]]`.
    required: Option<Spanned<bool>>,
    // Only in `[[batch]]`: setup and post steps run alone.
    needs: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    threads: Option<Spanned<toml::Value>>,
    locks: Option<Vec<Spanned<String>>>,
    priority: Option<Spanned<i64>>,
}

/// `[defaults]` after validation, with built-in defaults filled in.
struct Defaults {
    timeout: Duration,
    grace: Duration,
    leak: LeakPolicy,
    drain: Duration,
    fatal_patterns: Vec<Pattern>,
    retry: RetryPolicy,
    store_success_output: bool,
}

pub(super) fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let cx = Cx { path, text };
    let root = DeTable::parse(text).map_err(|e| cx.toml_error(&e))?;
    let raw = RawFile::deserialize(toml::de::Deserializer::from(root.clone()))
        .map_err(|e| cx.serde_error(root.get_ref(), &e))?;
    let run = run(&cx, raw.run)?;
    let defaults = defaults(&cx, raw.defaults)?;
    let resources = super::resources::resources(&cx, raw.resources)?;
    // Setup steps, batches and post steps share the logs directory, so
    // their names share one namespace.
    let mut names = HashMap::new();
    let mut units = |section, raw| units(&cx, section, raw, &defaults, &resources, &mut names);
    let setup = units(Section::Setup, raw.setup)?;
    let batches = units(Section::Batch, raw.batch)?;
    let post = units(Section::Post, raw.post)?
        .into_iter()
        .map(|(step, required)| PostConfig { step, required })
        .collect();
    Ok(Config {
        path: path.to_path_buf(),
        run,
        resources,
        setup: setup.into_iter().map(|(b, _)| b).collect(),
        batches: batches.into_iter().map(|(b, _)| b).collect(),
        post,
    })
}

/// Where errors point: the file's name and text, to turn byte spans into
/// line and column.
pub(super) struct Cx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Cx<'_> {
    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    pub(super) fn key_error(
        &self,
        key: &str,
        span: Range<usize>,
        message: impl AsRef<str>,
    ) -> ConfigError {
        self.error(span, format!("key `{key}`: {}", message.as_ref()))
    }

    fn line(&self, span: Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        // message() is toml's one-line description; Display adds a snippet.
        let mut message = e.message().trim().replace('\n', "; ");
        let span = e.span().unwrap_or(0..0);
        // toml names the duplicate only in its snippet; keep it in the one-liner.
        if message == "duplicate key"
            && let Some(key) = self.text.get(span.clone())
        {
            message = format!("duplicate key `{key}`");
        }
        self.error(span, message)
    }

    /// serde's messages don't say which key failed; recover it from the span.
    fn serde_error(&self, root: &DeTable, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim();
        let Some(keys) = key_path(root, &span) else {
            return self.error(span, message);
        };
        let message = match message.strip_prefix("unknown field ") {
            Some(rest) => unknown_key_message(&keys, rest),
            None => format!("key `{}`: {message}", relative_key(&keys)),
        };
        self.error(span, message)
    }
}

/// 1-based line and character column of byte `offset`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let current = &before[line_start..];
    let column = std::str::from_utf8(current).map_or(current.len(), |s| s.chars().count());
    (line, column + 1)
}

/// The keys leading to the key or value at exactly `span`, deepest match.
fn key_path(table: &DeTable, span: &Range<usize>) -> Option<Vec<String>> {
    table.iter().find_map(|(k, v)| {
        let inner = value_path(v.get_ref(), span);
        let here = k.span() == *span || v.span() == *span;
        inner.or_else(|| here.then(Vec::new)).map(|mut rest| {
            rest.insert(0, k.get_ref().to_string());
            rest
        })
    })
}

fn value_path(value: &DeValue, span: &Range<usize>) -> Option<Vec<String>> {
    match value {
        DeValue::Table(t) => key_path(t, span),
        // An array element has no key of its own: report the array's key.
        DeValue::Array(items) => items.iter().find_map(|item| {
            let inner = value_path(item.get_ref(), span);
            inner.or_else(|| (item.span() == *span).then(Vec::new))
        }),
        _ => None,
    }
}

/// The key as a user would name it inside its section (`timeout`, `env.FOO`).
fn relative_key(keys: &[String]) -> String {
    match keys {
        [only] => only.clone(),
        [_, rest @ ..] => rest.join("."),
        [] => String::new(),
    }
}

/// Rewrites serde's "unknown field `x`, expected ..." to say where it was.
fn unknown_key_message(keys: &[String], serde_rest: &str) -> String {
    let key = keys.last().map_or("", String::as_str);
    let place = match keys {
        [section, _, ..] if section == "batch" => "in [[batch]]".to_owned(),
        [section, _, ..] => format!("in [{section}]"),
        _ => "at the top level".to_owned(),
    };
    match serde_rest.split_once("`, ") {
        Some((_, expected)) => format!("unknown key `{key}` {place}, {expected}"),
        None => format!("unknown key `{key}` {place}"),
    }
}

fn run(cx: &Cx, raw: RawRun) -> Result<RunConfig, ConfigError> {
    let max_parallel = raw.max_parallel.map(|v| max_parallel(cx, &v)).transpose()?;
    let deadline = duration(cx, "deadline", raw.deadline.as_ref())?;
    let reserve = duration(cx, "reserve", raw.reserve.as_ref())?;
    if let (Some(deadline), Some(reserve), Some(span)) =
        (deadline, reserve, raw.reserve.as_ref().map(Spanned::span))
        && reserve >= deadline
    {
        let msg = format!(
            "the reserve ({}) must be shorter than the deadline ({})",
            duration::exact(reserve),
            duration::exact(deadline)
        );
        return Err(cx.key_error("reserve", span, msg));
    }
    let flaky = match raw.flaky {
        None => FlakyPolicy::default(),
        Some(f) => match f.get_ref().as_str() {
            "pass" => FlakyPolicy::Pass,
            "fail" => FlakyPolicy::Fail,
            other => {
                let msg = format!("invalid value {other:?}, expected \"pass\" or \"fail\"");
                return Err(cx.key_error("flaky", f.span(), msg));
            }
        },
    };
    let history = raw
        .history
        .map(|h| {
            h.get_ref()
                .parse::<crate::history::Location>()
                .map_err(|msg| cx.key_error("history", h.span(), msg))
        })
        .transpose()?;
    let mut labels = crate::history::model::Labels::default();
    for (key, value) in raw.labels.unwrap_or_default() {
        let label = format!("{}={}", key.get_ref(), value.get_ref())
            .parse::<crate::history::model::Label>()
            .map_err(|msg| cx.key_error("labels", key.span(), msg))?;
        labels.insert(label.key, label.value);
    }
    let keep_scratch = match raw.keep_scratch {
        None => super::KeepScratch::default(),
        Some(k) => match k.get_ref().as_str() {
            "never" => super::KeepScratch::Never,
            "on-failure" => super::KeepScratch::OnFailure,
            "always" => super::KeepScratch::Always,
            other => {
                let msg = format!(
                    "invalid value {other:?}, expected \"never\", \"on-failure\" or \"always\""
                );
                return Err(cx.key_error("keep-scratch", k.span(), msg));
            }
        },
    };
    Ok(RunConfig {
        deadline,
        reserve,
        flaky,
        history,
        labels,
        scratch_root: raw
            .scratch_root
            .map(|v| path(cx, "scratch-root", v))
            .transpose()?,
        keep_scratch,
        quarantine: raw
            .quarantine
            .map(|v| path(cx, "quarantine", v))
            .transpose()?,
        max_parallel,
        artifacts: raw
            .artifacts
            .map(|v| path(cx, "artifacts", v))
            .transpose()?,
        junit: raw.junit.map(|v| path(cx, "junit", v)).transpose()?,
    })
}

fn max_parallel(cx: &Cx, raw: &Spanned<toml::Value>) -> Result<NonZeroUsize, ConfigError> {
    let found = match raw.get_ref() {
        toml::Value::Integer(n) => {
            let n = usize::try_from(*n).ok().and_then(NonZeroUsize::new);
            if let Some(n) = n {
                return Ok(n);
            }
            raw.get_ref().to_string()
        }
        other => other.type_str().to_owned(),
    };
    let msg = format!("must be a positive integer, found {found}");
    Err(cx.key_error("max-parallel", raw.span(), msg))
}

fn defaults(cx: &Cx, raw: RawDefaults) -> Result<Defaults, ConfigError> {
    Ok(Defaults {
        timeout: duration(cx, "timeout", raw.timeout.as_ref())?.unwrap_or(DEFAULT_TIMEOUT),
        grace: duration(cx, "grace", raw.grace.as_ref())?.unwrap_or(DEFAULT_GRACE),
        leak: leak(cx, raw.leak.as_ref())?.unwrap_or_default(),
        drain: duration(cx, "drain", raw.drain.as_ref())?.unwrap_or(DEFAULT_DRAIN),
        fatal_patterns: patterns(cx, raw.fatal_patterns)?.unwrap_or_default(),
        retry: raw
            .retry
            .map(|r| retry(cx, r))
            .transpose()?
            .unwrap_or_default(),
        store_success_output: raw
            .store_success_output
            .map(Spanned::into_inner)
            .unwrap_or(false),
    })
}

fn format(
    cx: &Cx,
    raw: Option<Spanned<String>>,
    files: Option<Spanned<Vec<String>>>,
    json_summary: Option<Spanned<String>>,
) -> Result<OutputFormat, ConfigError> {
    let format = match &raw {
        None => OutputFormat::None,
        Some(f) => match f.get_ref().as_str() {
            "none" => OutputFormat::None,
            "tap" => OutputFormat::Tap,
            "kunit" => OutputFormat::Kunit,
            "ltp" => OutputFormat::Ltp,
            "test-progs" => OutputFormat::TestProgs { json_summary: None },
            "go-json" => OutputFormat::GoJson,
            "libtest" => OutputFormat::Libtest,
            "junit" => OutputFormat::Junit(Vec::new()),
            other => {
                let msg = format!(
                    "invalid value {other:?}, expected one of \"none\", \"tap\", \"kunit\", \"ltp\", \"test-progs\", \"go-json\", \"libtest\", \"junit\""
                );
                return Err(cx.key_error("format", f.span(), msg));
            }
        },
    };
    let format = match (format, json_summary) {
        (OutputFormat::TestProgs { .. }, Some(j)) => OutputFormat::TestProgs {
            json_summary: Some(PathBuf::from(j.into_inner())),
        },
        (_, Some(j)) => {
            return Err(cx.key_error(
                "json-summary",
                j.span(),
                "only batches with `format = \"test-progs\"` take `json-summary`",
            ));
        }
        (format, None) => format,
    };
    match (format, files) {
        (OutputFormat::Junit(_), Some(files)) if !files.get_ref().is_empty() => {
            Ok(OutputFormat::Junit(files.into_inner()))
        }
        (OutputFormat::Junit(_), _) => {
            let span = raw.map(|r| r.span()).unwrap_or(0..0);
            let msg = "`format = \"junit\"` needs `junit-files`, e.g. [\"out/**/*.xml\"]";
            Err(cx.key_error("format", span, msg))
        }
        (_, Some(files)) => Err(cx.key_error(
            "junit-files",
            files.span(),
            "only batches with `format = \"junit\"` take `junit-files`",
        )),
        (format, None) => Ok(format),
    }
}

fn rerun(
    cx: &Cx,
    raw: Option<Spanned<Vec<String>>>,
    has_format: bool,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let problem = if !has_format {
        Some("needs a `format`: the failed tests are read from the output")
    } else if raw.get_ref().is_empty() || raw.get_ref()[0].is_empty() {
        Some("command must not be empty")
    } else if !raw.get_ref().iter().any(|a| a.contains("{tests}")) {
        Some("must contain `{tests}` where the failed tests go")
    } else {
        None
    };
    match problem {
        Some(p) => Err(cx.key_error("rerun", raw.span(), p)),
        None => Ok(Some(raw.into_inner())),
    }
}

fn retry(cx: &Cx, raw: Spanned<RawRetry>) -> Result<RetryPolicy, ConfigError> {
    let raw = raw.into_inner();
    let attempts = match raw.attempts {
        Some(a) => u32::try_from(*a.get_ref())
            .ok()
            .filter(|&n| (1..=100).contains(&n))
            .ok_or_else(|| {
                cx.key_error("attempts", a.span(), "must be a whole number from 1 to 100")
            })?,
        None => RetryPolicy::default().attempts,
    };
    Ok(RetryPolicy {
        attempts,
        when: patterns(cx, raw.when)?.unwrap_or_default(),
        backoff: duration(cx, "backoff", raw.backoff.as_ref())?.unwrap_or(Duration::ZERO),
    })
}

/// `fatal-patterns`: each a regex, located on its own string when invalid.
fn patterns(
    cx: &Cx,
    raw: Option<Vec<Spanned<String>>>,
) -> Result<Option<Vec<Pattern>>, ConfigError> {
    raw.map(|list| {
        list.into_iter()
            .map(|s| {
                Pattern::new(s.get_ref()).map_err(|e| cx.key_error("fatal-patterns", s.span(), e))
            })
            .collect()
    })
    .transpose()
}

/// The three kinds of supervised unit, which share keys.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
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
fn units(
    cx: &Cx,
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
    cx: &Cx,
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
        rerun: rerun(cx, raw.rerun.clone(), raw.format.is_some())?,
        format: format(cx, raw.format, raw.junit_files, raw.json_summary)?,
        store_success_output: raw
            .store_success_output
            .map(Spanned::into_inner)
            .unwrap_or(defaults.store_success_output),
    })
}

fn command(
    cx: &Cx,
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

fn argv(cx: &Cx, raw: &Spanned<Vec<String>>) -> Result<Command, ConfigError> {
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
    cx: &Cx,
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

fn duration(
    cx: &Cx,
    key: &str,
    raw: Option<&Spanned<toml::Value>>,
) -> Result<Option<Duration>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let parsed = match raw.get_ref() {
        toml::Value::String(s) => duration::parse(s),
        toml::Value::Integer(n) => duration::parse(&n.to_string()),
        other => Err(format!(
            "expected a duration string like \"10s\", found {}",
            other.type_str()
        )),
    };
    parsed
        .map(Some)
        .map_err(|msg| cx.key_error(key, raw.span(), msg))
}

fn leak(cx: &Cx, raw: Option<&Spanned<String>>) -> Result<Option<LeakPolicy>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.get_ref().as_str() {
        "warn" => Ok(Some(LeakPolicy::Warn)),
        "fail" => Ok(Some(LeakPolicy::Fail)),
        other => {
            let msg = format!("invalid value {other:?}, expected \"warn\" or \"fail\"");
            Err(cx.key_error("leak", raw.span(), msg))
        }
    }
}

fn path(cx: &Cx, key: &str, raw: Spanned<String>) -> Result<PathBuf, ConfigError> {
    non_empty(cx, key, raw).map(PathBuf::from)
}

fn non_empty(cx: &Cx, key: &str, raw: Spanned<String>) -> Result<String, ConfigError> {
    if raw.get_ref().is_empty() {
        return Err(cx.key_error(key, raw.span(), "must not be empty"));
    }
    Ok(raw.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Config {
        parse(Path::new("warden.toml"), text).unwrap()
    }

    /// (line, column, message) of the error `text` produces.
    fn parse_err(text: &str) -> (usize, usize, String) {
        match parse(Path::new("warden.toml"), text) {
            Err(ConfigError::Invalid {
                path,
                line,
                column,
                message,
            }) => {
                assert_eq!(path, Path::new("warden.toml"));
                (line, column, message)
            }
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    fn assert_err(text: &str, line: usize, column: usize, message: &str) {
        let (l, c, m) = parse_err(text);
        assert_eq!((l, c, m.as_str()), (line, column, message), "for:\n{text}");
    }

    /// For long serde messages: position and the start of the message.
    fn assert_err_starts(text: &str, line: usize, column: usize, prefix: &str) {
        let (l, c, m) = parse_err(text);
        assert_eq!((l, c), (line, column), "{m}");
        assert!(m.starts_with(prefix), "{m:?} should start with {prefix:?}");
    }

    const FULL: &str = r#"
[run]
max-parallel = 4
artifacts = "warden-artifacts"
junit = "out/junit.xml"

[defaults]
timeout = "1h 30m"
grace = "5s"
leak = "fail"
drain = "2s"

[[batch]]
name = "unit"
command = ["make", "ut"]
env = { FOO = "1", BAR = "" }
cwd = "subdir"
timeout = "5m"
grace = "2s"
leak = "warn"
drain = "500ms"
kind = "ut"

[[batch]]
name = "it"
shell = "make it && echo done"
"#;

    #[test]
    fn full_config() {
        let config = parse_ok(FULL);
        assert_eq!(config.path, Path::new("warden.toml"));
        assert_eq!(
            config.run,
            RunConfig {
                max_parallel: NonZeroUsize::new(4),
                artifacts: Some(PathBuf::from("warden-artifacts")),
                junit: Some(PathBuf::from("out/junit.xml")),
                deadline: None,
                reserve: None,
                flaky: FlakyPolicy::Pass,
                quarantine: None,
                history: None,
                labels: Default::default(),
                scratch_root: None,
                keep_scratch: Default::default(),
            }
        );
        let unit = BatchConfig {
            name: BatchName::new("unit").unwrap(),
            command: Command::Argv(vec!["make".into(), "ut".into()]),
            env: [("FOO".into(), "1".into()), ("BAR".into(), String::new())].into(),
            cwd: Some(PathBuf::from("subdir")),
            timeout: Duration::from_secs(300),
            grace: Duration::from_secs(2),
            leak: LeakPolicy::Warn,
            drain: Duration::from_millis(500),
            kind: Some("ut".into()),
            fatal_patterns: Vec::new(),
            retry: RetryPolicy::default(),
            format: OutputFormat::None,
            rerun: None,
            scheduling: Default::default(),
            store_success_output: false,
        };
        // Everything unset in the batch comes from [defaults].
        let it = BatchConfig {
            name: BatchName::new("it").unwrap(),
            command: Command::Shell("make it && echo done".into()),
            env: BTreeMap::new(),
            cwd: None,
            timeout: Duration::from_secs(5400),
            grace: Duration::from_secs(5),
            leak: LeakPolicy::Fail,
            drain: Duration::from_secs(2),
            kind: None,
            fatal_patterns: Vec::new(),
            retry: RetryPolicy::default(),
            format: OutputFormat::None,
            rerun: None,
            scheduling: Default::default(),
            store_success_output: false,
        };
        assert_eq!(config.batches, vec![unit, it]);
    }

    #[test]
    fn setup_post_deadline() {
        let config = parse_ok(
            r#"
[run]
deadline = "20m"
reserve = "5m"

[[setup]]
name = "boot"
command = ["true"]

[[batch]]
name = "work"
command = ["true"]

[[post]]
name = "upload"
shell = "true"
required = true

[[post]]
name = "cleanup"
shell = "true"
"#,
        );
        assert_eq!(config.run.deadline, Some(Duration::from_secs(1200)));
        assert_eq!(config.run.reserve, Some(Duration::from_secs(300)));
        assert_eq!(config.setup[0].name.as_str(), "boot");
        assert_eq!(config.batches[0].name.as_str(), "work");
        let post: Vec<_> = config
            .post
            .iter()
            .map(|p| (p.step.name.as_str(), p.required))
            .collect();
        assert_eq!(post, [("upload", true), ("cleanup", false)]);
    }

    #[test]
    fn reserve_not_shorter_than_deadline() {
        assert_err(
            "[run]\ndeadline = \"5m\"\nreserve = \"5m\"\n",
            3,
            11,
            "key `reserve`: the reserve (5m) must be shorter than the deadline (5m)",
        );
    }

    #[test]
    fn required_only_in_post() {
        assert_err(
            "[[batch]]\nname = \"a\"\ncommand = [\"true\"]\nrequired = true\n",
            4,
            12,
            "key `required`: only [[post]] steps take `required`, not [[batch]]",
        );
    }

    #[test]
    fn names_shared_across_sections() {
        assert_err(
            "[[setup]]\nname = \"a\"\nshell = \"true\"\n[[post]]\nname = \"a\"\nshell = \"true\"\n",
            5,
            8,
            "key `name`: duplicate batch name \"a\" (first defined at line 2)",
        );
    }

    #[test]
    fn built_in_defaults() {
        let config = parse_ok("[[batch]]\nname = \"a\"\ncommand = [\"true\"]\n");
        assert_eq!(config.run, RunConfig::default());
        let batch = &config.batches[0];
        assert_eq!(batch.timeout, DEFAULT_TIMEOUT);
        assert_eq!(batch.grace, DEFAULT_GRACE);
        assert_eq!(batch.leak, LeakPolicy::Warn);
        assert_eq!(batch.drain, DEFAULT_DRAIN);
    }

    #[test]
    fn partial_defaults_fall_back_to_built_ins() {
        let text = "[defaults]\ngrace = \"3s\"\n[[batch]]\nname = \"a\"\nshell = \"x\"\n";
        let batch = &parse_ok(text).batches[0];
        assert_eq!(batch.grace, Duration::from_secs(3));
        assert_eq!(batch.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn empty_file_has_no_batches() {
        let config = parse_ok("");
        assert!(config.batches.is_empty());
        assert_eq!(config.run, RunConfig::default());
        assert!(parse_ok("[run]\n[defaults]\n").batches.is_empty());
    }

    #[test]
    fn batches_keep_file_order() {
        let text =
            "[[batch]]\nname = \"b\"\nshell = \"x\"\n[[batch]]\nname = \"a\"\nshell = \"x\"\n";
        let names: Vec<_> = parse_ok(text)
            .batches
            .iter()
            .map(|b| b.name.to_string())
            .collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn unknown_key_top_level() {
        assert_err_starts(
            "\nfoo = 1\n",
            2,
            1,
            "unknown key `foo` at the top level, expected one of `run`, `defaults`, `setup`, `batch`, `post`",
        );
        assert_err_starts("[foo]\n", 1, 2, "unknown key `foo` at the top level");
    }

    #[test]
    fn unknown_key_in_run() {
        assert_err_starts(
            "[run]\nmax_parallel = 2\n",
            2,
            1,
            "unknown key `max_parallel` in [run], expected one of `max-parallel`",
        );
    }

    #[test]
    fn unknown_key_in_defaults() {
        assert_err_starts(
            "[defaults]\n  leek = \"x\"\n",
            2,
            3,
            "unknown key `leek` in [defaults], expected one of",
        );
    }

    #[test]
    fn unknown_key_in_batch() {
        let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\n\n\n\ntiemout = \"5m\"\n";
        assert_err_starts(
            text,
            7,
            1,
            "unknown key `tiemout` in [[batch]], expected one of `name`, `command`,",
        );
        let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\n[batch.oops]\nx = 1\n";
        assert_err_starts(text, 4, 8, "unknown key `oops` in [[batch]]");
    }

    #[test]
    fn duration_without_unit() {
        let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\ntimeout = \"5\"\n";
        assert_err(
            text,
            4,
            11,
            r#"key `timeout`: invalid duration "5": durations need a unit, e.g. "5s""#,
        );
        let text = "[defaults]\n\n\ntimeout = 5\n";
        assert_err(
            text,
            4,
            11,
            r#"key `timeout`: invalid duration "5": durations need a unit, e.g. "5s""#,
        );
    }

    #[test]
    fn zero_duration() {
        let text = "[defaults]\ntimeout = \"1m\"\n\ngrace   = \"0s\"\n";
        assert_err(
            text,
            4,
            11,
            "key `grace`: duration must be greater than zero",
        );
    }

    #[test]
    fn bad_durations() {
        assert_err_starts(
            "[defaults]\ndrain = \"abc\"\n",
            2,
            9,
            r#"key `drain`: invalid duration "abc": "#,
        );
        assert_err(
            "[defaults]\ndrain = true\n",
            2,
            9,
            r#"key `drain`: expected a duration string like "10s", found boolean"#,
        );
    }

    #[test]
    fn invalid_leak() {
        assert_err(
            "[defaults]\nleak = \"never\"\n",
            2,
            8,
            r#"key `leak`: invalid value "never", expected "warn" or "fail""#,
        );
    }

    #[test]
    fn empty_command() {
        let text = "[[batch]]\nname = \"a\"\n\n\n\n\n\n\ncommand = []\n";
        assert_err(text, 9, 11, "key `command`: command must not be empty");
        let text = "[[batch]]\nname = \"a\"\ncommand = [\"\", \"x\"]\n";
        assert_err(
            text,
            3,
            11,
            "key `command`: the program (first element) must not be empty",
        );
    }

    #[test]
    fn command_type_errors() {
        let text = "[[batch]]\nname = \"a\"\ncommand = \"make\"\n";
        assert_err_starts(text, 3, 11, "key `command`: invalid type: string \"make\"");
        let text = "[[batch]]\nname = \"a\"\ncommand = [\"make\", 5]\n";
        assert_err_starts(text, 3, 20, "key `command`: invalid type: integer `5`");
    }

    #[test]
    fn empty_or_nul_strings() {
        let text = "[[batch]]\nname = \"a\"\nshell = \"\"\n";
        assert_err(text, 3, 9, "key `shell`: must not be empty");
        let text = "[[batch]]\nname = \"a\"\nshell = \"x\\u0000\"\n";
        assert_err(
            text,
            3,
            9,
            "key `shell`: script must not contain a NUL character",
        );
        let text = "[[batch]]\nname = \"a\"\ncommand = [\"a\", \"\\u0000\"]\n";
        assert_err(
            text,
            3,
            11,
            "key `command`: arguments must not contain a NUL character",
        );
        let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\nkind = \"\"\n";
        assert_err(text, 4, 8, "key `kind`: must not be empty");
        assert_err(
            "[run]\nartifacts = \"\"\n",
            2,
            13,
            "key `artifacts`: must not be empty",
        );
    }

    #[test]
    fn command_or_shell_required() {
        let text = "\n\n\n\n\n\n\n[[batch]]\nname = \"x\"\n";
        assert_err(
            text,
            9,
            8,
            r#"batch "x": exactly one of `command` or `shell` is required"#,
        );
        let text = "[[batch]]\nname = \"x\"\ncommand = [\"a\"]\nshell = \"b\"\n";
        assert_err(
            text,
            2,
            8,
            r#"batch "x": exactly one of `command` or `shell` is required, not both"#,
        );
    }

    #[test]
    fn missing_name() {
        let text = "[[batch]]\nname = \"a\"\nshell = \"x\"\n\n[[batch]]\nshell = \"y\"\n";
        assert_err(text, 5, 1, "[[batch]] #2: missing required key `name`");
    }

    #[test]
    fn duplicate_names() {
        let text = "\n\n[[batch]]\nname = \"x\"\nshell = \"a\"\n\n\n\n\n\n[[batch]]\nname = \"x\"\nshell = \"b\"\n";
        assert_err(
            text,
            12,
            8,
            r#"key `name`: duplicate batch name "x" (first defined at line 4)"#,
        );
    }

    #[test]
    fn invalid_name() {
        let text = "[[batch]]\n\nname = \"a/b\"\nshell = \"x\"\n";
        assert_err_starts(text, 3, 8, r#"key `name`: invalid batch name "a/b": "#);
        let text = "[[batch]]\nname = 5\nshell = \"x\"\n";
        assert_err_starts(text, 2, 8, "key `name`: invalid type: integer `5`");
    }

    #[test]
    fn max_parallel() {
        assert_err(
            "[run]\nmax-parallel = 0\n",
            2,
            16,
            "key `max-parallel`: must be a positive integer, found 0",
        );
        assert_err(
            "[run]\nmax-parallel = \"4\"\n",
            2,
            16,
            "key `max-parallel`: must be a positive integer, found string",
        );
    }

    #[test]
    fn env_errors() {
        let batch = "[[batch]]\nname = \"a\"\nshell = \"x\"\n";
        assert_err_starts(
            &format!("{batch}env = {{ FOO = 1 }}\n"),
            4,
            15,
            "key `env.FOO`: invalid type: integer `1`, expected a string",
        );
        assert_err(
            &format!("{batch}env = {{ \"A=B\" = \"1\" }}\n"),
            4,
            9,
            r#"key `env`: invalid variable name "A=B": variable names must not contain '=' or NUL"#,
        );
        assert_err(
            &format!("{batch}[batch.env]\n\"\" = \"1\"\n"),
            5,
            1,
            r#"key `env`: invalid variable name "": variable names must not be empty"#,
        );
        assert_err(
            &format!("{batch}env = {{ A = \"x\\u0000\" }}\n"),
            4,
            13,
            r#"key `env`: value of "A" must not contain NUL"#,
        );
    }

    #[test]
    fn wrong_section_type() {
        assert_err(
            "run = 5\n",
            1,
            7,
            "key `run`: invalid type: integer `5`, expected a table",
        );
        assert_err_starts(
            "batch = 5\n",
            1,
            9,
            "key `batch`: invalid type: integer `5`",
        );
    }

    #[test]
    fn toml_syntax_errors() {
        let (line, column, message) = parse_err("[run]\njunit = = \"x\"\n");
        assert_eq!((line, column), (2, 9), "{message}");
        assert!(message.starts_with("extra `=`"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.contains("TOML parse error"), "{message}");
        assert_err(
            "[run]\njunit = \"a\"\njunit = \"b\"\n",
            3,
            1,
            "duplicate key `junit`",
        );
    }

    #[test]
    fn columns_count_characters() {
        // "é" is two bytes but one column.
        assert_eq!(line_column("é = 1\nab", 3), (1, 3));
        assert_eq!(line_column("é = 1\nab", 8), (2, 2));
        assert_eq!(line_column("ab", 2), (1, 3));
        assert_err_starts("[run]\n  \"é\" = 1\n", 2, 3, "unknown key `é` in [run]");
    }

    #[test]
    fn display_format() {
        let err = parse(Path::new("dir/warden.toml"), "[run]\nmax-parallel = 0\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "dir/warden.toml:2:16: key `max-parallel`: must be a positive integer, found 0"
        );
    }

    #[test]
    fn load_missing_file_is_a_read_error() {
        let err = Config::load(Path::new("/nonexistent/warden.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    }
}
