//! Traces -> OTLP spans.
//!
//! Every span is checked by decoding it again: a step (or trace header) that the mapping
//! cannot carry exactly is sent with its whole JSON in `trace_store.step` (or
//! `trace_store.header`), so model -> OTLP -> model is exact for any valid trace.

use serde_json::{Map, Value};
use trace_store_core::{Error, Result, SCHEMA_VERSION, Step, Timestamp, Trace};

use crate::extras::Extras;
use crate::fields::{self, Attributes};
use crate::ids;
use crate::import::{self, Context, Decoded, PartBuilder};
use crate::proto::{
    AnyValue, ExportTraceServiceRequest, InstrumentationScope, KeyValue, Resource, ResourceSpans,
    SPAN_KIND_INTERNAL, ScopeSpans, Span, Status, any_value,
};
use crate::semconv;
use crate::value::to_any;

/// `service.name` of the resource this crate writes.
pub(crate) const SERVICE_NAME: &str = "trace-store";
/// Name of the instrumentation scope this crate writes.
pub(crate) const SCOPE_NAME: &str = "trace-store";

fn default_resource() -> Resource {
    Resource {
        attributes: vec![KeyValue {
            key: semconv::SERVICE_NAME.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(SERVICE_NAME.into())),
            }),
        }],
        dropped_attributes_count: 0,
    }
}

fn default_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.into(),
        ..InstrumentationScope::default()
    }
}

pub(crate) fn is_default_resource(resource: Option<&Resource>, schema_url: &str) -> bool {
    schema_url.is_empty() && resource == Some(&default_resource())
}

pub(crate) fn is_default_scope(scope: Option<&InstrumentationScope>, schema_url: &str) -> bool {
    schema_url.is_empty() && scope == Some(&default_scope())
}

/// A span with its resource and scope (each with its schema URL).
struct Placed {
    resource: (Resource, String),
    scope: (InstrumentationScope, String),
    span: Span,
}

impl Placed {
    fn new(
        resource: Option<(Resource, String)>,
        scope: Option<(InstrumentationScope, String)>,
        span: Span,
    ) -> Placed {
        Placed {
            resource: resource.unwrap_or_else(|| (default_resource(), String::new())),
            scope: scope.unwrap_or_else(|| (default_scope(), String::new())),
            span,
        }
    }

    fn context(&self) -> Context<'_> {
        Context {
            resource: Some(&self.resource.0),
            resource_schema_url: &self.resource.1,
            scope: Some(&self.scope.0),
            scope_schema_url: &self.scope.1,
        }
    }
}

pub(crate) fn encode_request(traces: &[Trace]) -> Result<ExportTraceServiceRequest> {
    let mut request = ExportTraceServiceRequest::default();
    let mut last: Option<((Resource, String), (InstrumentationScope, String))> = None;
    for trace in traces {
        trace.validate()?;
        for placed in encode_trace(trace)? {
            let same_resource = last.as_ref().is_some_and(|(r, _)| *r == placed.resource);
            let same_scope =
                same_resource && last.as_ref().is_some_and(|(_, s)| *s == placed.scope);
            if !same_resource {
                let (resource, schema_url) = placed.resource.clone();
                request.resource_spans.push(ResourceSpans {
                    resource: Some(resource),
                    scope_spans: Vec::new(),
                    schema_url,
                });
            }
            let rs = request
                .resource_spans
                .last_mut()
                .ok_or_else(|| Error::invalid("no resource"))?;
            if !same_scope {
                let (scope, schema_url) = placed.scope.clone();
                rs.scope_spans.push(ScopeSpans {
                    scope: Some(scope),
                    spans: Vec::new(),
                    schema_url,
                });
            }
            if let Some(ss) = rs.scope_spans.last_mut() {
                ss.spans.push(placed.span);
            }
            last = Some((placed.resource, placed.scope));
        }
    }
    Ok(request)
}

/// The spans of one trace. Each span is decoded once to check it: a step that does
/// not decode exactly travels as JSON, and the decoded spans, assembled as a receiver
/// would, decide whether the trace needs a run span for its header.
fn encode_trace(trace: &Trace) -> Result<Vec<Placed>> {
    let (trace_id, run_id_travels) = ids::trace_id(&trace.run_id);
    let run_span_id = ids::run_span_id(&trace_id);
    let roots = trace.steps.iter().filter(|s| s.parent_id.is_none()).count();
    // A trace with one root step (as every OTel SDK makes), or a piece of one without
    // its root, needs no run span when its spans alone decode to it exactly.
    let single_tree = !trace.steps.is_empty() && roots <= 1;
    let top_parent: &[u8] = if single_tree { &[] } else { &run_span_id };
    let mut steps = Vec::with_capacity(trace.steps.len());
    let mut decoded = Vec::with_capacity(trace.steps.len());
    for (index, step) in trace.steps.iter().enumerate() {
        let header = single_tree && step.parent_id.is_none();
        let (placed, check) = encode_checked_step(
            trace,
            step,
            index,
            &trace_id,
            run_id_travels,
            top_parent,
            header,
        )?;
        steps.push(placed);
        decoded.push(check);
    }
    if single_tree {
        if assembles_to(decoded, trace) {
            return Ok(steps);
        }
        // Under a run span the root step is an ordinary child of it; every other
        // step's span stays as it was.
        for (index, step) in trace.steps.iter().enumerate() {
            if step.parent_id.is_none() {
                let (placed, _) = encode_checked_step(
                    trace,
                    step,
                    index,
                    &trace_id,
                    run_id_travels,
                    &run_span_id,
                    false,
                )?;
                steps[index] = placed;
            }
        }
    }
    let mut spans = Vec::with_capacity(steps.len() + 1);
    spans.push(encode_run_span(
        trace,
        &trace_id,
        run_id_travels,
        &run_span_id,
    ));
    spans.extend(steps);
    Ok(spans)
}

/// Whether spans that decoded to `decoded` assemble, as a receiver assembles them,
/// into exactly `trace`.
fn assembles_to(decoded: Vec<Option<Decoded>>, trace: &Trace) -> bool {
    let mut part = PartBuilder::new(&trace.run_id);
    for span in decoded {
        match span {
            Some(span) if span.run_id == trace.run_id => part.add(span),
            _ => return false,
        }
    }
    let assembled = part.finish();
    assembled.validate().is_ok() && assembled == *trace
}

fn nanos(at: Timestamp) -> u64 {
    u64::try_from(at.as_micros()).map_or(0, |us| us.saturating_mul(1000))
}

fn encode_run_span(
    trace: &Trace,
    trace_id: &[u8; 16],
    run_id_travels: bool,
    span_id: &[u8; 8],
) -> Placed {
    let mut attributes = Attributes::new();
    attributes.insert(semconv::TRACE_STORE_RUN.into(), true.into());
    if run_id_travels {
        attributes.insert(
            semconv::TRACE_STORE_RUN_ID.into(),
            trace.run_id.clone().into(),
        );
    }
    put_header_only(trace, &mut attributes);
    if trace.name.is_none() {
        attributes.insert(semconv::TRACE_STORE_UNNAMED.into(), true.into());
    }
    if trace.ended_at.is_none() {
        attributes.insert(semconv::TRACE_STORE_NO_END.into(), true.into());
    }
    if let Some(session) = &trace.session_id {
        attributes.insert(
            semconv::GEN_AI_CONVERSATION_ID.into(),
            session.clone().into(),
        );
    }
    let (code, message) = fields::write_status(trace.status, trace.error.as_ref(), &mut attributes);
    let start = nanos(trace.created_at);
    let mut span = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        name: trace.name.clone().unwrap_or_else(|| trace.run_id.clone()),
        kind: SPAN_KIND_INTERNAL,
        start_time_unix_nano: start,
        end_time_unix_nano: trace.ended_at.map_or(start, nanos),
        status: Some(Status { message, code }),
        ..Span::default()
    };
    span.attributes = key_values(&attributes);
    let placed = Placed::new(None, None, span);
    let mut header = trace.clone();
    header.steps.clear();
    let exact = matches!(
        import::decode_span(&placed.span, &placed.context()),
        Ok(Decoded { header: Some((ref decoded, true)), .. }) if *decoded == header
    );
    if exact {
        return placed;
    }
    let mut placed = placed;
    let raw = header.to_json_string().unwrap_or_default();
    placed.span.attributes.push(KeyValue {
        key: semconv::TRACE_STORE_HEADER.into(),
        value: Some(to_any(&Value::String(raw))),
    });
    placed
}

fn put_header_only(trace: &Trace, attributes: &mut Attributes) {
    if let Some(parent) = &trace.parent_run_id {
        attributes.insert(
            semconv::TRACE_STORE_PARENT_RUN_ID.into(),
            parent.clone().into(),
        );
    }
    if !trace.metadata.is_empty() {
        let map: Map<String, Value> = trace.metadata.clone().into_iter().collect();
        attributes.insert(semconv::TRACE_STORE_METADATA.into(), Value::Object(map));
    }
    if !trace.scores.is_empty() {
        attributes.insert(
            semconv::TRACE_STORE_SCORES.into(),
            serde_json::to_value(&trace.scores).unwrap_or(Value::Null),
        );
    }
    if trace.schema_version != SCHEMA_VERSION {
        attributes.insert(
            semconv::TRACE_STORE_SCHEMA_VERSION.into(),
            trace.schema_version.into(),
        );
    }
}

fn key_values(attributes: &Attributes) -> Vec<KeyValue> {
    attributes
        .iter()
        .map(|(key, value)| KeyValue {
            key: key.clone(),
            value: Some(to_any(value)),
        })
        .collect()
}

/// One step's span, checked by decoding it once. `header`: the root span of a trace
/// without a run span, which carries the header fields no span has. Returns the span
/// and what a receiver decodes from it (`None` if it does not decode).
fn encode_checked_step(
    trace: &Trace,
    step: &Step,
    index: usize,
    trace_id: &[u8; 16],
    run_id_travels: bool,
    top_parent: &[u8],
    header: bool,
) -> Result<(Placed, Option<Decoded>)> {
    let mut placed = encode_step(trace, step, index, trace_id, run_id_travels, top_parent);
    if header {
        let mut extra = Attributes::new();
        put_header_only(trace, &mut extra);
        placed.span.attributes.extend(key_values(&extra));
    }
    let decoded = import::decode_span(&placed.span, &placed.context()).ok();
    if header {
        return Ok((placed, decoded));
    }
    match decoded {
        Some(decoded) if decoded.step.as_ref() == Some(step) => Ok((placed, Some(decoded))),
        decoded => {
            let raw = serde_json::to_string(step)
                .map_err(|e| Error::invalid(format!("cannot encode step {index}: {e}")))?;
            // What the receiver reads back from the step's JSON.
            let exact = serde_json::from_str::<Step>(&raw).ok();
            placed.span.attributes.push(KeyValue {
                key: semconv::TRACE_STORE_STEP.into(),
                value: Some(to_any(&Value::String(raw))),
            });
            let decoded = match decoded {
                Some(decoded) => exact.map(|step| Decoded {
                    step: Some(step),
                    ..decoded
                }),
                // Rare: the span did not decode at all, and may now that the step
                // travels as JSON.
                None => import::decode_span(&placed.span, &placed.context()).ok(),
            };
            Ok((placed, decoded))
        }
    }
}

fn encode_step(
    trace: &Trace,
    step: &Step,
    index: usize,
    trace_id: &[u8; 16],
    run_id_travels: bool,
    top_parent: &[u8],
) -> Placed {
    let mut attributes = Attributes::new();
    if run_id_travels {
        attributes.insert(
            semconv::TRACE_STORE_RUN_ID.into(),
            trace.run_id.clone().into(),
        );
    }
    let span_id = match &step.id {
        None => {
            attributes.insert(semconv::TRACE_STORE_GENERATED_ID.into(), true.into());
            ids::generated_span_id(trace_id, index)
        }
        Some(id) => {
            let (span_id, travels) = ids::span_id(trace_id, id);
            if travels {
                attributes.insert(semconv::TRACE_STORE_STEP_ID.into(), id.clone().into());
            }
            span_id
        }
    };
    let parent_span_id = match &step.parent_id {
        None => top_parent.to_vec(),
        Some(parent) => {
            let (parent_span_id, travels) = ids::span_id(trace_id, parent);
            if travels {
                attributes.insert(semconv::TRACE_STORE_PARENT_ID.into(), parent.clone().into());
            }
            parent_span_id.to_vec()
        }
    };
    if step.name.is_none() {
        attributes.insert(semconv::TRACE_STORE_UNNAMED.into(), true.into());
    }
    let extras = Extras::of(step);
    let (start, end) = extras.time_ns.unwrap_or_else(|| {
        let start = match step.started_at {
            Some(at) => nanos(at),
            None => {
                attributes.insert(semconv::TRACE_STORE_NO_START.into(), true.into());
                nanos(trace.created_at)
            }
        };
        (
            start,
            start.saturating_add(step.duration_us.saturating_mul(1000)),
        )
    });
    if (start / 1000) < u64::try_from(trace.created_at.as_micros()).unwrap_or(0)
        || step.started_at.is_some_and(|at| at < trace.created_at)
    {
        attributes.insert(
            semconv::TRACE_STORE_CREATED_AT_US.into(),
            trace.created_at.as_micros().into(),
        );
    }
    let (code, mut message) =
        fields::write_status(step.status, step.error.as_ref(), &mut attributes);
    if message.is_empty()
        && let Some(status_message) = &extras.status_message
    {
        message.clone_from(status_message);
    }
    for (key, value) in &step.attributes {
        if extras.consumed.contains(&key.as_str()) {
            continue;
        }
        if key.starts_with("trace_store.") {
            attributes.insert(
                format!("{}{key}", semconv::TRACE_STORE_ATTR_PREFIX),
                value.clone(),
            );
        } else {
            attributes.insert(key.clone(), value.clone());
        }
    }
    fields::write_fields(step, &mut attributes);
    let span = Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        trace_state: extras.trace_state.clone().unwrap_or_default(),
        parent_span_id,
        flags: extras.flags,
        name: step
            .name
            .clone()
            .unwrap_or_else(|| step.kind.as_str().to_owned()),
        kind: extras.span_kind.unwrap_or(SPAN_KIND_INTERNAL),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: key_values(&attributes),
        dropped_attributes_count: extras.dropped[0],
        events: extras.events.clone(),
        dropped_events_count: extras.dropped[1],
        links: extras.links.clone(),
        dropped_links_count: extras.dropped[2],
        status: Some(Status { message, code }),
    };
    Placed::new(extras.resource, extras.scope, span)
}

/// The traces as requests of at most `max_spans` spans each (at least one span per
/// request); spans keep their order, so a trace split over requests assembles again
/// through `merge`.
pub(crate) fn encode_batches(
    traces: &[Trace],
    max_spans: usize,
) -> Result<Vec<ExportTraceServiceRequest>> {
    let max_spans = max_spans.max(1);
    let mut batches = Vec::new();
    let mut current = ExportTraceServiceRequest::default();
    let mut count = 0usize;
    for rs in encode_request(traces)?.resource_spans {
        for ss in rs.scope_spans {
            for span in ss.spans {
                if count == max_spans {
                    batches.push(std::mem::take(&mut current));
                    count = 0;
                }
                let same_resource = current.resource_spans.last().is_some_and(|last| {
                    last.resource == rs.resource && last.schema_url == rs.schema_url
                });
                if !same_resource {
                    current.resource_spans.push(ResourceSpans {
                        resource: rs.resource.clone(),
                        scope_spans: Vec::new(),
                        schema_url: rs.schema_url.clone(),
                    });
                }
                let Some(target) = current.resource_spans.last_mut() else {
                    continue;
                };
                let same_scope = same_resource
                    && target.scope_spans.last().is_some_and(|last| {
                        last.scope == ss.scope && last.schema_url == ss.schema_url
                    });
                if !same_scope {
                    target.scope_spans.push(ScopeSpans {
                        scope: ss.scope.clone(),
                        spans: Vec::new(),
                        schema_url: ss.schema_url.clone(),
                    });
                }
                if let Some(scope_spans) = target.scope_spans.last_mut() {
                    scope_spans.spans.push(span);
                    count += 1;
                }
            }
        }
    }
    if count > 0 {
        batches.push(current);
    }
    Ok(batches)
}
