//! Durations as people write and read them: the one parser (the config
//! file, flags, query parameters) and the one place they are written out.
//! Below every stage of the pipeline: it imports nothing of warden.
//!
//! The grammar is humantime's: a number and a unit, repeated (`500ms`,
//! `90s`, `1h30m`, `30d`); a bare number is an error with a hint.
//!
//! Two renderings, for two kinds of value:
//! - [`exact`] for a value someone configured or typed (a timeout, a grace,
//!   a deadline, a look-back window): every digit kept, in the largest unit
//!   that writes it whole (`5m`, `90m`, `30d`, `500ms`), so it reads as it
//!   was written and [`parse`] reads it back;
//! - [`rounded`] for a value measured by a clock (how long a batch ran, a
//!   p90): centiseconds under a minute (`1.23s`), whole seconds above
//!   (`2m 3s`, `1h 0m 5s`), so columns of them line up.

use std::time::Duration;

/// The longest duration [`parse`] accepts: longer ones are typos, and would
/// overflow clock arithmetic.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// A timeout or a wait: a duration with an explicit unit, above zero (every
/// such duration must be able to elapse) and at most a year ([`MAX`]).
///
/// The error is a complete sentence fragment naming the input, suitable for
/// prefixing with a key or flag name.
pub fn parse(s: &str) -> Result<Duration, String> {
    match read(s) {
        Ok(d) if d.is_zero() => Err("duration must be greater than zero".to_owned()),
        Ok(d) if d > MAX => Err(format!("duration {s:?} is longer than a year")),
        Ok(d) => Ok(d),
        // humantime reports a bare number as a unit-less "unknown unit".
        Err(humantime::DurationError::UnknownUnit { unit, value, .. }) if unit.is_empty() => Err(
            format!("invalid duration {s:?}: durations need a unit, e.g. \"{value}s\""),
        ),
        Err(e) => Err(format!("invalid duration {s:?}: {e}")),
    }
}

/// A look-back window (`--since`, `?since=`): any length, zero included.
pub fn parse_window(s: &str) -> Result<Duration, String> {
    read(s).map_err(|e| format!("`{s}` is not a duration like 30d: {e}"))
}

/// The grammar itself.
fn read(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

/// A configured duration, exactly: the largest whole unit (`30d`, `12h`,
/// `90m`, `5s`), else a sum of units (`1m 1s`, `500ms`).
pub fn exact(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 || d.subsec_nanos() != 0 {
        return humantime::format_duration(d).to_string();
    }
    match s {
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{}h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A measured duration: `0.01s`, `1.23s` under a minute, then `2m 3s`,
/// `1h 0m 5s`.
pub fn rounded(d: Duration) -> String {
    // Round once, in integers, so 59.996s becomes `1m 0s` rather than `60.00s`.
    let centis = (d.as_millis() + 5) / 10;
    if centis < 60 * 100 {
        return format!("{}.{:02}s", centis / 100, centis % 100);
    }
    let secs = (d.as_millis() + 500) / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else {
        format!("{m}m {s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_common_forms() {
        let cases = [
            ("500ms", Duration::from_millis(500)),
            ("90s", Duration::from_secs(90)),
            ("5m", Duration::from_secs(300)),
            ("1h30m", Duration::from_secs(5400)),
            ("1h 30m", Duration::from_secs(5400)),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_zero() {
        assert_eq!(
            parse("0s"),
            Err("duration must be greater than zero".to_owned())
        );
    }

    #[test]
    fn bare_number_gets_a_hint() {
        assert_eq!(
            parse("10"),
            Err(r#"invalid duration "10": durations need a unit, e.g. "10s""#.to_owned())
        );
    }

    #[test]
    fn rejects_garbage() {
        let err = parse("abc").unwrap_err();
        assert!(err.starts_with(r#"invalid duration "abc": "#), "{err}");
        let err = parse("").unwrap_err();
        assert!(err.starts_with(r#"invalid duration "": "#), "{err}");
    }

    #[test]
    fn windows_take_any_length() {
        assert_eq!(parse_window("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_window("2y").map(|d| d > MAX), Ok(true));
        let err = parse_window("30").unwrap_err();
        assert!(
            err.starts_with("`30` is not a duration like 30d: "),
            "{err}"
        );
    }

    #[test]
    fn exact_in_the_largest_whole_unit() {
        let s = Duration::from_secs;
        assert_eq!(exact(s(30 * 86_400)), "30d");
        assert_eq!(exact(s(12 * 3_600)), "12h");
        assert_eq!(exact(s(90 * 60)), "90m");
        assert_eq!(exact(s(61)), "1m 1s");
        assert_eq!(exact(s(1)), "1s");
        assert_eq!(exact(Duration::from_millis(500)), "500ms");
        assert_eq!(exact(Duration::from_millis(60_500)), "1m 500ms");
        assert_eq!(exact(Duration::ZERO), "0s");
    }

    #[test]
    fn rounded_to_centiseconds_then_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(rounded(ms(0)), "0.00s");
        assert_eq!(rounded(ms(12)), "0.01s");
        assert_eq!(rounded(ms(1234)), "1.23s");
        assert_eq!(rounded(ms(59_996)), "1m 0s");
        assert_eq!(rounded(ms(123_000)), "2m 3s");
        assert_eq!(rounded(ms(3_605_000)), "1h 0m 5s");
    }

    proptest! {
        /// What `exact` writes, `parse` reads back to the same value.
        #[test]
        fn exact_parses_back(ms in 1u64..MAX.as_millis() as u64) {
            let d = Duration::from_millis(ms);
            prop_assert_eq!(parse(&exact(d)), Ok(d));
        }
    }
}
