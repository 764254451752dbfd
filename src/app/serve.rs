//! `warden serve`: open the store for reading, listen, print where, serve
//! the dashboard until SIGINT or SIGTERM (then within about a second,
//! whatever clients hold open: [`dashboard::SHUTDOWN_GRACE`]).

use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::exit::{EXIT_FAILED, EXIT_PASSED};
use crate::cli::ServeArgs;
use crate::dashboard::{self, Dashboard};
use crate::history::{Access, Db};

pub fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let location = super::store::history_location(&args.store)?;
    // Worker threads on every core: pages are rendered (and the flaky
    // numbers computed) in Rust, side by side, while the pool's readers
    // query.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let db = match Db::open(&location, Access::Read).await {
            Ok(db) => db,
            Err(e) => {
                err!("warden: {e}");
                return Ok(EXIT_FAILED);
            }
        };
        let listener = match TcpListener::bind(args.bind).await {
            Ok(l) => l,
            Err(e) => {
                err!("warden: cannot listen on {}: {e}", args.bind);
                return Ok(EXIT_FAILED);
            }
        };
        // The handlers are installed before the address is printed: a
        // SIGTERM sent as soon as the server answers must stop it cleanly,
        // not kill it (a handler installed only when the shutdown future is
        // first polled, on some worker, can come too late).
        let stop = stop()?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            err!(
                "warden: warning: listening on {addr}, not on loopback: whoever reaches it can read the history"
            );
        }
        // Tests and scripts read the address from this line (port 0 picks one).
        out!("warden: serving http://{addr}/ (history {location})");
        let dashboard = Dashboard::new(db).with_metrics_tests(args.metrics_tests);
        dashboard::serve(dashboard, listener, stop).await?;
        Ok(EXIT_PASSED)
    });
    // Connections dropped at the end of the grace are tasks of this
    // runtime; don't wait for anything still blocked behind them.
    runtime.shutdown_timeout(SHUTDOWN_WAIT);
    result
}

/// How long the runtime's leftover tasks get after the server stopped.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(200);

/// Installs the SIGINT and SIGTERM handlers now; the future completes on
/// either signal.
fn stop() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
