//! Where the trace goes: `--otlp-endpoint`, else the standard OpenTelemetry
//! exporter variables, with the specification's path rules, and the
//! headers to send (`OTEL_EXPORTER_OTLP_HEADERS`).

/// The path the generic endpoint gets for traces.
const TRACES_PATH: &str = "v1/traces";

/// An OTLP/HTTP traces endpoint and the headers to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The full URL requests are POSTed to.
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Target {
    /// The target from the flag, else the environment (`env` reads a
    /// variable): `Ok(None)` when there is none (or
    /// `OTEL_TRACES_EXPORTER=none` / `OTEL_SDK_DISABLED=true` turns the
    /// environment's off), `Err` with the URL and why it cannot be used.
    ///
    /// - `--otlp-endpoint URL`: a base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT`
    ///   (`/v1/traces` is appended), unless its path already ends in
    ///   `/v1/traces`;
    /// - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: used as is;
    /// - `OTEL_EXPORTER_OTLP_ENDPOINT`: `v1/traces` appended, after a `/`
    ///   if it does not end in one.
    pub fn resolve(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Target>, (String, String)> {
        let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        // The value as given (checked as given: a base may lack a host
        // that the appended path would seem to supply), and the URL.
        let (given, url) = match flag {
            Some(base) if base.trim_end_matches('/').ends_with("/v1/traces") => {
                (base.to_owned(), base.to_owned())
            }
            Some(base) => (base.to_owned(), with_traces_path(base)),
            None => {
                let off = set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim() == "none")
                    || set("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true");
                if off {
                    return Ok(None);
                }
                match (
                    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                    set("OTEL_EXPORTER_OTLP_ENDPOINT"),
                ) {
                    (Some(url), _) => (url.clone(), url),
                    (None, Some(base)) => {
                        let url = with_traces_path(&base);
                        (base, url)
                    }
                    (None, None) => return Ok(None),
                }
            }
        };
        let url = url.trim().to_owned();
        if let Err(why) = check_url(given.trim()) {
            return Err((url, why));
        }
        // The traces-only headers add to (and override) the generic ones.
        let mut headers = set("OTEL_EXPORTER_OTLP_HEADERS")
            .map(|h| parse_headers(&h))
            .unwrap_or_default();
        for (k, v) in set("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .map(|h| parse_headers(&h))
            .unwrap_or_default()
        {
            headers.retain(|(key, _)| !key.eq_ignore_ascii_case(&k));
            headers.push((k, v));
        }
        Ok(Some(Target { url, headers }))
    }
}

fn with_traces_path(base: &str) -> String {
    let base = base.trim();
    if base.ends_with('/') {
        format!("{base}{TRACES_PATH}")
    } else {
        format!("{base}/{TRACES_PATH}")
    }
}

/// Plain HTTP only: the client carries no TLS (see the README).
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(
            "https is not supported (this warden has no TLS): send to an \
                    OpenTelemetry Collector on the machine or network over http://"
                .into(),
        );
    }
    match lower.strip_prefix("http://") {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err("not an http:// URL".into()),
    }
}

/// `key=value` pairs separated by commas, values percent-decoded (the
/// W3C Baggage format the specification names); a pair without `=` or
/// with an empty key is skipped.
fn parse_headers(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn resolve(flag: Option<&str>, vars: &[(&str, &str)]) -> Result<Option<Target>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Target::resolve(flag, |k| vars.get(k).cloned())
            .map_err(|(url, why)| format!("{url}: {why}"))
    }

    fn url(flag: Option<&str>, vars: &[(&str, &str)]) -> Option<String> {
        resolve(flag, vars).unwrap().map(|t| t.url)
    }

    #[test]
    fn the_specifications_path_rules() {
        assert_eq!(url(None, &[]), None);
        let generic = "OTEL_EXPORTER_OTLP_ENDPOINT";
        let traces = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
        assert_eq!(
            url(None, &[(generic, "http://c:4318")]).unwrap(),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            url(None, &[(generic, "http://c:4318/base/")]).unwrap(),
            "http://c:4318/base/v1/traces"
        );
        // The traces endpoint is used as is, and wins.
        assert_eq!(
            url(
                None,
                &[(generic, "http://c:4318"), (traces, "http://t:1/x")]
            )
            .unwrap(),
            "http://t:1/x"
        );
        // The flag wins over both; a full traces URL is kept.
        assert_eq!(
            url(Some("http://f:4318"), &[(traces, "http://t:1/x")]).unwrap(),
            "http://f:4318/v1/traces"
        );
        assert_eq!(
            url(Some("http://f:4318/v1/traces"), &[]).unwrap(),
            "http://f:4318/v1/traces"
        );
        // Turned off: the environment's only.
        assert_eq!(
            url(
                None,
                &[(generic, "http://c"), ("OTEL_TRACES_EXPORTER", "none")]
            ),
            None
        );
        assert_eq!(
            url(
                None,
                &[(generic, "http://c"), ("OTEL_SDK_DISABLED", "true")]
            ),
            None
        );
        assert!(url(Some("http://f"), &[("OTEL_SDK_DISABLED", "true")]).is_some());
        // Empty is unset.
        assert_eq!(url(None, &[(generic, " ")]), None);
    }

    #[test]
    fn https_and_garbage_are_refused() {
        let e = resolve(Some("https://api.example:443"), &[]).unwrap_err();
        assert!(
            e.starts_with("https://api.example:443/v1/traces: https"),
            "{e}"
        );
        assert!(resolve(Some("localhost:4318"), &[]).is_err());
        assert!(resolve(Some("http://"), &[]).is_err());
    }

    #[test]
    fn headers_are_parsed_and_decoded() {
        let t = resolve(
            Some("http://c"),
            &[
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "api-key=a%20b%2Cc , x-tenant = t1,broken,=v",
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Tenant=t2"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            t.headers,
            [
                ("api-key".to_owned(), "a b,c".to_owned()),
                ("X-Tenant".to_owned(), "t2".to_owned())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
    }
}
