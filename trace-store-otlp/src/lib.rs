#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use trace_store_core::{Result, Trace};

/// How an OTLP payload is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`: the OTLP JSON Protobuf Encoding.
    Json,
    /// `application/x-protobuf`.
    Protobuf,
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
pub fn decode_traces(_body: &[u8], _encoding: Encoding) -> Result<Ingest> {
    Err(trace_store_core::Error::invalid("OTLP decoding is not built yet"))
}

/// Encodes traces as one `ExportTraceServiceRequest`.
pub fn encode_traces(_traces: &[Trace], _encoding: Encoding) -> Result<Vec<u8>> {
    Err(trace_store_core::Error::invalid("OTLP encoding is not built yet"))
}

/// Encodes an `ExportTraceServiceResponse`, with `partial_success` when spans were
/// rejected.
pub fn encode_response(_rejected_spans: u64, _error_message: &str, _encoding: Encoding) -> Vec<u8> {
    Vec::new()
}
