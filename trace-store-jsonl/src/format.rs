//! The line format (see the README): save lines, tombstones, quarantine entries.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, StrDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use trace_store_core::{Error, Result, Timestamp, Trace, TraceSummary, validate_run_id};

/// How every record line starts: the summary's first member is the run_id.
pub(crate) const LINE_START: &[u8] = b"{\"run_id\":\"";
/// The body is the last member of a save line.
const TRACE_MEMBER: &[u8] = b",\"trace\":";
/// How this library writes a trace (schema_version is always its first member).
const NATIVE_TRACE_START: &[u8] = b"{\"schema_version\":";
/// Record starts tried inside one damaged line before giving up on it.
const MAX_RECOVERY_ATTEMPTS: usize = 64;

/// A record as it sits in a line. Offsets are relative to the record's first byte.
#[derive(Debug)]
pub(crate) enum Record {
    /// A save line: the summary, and where the `trace` member's value is. Boxed: a
    /// summary is ten times the size of a tombstone, which batches of deletes hold.
    Save {
        summary: Box<TraceSummary>,
        trace_start: u64,
        trace_len: u64,
    },
    /// A tombstone.
    Delete { run_id: String },
}

/// A record encoded into a batch, before it is written.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// Where the line starts in the batch.
    pub(crate) start: u64,
    /// Line length including its newline.
    pub(crate) len: u64,
    pub(crate) record: Record,
}

/// Appends the save line of `trace` to `out`.
///
/// The summary is written by its own serde form, then reopened to add the body as the
/// last member, so the line is exactly `{..summary, "trace": {..}}` and the position
/// of the body is known without parsing it back.
pub(crate) fn push_save(trace: &Trace, out: &mut Vec<u8>) -> Result<Encoded> {
    let summary = TraceSummary::from(trace);
    let start = out.len();
    serde_json::to_writer(&mut *out, &summary).map_err(|e| {
        Error::invalid(format!(
            "cannot encode the summary of {:?}: {e}",
            trace.run_id
        ))
    })?;
    if out.pop() != Some(b'}') {
        out.truncate(start);
        return Err(Error::invalid("a summary did not encode as a JSON object"));
    }
    out.extend_from_slice(TRACE_MEMBER);
    let trace_start = out.len() - start;
    // Straight into the batch: no body of its own to allocate, grow and copy.
    serde_json::to_writer(&mut *out, trace).map_err(|e| {
        out.truncate(start);
        Error::invalid(format!("cannot encode trace: {e}"))
    })?;
    let trace_len = out.len() - start - trace_start;
    out.extend_from_slice(b"}\n");
    Ok(Encoded {
        start: start as u64,
        len: (out.len() - start) as u64,
        record: Record::Save {
            summary: Box::new(summary),
            trace_start: trace_start as u64,
            trace_len: trace_len as u64,
        },
    })
}

/// Appends a tombstone for `run_id` to `out`.
pub(crate) fn push_tombstone(run_id: &str, out: &mut Vec<u8>) -> Result<Encoded> {
    #[derive(Serialize)]
    struct Tombstone<'a> {
        run_id: &'a str,
        deleted_at: Timestamp,
    }
    let start = out.len();
    let tombstone = Tombstone {
        run_id,
        deleted_at: Timestamp::now(),
    };
    serde_json::to_writer(&mut *out, &tombstone)
        .map_err(|e| Error::invalid(format!("cannot encode a tombstone for {run_id:?}: {e}")))?;
    out.push(b'\n');
    Ok(Encoded {
        start: start as u64,
        len: (out.len() - start) as u64,
        record: Record::Delete {
            run_id: run_id.to_owned(),
        },
    })
}

/// Why a line is not a record.
#[derive(Debug)]
pub(crate) enum Unreadable {
    /// Not JSON at all: torn, zeroed or overwritten bytes.
    Garbage(String),
    /// Well-formed JSON that this library did not write (for example a selectools line).
    Foreign(String),
}

impl Unreadable {
    pub(crate) fn reason(&self) -> &str {
        match self {
            Unreadable::Garbage(reason) | Unreadable::Foreign(reason) => reason,
        }
    }
}

/// The members of a line: `trace` borrowed (never built), `deleted_at`, and the rest,
/// which are the summary's.
struct Members<'a> {
    trace: Option<&'a RawValue>,
    deleted_at: Option<Timestamp>,
    rest: Map<String, Value>,
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Members {
                    trace: None,
                    deleted_at: None,
                    rest: Map::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "trace" => members.trace = Some(map.next_value()?),
                        "deleted_at" => members.deleted_at = Some(map.next_value()?),
                        _ => {
                            let value = map.next_value::<Value>()?;
                            members.rest.insert(key, value);
                        }
                    }
                }
                Ok(members)
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

/// Reads one line (without its newline) as a record, without building the trace body.
pub(crate) fn parse_record(line: &[u8]) -> Result<Record, Unreadable> {
    if let Some((summary, trace, current)) = parse_save_fast(line) {
        return save_record(line, summary, trace, current);
    }
    let members: Members<'_> = match serde_json::from_slice(line) {
        Ok(members) => members,
        Err(error) => {
            return Err(if serde_json::from_slice::<IgnoredAny>(line).is_ok() {
                Unreadable::Foreign(format!("not a trace-store record: {error}"))
            } else {
                Unreadable::Garbage(format!("not JSON: {error}"))
            });
        }
    };
    match (members.trace, members.deleted_at) {
        (Some(trace), None) => {
            let current = members.rest.contains_key(CURRENT_SUMMARY_MEMBER);
            let summary: TraceSummary = serde_json::from_value(Value::Object(members.rest))
                .map_err(|e| {
                    Unreadable::Foreign(format!("its summary members do not decode: {e}"))
                })?;
            save_record(line, summary, trace, current)
        }
        (None, Some(_)) => {
            let run_id = match members.rest.get("run_id") {
                Some(Value::String(run_id)) => run_id.clone(),
                _ => {
                    return Err(Unreadable::Foreign(
                        "a tombstone without a string run_id".to_owned(),
                    ));
                }
            };
            validate_run_id(&run_id)
                .map_err(|e| Unreadable::Foreign(format!("its run_id is not valid: {e}")))?;
            Ok(Record::Delete { run_id })
        }
        (Some(_), Some(_)) => Err(Unreadable::Foreign(
            "both \"trace\" and \"deleted_at\" members".to_owned(),
        )),
        (None, None) => Err(Unreadable::Foreign(
            "neither a \"trace\" member (save) nor a \"deleted_at\" member (tombstone)".to_owned(),
        )),
    }
}

/// A member every save line written since contract v2 has, and none written before
/// (the v1 summary had no `failed_steps`, `parent_run_id`, `session_id` or `scores`).
const CURRENT_SUMMARY_MEMBER: &str = "failed_steps";

/// A save line's record. `current` says its summary has every member of today's
/// [`TraceSummary`]; a line written by the v1 code has not, and its summary is derived
/// again from its body (see [`legacy_summary`]).
fn save_record(
    line: &[u8],
    mut summary: TraceSummary,
    trace: &RawValue,
    current: bool,
) -> Result<Record, Unreadable> {
    validate_run_id(&summary.run_id)
        .map_err(|e| Unreadable::Foreign(format!("its run_id is not valid: {e}")))?;
    let body = trace.get().as_bytes();
    if !body.starts_with(NATIVE_TRACE_START) && !has_schema_version(trace) {
        return Err(Unreadable::Foreign(
            "its \"trace\" member has no schema_version, so trace-store did not write it \
             (selectools' JSONLTraceStore writes lines of this shape)"
                .to_owned(),
        ));
    }
    if !current && let Some(derived) = legacy_summary(&summary, trace) {
        summary = derived;
    }
    // The body is a sub-slice of `line`; its position is a pointer difference.
    let trace_start = body.as_ptr() as usize - line.as_ptr() as usize;
    Ok(Record::Save {
        summary: Box::new(summary),
        trace_start: trace_start as u64,
        trace_len: body.len() as u64,
    })
}

/// The summary of a save line written by the v1 code, derived again from its body.
///
/// A v1 summary lacks `failed_steps` (which serde would default to 0 even for a trace
/// with failed steps) and `parent_run_id` (which the v1 trace may carry), so neither the
/// filters nor the totals could trust it. The body says everything: the summary is
/// [`TraceSummary::from`] of the decoded trace, as for a line written today. A body
/// that does not decode keeps the stored summary; `load` reports it as corrupt.
fn legacy_summary(stored: &TraceSummary, trace: &RawValue) -> Option<TraceSummary> {
    let trace = Trace::from_json_slice(trace.get().as_bytes()).ok()?;
    (trace.run_id == stored.run_id).then(|| TraceSummary::from(&trace))
}

/// The common case, a save line, decoded straight into the summary (no intermediate
/// JSON values) while the `trace` member is borrowed; the flag says whether the line
/// has [`CURRENT_SUMMARY_MEMBER`]. `None` sends the line to the slow path, which also
/// handles tombstones and says what is wrong.
fn parse_save_fast(line: &[u8]) -> Option<(TraceSummary, &RawValue, bool)> {
    let mut trace = None;
    let mut current = false;
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let summary = SaveLine {
        trace: &mut trace,
        current: &mut current,
    }
    .deserialize(&mut deserializer)
    .ok()?;
    deserializer.end().ok()?;
    Some((summary, trace?, current))
}

/// Deserializes a save line as its summary, setting `trace` when it passes that member
/// and `current` when it passes [`CURRENT_SUMMARY_MEMBER`].
struct SaveLine<'a, 'de> {
    trace: &'a mut Option<&'de RawValue>,
    current: &'a mut bool,
}

impl<'de> DeserializeSeed<'de> for SaveLine<'_, 'de> {
    type Value = TraceSummary;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<TraceSummary, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SaveLine<'_, 'de> {
    type Value = TraceSummary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a save line")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<TraceSummary, A::Error> {
        TraceSummary::deserialize(MapAccessDeserializer::new(SummaryMembers {
            map,
            trace: self.trace,
            current: self.current,
        }))
    }
}

/// The members of a save line minus `trace`, which is borrowed on the way past.
struct SummaryMembers<'a, 'de, A> {
    map: A,
    trace: &'a mut Option<&'de RawValue>,
    current: &'a mut bool,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SummaryMembers<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(Key(key)) = self.map.next_key()? {
            match &*key {
                "trace" => *self.trace = Some(self.map.next_value()?),
                "deleted_at" => return Err(serde::de::Error::custom("a tombstone")),
                _ => {
                    *self.current |= key == CURRENT_SUMMARY_MEMBER;
                    return seed
                        .deserialize(StrDeserializer::<A::Error>::new(&key))
                        .map(Some);
                }
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A member name, borrowed from the line when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Slow path of the native check, for bodies another JSON writer reformatted.
fn has_schema_version(trace: &RawValue) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        schema_version: Option<u32>,
    }
    matches!(
        serde_json::from_str::<Probe>(trace.get()),
        Ok(Probe {
            schema_version: Some(_)
        })
    )
}

/// Finds a whole record glued behind damaged bytes in one line, as left by a writer
/// that appended after a torn line without a newline, or by a zeroed block before a
/// record: the position where the record starts, and the record.
pub(crate) fn recover_glued(line: &[u8]) -> Option<(usize, Record)> {
    memchr::memmem::find_iter(line.get(1..)?, LINE_START)
        .take(MAX_RECOVERY_ATTEMPTS)
        .map(|at| at + 1)
        .find_map(|at| parse_record(&line[at..]).ok().map(|record| (at, record)))
}

/// Whether a line holds nothing (blank lines are what quarantined bytes become).
pub(crate) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
}

/// Whether damaged bytes at the start of a file that holds no record could have been
/// written by this library: zeros and whitespace, or the start of a record line.
pub(crate) fn could_be_ours(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, 0 | b' ' | b'\t' | b'\r' | b'\n'));
    match start {
        None => true,
        Some(at) => {
            let rest = &bytes[at..];
            rest.starts_with(LINE_START) || LINE_START.starts_with(rest)
        }
    }
}

/// One entry of `<file>.corrupt`: the bytes that were moved out, where they were, why.
///
/// The bytes go in `text` when they are UTF-8, else in `hex`; a run of zero bytes (what
/// a crash leaves where an append's blocks never reached the disk) is only counted, as
/// `"zeros": true` beside its `length`, instead of taking six bytes (`\u0000`) each.
pub(crate) fn quarantine_entry(offset: u64, bytes: &[u8], reason: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Entry<'a> {
        offset: u64,
        length: usize,
        reason: &'a str,
        quarantined_at: Timestamp,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        zeros: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
    }
    let zeros = !bytes.is_empty() && bytes.iter().all(|b| *b == 0);
    let text = (!zeros).then(|| std::str::from_utf8(bytes).ok()).flatten();
    let entry = Entry {
        offset,
        length: bytes.len(),
        reason,
        quarantined_at: Timestamp::now(),
        zeros,
        text,
        hex: (!zeros && text.is_none()).then(|| hex(bytes)),
    };
    let mut line = serde_json::to_vec(&entry).unwrap_or_else(|_| {
        // Every member is a string or a number; this cannot fail, but never lose the bytes.
        format!("{{\"offset\":{offset},\"hex\":\"{}\"}}", hex(bytes)).into_bytes()
    });
    line.push(b'\n');
    line
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trace_store_core::Step;

    fn sample(run_id: &str) -> Trace {
        Trace::new(run_id)
            .with_metadata("trace", "a metadata key named trace")
            .with_step(Step::llm_call("m").with_usage(3, 4))
    }

    #[test]
    fn save_line_is_summary_beside_trace_and_parses_back() {
        let trace = sample("r1");
        let mut out = b"prefix".to_vec();
        let encoded = push_save(&trace, &mut out).unwrap();
        let line = &out[encoded.start as usize..];
        assert!(line.starts_with(LINE_START));
        assert!(line.ends_with(b"}}\n"));
        assert_eq!(encoded.len as usize, line.len());
        let Record::Save {
            trace_start,
            trace_len,
            ..
        } = &encoded.record
        else {
            panic!("not a save");
        };
        let body = &line[*trace_start as usize..(*trace_start + *trace_len) as usize];
        assert_eq!(Trace::from_json_slice(body).unwrap(), trace);

        let parsed = parse_record(&line[..line.len() - 1]).unwrap();
        let Record::Save {
            summary,
            trace_start: parsed_start,
            trace_len: parsed_len,
        } = parsed
        else {
            panic!("not a save");
        };
        assert_eq!(*summary, TraceSummary::from(&trace));
        assert_eq!((parsed_start, parsed_len), (*trace_start, *trace_len));

        let value: Value = serde_json::from_slice(line).unwrap();
        assert_eq!(value["steps"], 1);
        assert_eq!(value["trace"]["run_id"], "r1");
    }

    #[test]
    fn tombstones_parse_back() {
        let mut out = Vec::new();
        push_tombstone("gone \"quoted\"", &mut out).unwrap();
        assert!(out.starts_with(LINE_START));
        match parse_record(&out[..out.len() - 1]).unwrap() {
            Record::Delete { run_id } => assert_eq!(run_id, "gone \"quoted\""),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn damaged_and_foreign_lines_are_told_apart() {
        assert!(matches!(
            parse_record(b"{\"run_id\":\"a\",\"cre"),
            Err(Unreadable::Garbage(_))
        ));
        assert!(matches!(
            parse_record(b"\0\0\0"),
            Err(Unreadable::Garbage(_))
        ));
        assert!(matches!(
            parse_record(b"[1,2]"),
            Err(Unreadable::Foreign(_))
        ));
        let selectools = br#"{"run_id": "x", "steps": 0, "total_ms": 1.5, "created_at": "2026-01-01T06:36:17.075216+00:00", "metadata": {}, "trace": {"run_id": "x", "steps": []}}"#;
        let Err(Unreadable::Foreign(reason)) = parse_record(selectools) else {
            panic!("a selectools line must be foreign");
        };
        assert!(reason.contains("selectools"), "{reason}");
    }

    #[test]
    fn glued_records_are_found_behind_damage() {
        let mut line = b"{\"run_id\":\"torn\",\"created_at\":\"20".to_vec();
        let mut whole = Vec::new();
        push_save(&sample("whole"), &mut whole).unwrap();
        whole.pop();
        line.extend_from_slice(&whole);
        let (at, record) = recover_glued(&line).unwrap();
        assert_eq!(&line[at..], &whole[..]);
        assert!(matches!(record, Record::Save { summary, .. } if summary.run_id == "whole"));
        assert!(recover_glued(b"\0\0\0 nothing here").is_none());
    }

    #[test]
    fn ownership_of_damaged_files() {
        assert!(could_be_ours(b"\0\0\0\0"));
        assert!(could_be_ours(b"{\"run_id\":\"abc"));
        assert!(could_be_ours(b"{\"ru"));
        assert!(!could_be_ours(b"\x7fELF\x02\x01"));
        assert!(!could_be_ours(b"{\"run_id\": \"x\""));
    }

    #[test]
    fn quarantine_entries_keep_every_byte() {
        let entry: Value = serde_json::from_slice(&quarantine_entry(7, b"a\0b", "r")).unwrap();
        assert_eq!(entry["text"], "a\u{0}b");
        assert_eq!(entry["offset"], 7);
        assert_eq!(entry.get("zeros"), None);
        let entry: Value = serde_json::from_slice(&quarantine_entry(0, b"\xff\x00", "r")).unwrap();
        assert_eq!(entry["hex"], "ff00");
        let line = quarantine_entry(3, &[0; 4096], "r");
        assert!(
            line.len() < 200,
            "{} bytes for a block of zeros",
            line.len()
        );
        let entry: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            (&entry["zeros"], &entry["length"]),
            (&json!(true), &json!(4096))
        );
        assert_eq!((entry.get("text"), entry.get("hex")), (None, None));
    }
}
