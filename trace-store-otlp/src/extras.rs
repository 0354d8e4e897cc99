//! The `trace_store.otlp.*` step attributes that keep what a foreign span has beyond the
//! model's fields, read back into span parts on export.

use serde_json::{Map, Value};
use trace_store_core::{Step, Timestamp};

use crate::export::{is_default_resource, is_default_scope};
use crate::proto::{Event, InstrumentationScope, KeyValue, Link, Resource, SPAN_KIND_INTERNAL};
use crate::semconv::otlp;
use crate::value::to_any;

/// The `trace_store.otlp.*` attributes of a step that can be written back as span parts.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) consumed: Vec<&'static str>,
    pub(crate) time_ns: Option<(u64, u64)>,
    pub(crate) span_kind: Option<i32>,
    pub(crate) trace_state: Option<String>,
    pub(crate) flags: u32,
    pub(crate) events: Vec<Event>,
    pub(crate) links: Vec<Link>,
    pub(crate) dropped: [u32; 3],
    pub(crate) status_message: Option<String>,
    pub(crate) resource: Option<(Resource, String)>,
    pub(crate) scope: Option<(InstrumentationScope, String)>,
}

impl Extras {
    pub(crate) fn of(step: &Step) -> Extras {
        let mut extras = Extras::default();
        let a = &step.attributes;
        if let Some(v) = a.get(otlp::TIME_NS)
            && let Some((start, end)) = time_ns(v, step)
        {
            extras.time_ns = Some((start, end));
            extras.consumed.push(otlp::TIME_NS);
        }
        if let Some(kind) = a
            .get(otlp::SPAN_KIND)
            .and_then(Value::as_i64)
            .and_then(|k| i32::try_from(k).ok())
            && kind != SPAN_KIND_INTERNAL
        {
            extras.span_kind = Some(kind);
            extras.consumed.push(otlp::SPAN_KIND);
        }
        if let Some(state) = a.get(otlp::TRACE_STATE).and_then(Value::as_str)
            && !state.is_empty()
        {
            extras.trace_state = Some(state.to_owned());
            extras.consumed.push(otlp::TRACE_STATE);
        }
        if let Some(flags) = a
            .get(otlp::FLAGS)
            .and_then(Value::as_u64)
            .and_then(|f| u32::try_from(f).ok())
            && flags != 0
        {
            extras.flags = flags;
            extras.consumed.push(otlp::FLAGS);
        }
        if let Some(events) = a.get(otlp::EVENTS).and_then(parse_events) {
            extras.events = events;
            extras.consumed.push(otlp::EVENTS);
        }
        if let Some(links) = a.get(otlp::LINKS).and_then(parse_links) {
            extras.links = links;
            extras.consumed.push(otlp::LINKS);
        }
        if let Some(dropped) = a.get(otlp::DROPPED).and_then(parse_dropped) {
            extras.dropped = dropped;
            extras.consumed.push(otlp::DROPPED);
        }
        if step.error.is_none()
            && step.status != trace_store_core::Status::Error
            && let Some(message) = a.get(otlp::STATUS_MESSAGE).and_then(Value::as_str)
            && !message.is_empty()
        {
            extras.status_message = Some(message.to_owned());
            extras.consumed.push(otlp::STATUS_MESSAGE);
        }
        if let Some(resource) = a.get(otlp::RESOURCE).and_then(parse_resource) {
            extras.resource = Some(resource);
            extras.consumed.push(otlp::RESOURCE);
        }
        if let Some(scope) = a.get(otlp::SCOPE).and_then(parse_scope) {
            extras.scope = Some(scope);
            extras.consumed.push(otlp::SCOPE);
        }
        extras
    }
}

/// The exact span times, if they agree with the step's own.
fn time_ns(value: &Value, step: &Step) -> Option<(u64, u64)> {
    let [Value::String(start), Value::String(end)] = value.as_array()?.as_slice() else {
        return None;
    };
    let (start, end) = (start.parse::<u64>().ok()?, end.parse::<u64>().ok()?);
    let started = Timestamp::from_micros(i64::try_from(start / 1000).ok()?).ok()?;
    let agrees =
        step.started_at == Some(started) && step.duration_us == end.saturating_sub(start) / 1000;
    agrees.then_some((start, end))
}

fn object_attributes(value: Option<&Value>) -> Option<Vec<KeyValue>> {
    match value {
        None => Some(Vec::new()),
        Some(Value::Object(map)) if !map.is_empty() => Some(
            map.iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(to_any(v)),
                })
                .collect(),
        ),
        Some(_) => None,
    }
}

fn nonzero_u32(value: Option<&Value>) -> Option<u32> {
    match value {
        None => Some(0),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n != 0),
    }
}

fn nonempty_string(value: Option<&Value>) -> Option<String> {
    match value {
        None => Some(String::new()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => None,
    }
}

fn only_keys(map: &Map<String, Value>, allowed: &[&str]) -> bool {
    map.keys().all(|k| allowed.contains(&k.as_str()))
}

fn parse_events(value: &Value) -> Option<Vec<Event>> {
    let items = value.as_array().filter(|items| !items.is_empty())?;
    items
        .iter()
        .map(|item| {
            let map = item.as_object()?;
            if !only_keys(
                map,
                &[
                    "name",
                    "time_unix_nano",
                    "attributes",
                    "dropped_attributes_count",
                ],
            ) {
                return None;
            }
            Some(Event {
                name: map.get("name")?.as_str()?.to_owned(),
                time_unix_nano: map.get("time_unix_nano")?.as_str()?.parse().ok()?,
                attributes: object_attributes(map.get("attributes"))?,
                dropped_attributes_count: nonzero_u32(map.get("dropped_attributes_count"))?,
            })
        })
        .collect()
}

fn parse_hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn parse_links(value: &Value) -> Option<Vec<Link>> {
    let items = value.as_array().filter(|items| !items.is_empty())?;
    items
        .iter()
        .map(|item| {
            let map = item.as_object()?;
            let allowed = [
                "trace_id",
                "span_id",
                "trace_state",
                "attributes",
                "dropped_attributes_count",
                "flags",
            ];
            if !only_keys(map, &allowed) {
                return None;
            }
            // Ids of any other length (protobuf carries them as bytes) would make an
            // export the JSON reader refuses: such a links value stays an attribute.
            Some(Link {
                trace_id: parse_hex_bytes(map.get("trace_id")?.as_str()?)
                    .filter(|id| id.len() == 16)?,
                span_id: parse_hex_bytes(map.get("span_id")?.as_str()?)
                    .filter(|id| id.len() == 8)?,
                trace_state: nonempty_string(map.get("trace_state"))?,
                attributes: object_attributes(map.get("attributes"))?,
                dropped_attributes_count: nonzero_u32(map.get("dropped_attributes_count"))?,
                flags: nonzero_u32(map.get("flags"))?,
            })
        })
        .collect()
}

fn parse_dropped(value: &Value) -> Option<[u32; 3]> {
    let map = value.as_object().filter(|m| !m.is_empty())?;
    if !only_keys(map, &["attributes", "events", "links"]) {
        return None;
    }
    Some([
        nonzero_u32(map.get("attributes"))?,
        nonzero_u32(map.get("events"))?,
        nonzero_u32(map.get("links"))?,
    ])
}

fn parse_resource(value: &Value) -> Option<(Resource, String)> {
    let map = value.as_object()?;
    if !only_keys(
        map,
        &["attributes", "dropped_attributes_count", "schema_url"],
    ) {
        return None;
    }
    let resource = Resource {
        attributes: object_attributes(map.get("attributes"))?,
        dropped_attributes_count: nonzero_u32(map.get("dropped_attributes_count"))?,
    };
    let schema_url = nonempty_string(map.get("schema_url"))?;
    (!is_default_resource(Some(&resource), &schema_url)).then_some((resource, schema_url))
}

fn parse_scope(value: &Value) -> Option<(InstrumentationScope, String)> {
    let map = value.as_object()?;
    if !only_keys(
        map,
        &[
            "name",
            "version",
            "attributes",
            "dropped_attributes_count",
            "schema_url",
        ],
    ) {
        return None;
    }
    let scope = InstrumentationScope {
        name: nonempty_string(map.get("name"))?,
        version: nonempty_string(map.get("version"))?,
        attributes: object_attributes(map.get("attributes"))?,
        dropped_attributes_count: nonzero_u32(map.get("dropped_attributes_count"))?,
    };
    let schema_url = nonempty_string(map.get("schema_url"))?;
    (!is_default_scope(Some(&scope), &schema_url)).then_some((scope, schema_url))
}
