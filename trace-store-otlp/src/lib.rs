#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod export;
mod extras;
mod fields;
mod ids;
mod import;
mod json;
pub mod proto;
mod push;
pub mod semconv;
mod value;

pub use push::{PushOptions, PushReport, push_http, redact_url};

use prost::Message as _;
use trace_store_core::{Error, Result, Trace};

/// How an OTLP payload is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`: the OTLP JSON Protobuf Encoding.
    Json,
    /// `application/x-protobuf`.
    Protobuf,
}

impl Encoding {
    /// The HTTP content type of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Json => "application/json",
            Encoding::Protobuf => "application/x-protobuf",
        }
    }
}

/// What one OTLP export request holds, as trace-store traces.
#[derive(Debug, Default)]
pub struct Ingest {
    /// One partial trace per OTLP trace id in the request, to be folded into the store
    /// with `TraceStore::merge`.
    pub parts: Vec<Trace>,
    /// Spans that could not be mapped (for the response's `partial_success`).
    pub rejected_spans: u64,
    /// Why spans were rejected, if any were.
    pub error_message: Option<String>,
}

/// Decodes an `ExportTraceServiceRequest`. A malformed body is `InvalidInput`.
pub fn decode_traces(body: &[u8], encoding: Encoding) -> Result<Ingest> {
    Ok(import::decode_request(decode_request(body, encoding)?))
}

/// Decodes the raw `ExportTraceServiceRequest` message (for tools and tests that want
/// the spans themselves).
pub fn decode_request(body: &[u8], encoding: Encoding) -> Result<proto::ExportTraceServiceRequest> {
    match encoding {
        Encoding::Protobuf => proto::ExportTraceServiceRequest::decode(body)
            .map_err(|e| Error::invalid(format!("malformed OTLP protobuf: {e}"))),
        Encoding::Json => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Error::invalid(format!("malformed OTLP JSON: {e}")))?;
            json::read_request(&value)
                .map_err(|e| Error::invalid(format!("malformed OTLP JSON: {e}")))
        }
    }
}

/// Encodes traces as one `ExportTraceServiceRequest`.
pub fn encode_traces(traces: &[Trace], encoding: Encoding) -> Result<Vec<u8>> {
    let request = export::encode_request(traces)?;
    Ok(encode_request(&request, encoding))
}

/// Encodes a raw `ExportTraceServiceRequest` message.
pub fn encode_request(request: &proto::ExportTraceServiceRequest, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => request.encode_to_vec(),
        Encoding::Json => json::write_request(request).to_string().into_bytes(),
    }
}

/// Encodes an `ExportTraceServiceResponse`, with `partial_success` when spans were
/// rejected.
pub fn encode_response(rejected_spans: u64, error_message: &str, encoding: Encoding) -> Vec<u8> {
    let response = proto::ExportTraceServiceResponse {
        partial_success: (rejected_spans > 0).then(|| proto::ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected_spans).unwrap_or(i64::MAX),
            error_message: error_message.to_owned(),
        }),
    };
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => json::write_response(&response).to_string().into_bytes(),
    }
}

/// Decodes an `ExportTraceServiceResponse`: `(rejected_spans, error_message)`.
pub fn decode_response(body: &[u8], encoding: Encoding) -> Result<(u64, String)> {
    let response = match encoding {
        Encoding::Protobuf => proto::ExportTraceServiceResponse::decode(body)
            .map_err(|e| Error::invalid(format!("malformed OTLP response: {e}")))?,
        Encoding::Json => {
            let value: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Error::invalid(format!("malformed OTLP response: {e}")))?;
            json::read_response(&value).map_err(Error::invalid)?
        }
    };
    Ok(response.partial_success.map_or((0, String::new()), |ps| {
        (
            u64::try_from(ps.rejected_spans).unwrap_or(0),
            ps.error_message,
        )
    }))
}
