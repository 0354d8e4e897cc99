//! Summary maps packed in a few bytes that decode without a JSON parser, read by every
//! listed summary: `traces.models` (schema 3, also read by `stats`), and
//! `traces.metadata` and `traces.scores` (schema 5).
//!
//! Models: the format byte [`FORMAT`], then per model, in name order: the name's
//! length and UTF-8 bytes, calls, input tokens, output tokens (LEB128 varints of the
//! `u64` values), and the cost in nano-USD (a zigzag LEB128 varint of the `i64`).
//!
//! Summary (schema 5, `traces.summary`): everything a listed summary holds but its
//! run_id and created_at, so that a page reads one column per row and parses no JSON.
//! The format byte [`SUMMARY_FORMAT`], then: name, status, session_id, parent_run_id
//! (strings: a length and UTF-8 bytes; an optional one is 0 for none, else its length
//! plus one); steps, error count, failed steps, input and output tokens (varints),
//! the cost (zigzag varint) and total_ms (`f64::to_bits`, 8 bytes little-endian); the
//! number of models and each one as in the models format; the number of scores and
//! each name and value (8 bytes, exact for every `f64`); the number of metadata
//! entries and each key, a tag and a value: [`STRING`] and the string itself (most
//! metadata values are strings, and need no parser), or [`JSON`] and the value as
//! `serde_json` writes it, which reads back as the same `Value`.

use std::collections::BTreeMap;

use serde_json::Value;
use trace_store_core::{ModelUsage, Status, TraceSummary};

/// The first byte of every models encoding; another first byte is not this format.
const FORMAT: u8 = 1;
/// The first byte of a summary encoding.
const SUMMARY_FORMAT: u8 = 2;
/// A metadata value that is a string: its UTF-8 bytes follow.
const STRING: u8 = 0;
/// Any other metadata value: its JSON follows.
const JSON: u8 = 1;

/// `models` encoded; `None` for no model (stored as NULL).
pub(crate) fn encode_models(models: &BTreeMap<String, ModelUsage>) -> Option<Vec<u8>> {
    if models.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(1 + models.len() * 24);
    out.push(FORMAT);
    for (name, usage) in models {
        put_model(&mut out, name, usage);
    }
    Some(out)
}

/// Calls `each(name, usage)` for every model of an encoding, in name order; an error
/// names what is wrong with the bytes.
pub(crate) fn decode_models(
    bytes: &[u8],
    mut each: impl FnMut(&str, ModelUsage),
) -> Result<(), String> {
    let mut reader = Reader::new(bytes, FORMAT, "model usage")?;
    while !reader.is_done() {
        let (name, usage) = reader.model()?;
        each(name, usage);
    }
    Ok(())
}

/// The map that [`encode_models`] encoded.
pub(crate) fn models_map(bytes: &[u8]) -> Result<BTreeMap<String, ModelUsage>, String> {
    let mut models = BTreeMap::new();
    decode_models(bytes, |name, usage| {
        models.insert(name.to_owned(), usage);
    })?;
    Ok(models)
}

/// `summary` encoded, all but its run_id and created_at (stored in their own columns).
pub(crate) fn encode_summary(summary: &TraceSummary) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + summary.metadata.len() * 24);
    out.push(SUMMARY_FORMAT);
    put_optional(&mut out, summary.name.as_deref());
    put_bytes(&mut out, summary.status.as_str().as_bytes());
    put_optional(&mut out, summary.session_id.as_deref());
    put_optional(&mut out, summary.parent_run_id.as_deref());
    for count in [
        summary.steps as u64,
        summary.error_count,
        summary.failed_steps,
        summary.input_tokens,
        summary.output_tokens,
        zigzag(summary.cost_nano_usd),
    ] {
        put_varint(&mut out, count);
    }
    out.extend_from_slice(&summary.total_ms.to_bits().to_le_bytes());
    put_varint(&mut out, summary.models.len() as u64);
    for (name, usage) in &summary.models {
        put_model(&mut out, name, usage);
    }
    put_varint(&mut out, summary.scores.len() as u64);
    for (name, value) in &summary.scores {
        put_bytes(&mut out, name.as_bytes());
        out.extend_from_slice(&value.to_bits().to_le_bytes());
    }
    put_varint(&mut out, summary.metadata.len() as u64);
    for (key, value) in &summary.metadata {
        put_bytes(&mut out, key.as_bytes());
        match value {
            Value::String(text) => {
                out.push(STRING);
                put_bytes(&mut out, text.as_bytes());
            }
            other => {
                out.push(JSON);
                // Writing a `Value` into a Vec cannot fail: its keys are strings.
                let json = serde_json::to_vec(other).unwrap_or_default();
                put_bytes(&mut out, &json);
            }
        }
    }
    out
}

/// Fills every field of `summary` but run_id and created_at from what
/// [`encode_summary`] wrote.
pub(crate) fn decode_summary(bytes: &[u8], summary: &mut TraceSummary) -> Result<(), String> {
    let mut reader = Reader::new(bytes, SUMMARY_FORMAT, "summary")?;
    summary.name = reader.optional()?.map(str::to_owned);
    summary.status = reader.str()?.parse::<Status>().map_err(|e| e.to_string())?;
    summary.session_id = reader.optional()?.map(str::to_owned);
    summary.parent_run_id = reader.optional()?.map(str::to_owned);
    summary.steps = usize::try_from(reader.varint()?).map_err(|e| e.to_string())?;
    summary.error_count = reader.varint()?;
    summary.failed_steps = reader.varint()?;
    summary.input_tokens = reader.varint()?;
    summary.output_tokens = reader.varint()?;
    summary.cost_nano_usd = unzigzag(reader.varint()?);
    summary.total_ms = reader.f64()?;
    summary.models.clear();
    for _ in 0..reader.varint()? {
        let (name, usage) = reader.model()?;
        summary.models.insert(name.to_owned(), usage);
    }
    summary.scores.clear();
    for _ in 0..reader.varint()? {
        let name = reader.str()?.to_owned();
        summary.scores.insert(name, reader.f64()?);
    }
    summary.metadata.clear();
    for _ in 0..reader.varint()? {
        let key = reader.str()?.to_owned();
        let value = match reader.byte() {
            Some(STRING) => Value::String(reader.str()?.to_owned()),
            Some(JSON) => serde_json::from_slice(reader.bytes()?)
                .map_err(|e| format!("metadata value of {key:?}: {e}"))?,
            other => return Err(format!("unknown metadata value tag {other:?}")),
        };
        summary.metadata.insert(key, value);
    }
    if !reader.is_done() {
        return Err(format!("{} bytes past the end", bytes.len() - reader.at));
    }
    Ok(())
}

/// An optional string: 0 for none, else its length plus one and its bytes.
fn put_optional(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => put_varint(out, 0),
        Some(text) => {
            put_varint(out, text.len() as u64 + 1);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// One model of the models format.
fn put_model(out: &mut Vec<u8>, name: &str, usage: &ModelUsage) {
    put_bytes(out, name.as_bytes());
    put_varint(out, usage.calls);
    put_varint(out, usage.input_tokens);
    put_varint(out, usage.output_tokens);
    put_varint(out, zigzag(usage.cost_nano_usd));
}

/// A length, then the bytes.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader past the format byte, which must be `format`.
    fn new(bytes: &'a [u8], format: u8, what: &str) -> Result<Reader<'a>, String> {
        match bytes.first() {
            Some(&first) if first == format => Ok(Reader { bytes, at: 1 }),
            other => Err(format!("unknown {what} format {other:?}")),
        }
    }

    fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// A length, then that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
        self.take(len)
    }

    /// A length, then that many bytes of UTF-8.
    fn str(&mut self) -> Result<&'a str, String> {
        std::str::from_utf8(self.bytes()?).map_err(|e| e.to_string())
    }

    /// An optional string of [`put_optional`].
    fn optional(&mut self) -> Result<Option<&'a str>, String> {
        match self.varint()? {
            0 => Ok(None),
            len => {
                let len = usize::try_from(len - 1).map_err(|e| e.to_string())?;
                std::str::from_utf8(self.take(len)?)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
        }
    }

    fn f64(&mut self) -> Result<f64, String> {
        let bytes = self.take(8)?;
        Ok(f64::from_bits(u64::from_le_bytes(
            bytes.try_into().map_err(|_| "a cut number".to_owned())?,
        )))
    }

    /// One model of the models format.
    fn model(&mut self) -> Result<(&'a str, ModelUsage), String> {
        let name = self.str().map_err(|e| format!("model name: {e}"))?;
        let mut usage = ModelUsage::default();
        usage.calls = self.varint()?;
        usage.input_tokens = self.varint()?;
        usage.output_tokens = self.varint()?;
        usage.cost_nano_usd = unzigzag(self.varint()?);
        Ok((name, usage))
    }

    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("{len} bytes past the end at byte {}", self.at))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self
                .byte()
                .ok_or_else(|| "a number cut off at the end".to_owned())?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("a number past 64 bits".to_owned());
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number past 64 bits".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(calls: u64, input: u64, output: u64, cost: i64) -> ModelUsage {
        let mut usage = ModelUsage::default();
        usage.calls = calls;
        usage.input_tokens = input;
        usage.output_tokens = output;
        usage.cost_nano_usd = cost;
        usage
    }

    #[test]
    fn round_trips_extremes() {
        let models = BTreeMap::from([
            ("".to_owned(), usage(0, 0, 0, 0)),
            ("gpt-4o".to_owned(), usage(1, 127, 128, -1)),
            (
                "模型 😀".to_owned(),
                usage(u64::MAX, u64::MAX - 1, 1 << 63, i64::MIN),
            ),
            ("z".to_owned(), usage(300, 16_384, 2, i64::MAX)),
        ]);
        let bytes = encode_models(&models).expect("some");
        assert_eq!(models_map(&bytes).expect("decodes"), models);
        assert_eq!(encode_models(&BTreeMap::new()), None);
    }

    /// A summary with every field set, metadata of every JSON type.
    fn full_summary() -> TraceSummary {
        use trace_store_core::{Score, Step, Trace};
        let metadata: BTreeMap<String, Value> = serde_json::from_str(
            r#"{"": "", "s": "a \"b\" \\ \n 😀", "n": -0.0, "big": 18446744073709551615,
                "f": 0.1, "e": 1.5e300, "t": true, "z": null, "a": [1, "x", {"b": 2, "a": 1}],
                "o": {"k": [false]}, "名": "値"}"#,
        )
        .expect("json");
        let at = trace_store_core::Timestamp::from_micros(1_767_225_600_123_456).expect("time");
        let mut trace = Trace::new("run")
            .with_created_at(at)
            .with_name("名前")
            .with_session_id("")
            .with_parent_run_id("parent")
            .with_status(Status::Error)
            .with_score(Score::new("q").with_value(0.875))
            .with_score(Score::new("zero").with_value(-0.0))
            .with_score(Score::new("max").with_value(f64::MAX))
            .with_step(Step::llm_call("gpt-4o").with_usage(u64::MAX / 2, 3))
            .with_step(
                Step::llm_call("o")
                    .with_cost_nano_usd(-5)
                    .with_duration_us(7),
            );
        for (key, value) in metadata {
            trace = trace.with_metadata(key, value);
        }
        TraceSummary::from(&trace)
    }

    fn decoded(bytes: &[u8]) -> Result<TraceSummary, String> {
        let mut summary = full_summary();
        // Every field but these two comes from the bytes.
        summary.name = Some("stale".into());
        summary.metadata.clear();
        summary.scores.insert("stale".into(), 1.0);
        decode_summary(bytes, &mut summary).map(|()| summary)
    }

    #[test]
    fn summaries_round_trip() {
        let summary = full_summary();
        let back = decoded(&encode_summary(&summary)).expect("decodes");
        assert_eq!(back, summary);
        // The same JSON, to the byte: -0.0 stays -0.0, big integers stay integers.
        assert_eq!(
            serde_json::to_string(&back).expect("json"),
            serde_json::to_string(&summary).expect("json")
        );
        assert!(back.scores["zero"].is_sign_negative());
        let mut empty = TraceSummary::from(&trace_store_core::Trace::new(""));
        empty.total_ms = f64::MIN_POSITIVE;
        let mut back = decoded(&encode_summary(&empty)).expect("decodes");
        // Those two are the caller's, from their own columns.
        (back.run_id, back.created_at) = (empty.run_id.clone(), empty.created_at);
        assert_eq!(back, empty);
    }

    #[test]
    fn damaged_summaries_are_errors_not_panics() {
        let bytes = encode_summary(&full_summary());
        for len in 0..bytes.len() {
            assert!(decoded(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decoded(&longer).is_err(), "bytes past the end");
        assert!(decoded(br#"{"k":"v"}"#).is_err(), "JSON is not this format");
        let mut bad_status = vec![SUMMARY_FORMAT, 0];
        put_bytes(&mut bad_status, b"maybe");
        assert!(decoded(&bad_status).is_err());
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let models = BTreeMap::from([("gpt-4o".to_owned(), usage(1, 2, 3, 4))]);
        let bytes = encode_models(&models).expect("some");
        for len in 0..bytes.len() - 1 {
            // Every cut but the ones that end on a model boundary (none here but 1).
            if len != 1 {
                assert!(models_map(&bytes[..len]).is_err(), "cut at {len}");
            }
        }
        assert!(models_map(&[2]).is_err(), "unknown format");
        assert!(models_map(&[1, 1, 0xff]).is_err(), "bad UTF-8");
        assert!(
            models_map(&[
                1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ])
            .is_err()
        );
        assert!(
            models_map(b"{\"gpt-4o\":{}}").is_err(),
            "JSON is not this format"
        );
    }
}
