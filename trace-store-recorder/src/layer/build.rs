//! The writer thread's half of the layer: span records become steps (GenAI mapping,
//! ids, times, events as JSON), the capture policy is applied, and a root span's record
//! fills the run's header.

use serde_json::{Map, Value};
use trace_store_core::{Step, StepKind, Timestamp, Trace};

use super::fields::{FieldValue, SpanFields, apply_field};
use super::record::{EventRecord, SpanRecord};
use crate::Capture;
use crate::live::hex_id;

/// Turns span records into steps of `trace`, captured; a root's record also sets the
/// header's name, status, error and end.
pub(crate) fn add_span_steps(trace: &mut Trace, spans: Vec<SpanRecord>, capture: &Capture) {
    trace.steps.reserve(spans.len());
    for record in spans {
        let is_root = record.is_root;
        let end_ns = record.end.unix_ns();
        let (step, agent_name) = build_step(record, capture);
        if is_root {
            trace.name = agent_name.or_else(|| step.name.clone());
            trace.status = step.status;
            trace.error = step.error.clone();
            trace.ended_at = timestamp(end_ns);
            capture.apply_to_trace_header(trace);
        }
        trace.steps.push(step);
    }
}

/// The step of one span, and the agent name its fields gave.
fn build_step(record: SpanRecord, capture: &Capture) -> (Step, Option<String>) {
    let mut step = Step::new(StepKind::Chain);
    step.id = Some(hex_id(record.id));
    step.parent_id = (record.parent != 0).then(|| hex_id(record.parent));
    step.name = Some(record.name.to_owned());
    let start_ns = record.start.unix_ns();
    step.started_at = timestamp(start_ns);
    step.duration_us =
        u64::try_from(record.end.unix_ns().saturating_sub(start_ns)).unwrap_or(0) / 1_000;
    let mut fields = SpanFields::default();
    for (name, value) in &record.fields {
        apply_field(&mut step, &mut fields, name, FieldValue::from(value));
    }
    if !record.events.is_empty() {
        let events = record.events.iter().map(event_json).collect();
        step.attributes
            .insert("events".to_owned(), Value::Array(events));
    }
    fields.resolve(&mut step, record.panicked);
    capture.apply_to_step(&mut step);
    (step, fields.agent_name.take())
}

fn event_json(event: &EventRecord) -> Value {
    let mut entry = Map::new();
    let name = event
        .message
        .as_ref()
        .map_or(event.name, |message| message.as_str());
    entry.insert("name".to_owned(), Value::String(name.to_owned()));
    entry.insert(
        "time".to_owned(),
        timestamp(event.time.unix_ns())
            .and_then(|time| serde_json::to_value(time).ok())
            .unwrap_or(Value::Null),
    );
    entry.insert("level".to_owned(), Value::String(event.level.to_string()));
    if !event.fields.is_empty() {
        let fields = event
            .fields
            .iter()
            .map(|(name, value)| ((*name).to_owned(), FieldValue::from(value).to_json()))
            .collect();
        entry.insert("fields".to_owned(), Value::Object(fields));
    }
    Value::Object(entry)
}

fn timestamp(unix_ns: i64) -> Option<Timestamp> {
    Timestamp::from_micros(unix_ns.div_euclid(1_000)).ok()
}
