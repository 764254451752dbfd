//! How a batch's output is read: `format`, with `junit-files` and
//! `json-summary` where the format takes them, and `rerun` (which needs a
//! format to name the failed tests).

use std::path::PathBuf;

use toml::Spanned;

use super::span::Source;
use super::{ConfigError, OutputFormat};

pub(super) fn format(
    cx: &Source,
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

pub(super) fn rerun(
    cx: &Source,
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
