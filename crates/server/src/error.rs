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
    /// A well-formed request whose content is refused, naming the field.
    #[error("{error}")]
    Unprocessable { error: String, field: String },
    #[error("{0}")]
    Unavailable(String),
    #[error("too many events for this write key: retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("the server is busy: retry after {retry_after} s")]
    Busy { retry_after: u64 },
    #[error("the request took too long")]
    Timeout,
    #[error(
        "a body in `{0}` cannot be read: send it as it is, or in gzip, br or deflate (Content-Encoding)"
    )]
    UnsupportedEncoding(String),
    #[error("{}", store_message(.0))]
    Store(#[from] StoreError),
}

impl From<switchyard_delivery::DeliveryError> for AppError {
    fn from(e: switchyard_delivery::DeliveryError) -> AppError {
        use switchyard_delivery::DeliveryError;
        match e {
            DeliveryError::Store(e) => AppError::Store(e),
            DeliveryError::Invalid(message) => AppError::BadRequest(message),
            DeliveryError::NotFound(what) => AppError::NotFound(what),
        }
    }
}

/// What a client is told of a storage error: what was not found, or only
/// that storage failed (the cause goes to the log).
fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::NotFound(what) => ["no such ", what].concat(),
        e if e.is_full() => "the server's storage is full: retry later".to_string(),
        _ => "storage failed".to_string(),
    }
}

impl AppError {
    /// A 422 naming `field`.
    pub fn unprocessable(field: impl Into<String>, error: impl Into<String>) -> AppError {
        AppError::Unprocessable {
            error: error.into(),
            field: field.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid(SpecError::TooLarge { .. }) | AppError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            AppError::Invalid(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unavailable(_) | AppError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Timeout => StatusCode::REQUEST_TIMEOUT,
            AppError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            AppError::Store(e) if e.is_full() => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, AppError::Busy { .. }) {
            // The client gets a short reason; the log gets the cause.
            tracing::error!(error = ?self, "request failed");
        }
        let retry_after = match &self {
            AppError::RateLimited { retry_after } | AppError::Busy { retry_after } => {
                Some(*retry_after)
            }
            AppError::Store(e) if e.is_full() => Some(30),
            _ => None,
        };
        let mut body = json!({ "error": self.to_string() });
        match &self {
            AppError::Invalid(e) => {
                if let Some(field) = e.field() {
                    body["field"] = json!(field);
                }
            }
            AppError::Unprocessable { field, .. } => body["field"] = json!(field),
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
