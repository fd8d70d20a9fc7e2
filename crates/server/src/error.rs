use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_spec::SpecError;
use switchyard_store::StoreError;

/// The server's one error type. Each variant maps to one status code; the
/// body is always `{"error": "...", "field"?: "..."}`.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Invalid(#[from] SpecError),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{what} is over the limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    #[error("{0}")]
    Unavailable(String),
    #[error("storage failed")]
    Store(#[from] StoreError),
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(SpecError::TooLarge { .. }) | AppError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // The client gets a short reason; the log gets the cause.
            tracing::error!(error = ?self, "request failed");
        }
        let mut body = json!({ "error": self.to_string() });
        if let AppError::Invalid(e) = &self
            && let Some(field) = e.field()
        {
            body["field"] = json!(field);
        }
        (status, Json(body)).into_response()
    }
}
