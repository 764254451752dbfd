//! HTTP requests for tests against servers on loopback (`warden serve`),
//! with ureq: any status is a response (a 404 is what some tests want),
//! no proxy from the environment, no redirects, no connection kept
//! between requests.

use std::sync::OnceLock;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Lower-case names, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            // One request per connection: a server's connection handling
            // is what some tests look at.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent()
    })
}

pub fn get(url: &str) -> Response {
    request("GET", url, None, &[])
}

/// One request; `headers` may override `Host`. A body is sent as JSON.
pub fn request(method: &str, url: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Response {
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let sent = match body {
        Some(b) => req.body(b.to_owned()).map(|r| agent().run(r)),
        None => req.body(()).map(|r| agent().run(r)),
    };
    let mut resp = sent
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_owned(), v)
        })
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_else(|e| panic!("{method} {url}: body: {e}"));
    Response {
        status: resp.status().as_u16(),
        headers,
        body,
    }
}

/// Starts `warden serve` on a free loopback port over `history`, in `cwd`,
/// and returns the child and its base URL (`http://127.0.0.1:PORT`, read
/// from its first line: `warden: serving http://…/ (history …)`). The
/// caller kills and reaps the child.
pub fn spawn_serve(history: &str, cwd: &std::path::Path) -> (std::process::Child, String) {
    spawn_serve_with(history, cwd, &[])
}

/// [`spawn_serve`] with more arguments for `warden serve`.
pub fn spawn_serve_with(
    history: &str,
    cwd: &std::path::Path,
    extra: &[&str],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(super::warden_bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--history", history])
        .args(extra)
        .env_remove("WARDEN_HISTORY")
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    (child, url)
}
