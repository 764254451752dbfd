//! Finding tests by a part of their name: the dashboard's search box.
//!
//! A substring match, case-insensitive for ASCII letters, the same on
//! both backends: SQLite's `lower` folds ASCII only, so PostgreSQL folds
//! with `translate` over A–Z rather than its locale-aware `lower`. The
//! text is a `LIKE` pattern with its metacharacters (`%`, `_` and the
//! escape `\`) escaped, so `a_b` finds `a_b`, not `axb`; its length is
//! bounded ([`MAX_QUERY`]) far below SQLite's 50,000-byte pattern limit.
//! At most `limit` names come back (sorted by their bytes, as Rust sorts
//! them), with the count of all matches.

use serde::Serialize;

use super::{QueryError, Result, Sql, for_each_row};
use crate::history::Db;
use crate::history::db::Pool;

/// The longest text searched for, in characters.
pub const MAX_QUERY: usize = 200;

/// The tests whose names contain the text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestMatches {
    /// The text searched for, as given.
    pub query: String,
    /// How many tests match in all.
    pub total: u64,
    /// The first `limit` of them, by name.
    pub tests: Vec<String>,
}

/// `text` as the body of a `LIKE … ESCAPE '\'` pattern, ASCII letters in
/// lower case.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c.to_ascii_lowercase());
    }
    out.push('%');
    out
}

/// The tests whose names contain `text` (ASCII case ignored), the first
/// `limit` by name. Empty text matches nothing; text longer than
/// [`MAX_QUERY`] characters is refused.
pub async fn search_tests(db: &Db, text: &str, limit: usize) -> Result<TestMatches> {
    let mut found = TestMatches {
        query: text.to_owned(),
        total: 0,
        tests: Vec::new(),
    };
    if text.is_empty() {
        return Ok(found);
    }
    if text.chars().count() > MAX_QUERY {
        return Err(QueryError::QueryTooLong(MAX_QUERY));
    }
    let folded = match db.pool {
        Pool::Sqlite(_) => "lower(name)".to_owned(),
        Pool::Postgres(_) => {
            "translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')".to_owned()
        }
    };
    let pattern = like_pattern(text);
    let mut sql = Sql::default();
    let text = format!(
        "SELECT COUNT(*) FROM tests WHERE {folded} LIKE {} ESCAPE '\\'",
        sql.text(&pattern)
    );
    for_each_row!(db, sql, &text, |row| {
        found.total = u64::try_from(row.try_get::<i64, _>(0)?).unwrap_or(0);
    });
    if found.total == 0 || limit == 0 {
        return Ok(found);
    }
    let mut sql = Sql::default();
    let text = format!(
        "SELECT name FROM tests WHERE {folded} LIKE {} ESCAPE '\\' ORDER BY {} LIMIT {}",
        sql.text(&pattern),
        super::by_bytes(db, "name"),
        sql.int(i64::try_from(limit).unwrap_or(i64::MAX)),
    );
    for_each_row!(db, sql, &text, |row| {
        found.tests.push(row.try_get(0)?);
    });
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_escape_like_metacharacters() {
        assert_eq!(like_pattern("Net/TCP"), "%net/tcp%");
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
        // Only ASCII is folded: both backends fold alike.
        assert_eq!(like_pattern("É"), "%É%");
    }
}
