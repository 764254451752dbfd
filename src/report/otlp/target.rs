//! Where the trace goes and how: `--otlp-endpoint`, else the standard
//! OpenTelemetry exporter variables, with the specification's path rules;
//! the headers, protocol, compression, timeout and TLS files from the
//! `OTEL_EXPORTER_OTLP_*` variables, a traces-only one
//! (`OTEL_EXPORTER_OTLP_TRACES_*`) winning over the generic one.

use std::path::PathBuf;
use std::time::Duration;

/// The path the generic endpoint gets for traces.
const TRACES_PATH: &str = "v1/traces";

/// The specification's default export timeout, per request.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An OTLP/HTTP traces endpoint and how to send it requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The full URL requests are POSTed to.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub protocol: Protocol,
    pub compression: Compression,
    /// How long one request may take (`OTEL_EXPORTER_OTLP_TIMEOUT`); the
    /// export's overall budget still bounds it.
    pub timeout: Duration,
    pub tls: TlsFiles,
}

/// How the requests are encoded (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// `http/protobuf`: the default.
    #[default]
    Protobuf,
    /// `http/json`: the OTLP JSON encoding.
    Json,
}

impl Protocol {
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::Protobuf => "application/x-protobuf",
            Protocol::Json => "application/json",
        }
    }
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
}

/// PEM files for https (`OTEL_EXPORTER_OTLP_CERTIFICATE`,
/// `_CLIENT_CERTIFICATE`, `_CLIENT_KEY`): read when the export starts
/// ([`super::tls`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// The CA certificates to trust instead of the built-in roots.
    pub ca: Option<PathBuf>,
    /// The client certificate chain and its key, for mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// A target, and what was wrong but not fatal in its variables.
#[derive(Debug)]
pub struct Resolved {
    pub target: Target,
    pub warnings: Vec<String>,
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
    ///
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` is refused (warden speaks only
    /// OTLP/HTTP); an unknown protocol, compression or timeout is a
    /// warning and the default is used.
    pub fn resolve(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Resolved>, (String, String)> {
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
        // The traces-only variable, else the generic one.
        let pick = |what: &str| {
            let traces = format!("OTEL_EXPORTER_OTLP_TRACES_{what}");
            let generic = format!("OTEL_EXPORTER_OTLP_{what}");
            match set(&traces) {
                Some(v) => Some((traces, v.trim().to_owned())),
                None => set(&generic).map(|v| (generic, v.trim().to_owned())),
            }
        };
        let mut warnings = Vec::new();
        let protocol = match pick("PROTOCOL") {
            None => Protocol::Protobuf,
            Some((_, v)) if v == "http/protobuf" => Protocol::Protobuf,
            Some((_, v)) if v == "http/json" => Protocol::Json,
            Some((name, v)) if v == "grpc" => {
                return Err((
                    url,
                    format!(
                        "{name}=grpc: warden speaks only OTLP/HTTP (http/protobuf or \
                         http/json); point it at the receiver's OTLP/HTTP port (4318)"
                    ),
                ));
            }
            Some((name, v)) => {
                warnings.push(format!(
                    "{name}={v:?} is not one of http/protobuf, http/json, grpc: \
                     sending http/protobuf"
                ));
                Protocol::Protobuf
            }
        };
        let compression = match pick("COMPRESSION") {
            None => Compression::None,
            Some((_, v)) if v == "none" => Compression::None,
            Some((_, v)) if v == "gzip" => Compression::Gzip,
            Some((name, v)) => {
                warnings.push(format!(
                    "{name}={v:?} is not one of gzip, none: sending uncompressed"
                ));
                Compression::None
            }
        };
        let timeout = match pick("TIMEOUT") {
            None => DEFAULT_TIMEOUT,
            Some((name, v)) => match v.parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    warnings.push(format!(
                        "{name}={v:?} is not a number of milliseconds above 0: \
                         using 10000"
                    ));
                    DEFAULT_TIMEOUT
                }
            },
        };
        let path = |what: &str| pick(what).map(|(_, v)| PathBuf::from(v));
        let tls = TlsFiles {
            ca: path("CERTIFICATE"),
            client_cert: path("CLIENT_CERTIFICATE"),
            client_key: path("CLIENT_KEY"),
        };
        let target = Target {
            url,
            headers,
            protocol,
            compression,
            timeout,
            tls,
        };
        Ok(Some(Resolved { target, warnings }))
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

/// An `http://` or `https://` URL with a host.
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err("not an http:// or https:// URL".into()),
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
            .map(|r| r.map(|r| r.target))
            .map_err(|(url, why)| format!("{url}: {why}"))
    }

    fn warnings(vars: &[(&str, &str)]) -> Vec<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Target::resolve(Some("http://c"), |k| vars.get(k).cloned())
            .unwrap()
            .unwrap()
            .warnings
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
    fn https_is_taken_and_garbage_refused() {
        assert_eq!(
            url(Some("https://api.example:443"), &[]).unwrap(),
            "https://api.example:443/v1/traces"
        );
        assert!(resolve(Some("https://"), &[]).is_err());
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

    #[test]
    fn protocol_compression_timeout_and_tls_files() {
        let t = resolve(Some("http://c"), &[]).unwrap().unwrap();
        assert_eq!(t.protocol, Protocol::Protobuf);
        assert_eq!(t.compression, Compression::None);
        assert_eq!(t.timeout, Duration::from_secs(10));
        assert_eq!(t.tls, TlsFiles::default());
        let t = resolve(
            Some("http://c"),
            &[
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", " 1500 "),
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/k.pem"),
                ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/c.pem"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.protocol, Protocol::Json);
        assert_eq!(t.compression, Compression::Gzip);
        assert_eq!(t.timeout, Duration::from_millis(1500));
        assert_eq!(t.tls.ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert_eq!(
            t.tls.client_cert.as_deref(),
            Some(std::path::Path::new("/c.pem"))
        );
        assert_eq!(
            t.tls.client_key.as_deref(),
            Some(std::path::Path::new("/k.pem"))
        );
        // grpc: no export at all.
        let e = resolve(
            Some("http://c"),
            &[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")],
        )
        .unwrap_err();
        assert!(e.contains("warden speaks only OTLP/HTTP"), "{e}");
        // Unknown values: a warning each, and the defaults.
        let w = warnings(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
        ]);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("http/protobuf, http/json, grpc"), "{w:?}");
        assert!(w[1].contains("gzip, none"), "{w:?}");
        assert!(
            w[2].starts_with("OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\""),
            "{w:?}"
        );
    }
}
