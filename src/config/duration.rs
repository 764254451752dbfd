//! Human-friendly durations (`500ms`, `90s`, `1h30m`), shared by the config
//! file and CLI flags.
use std::time::Duration;

/// Parses a duration with an explicit unit; zero is rejected because every
/// duration warden takes is a timeout or a wait that must be able to elapse.
///
/// The error is a complete sentence fragment naming the input, suitable for
/// prefixing with a key or flag name.
/// The longest duration accepted: longer ones are typos, and would overflow
/// clock arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("duration must be greater than zero".to_owned()),
        Ok(d) if d > MAX_DURATION => Err(format!("duration {s:?} is longer than a year")),
        Ok(d) => Ok(d),
        // humantime reports a bare number as a unit-less "unknown unit".
        Err(humantime::DurationError::UnknownUnit { unit, value, .. }) if unit.is_empty() => Err(
            format!("invalid duration {s:?}: durations need a unit, e.g. \"{value}s\""),
        ),
        Err(e) => Err(format!("invalid duration {s:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_zero() {
        assert_eq!(
            parse_duration("0s"),
            Err("duration must be greater than zero".to_owned())
        );
    }

    #[test]
    fn bare_number_gets_a_hint() {
        assert_eq!(
            parse_duration("10"),
            Err(r#"invalid duration "10": durations need a unit, e.g. "10s""#.to_owned())
        );
    }

    #[test]
    fn rejects_garbage() {
        let err = parse_duration("abc").unwrap_err();
        assert!(err.starts_with(r#"invalid duration "abc": "#), "{err}");
        let err = parse_duration("").unwrap_err();
        assert!(err.starts_with(r#"invalid duration "": "#), "{err}");
    }
}
