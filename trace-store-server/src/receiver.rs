//! `POST /v1/traces`: the OTLP/HTTP trace receiver.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use trace_store_otlp::Encoding;

use crate::AppState;
use crate::body::{gunzip_limited, read_limited};
use crate::error::{ApiError, ApiResult, Kind};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/v1/traces", post(export_traces))
}

/// The encoding a `Content-Type` names, parameters (`; charset=utf-8`) ignored.
fn encoding_of(headers: &HeaderMap) -> ApiResult<Encoding> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ApiError::new(
            Kind::UnsupportedMediaType,
            format!(
                "content type {content_type:?} is not OTLP/HTTP; send application/x-protobuf or application/json"
            ),
        )),
    }
}

/// Whether the body is gzip-compressed; any other encoding is refused.
fn is_gzip(headers: &HeaderMap) -> ApiResult<bool> {
    let Some(value) = headers.get(CONTENT_ENCODING) else {
        return Ok(false);
    };
    match value
        .to_str()
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Ok("gzip") | Ok("x-gzip") => Ok(true),
        Ok("identity") | Ok("") => Ok(false),
        _ => Err(ApiError::new(
            Kind::UnsupportedMediaType,
            format!("content encoding {value:?} is not supported; send gzip or none"),
        )),
    }
}

async fn export_traces(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let encoding = match encoding_of(&headers) {
        Ok(encoding) => encoding,
        Err(error) => return error.into_response(),
    };
    match ingest(&state, &headers, body, encoding).await {
        Ok((rejected, message)) => otlp_response(
            StatusCode::OK,
            encoding,
            trace_store_otlp::encode_response(rejected, &message, encoding),
        ),
        Err(error) => error_response(&error, encoding),
    }
}

/// Reads, decompresses and decodes the whole request before handing anything to the
/// writer, so a malformed body writes nothing; answers once the parts are written.
/// Returns the rejected span count and why.
async fn ingest(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    encoding: Encoding,
) -> ApiResult<(u64, String)> {
    let gzip = is_gzip(headers)?;
    let max_body = state.options.max_body;
    let bytes = read_limited(body, max_body, state.options.body_timeout).await?;
    // Decoding validates every part (invalid spans come back as rejected).
    let ingest = state
        .blocking(move |_| {
            let decompressed;
            let payload: &[u8] = if gzip {
                decompressed = gunzip_limited(&bytes, max_body)?;
                &decompressed
            } else {
                &bytes
            };
            Ok(trace_store_otlp::decode_traces(payload, encoding)?)
        })
        .await?;
    state.ingest.write(ingest.parts).await?;
    Ok((
        ingest.rejected_spans,
        ingest.error_message.unwrap_or_default(),
    ))
}

fn otlp_response(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    let content_type = match encoding {
        Encoding::Json => "application/json",
        Encoding::Protobuf => "application/x-protobuf",
    };
    (status, [(CONTENT_TYPE, content_type)], body).into_response()
}

/// An error in the request's own encoding, as OTLP/HTTP asks: a `google.rpc.Status`
/// message for protobuf; for JSON, our error object with the Status fields beside it.
fn error_response(error: &ApiError, encoding: Encoding) -> Response {
    match encoding {
        Encoding::Json => {
            let body = serde_json::to_vec(&error.json_body()).unwrap_or_default();
            otlp_response(error.kind.status(), encoding, body)
        }
        Encoding::Protobuf => {
            if error.kind.status().is_server_error() {
                tracing::error!(kind = error.kind.as_str(), "{}", error.message);
            }
            let body = rpc_status(error.kind.grpc_code(), &error.message);
            otlp_response(error.kind.status(), encoding, body)
        }
    }
}

/// `google.rpc.Status { code = 1; message = 2; }` in protobuf wire format.
fn rpc_status(code: i32, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    out.push(0x08); // field 1, varint
    put_varint(&mut out, u64::from(code.unsigned_abs()));
    out.push(0x12); // field 2, length-delimited
    put_varint(&mut out, message.len() as u64);
    out.extend_from_slice(message.as_bytes());
    out
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_message_is_protobuf() {
        assert_eq!(rpc_status(3, "bad"), [0x08, 3, 0x12, 3, b'b', b'a', b'd']);
        let long = "x".repeat(200);
        let encoded = rpc_status(13, &long);
        assert_eq!(&encoded[..5], [0x08, 13, 0x12, 0xC8, 0x01]);
    }
}
