//! Typed JSON errors: every failure a client sees is `{"error": {"kind", "message"}}`
//! with the HTTP status that fits.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use trace_store_core::Error;

/// What went wrong, as the `kind` of a JSON error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    InvalidInput,
    NotFound,
    Unauthorized,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The client did not send its body in time.
    RequestTimeout,
    /// The server did not finish the request in time.
    Timeout,
    Backend,
    Internal,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::InvalidInput => "invalid_input",
            Kind::NotFound => "not_found",
            Kind::Unauthorized => "unauthorized",
            Kind::MethodNotAllowed => "method_not_allowed",
            Kind::PayloadTooLarge => "payload_too_large",
            Kind::UnsupportedMediaType => "unsupported_media_type",
            Kind::RequestTimeout => "request_timeout",
            Kind::Timeout => "timeout",
            Kind::Backend => "backend",
            Kind::Internal => "internal",
        }
    }

    pub(crate) fn status(self) -> StatusCode {
        match self {
            Kind::InvalidInput => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Unauthorized => StatusCode::UNAUTHORIZED,
            Kind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Kind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            // 503, which OTLP exporters retry, as they should: the server was slow.
            Kind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Backend => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC status code OTLP clients read from an error body (google.rpc.Code).
    pub(crate) fn grpc_code(self) -> i32 {
        match self {
            Kind::InvalidInput | Kind::PayloadTooLarge | Kind::UnsupportedMediaType => 3,
            Kind::NotFound => 5,
            Kind::Unauthorized => 16,
            Kind::MethodNotAllowed => 12,
            Kind::RequestTimeout | Kind::Timeout => 4,
            Kind::Backend => 14,
            Kind::Internal => 13,
        }
    }
}

/// An error answer of the API.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub(crate) kind: Kind,
    pub(crate) message: String,
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub(crate) fn new(kind: Kind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Kind::InvalidInput, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(Kind::NotFound, message)
    }

    pub(crate) fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            Kind::PayloadTooLarge,
            format!("the request body is larger than the server's limit of {limit} bytes"),
        )
    }

    /// The JSON body, with the OTLP (google.rpc.Status) `code` and `message` beside
    /// ours so an OTLP/JSON exporter can read it too.
    pub(crate) fn json_body(&self) -> serde_json::Value {
        json!({
            "error": {"kind": self.kind.as_str(), "message": self.message},
            "code": self.kind.grpc_code(),
            "message": self.message,
        })
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let kind = match &error {
            Error::InvalidInput { .. } => Kind::InvalidInput,
            Error::NotFound { .. } => Kind::NotFound,
            Error::Backend { .. } | Error::Io(_) => Kind::Backend,
            _ => Kind::Internal,
        };
        let message = match error {
            Error::InvalidInput { message } => message,
            other => other.to_string(),
        };
        ApiError { kind, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.kind.status().is_server_error() {
            tracing::error!(kind = self.kind.as_str(), "{}", self.message);
        }
        let body = serde_json::to_vec(&self.json_body()).unwrap_or_default();
        (
            self.kind.status(),
            [(CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
