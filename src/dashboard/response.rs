//! A handler's result as the answer: a page or JSON, or the error as a
//! page or as JSON (`{"error": …}`), with its status.

use axum::response::{IntoResponse, Response};

use super::error::Error;
use super::html;

impl Error {
    /// As a JSON `{"error": …}` (for `/api/`) or an HTML page.
    pub(super) fn respond(&self, api: bool) -> Response {
        let status = self.status();
        if api {
            (
                status,
                axum::Json(serde_json::json!({ "error": self.to_string() })),
            )
                .into_response()
        } else {
            let mut resp = html::markup_response(html::error_page(status, &self.to_string()));
            *resp.status_mut() = status;
            resp
        }
    }
}

/// A page's answer: its HTML, or the error as a page.
pub(super) fn page_response(result: Result<maud::Markup, Error>) -> Response {
    match result {
        Ok(markup) => html::markup_response(markup),
        Err(e) => e.respond(false),
    }
}

/// An API call's answer: its JSON, or the error as JSON.
pub(super) fn api_response<T: serde::Serialize>(result: Result<T, Error>) -> Response {
    match result {
        Ok(value) => axum::Json(value).into_response(),
        Err(e) => e.respond(true),
    }
}
