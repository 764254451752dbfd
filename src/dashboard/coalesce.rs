//! Identical requests in flight share one answer.
//!
//! A dashboard open in many browsers (a team's CI page, a wall screen, a
//! crowd after a red build) asks the same pages at once. Every page is a
//! pure function of its URL and the store, so a request that arrives while
//! the same `METHOD URI` is being answered waits for that answer instead of
//! running the same queries again: 50 clients on `/flaky` cost about one
//! computation, not 50 queued ones. Nothing is kept once the answer is out
//! (the entry goes when the request that computes it ends): an answer is
//! never older than the request it is given to, only shared with the
//! requests that came while it was computed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;

/// The largest answer shared; larger bodies (none of the pages comes
/// close; log files are capped below this) are an error rather than
/// buffered without bound.
const MAX_BODY: usize = 256 << 20;

/// The answers being computed, by `METHOD URI`.
#[derive(Default)]
pub struct InFlight {
    answers: Mutex<HashMap<String, Arc<OnceCell<Answer>>>>,
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl InFlight {
    fn cell(&self, key: &str) -> Arc<OnceCell<Answer>> {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        answers.entry(key.to_owned()).or_default().clone()
    }

    /// Forgets `cell` for `key`, unless a newer one took its place.
    fn forget(&self, key: &str, cell: &Arc<OnceCell<Answer>>) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        if answers.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) {
            answers.remove(key);
        }
    }
}

/// Forgets the entry when the computing request ends, answered or dropped
/// (its client gone): then a waiting request computes it instead.
struct Forget<'a> {
    inflight: &'a InFlight,
    key: &'a str,
    cell: &'a Arc<OnceCell<Answer>>,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.inflight.forget(self.key, self.cell);
    }
}

/// The middleware: answers `req` with the answer being computed for the
/// same method and URI, or computes it.
pub async fn coalesce(State(inflight): State<Arc<InFlight>>, req: Request, next: Next) -> Response {
    let key = format!("{} {}", req.method(), req.uri());
    let cell = inflight.cell(&key);
    let answer = cell
        .get_or_init(|| async {
            let _forget = Forget {
                inflight: &inflight,
                key: &key,
                cell: &cell,
            };
            let (parts, body) = next.run(req).await.into_parts();
            match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(body) => Answer {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                },
                Err(e) => Answer {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    headers: HeaderMap::new(),
                    body: Bytes::from(format!("cannot read the answer: {e}\n")),
                },
            }
        })
        .await
        .clone();
    let mut resp = (answer.status, Body::from(answer.body)).into_response();
    *resp.headers_mut() = answer.headers;
    resp
}
