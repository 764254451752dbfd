//! Query parameters: what a page shows is all in its URL, so every view
//! can be linked to, and sorting and filtering work without JavaScript.
//!
//! | parameter | meaning | default |
//! | --- | --- | --- |
//! | `since` | window: runs started this long ago or later (`30d`, `12h`) | `30d` |
//! | `label=K=V`, or `K=V` for any other name | only runs with label K=V (repeatable) | |
//! | `by` | flaky: one row per test and values of these keys (`arch,compiler`) | |
//! | `sort`, `dir` | flaky: the column and `asc`/`desc` | impact order |
//! | `limit` | at most this many rows (0: all) | per page |
//! | `name` | test: the test (full name, or a part naming one test) | |
//! | `min_failures` | regressed: failures in a row | 3 |
//! | `pattern` | failures: only the cluster of this pattern | |
//! | `mass_failure` | a run where more than this share of tests failed is a mass failure (`50%`, `0.5`; `100%`: none) | 50% |
//! | `q` | search: a part of a test's name | |
//! | `a`, `b` | compare: the two runs (uuid or number) | |
//!
//! Empty values are ignored (an "any" choice in a form).

use std::time::Duration;

use crate::history::model::{Label, valid_label_key};
use crate::history::query::{Filter, mass};

use super::error::Error;

const DEFAULT_SINCE: &str = "30d";
/// Parameters with a meaning of their own; any other valid label key is a
/// label filter.
const RESERVED: &[&str] = &[
    "since",
    "label",
    "by",
    "sort",
    "dir",
    "limit",
    "name",
    "min_failures",
    "pattern",
    "mass_failure",
    "q",
    "a",
    "b",
];

#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// As given (`30d`), for links and forms.
    pub since_text: String,
    pub since: Duration,
    pub labels: Vec<Label>,
    pub by: Vec<String>,
    pub sort: Option<String>,
    pub dir: Option<Dir>,
    pub limit: Option<usize>,
    pub name: Option<String>,
    pub min_failures: Option<usize>,
    pub pattern: Option<String>,
    /// As given (`50%`) and as a share.
    pub mass_failure: Option<(String, f64)>,
    /// The search box's text.
    pub q: Option<String>,
    /// The runs compared (uuid or number).
    pub a: Option<String>,
    pub b: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Asc,
    Desc,
}

impl Dir {
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Asc => "asc",
            Dir::Desc => "desc",
        }
    }

    pub fn flip(self) -> Dir {
        match self {
            Dir::Asc => Dir::Desc,
            Dir::Desc => Dir::Asc,
        }
    }
}

impl Default for Params {
    fn default() -> Params {
        Params {
            since_text: DEFAULT_SINCE.into(),
            since: Duration::from_secs(30 * 86_400),
            labels: Vec::new(),
            by: Vec::new(),
            sort: None,
            dir: None,
            limit: None,
            name: None,
            min_failures: None,
            pattern: None,
            mass_failure: None,
            q: None,
            a: None,
            b: None,
        }
    }
}

impl Params {
    /// Parses a raw query string (`None`: no `?`).
    pub fn parse(query: Option<&str>) -> Result<Params, Error> {
        let mut p = Params::default();
        let bad = |what: String| Err(Error::BadRequest(what));
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key.as_ref() {
                "since" => {
                    let Ok(d) = crate::duration::parse_window(value) else {
                        return bad(format!("since: `{value}` is not a duration like 30d"));
                    };
                    p.since = d;
                    p.since_text = value.to_owned();
                }
                "label" => match value.parse::<Label>() {
                    Ok(l) => p.add_label(l),
                    Err(e) => return bad(format!("label: {e}")),
                },
                "by" => {
                    for k in value.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                        if !valid_label_key(k) {
                            return bad(format!("by: `{k}` is not a label key"));
                        }
                        if !p.by.iter().any(|b| b == k) {
                            p.by.push(k.to_owned());
                        }
                    }
                }
                "sort" => p.sort = Some(value.to_owned()),
                "dir" => {
                    p.dir = Some(match value {
                        "asc" => Dir::Asc,
                        "desc" => Dir::Desc,
                        _ => return bad(format!("dir: `{value}` is neither asc nor desc")),
                    })
                }
                "limit" => p.limit = Some(number("limit", value)?),
                "name" => p.name = Some(value.to_owned()),
                "min_failures" => {
                    let n = number("min_failures", value)?;
                    if n == 0 {
                        return bad("min_failures: at least 1".into());
                    }
                    p.min_failures = Some(n);
                }
                "pattern" => p.pattern = Some(value.to_owned()),
                "q" => p.q = Some(value.to_owned()),
                "a" => p.a = Some(value.to_owned()),
                "b" => p.b = Some(value.to_owned()),
                "mass_failure" => match mass::parse_share(value) {
                    Ok(share) => p.mass_failure = Some((value.to_owned(), share)),
                    Err(e) => return bad(format!("mass_failure: {e}")),
                },
                key if valid_label_key(key) => match format!("{key}={value}").parse::<Label>() {
                    Ok(l) => p.add_label(l),
                    Err(e) => return bad(e),
                },
                key => return bad(format!("unknown parameter `{key}`")),
            }
        }
        Ok(p)
    }

    /// One value per key: a later one replaces an earlier one.
    fn add_label(&mut self, label: Label) {
        self.labels.retain(|l| l.key != label.key);
        self.labels.push(label);
        self.labels.sort_by(|a, b| a.key.cmp(&b.key));
    }

    pub fn filter(&self) -> Filter {
        let mut filter = Filter::last(self.since, self.labels.clone());
        if let Some((_, share)) = self.mass_failure {
            filter.mass_failure_share = share;
        }
        filter
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.key == key)
            .map(|l| l.value.as_str())
    }

    /// The pairs that reproduce these parameters, canonical order.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        if self.since_text != DEFAULT_SINCE {
            out.push(("since".into(), self.since_text.clone()));
        }
        for l in &self.labels {
            out.push(label_pair(&l.key, &l.value));
        }
        if !self.by.is_empty() {
            out.push(("by".into(), self.by.join(",")));
        }
        if let Some(s) = &self.sort {
            out.push(("sort".into(), s.clone()));
        }
        if let Some(d) = self.dir {
            out.push(("dir".into(), d.as_str().into()));
        }
        if let Some(n) = self.limit {
            out.push(("limit".into(), n.to_string()));
        }
        if let Some(n) = &self.name {
            out.push(("name".into(), n.clone()));
        }
        if let Some(n) = self.min_failures {
            out.push(("min_failures".into(), n.to_string()));
        }
        if let Some(pattern) = &self.pattern {
            out.push(("pattern".into(), pattern.clone()));
        }
        if let Some((text, _)) = &self.mass_failure {
            out.push(("mass_failure".into(), text.clone()));
        }
        for (key, value) in [("q", &self.q), ("a", &self.a), ("b", &self.b)] {
            if let Some(v) = value {
                out.push((key.into(), v.clone()));
            }
        }
        out
    }

    /// `path?query` for these parameters.
    pub fn href(&self, path: &str) -> String {
        let pairs = self.pairs();
        if pairs.is_empty() {
            return path.to_owned();
        }
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            s.append_pair(k, v);
        }
        format!("{path}?{}", s.finish())
    }

    /// Only the window and the label filters (what carries over from one
    /// page to another).
    pub fn window(&self) -> Params {
        Params {
            since_text: self.since_text.clone(),
            since: self.since,
            labels: self.labels.clone(),
            mass_failure: self.mass_failure.clone(),
            ..Params::default()
        }
    }

    /// "in the last 30d", "in the last 7d with arch=x86_64".
    pub fn describe(&self) -> String {
        crate::history::query::describe_window(&self.since_text, &self.labels)
    }
}

/// The form field for a label filter: `key=value`, or `label=key=value` for
/// a key that is also a parameter's name.
pub fn label_pair(key: &str, value: &str) -> (String, String) {
    if RESERVED.contains(&key) {
        ("label".into(), format!("{key}={value}"))
    } else {
        (key.into(), value.into())
    }
}

fn number(what: &str, value: &str) -> Result<usize, Error> {
    value
        .parse()
        .map_err(|_| Error::BadRequest(format!("{what}: `{value}` is not a number")))
}

/// `segment` for a URL path: everything but unreserved characters
/// percent-encoded.
pub fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Params {
        Params::parse(Some(q)).unwrap()
    }

    #[test]
    fn parameters_parse_and_round_trip() {
        let p = parse("sort=flip&dir=desc&arch=x86_64&since=7d&label=compiler%3Dgcc&by=arch,os");
        assert_eq!(p.since, Duration::from_secs(7 * 86_400));
        assert_eq!(p.label("arch"), Some("x86_64"));
        assert_eq!(p.label("compiler"), Some("gcc"));
        assert_eq!(p.by, ["arch", "os"]);
        assert_eq!(p.dir, Some(Dir::Desc));
        assert_eq!(
            p.href("/flaky"),
            "/flaky?since=7d&arch=x86_64&compiler=gcc&by=arch%2Cos&sort=flip&dir=desc"
        );
        assert_eq!(parse(&p.href("/flaky")[7..]), p);
        // Empty values are "any"; a later value of a key wins.
        let p = parse("arch=&compiler=gcc&compiler=llvm&since=");
        assert_eq!(p.labels.len(), 1);
        assert_eq!(p.label("compiler"), Some("llvm"));
        assert_eq!(p.since_text, "30d");
        assert_eq!(Params::parse(None).unwrap(), Params::default());
        // A label key that is a parameter's name goes through `label=`.
        let p = parse("label=sort%3Dx");
        assert_eq!(p.label("sort"), Some("x"));
        assert_eq!(p.href("/runs"), "/runs?label=sort%3Dx");
        let p = parse("name=%3Cimg+src%3Dx%3E");
        assert_eq!(p.name.as_deref(), Some("<img src=x>"));
        // The mass-failure share: as written in links, as a share in the filter.
        let p = parse("mass_failure=80%25");
        assert_eq!(p.filter().mass_failure_share, 0.8);
        assert_eq!(p.href("/flaky"), "/flaky?mass_failure=80%25");
        assert_eq!(p.window(), p);
        assert_eq!(parse("").filter().mass_failure_share, 0.5);
    }

    #[test]
    fn bad_parameters_are_rejected() {
        for q in [
            "since=soon",
            "dir=up",
            "limit=-1",
            "min_failures=0",
            "by=a%20b",
            "label=arch",
            "a%20b=c",
            "mass_failure=150%25",
            "mass_failure=most",
        ] {
            assert!(
                matches!(Params::parse(Some(q)), Err(Error::BadRequest(_))),
                "{q}"
            );
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("run-01_a.b~c"), "run-01_a.b~c");
        assert_eq!(path_segment("a/b c<"), "a%2Fb%20c%3C");
    }
}
