//! Where the history lives: `sqlite:PATH`, `postgres://…`, or `none`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The default store: a SQLite file under the working directory, created on first use.
pub const DEFAULT: &str = "sqlite:.warden/history.db";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, as sqlx takes it.
    Postgres(String),
    /// Record nothing; queries say there is no history.
    None,
}

impl Location {
    /// `--history` / `WARDEN_HISTORY`, else `[run] history`, else [`DEFAULT`].
    pub fn resolve(flag: Option<&Location>, config: Option<&Location>) -> Location {
        flag.or(config).cloned().unwrap_or_else(|| {
            DEFAULT
                .parse()
                .expect("the default history location parses")
        })
    }
}

impl FromStr for Location {
    type Err = String;

    fn from_str(s: &str) -> Result<Location, String> {
        if s == "none" {
            return Ok(Location::None);
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Location::Postgres(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            // `sqlite://PATH` as sqlx spells it is accepted too.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(
                    "`sqlite:` needs a file path, as in `sqlite:.warden/history.db`".into(),
                );
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "`{s}` is not a history location: expected `sqlite:PATH`, `postgres://…` or `none`"
        ))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Location::Postgres(url) => f.write_str(&redact_password(url)),
            Location::None => f.write_str("none"),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`: the
/// location is printed in summaries and CI logs.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(
            "sqlite:.warden/history.db".parse(),
            Ok(Location::Sqlite(".warden/history.db".into()))
        );
        assert_eq!(
            "sqlite:///tmp/h.db".parse(),
            Ok(Location::Sqlite("/tmp/h.db".into()))
        );
        assert_eq!("none".parse(), Ok(Location::None));
        assert!(matches!(
            "postgresql://u@/db?host=/tmp".parse(),
            Ok(Location::Postgres(_))
        ));
        assert!("mysql://x".parse::<Location>().is_err());
        assert!("sqlite:".parse::<Location>().is_err());
        assert!("history.db".parse::<Location>().is_err());
    }

    #[test]
    fn password_is_not_printed() {
        let l: Location = "postgres://ci:hunter2@db.example:5432/warden"
            .parse()
            .unwrap();
        assert_eq!(l.to_string(), "postgres://ci:***@db.example:5432/warden");
        let l: Location = "postgres://ci@db/warden".parse().unwrap();
        assert_eq!(l.to_string(), "postgres://ci@db/warden");
    }
}
