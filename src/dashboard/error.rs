//! Why a page or API call has no answer, and the HTTP status that says so.

use axum::http::StatusCode;

use crate::history::query::QueryError;

/// Why a page or API call has no answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Query(#[from] QueryError),
}

impl Error {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Query(QueryError::UnknownTest(_)) => StatusCode::NOT_FOUND,
            Error::Query(QueryError::AmbiguousTest { .. } | QueryError::QueryTooLong(_)) => {
                StatusCode::BAD_REQUEST
            }
            Error::Query(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}
