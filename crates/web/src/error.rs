//! Errors: load-time errors name the file; request errors map to an HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Result of this crate.
pub type WebResult<T> = Result<T, WebError>;

/// What went wrong, and for requests, which status answers it.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The request names something that does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// An atlas, dictionary or model could not be read (at startup), or a query failed.
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    /// SQLite failed while answering a request.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Anything else on the server side.
    #[error("{0}")]
    Internal(String),
}

impl WebError {
    /// An input error naming `path`.
    pub fn input(path: impl AsRef<std::path::Path>, message: impl Into<String>) -> Self {
        WebError::Input {
            path: path.as_ref().display().to_string(),
            message: message.into(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let title = status.canonical_reason().unwrap_or("error");
        let body = crate::html::page(
            title,
            &format!(
                "<h1>{}</h1><p>{}</p>",
                status.as_u16(),
                crate::html::esc(&self.to_string())
            ),
        );
        (status, axum::response::Html(body)).into_response()
    }
}
