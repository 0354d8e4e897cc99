//! The OTLP JSON Protobuf Encoding: a lenient reader and a strict writer.
//!
//! The writer follows the spec exactly: camelCase names, trace and span ids as
//! lower-case hex, enums as integers, 64-bit integers as decimal strings, fields with
//! default values left out. The reader also takes snake_case names, integers as numbers
//! or strings, enums as integers or names, and ids in any hex case (or base64, as some
//! early exporters wrote them).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::ids::hex;
use crate::proto::any_value::Value as Any;
use crate::proto::*;

type Obj = Map<String, Value>;
type Res<T> = Result<T, String>;

/// Reads an `ExportTraceServiceRequest` from parsed JSON.
pub(crate) fn read_request(value: &Value) -> Res<ExportTraceServiceRequest> {
    let obj = as_obj(value, "the request")?;
    Ok(ExportTraceServiceRequest {
        resource_spans: list(obj, "resourceSpans", "resource_spans", read_resource_spans)?,
    })
}

/// Reads an `ExportTraceServiceResponse` from parsed JSON.
pub(crate) fn read_response(value: &Value) -> Res<ExportTraceServiceResponse> {
    let obj = as_obj(value, "the response")?;
    let partial_success = match field(obj, "partialSuccess", "partial_success") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let ps = as_obj(v, "partialSuccess")?;
            Some(ExportTracePartialSuccess {
                rejected_spans: int64(ps, "rejectedSpans", "rejected_spans")?,
                error_message: string(ps, "errorMessage", "error_message")?,
            })
        }
    };
    Ok(ExportTraceServiceResponse { partial_success })
}

fn read_resource_spans(value: &Value) -> Res<ResourceSpans> {
    let obj = as_obj(value, "resourceSpans[]")?;
    let resource = match field(obj, "resource", "resource") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let r = as_obj(v, "resource")?;
            Some(Resource {
                attributes: list(r, "attributes", "attributes", read_key_value)?,
                dropped_attributes_count: uint32(
                    r,
                    "droppedAttributesCount",
                    "dropped_attributes_count",
                )?,
            })
        }
    };
    Ok(ResourceSpans {
        resource,
        scope_spans: list(obj, "scopeSpans", "scope_spans", read_scope_spans)?,
        schema_url: string(obj, "schemaUrl", "schema_url")?,
    })
}

fn read_scope_spans(value: &Value) -> Res<ScopeSpans> {
    let obj = as_obj(value, "scopeSpans[]")?;
    let scope = match field(obj, "scope", "scope") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = as_obj(v, "scope")?;
            Some(InstrumentationScope {
                name: string(s, "name", "name")?,
                version: string(s, "version", "version")?,
                attributes: list(s, "attributes", "attributes", read_key_value)?,
                dropped_attributes_count: uint32(
                    s,
                    "droppedAttributesCount",
                    "dropped_attributes_count",
                )?,
            })
        }
    };
    Ok(ScopeSpans {
        scope,
        spans: list(obj, "spans", "spans", read_span)?,
        schema_url: string(obj, "schemaUrl", "schema_url")?,
    })
}

fn read_span(value: &Value) -> Res<Span> {
    let obj = as_obj(value, "spans[]")?;
    let status = match field(obj, "status", "status") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let s = as_obj(v, "status")?;
            Some(Status {
                message: string(s, "message", "message")?,
                code: enumeration(s, "code", "code", STATUS_CODES)?,
            })
        }
    };
    Ok(Span {
        trace_id: id(obj, "traceId", "trace_id", 16)?,
        span_id: id(obj, "spanId", "span_id", 8)?,
        trace_state: string(obj, "traceState", "trace_state")?,
        parent_span_id: id(obj, "parentSpanId", "parent_span_id", 8)?,
        flags: uint32(obj, "flags", "flags")?,
        name: string(obj, "name", "name")?,
        kind: enumeration(obj, "kind", "kind", SPAN_KINDS)?,
        start_time_unix_nano: uint64(obj, "startTimeUnixNano", "start_time_unix_nano")?,
        end_time_unix_nano: uint64(obj, "endTimeUnixNano", "end_time_unix_nano")?,
        attributes: list(obj, "attributes", "attributes", read_key_value)?,
        dropped_attributes_count: uint32(
            obj,
            "droppedAttributesCount",
            "dropped_attributes_count",
        )?,
        events: list(obj, "events", "events", read_event)?,
        dropped_events_count: uint32(obj, "droppedEventsCount", "dropped_events_count")?,
        links: list(obj, "links", "links", read_link)?,
        dropped_links_count: uint32(obj, "droppedLinksCount", "dropped_links_count")?,
        status,
    })
}

fn read_event(value: &Value) -> Res<Event> {
    let obj = as_obj(value, "events[]")?;
    Ok(Event {
        time_unix_nano: uint64(obj, "timeUnixNano", "time_unix_nano")?,
        name: string(obj, "name", "name")?,
        attributes: list(obj, "attributes", "attributes", read_key_value)?,
        dropped_attributes_count: uint32(
            obj,
            "droppedAttributesCount",
            "dropped_attributes_count",
        )?,
    })
}

fn read_link(value: &Value) -> Res<Link> {
    let obj = as_obj(value, "links[]")?;
    Ok(Link {
        trace_id: id(obj, "traceId", "trace_id", 16)?,
        span_id: id(obj, "spanId", "span_id", 8)?,
        trace_state: string(obj, "traceState", "trace_state")?,
        attributes: list(obj, "attributes", "attributes", read_key_value)?,
        dropped_attributes_count: uint32(
            obj,
            "droppedAttributesCount",
            "dropped_attributes_count",
        )?,
        flags: uint32(obj, "flags", "flags")?,
    })
}

fn read_key_value(value: &Value) -> Res<KeyValue> {
    let obj = as_obj(value, "attributes[]")?;
    let value = match field(obj, "value", "value") {
        None | Some(Value::Null) => None,
        Some(v) => Some(read_any_value(v)?),
    };
    Ok(KeyValue {
        key: string(obj, "key", "key")?,
        value,
    })
}

fn read_any_value(value: &Value) -> Res<AnyValue> {
    let obj = as_obj(value, "an AnyValue")?;
    let present = |camel, snake| match field(obj, camel, snake) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let value = if let Some(v) = present("stringValue", "string_value") {
        Any::StringValue(as_str(v, "stringValue")?.to_owned())
    } else if let Some(v) = present("boolValue", "bool_value") {
        Any::BoolValue(v.as_bool().ok_or("boolValue is not true or false")?)
    } else if let Some(v) = present("intValue", "int_value") {
        Any::IntValue(parse_i64(v, "intValue")?)
    } else if let Some(v) = present("doubleValue", "double_value") {
        Any::DoubleValue(parse_f64(v)?)
    } else if let Some(v) = present("arrayValue", "array_value") {
        let array = as_obj(v, "arrayValue")?;
        Any::ArrayValue(ArrayValue {
            values: list(array, "values", "values", read_any_value)?,
        })
    } else if let Some(v) = present("kvlistValue", "kvlist_value") {
        let kvlist = as_obj(v, "kvlistValue")?;
        Any::KvlistValue(KeyValueList {
            values: list(kvlist, "values", "values", read_key_value)?,
        })
    } else if let Some(v) = present("bytesValue", "bytes_value") {
        Any::BytesValue(
            BASE64
                .decode(as_str(v, "bytesValue")?)
                .map_err(|e| format!("bytesValue is not base64: {e}"))?,
        )
    } else {
        return Ok(AnyValue { value: None });
    };
    Ok(AnyValue { value: Some(value) })
}

const STATUS_CODES: &[&str] = &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
const SPAN_KINDS: &[&str] = &[
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

fn field<'a>(obj: &'a Obj, camel: &str, snake: &str) -> Option<&'a Value> {
    obj.get(camel).or_else(|| obj.get(snake))
}

fn as_obj<'a>(value: &'a Value, what: &str) -> Res<&'a Obj> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} is not a JSON object"))
}

fn as_str<'a>(value: &'a Value, what: &str) -> Res<&'a str> {
    value
        .as_str()
        .ok_or_else(|| format!("{what} is not a string"))
}

fn list<T>(obj: &Obj, camel: &str, snake: &str, read: fn(&Value) -> Res<T>) -> Res<Vec<T>> {
    match field(obj, camel, snake) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(read).collect(),
        Some(_) => Err(format!("{camel} is not an array")),
    }
}

fn string(obj: &Obj, camel: &str, snake: &str) -> Res<String> {
    match field(obj, camel, snake) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => as_str(v, camel).map(str::to_owned),
    }
}

fn parse_u64(value: &Value, what: &str) -> Res<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{what} is not an unsigned 64-bit integer"))
}

fn parse_i64(value: &Value, what: &str) -> Res<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| format!("{what} is not a 64-bit integer"))
}

fn parse_f64(value: &Value) -> Res<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
    .ok_or_else(|| "doubleValue is not a number".to_owned())
}

fn uint64(obj: &Obj, camel: &str, snake: &str) -> Res<u64> {
    field(obj, camel, snake)
        .filter(|v| !v.is_null())
        .map_or(Ok(0), |v| parse_u64(v, camel))
}

fn int64(obj: &Obj, camel: &str, snake: &str) -> Res<i64> {
    field(obj, camel, snake)
        .filter(|v| !v.is_null())
        .map_or(Ok(0), |v| parse_i64(v, camel))
}

fn uint32(obj: &Obj, camel: &str, snake: &str) -> Res<u32> {
    let wide = uint64(obj, camel, snake)?;
    u32::try_from(wide).map_err(|_| format!("{camel} {wide} does not fit 32 bits"))
}

fn enumeration(obj: &Obj, camel: &str, snake: &str, names: &[&str]) -> Res<i32> {
    match field(obj, camel, snake) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::String(name)) if !name.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
            names
                .iter()
                .position(|known| known == name)
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| format!("{camel} {name:?} is not one of {names:?}"))
        }
        Some(v) => {
            let n = parse_i64(v, camel)?;
            i32::try_from(n).map_err(|_| format!("{camel} {n} does not fit 32 bits"))
        }
    }
}

/// A trace or span id: hex in any case (the spec's form), or base64 of the right length.
fn id(obj: &Obj, camel: &str, snake: &str, len: usize) -> Res<Vec<u8>> {
    let text = string(obj, camel, snake)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.len() == 2 * len && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return (0..len)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string());
    }
    match BASE64.decode(&text) {
        Ok(bytes) if bytes.len() == len => Ok(bytes),
        _ => Err(format!(
            "{camel} {text:?} is not {len} bytes of hex (the OTLP JSON form) or base64"
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The strict writer.

/// Writes an `ExportTraceServiceRequest` as OTLP JSON.
pub(crate) fn write_request(request: &ExportTraceServiceRequest) -> Value {
    json!({ "resourceSpans": request.resource_spans.iter().map(write_resource_spans).collect::<Vec<_>>() })
}

/// Writes an `ExportTraceServiceResponse` as OTLP JSON.
pub(crate) fn write_response(response: &ExportTraceServiceResponse) -> Value {
    let mut obj = Obj::new();
    if let Some(ps) = &response.partial_success {
        let mut inner = Obj::new();
        put_i64(&mut inner, "rejectedSpans", ps.rejected_spans);
        put_str(&mut inner, "errorMessage", &ps.error_message);
        obj.insert("partialSuccess".into(), Value::Object(inner));
    }
    Value::Object(obj)
}

fn write_resource_spans(rs: &ResourceSpans) -> Value {
    let mut obj = Obj::new();
    if let Some(resource) = &rs.resource {
        let mut r = Obj::new();
        put_attributes(&mut r, &resource.attributes);
        put_u32(
            &mut r,
            "droppedAttributesCount",
            resource.dropped_attributes_count,
        );
        obj.insert("resource".into(), Value::Object(r));
    }
    obj.insert(
        "scopeSpans".into(),
        Value::Array(rs.scope_spans.iter().map(write_scope_spans).collect()),
    );
    put_str(&mut obj, "schemaUrl", &rs.schema_url);
    Value::Object(obj)
}

fn write_scope_spans(ss: &ScopeSpans) -> Value {
    let mut obj = Obj::new();
    if let Some(scope) = &ss.scope {
        let mut s = Obj::new();
        put_str(&mut s, "name", &scope.name);
        put_str(&mut s, "version", &scope.version);
        put_attributes(&mut s, &scope.attributes);
        put_u32(
            &mut s,
            "droppedAttributesCount",
            scope.dropped_attributes_count,
        );
        obj.insert("scope".into(), Value::Object(s));
    }
    obj.insert(
        "spans".into(),
        Value::Array(ss.spans.iter().map(write_span).collect()),
    );
    put_str(&mut obj, "schemaUrl", &ss.schema_url);
    Value::Object(obj)
}

fn write_span(span: &Span) -> Value {
    let mut obj = Obj::new();
    obj.insert("traceId".into(), Value::from(hex(&span.trace_id)));
    obj.insert("spanId".into(), Value::from(hex(&span.span_id)));
    put_str(&mut obj, "traceState", &span.trace_state);
    if !span.parent_span_id.is_empty() {
        obj.insert(
            "parentSpanId".into(),
            Value::from(hex(&span.parent_span_id)),
        );
    }
    put_u32(&mut obj, "flags", span.flags);
    obj.insert("name".into(), Value::from(span.name.clone()));
    obj.insert("kind".into(), Value::from(span.kind));
    obj.insert(
        "startTimeUnixNano".into(),
        Value::from(span.start_time_unix_nano.to_string()),
    );
    obj.insert(
        "endTimeUnixNano".into(),
        Value::from(span.end_time_unix_nano.to_string()),
    );
    put_attributes(&mut obj, &span.attributes);
    put_u32(
        &mut obj,
        "droppedAttributesCount",
        span.dropped_attributes_count,
    );
    if !span.events.is_empty() {
        obj.insert(
            "events".into(),
            Value::Array(span.events.iter().map(write_event).collect()),
        );
    }
    put_u32(&mut obj, "droppedEventsCount", span.dropped_events_count);
    if !span.links.is_empty() {
        obj.insert(
            "links".into(),
            Value::Array(span.links.iter().map(write_link).collect()),
        );
    }
    put_u32(&mut obj, "droppedLinksCount", span.dropped_links_count);
    if let Some(status) = &span.status {
        let mut s = Obj::new();
        put_str(&mut s, "message", &status.message);
        if status.code != 0 {
            s.insert("code".into(), Value::from(status.code));
        }
        obj.insert("status".into(), Value::Object(s));
    }
    Value::Object(obj)
}

fn write_event(event: &Event) -> Value {
    let mut obj = Obj::new();
    obj.insert(
        "timeUnixNano".into(),
        Value::from(event.time_unix_nano.to_string()),
    );
    obj.insert("name".into(), Value::from(event.name.clone()));
    put_attributes(&mut obj, &event.attributes);
    put_u32(
        &mut obj,
        "droppedAttributesCount",
        event.dropped_attributes_count,
    );
    Value::Object(obj)
}

fn write_link(link: &Link) -> Value {
    let mut obj = Obj::new();
    obj.insert("traceId".into(), Value::from(hex(&link.trace_id)));
    obj.insert("spanId".into(), Value::from(hex(&link.span_id)));
    put_str(&mut obj, "traceState", &link.trace_state);
    put_attributes(&mut obj, &link.attributes);
    put_u32(
        &mut obj,
        "droppedAttributesCount",
        link.dropped_attributes_count,
    );
    put_u32(&mut obj, "flags", link.flags);
    Value::Object(obj)
}

fn put_attributes(obj: &mut Obj, attributes: &[KeyValue]) {
    if !attributes.is_empty() {
        obj.insert(
            "attributes".into(),
            Value::Array(attributes.iter().map(write_key_value).collect()),
        );
    }
}

fn write_key_value(kv: &KeyValue) -> Value {
    let mut obj = Obj::new();
    obj.insert("key".into(), Value::from(kv.key.clone()));
    obj.insert(
        "value".into(),
        kv.value.as_ref().map_or_else(|| json!({}), write_any_value),
    );
    Value::Object(obj)
}

fn write_any_value(any: &AnyValue) -> Value {
    let Some(inner) = &any.value else {
        return json!({});
    };
    match inner {
        Any::StringValue(s) => json!({ "stringValue": s }),
        Any::BoolValue(b) => json!({ "boolValue": b }),
        Any::IntValue(i) => json!({ "intValue": i.to_string() }),
        Any::DoubleValue(d) => match serde_json::Number::from_f64(*d) {
            Some(n) => json!({ "doubleValue": n }),
            None if d.is_nan() => json!({ "doubleValue": "NaN" }),
            None if *d > 0.0 => json!({ "doubleValue": "Infinity" }),
            None => json!({ "doubleValue": "-Infinity" }),
        },
        Any::ArrayValue(array) => {
            json!({ "arrayValue": { "values": array.values.iter().map(write_any_value).collect::<Vec<_>>() } })
        }
        Any::KvlistValue(list) => {
            json!({ "kvlistValue": { "values": list.values.iter().map(write_key_value).collect::<Vec<_>>() } })
        }
        Any::BytesValue(bytes) => json!({ "bytesValue": BASE64.encode(bytes) }),
    }
}

fn put_str(obj: &mut Obj, key: &str, value: &str) {
    if !value.is_empty() {
        obj.insert(key.into(), Value::from(value));
    }
}

fn put_u32(obj: &mut Obj, key: &str, value: u32) {
    if value != 0 {
        obj.insert(key.into(), Value::from(value));
    }
}

fn put_i64(obj: &mut Obj, key: &str, value: i64) {
    if value != 0 {
        obj.insert(key.into(), Value::from(value.to_string()));
    }
}
