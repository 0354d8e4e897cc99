//! OTLP spans -> partial traces.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use trace_store_core::{Score, Step, StepKind, Timestamp, Trace, validate_run_id};

use crate::fields::{self, Attributes};
use crate::ids::{hex, run_span_id};
use crate::proto::{
    ExportTraceServiceRequest, InstrumentationScope, KeyValue, Resource, SPAN_KIND_INTERNAL, Span,
};
use crate::semconv::{self, otlp};
use crate::value::{from_opt_any, from_opt_any_owned};
use crate::{Ingest, export};

/// Where a span sits in the request: its resource and scope.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Context<'a> {
    pub resource: Option<&'a Resource>,
    pub resource_schema_url: &'a str,
    pub scope: Option<&'a InstrumentationScope>,
    pub scope_schema_url: &'a str,
}

/// What one span contributes to its trace.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub run_id: String,
    pub step: Option<Step>,
    /// Header fields, from a run span (`exact`: it states every header field) or a root span.
    pub header: Option<(Trace, bool)>,
    /// The earliest `created_at` this span allows for its trace.
    pub created_at: Timestamp,
}

/// The request's spans as one part per trace. Takes the request so attribute keys and
/// string values move into the traces instead of being copied.
pub(crate) fn decode_request(request: ExportTraceServiceRequest) -> Ingest {
    let mut parts: Vec<PartBuilder> = Vec::new();
    let mut by_run: HashMap<String, usize> = HashMap::new();
    let mut ingest = Ingest::default();
    for rs in request.resource_spans {
        for ss in rs.scope_spans {
            let ctx = Context {
                resource: rs.resource.as_ref(),
                resource_schema_url: &rs.schema_url,
                scope: ss.scope.as_ref(),
                scope_schema_url: &ss.schema_url,
            };
            for span in ss.spans {
                match decode_owned_span(span, &ctx) {
                    Ok(decoded) => {
                        // Spans of one trace mostly come together: look up only on a change.
                        let at = match parts.last() {
                            Some(last) if last.trace.run_id == decoded.run_id => parts.len() - 1,
                            _ => *by_run.entry(decoded.run_id.clone()).or_insert_with(|| {
                                parts.push(PartBuilder::new(&decoded.run_id));
                                parts.len() - 1
                            }),
                        };
                        parts[at].add(decoded);
                    }
                    Err(message) => ingest.reject(1, message),
                }
            }
        }
    }
    for part in parts {
        let spans = part.spans;
        let trace = part.finish();
        match trace.validate() {
            Ok(()) => ingest.parts.push(trace),
            Err(error) => ingest.reject(spans, error.to_string()),
        }
    }
    ingest
}

/// One trace assembled from its decoded spans, in arrival order.
pub(crate) struct PartBuilder {
    trace: Trace,
    exact_created_at: Option<Timestamp>,
    earliest: Option<Timestamp>,
    spans: u64,
}

impl PartBuilder {
    pub(crate) fn new(run_id: &str) -> PartBuilder {
        PartBuilder {
            trace: Trace::new(run_id),
            exact_created_at: None,
            earliest: None,
            spans: 0,
        }
    }

    pub(crate) fn add(&mut self, decoded: Decoded) {
        self.spans += 1;
        self.earliest = Some(
            self.earliest
                .map_or(decoded.created_at, |t| t.min(decoded.created_at)),
        );
        if let Some((header, exact)) = decoded.header {
            if exact {
                self.exact_created_at = Some(header.created_at);
                let steps = std::mem::take(&mut self.trace.steps);
                self.trace = header;
                self.trace.steps = steps;
            } else {
                self.trace.merge(&header);
            }
        }
        if let Some(step) = decoded.step {
            self.trace.steps.push(step);
        }
    }

    pub(crate) fn finish(mut self) -> Trace {
        self.trace.created_at = self
            .exact_created_at
            .or(self.earliest)
            .unwrap_or(Timestamp::UNIX_EPOCH);
        self.trace
    }
}

impl Ingest {
    fn reject(&mut self, spans: u64, message: String) {
        self.rejected_spans += spans;
        if self.error_message.is_none() {
            self.error_message = Some(message);
        }
    }
}

fn micros(nanos: u64) -> Timestamp {
    // u64 nanoseconds always fall inside the Timestamp range.
    Timestamp::from_micros((nanos / 1000) as i64).unwrap_or(Timestamp::UNIX_EPOCH)
}

pub(crate) fn attributes_map(list: &[KeyValue]) -> Result<Attributes, String> {
    let mut map = Attributes::new();
    for kv in list {
        map.insert(kv.key.clone(), from_opt_any(kv.value.as_ref())?);
    }
    Ok(map)
}

/// [`attributes_map`], moving the keys and string values out of `list`.
fn attributes_map_owned(list: Vec<KeyValue>) -> Result<Attributes, String> {
    let mut map = Attributes::new();
    for kv in list {
        map.insert(kv.key, from_opt_any_owned(kv.value)?);
    }
    Ok(map)
}

fn attributes_object(list: &[KeyValue]) -> Result<Value, String> {
    Ok(Value::Object(attributes_map(list)?.into_iter().collect()))
}

fn take_true(attributes: &mut Attributes, key: &str) -> bool {
    if attributes.get(key) == Some(&Value::Bool(true)) {
        attributes.remove(key);
        true
    } else {
        false
    }
}

fn take_string(attributes: &mut Attributes, key: &str) -> Option<String> {
    match attributes.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            attributes.insert(key.to_owned(), other);
            None
        }
        None => None,
    }
}

pub(crate) fn decode_span(span: &Span, ctx: &Context<'_>) -> Result<Decoded, String> {
    check_ids(span)?;
    let attributes =
        attributes_map(&span.attributes).map_err(|e| format!("span {:?}: {e}", span.name))?;
    decode_span_with(span, attributes, ctx)
}

/// [`decode_span`] of a span the caller no longer needs.
fn decode_owned_span(mut span: Span, ctx: &Context<'_>) -> Result<Decoded, String> {
    check_ids(&span)?;
    let attributes = attributes_map_owned(std::mem::take(&mut span.attributes))
        .map_err(|e| format!("span {:?}: {e}", span.name))?;
    decode_span_with(&span, attributes, ctx)
}

fn check_ids(span: &Span) -> Result<(), String> {
    if span.trace_id.len() != 16 || span.trace_id.iter().all(|b| *b == 0) {
        return Err(format!("span {:?} has an invalid trace id", span.name));
    }
    if span.span_id.len() != 8 || span.span_id.iter().all(|b| *b == 0) {
        return Err(format!("span {:?} has an invalid span id", span.name));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Err(format!(
            "span {:?} has an invalid parent span id",
            span.name
        ));
    }
    Ok(())
}

/// Decodes `span` whose attributes, already converted, are `attributes` (the span's
/// own list is not read again).
fn decode_span_with(
    span: &Span,
    mut attributes: Attributes,
    ctx: &Context<'_>,
) -> Result<Decoded, String> {
    let run_id = match take_string(&mut attributes, semconv::TRACE_STORE_RUN_ID) {
        Some(run_id) => {
            validate_run_id(&run_id).map_err(|e| e.to_string())?;
            run_id
        }
        None => hex(&span.trace_id),
    };
    let created_at_hint = match attributes.remove(semconv::TRACE_STORE_CREATED_AT_US) {
        Some(v) => Some(
            v.as_i64()
                .and_then(|us| Timestamp::from_micros(us).ok())
                .ok_or("trace_store.created_at_us is not a valid timestamp")?,
        ),
        None => None,
    };
    let created_at = created_at_hint.unwrap_or(micros(span.start_time_unix_nano));
    if take_true(&mut attributes, semconv::TRACE_STORE_RUN) {
        let header = decode_run_span(span, &run_id, attributes)?;
        return Ok(Decoded {
            run_id,
            created_at: header.created_at,
            step: None,
            header: Some((header, true)),
        });
    }
    let root = span.parent_span_id.is_empty();
    let header_only = if root {
        take_header_only(&mut attributes)?
    } else {
        None
    };
    let step = decode_step(span, ctx, attributes)?;
    let header = root.then(|| {
        let mut header = header_only.unwrap_or_else(|| Trace::new(run_id.clone()));
        header.run_id.clone_from(&run_id);
        header.name.clone_from(&step.name);
        header.status = step.status;
        header.error.clone_from(&step.error);
        header.ended_at = Some(micros(span.end_time_unix_nano));
        header.session_id = session_of(&step.attributes);
        header.created_at = created_at;
        (header, false)
    });
    Ok(Decoded {
        run_id,
        step: Some(step),
        header,
        created_at,
    })
}

fn session_of(attributes: &Attributes) -> Option<String> {
    attributes
        .get(semconv::GEN_AI_CONVERSATION_ID)
        .or_else(|| attributes.get(semconv::SESSION_ID))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The header fields that only a run span or a root span carries, as `trace_store.*`.
fn take_header_only(attributes: &mut Attributes) -> Result<Option<Trace>, String> {
    let mut header = Trace::new("");
    let mut any = false;
    if let Some(parent) = take_string(attributes, semconv::TRACE_STORE_PARENT_RUN_ID) {
        header.parent_run_id = Some(parent);
        any = true;
    }
    if let Some(metadata) = attributes.remove(semconv::TRACE_STORE_METADATA) {
        let Value::Object(map) = metadata else {
            return Err("trace_store.metadata is not a map".into());
        };
        header.metadata = map.into_iter().collect();
        any = true;
    }
    if let Some(scores) = attributes.remove(semconv::TRACE_STORE_SCORES) {
        header.scores = serde_json::from_value::<Vec<Score>>(scores)
            .map_err(|e| format!("trace_store.scores is not a list of scores: {e}"))?;
        any = true;
    }
    if let Some(version) = attributes.remove(semconv::TRACE_STORE_SCHEMA_VERSION) {
        header.schema_version = version
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or("trace_store.schema_version is not a version number")?;
        any = true;
    }
    Ok(any.then_some(header))
}

fn decode_run_span(span: &Span, run_id: &str, mut attributes: Attributes) -> Result<Trace, String> {
    if let Some(raw) = take_string(&mut attributes, semconv::TRACE_STORE_HEADER) {
        let mut header =
            Trace::from_json_str(&raw).map_err(|e| format!("trace_store.header: {e}"))?;
        header.run_id = run_id.to_owned();
        header.steps.clear();
        return Ok(header);
    }
    let mut header = take_header_only(&mut attributes)?.unwrap_or_else(|| Trace::new(""));
    header.run_id = run_id.to_owned();
    header.created_at = micros(span.start_time_unix_nano);
    header.name =
        (!take_true(&mut attributes, semconv::TRACE_STORE_UNNAMED)).then(|| span.name.clone());
    header.ended_at = (!take_true(&mut attributes, semconv::TRACE_STORE_NO_END))
        .then(|| micros(span.end_time_unix_nano));
    let (code, message) = span
        .status
        .as_ref()
        .map_or((0, ""), |s| (s.code, s.message.as_str()));
    (header.status, header.error) = fields::read_status(code, message, &mut attributes);
    header.session_id = session_of(&attributes);
    Ok(header)
}

fn decode_step(span: &Span, ctx: &Context<'_>, mut attributes: Attributes) -> Result<Step, String> {
    if let Some(raw) = take_string(&mut attributes, semconv::TRACE_STORE_STEP) {
        return serde_json::from_str::<Step>(&raw).map_err(|e| format!("trace_store.step: {e}"));
    }
    let mut step = Step::new(StepKind::Chain);
    let trace_id = &span.trace_id;
    step.id = if take_true(&mut attributes, semconv::TRACE_STORE_GENERATED_ID) {
        None
    } else {
        Some(
            take_string(&mut attributes, semconv::TRACE_STORE_STEP_ID)
                .unwrap_or_else(|| hex(&span.span_id)),
        )
    };
    let explicit_parent = take_string(&mut attributes, semconv::TRACE_STORE_PARENT_ID);
    step.parent_id =
        if span.parent_span_id.is_empty() || span.parent_span_id == run_span_id(trace_id) {
            None
        } else {
            Some(explicit_parent.unwrap_or_else(|| hex(&span.parent_span_id)))
        };
    step.name =
        (!take_true(&mut attributes, semconv::TRACE_STORE_UNNAMED)).then(|| span.name.clone());
    let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
    step.started_at =
        (!take_true(&mut attributes, semconv::TRACE_STORE_NO_START)).then(|| micros(start));
    step.duration_us = end.saturating_sub(start) / 1000;
    let (code, message) = span
        .status
        .as_ref()
        .map_or((0, ""), |s| (s.code, s.message.as_str()));
    (step.status, step.error) = fields::read_status(code, message, &mut attributes);
    fields::read_fields(&mut step, &mut attributes);

    if start % 1000 != 0 || end % 1000 != 0 || end < start {
        attributes.insert(
            otlp::TIME_NS.into(),
            json!([start.to_string(), end.to_string()]),
        );
    }
    add_span_extras(span, ctx, &mut attributes)?;
    let escaped = |k: &String| k.starts_with(semconv::TRACE_STORE_ATTR_PREFIX);
    step.attributes = if attributes.keys().any(escaped) {
        attributes
            .into_iter()
            .map(
                |(k, v)| match k.strip_prefix(semconv::TRACE_STORE_ATTR_PREFIX) {
                    Some(own) => (own.to_owned(), v),
                    None => (k, v),
                },
            )
            .collect()
    } else {
        attributes
    };
    Ok(step)
}

/// Keeps what the span has beyond the model's fields, so it can be written back.
fn add_span_extras(
    span: &Span,
    ctx: &Context<'_>,
    attributes: &mut Attributes,
) -> Result<(), String> {
    if span.kind != SPAN_KIND_INTERNAL {
        attributes.insert(otlp::SPAN_KIND.into(), span.kind.into());
    }
    if !span.trace_state.is_empty() {
        attributes.insert(otlp::TRACE_STATE.into(), span.trace_state.clone().into());
    }
    if span.flags != 0 {
        attributes.insert(otlp::FLAGS.into(), span.flags.into());
    }
    if !span.events.is_empty() {
        let mut events = Vec::with_capacity(span.events.len());
        for event in &span.events {
            let mut obj = Map::new();
            obj.insert("name".into(), event.name.clone().into());
            obj.insert(
                "time_unix_nano".into(),
                event.time_unix_nano.to_string().into(),
            );
            if !event.attributes.is_empty() {
                obj.insert("attributes".into(), attributes_object(&event.attributes)?);
            }
            if event.dropped_attributes_count != 0 {
                obj.insert(
                    "dropped_attributes_count".into(),
                    event.dropped_attributes_count.into(),
                );
            }
            events.push(Value::Object(obj));
        }
        attributes.insert(otlp::EVENTS.into(), Value::Array(events));
    }
    if !span.links.is_empty() {
        let mut links = Vec::with_capacity(span.links.len());
        for link in &span.links {
            let mut obj = Map::new();
            obj.insert("trace_id".into(), hex(&link.trace_id).into());
            obj.insert("span_id".into(), hex(&link.span_id).into());
            if !link.trace_state.is_empty() {
                obj.insert("trace_state".into(), link.trace_state.clone().into());
            }
            if !link.attributes.is_empty() {
                obj.insert("attributes".into(), attributes_object(&link.attributes)?);
            }
            if link.dropped_attributes_count != 0 {
                obj.insert(
                    "dropped_attributes_count".into(),
                    link.dropped_attributes_count.into(),
                );
            }
            if link.flags != 0 {
                obj.insert("flags".into(), link.flags.into());
            }
            links.push(Value::Object(obj));
        }
        attributes.insert(otlp::LINKS.into(), Value::Array(links));
    }
    let mut dropped = Map::new();
    for (name, count) in [
        ("attributes", span.dropped_attributes_count),
        ("events", span.dropped_events_count),
        ("links", span.dropped_links_count),
    ] {
        if count != 0 {
            dropped.insert(name.into(), count.into());
        }
    }
    if !dropped.is_empty() {
        attributes.insert(otlp::DROPPED.into(), Value::Object(dropped));
    }
    if !export::is_default_resource(ctx.resource, ctx.resource_schema_url) {
        let mut obj = Map::new();
        if let Some(resource) = ctx.resource {
            if !resource.attributes.is_empty() {
                obj.insert(
                    "attributes".into(),
                    attributes_object(&resource.attributes)?,
                );
            }
            if resource.dropped_attributes_count != 0 {
                obj.insert(
                    "dropped_attributes_count".into(),
                    resource.dropped_attributes_count.into(),
                );
            }
        }
        if !ctx.resource_schema_url.is_empty() {
            obj.insert("schema_url".into(), ctx.resource_schema_url.into());
        }
        attributes.insert(otlp::RESOURCE.into(), Value::Object(obj));
    }
    if !export::is_default_scope(ctx.scope, ctx.scope_schema_url) {
        let mut obj = Map::new();
        if let Some(scope) = ctx.scope {
            if !scope.name.is_empty() {
                obj.insert("name".into(), scope.name.clone().into());
            }
            if !scope.version.is_empty() {
                obj.insert("version".into(), scope.version.clone().into());
            }
            if !scope.attributes.is_empty() {
                obj.insert("attributes".into(), attributes_object(&scope.attributes)?);
            }
            if scope.dropped_attributes_count != 0 {
                obj.insert(
                    "dropped_attributes_count".into(),
                    scope.dropped_attributes_count.into(),
                );
            }
        }
        if !ctx.scope_schema_url.is_empty() {
            obj.insert("schema_url".into(), ctx.scope_schema_url.into());
        }
        attributes.insert(otlp::SCOPE.into(), Value::Object(obj));
    }
    Ok(())
}
