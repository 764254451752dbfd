//! `warden serve`: the history store as web pages and a JSON API.
//!
//! Every page has a JSON twin under `/api/` computed by the same function
//! (`load` in each page's module); the HTML is rendered from that value.
//!
//! Why it is shaped this way:
//!
//! - **Escaping by default.** Test names, output, labels, branches and
//!   commits come from the code under test: a pull request can print
//!   `<script>`. Every page is built with [`maud`], which escapes every
//!   interpolated value; nothing here uses `PreEscaped`, and the SVG charts
//!   are built the same way ([`svg`]). Control characters and bidi
//!   overrides, which HTML escaping lets through, are made visible on the
//!   whole page ([`crate::text`]). The pages carry a strict
//!   Content-Security-Policy (no scripts at all, styles from our own
//!   stylesheet only) as a second line.
//! - **Read-only.** Only `GET` (and `HEAD`) routes exist; the store is opened
//!   for reading ([`Access::Read`](crate::history::Access)) and only the
//!   library's queries run on it. Log files are read only when the store
//!   names them for a run of this very host ([`logs`]), never from a path
//!   in a request.
//! - **Loopback by default**, and while bound to loopback, requests must
//!   name a loopback host: a web page elsewhere cannot read the dashboard
//!   through DNS rebinding.
//! - **Prometheus** scrapes `/metrics` ([`metrics`]): counts of the
//!   same store in its text format, with bounded label cardinality.
//! - **No JavaScript, no internet.** Sorting and filtering are links and
//!   forms (query parameters, [`params`]); charts are SVG drawn on the
//!   server; the stylesheet is compiled into the binary.

mod coalesce;
mod error;
mod failures;
mod flaky;
mod html;
mod logs;
mod metrics;
mod params;
mod regressed;
mod response;
mod runs;
mod state;
mod svg;
mod test;

pub use error::Error;
pub use state::Dashboard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

/// Every route: pages, their JSON twins, the stylesheet.
pub fn router(dashboard: Arc<Dashboard>, addr: SocketAddr) -> Router {
    Router::new()
        .route("/", get(runs::list_page))
        .route("/runs", get(runs::list_page))
        .route("/runs/{uuid}", get(runs::run_page))
        .route("/runs/{uuid}/log/{batch}", get(runs::log_file))
        .route("/flaky", get(flaky::page))
        .route("/test", get(test::page))
        .route("/regressed", get(regressed::page))
        .route("/failures", get(failures::page))
        .route("/api/runs", get(runs::list_api))
        .route("/api/runs/{uuid}", get(runs::run_api))
        .route("/api/flaky", get(flaky::api))
        .route("/api/test", get(test::api))
        .route("/api/regressed", get(regressed::api))
        .route("/api/failures", get(failures::api))
        .route("/api/labels", get(runs::labels_api))
        .route("/metrics", get(metrics::metrics))
        .route("/static/style.css", get(stylesheet))
        .fallback(not_found)
        // Inside the guard: only requests it let through are shared.
        .layer(middleware::from_fn_with_state(
            Arc::new(coalesce::InFlight::default()),
            coalesce::coalesce,
        ))
        .layer(middleware::from_fn(move |req, next| {
            guard(addr.ip().is_loopback(), req, next)
        }))
        .with_state(dashboard)
}

/// How long requests being answered get to finish once `shutdown`
/// completes. Connections still open then (idle keep-alives, half-open
/// or slow clients, which axum's graceful shutdown would wait for without
/// end) are dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Serves `dashboard` on `listener` until `shutdown` completes, then for
/// at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    dashboard: Dashboard,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let app = router(Arc::new(dashboard), addr);
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        // An error means the sender is gone: stop then too.
        let _ = stopped.wait_for(|s| *s).await;
    });
    let bound = async move {
        shutdown.await;
        let _ = stopping.send(true);
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server.into_future() => result,
        () = bound => Ok(()),
    }
}

const STYLE: &str = include_str!("style.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

async fn not_found(req: Request) -> Response {
    let api = req.uri().path().starts_with("/api/");
    Error::NotFound(format!("no page at {}", req.uri().path())).respond(api)
}

/// The policy of every response: no scripts, nothing from elsewhere, no
/// framing, no sniffing; the Host check while bound to loopback.
async fn guard(loopback: bool, req: Request, next: Next) -> Response {
    if loopback && !loopback_host(req.headers().get(header::HOST)) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "warden serve answers requests for localhost only\n",
        )
            .into_response();
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    resp
}

/// Whether a Host header names this machine's loopback: `localhost`,
/// `127.x.x.x` or `[::1]`, with any port. A request without one (HTTP/1.0)
/// passes: a browser always sends it.
fn loopback_host(host: Option<&HeaderValue>) -> bool {
    let Some(host) = host else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, _)) => ip,
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_pass() {
        let ok = |h: &str| loopback_host(Some(&HeaderValue::from_str(h).unwrap()));
        assert!(ok("localhost:8080"));
        assert!(ok("LOCALHOST"));
        assert!(ok("127.0.0.1:8080"));
        assert!(ok("127.1.2.3"));
        assert!(ok("[::1]:8080"));
        assert!(!ok("evil.example:8080"));
        assert!(!ok("localhost.evil.example"));
        assert!(!ok("10.0.0.1:8080"));
        assert!(!ok("[::1"));
        assert!(loopback_host(None));
    }
}
