//! Summary maps packed in a few bytes that decode without a JSON parser, read by every
//! listed summary: `traces.models` (schema 3, also read by `stats`), and
//! `traces.metadata` and `traces.scores` (schema 5).
//!
//! Models: the format byte [`FORMAT`], then per model, in name order: the name's
//! length and UTF-8 bytes, calls, input tokens, output tokens (LEB128 varints of the
//! `u64` values), and the cost in nano-USD (a zigzag LEB128 varint of the `i64`).
//!
//! Metadata: the format byte [`METADATA_FORMAT`], then per entry, in key order: the
//! key's length and bytes, a tag, and the value's length and bytes: [`STRING`] and the
//! string itself (most metadata values are strings, and need no parser), or [`JSON`]
//! and the value as `serde_json` writes it, which reads back as the same `Value`.
//!
//! Scores: the format byte [`SCORES_FORMAT`], then per score, in name order: the
//! name's length and bytes and the value's 8 bytes (`f64::to_bits`, little-endian),
//! exact for every `f64`.

use std::collections::BTreeMap;

use serde_json::Value;
use trace_store_core::ModelUsage;

/// The first byte of every models encoding; another first byte is not this format.
const FORMAT: u8 = 1;
/// The first byte of a metadata encoding. Not `{`: the JSON of schemas 1 to 4.
const METADATA_FORMAT: u8 = 2;
/// The first byte of a scores encoding.
const SCORES_FORMAT: u8 = 3;
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
        put_varint(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_varint(&mut out, usage.calls);
        put_varint(&mut out, usage.input_tokens);
        put_varint(&mut out, usage.output_tokens);
        put_varint(&mut out, zigzag(usage.cost_nano_usd));
    }
    Some(out)
}

/// Calls `each(name, usage)` for every model of an encoding, in name order; an error
/// names what is wrong with the bytes.
pub(crate) fn decode_models(
    bytes: &[u8],
    mut each: impl FnMut(&str, ModelUsage),
) -> Result<(), String> {
    let mut reader = Reader { bytes, at: 0 };
    match reader.byte() {
        Some(FORMAT) => {}
        other => return Err(format!("unknown model usage format {other:?}")),
    }
    while reader.at < bytes.len() {
        let len = usize::try_from(reader.varint()?).map_err(|e| e.to_string())?;
        let name = reader.take(len)?;
        let name = std::str::from_utf8(name).map_err(|e| format!("model name: {e}"))?;
        let mut usage = ModelUsage::default();
        usage.calls = reader.varint()?;
        usage.input_tokens = reader.varint()?;
        usage.output_tokens = reader.varint()?;
        usage.cost_nano_usd = unzigzag(reader.varint()?);
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

/// `metadata` encoded; `None` for no entry (stored as NULL).
pub(crate) fn encode_metadata(metadata: &BTreeMap<String, Value>) -> Option<Vec<u8>> {
    if metadata.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(1 + metadata.len() * 24);
    out.push(METADATA_FORMAT);
    for (key, value) in metadata {
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
    Some(out)
}

/// The map that [`encode_metadata`] encoded.
pub(crate) fn metadata_map(bytes: &[u8]) -> Result<BTreeMap<String, Value>, String> {
    let mut reader = Reader::new(bytes, METADATA_FORMAT, "metadata")?;
    let mut metadata = BTreeMap::new();
    while !reader.is_done() {
        let key = reader.str()?.to_owned();
        let value = match reader.byte() {
            Some(STRING) => Value::String(reader.str()?.to_owned()),
            Some(JSON) => serde_json::from_slice(reader.bytes()?)
                .map_err(|e| format!("metadata value of {key:?}: {e}"))?,
            other => return Err(format!("unknown metadata value tag {other:?}")),
        };
        metadata.insert(key, value);
    }
    Ok(metadata)
}

/// `scores` encoded; `None` for no score (stored as NULL).
pub(crate) fn encode_scores(scores: &BTreeMap<String, f64>) -> Option<Vec<u8>> {
    if scores.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(1 + scores.len() * 16);
    out.push(SCORES_FORMAT);
    for (name, value) in scores {
        put_bytes(&mut out, name.as_bytes());
        out.extend_from_slice(&value.to_bits().to_le_bytes());
    }
    Some(out)
}

/// The map that [`encode_scores`] encoded.
pub(crate) fn scores_map(bytes: &[u8]) -> Result<BTreeMap<String, f64>, String> {
    let mut reader = Reader::new(bytes, SCORES_FORMAT, "scores")?;
    let mut scores = BTreeMap::new();
    while !reader.is_done() {
        let name = reader.str()?.to_owned();
        let bits = reader.take(8)?;
        let bits = u64::from_le_bytes(bits.try_into().map_err(|_| "a cut score".to_owned())?);
        scores.insert(name, f64::from_bits(bits));
    }
    Ok(scores)
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

    #[test]
    fn metadata_and_scores_round_trip() {
        let metadata: BTreeMap<String, Value> = serde_json::from_str(
            r#"{"": "", "s": "a \"b\" \\ \n 😀", "n": -0.0, "big": 18446744073709551615,
                "f": 0.1, "e": 1.5e300, "t": true, "z": null, "a": [1, "x", {"b": 2, "a": 1}],
                "o": {"k": [false]}, "名": "値"}"#,
        )
        .expect("json");
        let bytes = encode_metadata(&metadata).expect("some");
        let back = metadata_map(&bytes).expect("decodes");
        assert_eq!(back, metadata);
        // The same JSON, to the byte: -0.0 stays -0.0, big integers stay integers.
        assert_eq!(
            serde_json::to_string(&back).expect("json"),
            serde_json::to_string(&metadata).expect("json")
        );
        assert_eq!(encode_metadata(&BTreeMap::new()), None);

        let scores = BTreeMap::from([
            ("q".to_owned(), 0.875),
            ("neg".to_owned(), -1e-300),
            ("zero".to_owned(), -0.0),
            ("max".to_owned(), f64::MAX),
            ("名前".to_owned(), 3.0),
        ]);
        let back = scores_map(&encode_scores(&scores).expect("some")).expect("decodes");
        assert_eq!(back, scores);
        assert!(back["zero"].is_sign_negative());
        assert_eq!(encode_scores(&BTreeMap::new()), None);
    }

    #[test]
    fn damaged_metadata_and_scores_are_errors_not_panics() {
        let metadata = BTreeMap::from([
            ("k".to_owned(), Value::from("v")),
            ("n".to_owned(), Value::from(12)),
        ]);
        let bytes = encode_metadata(&metadata).expect("some");
        // Every cut but the ones that end on an entry boundary: none, or "k" alone.
        for len in (2..bytes.len()).filter(|&len| len != 6) {
            assert!(metadata_map(&bytes[..len]).is_err(), "cut at {len}");
        }
        assert_eq!(metadata_map(&bytes[..6]).expect("k").len(), 1);
        let scores = BTreeMap::from([("q".to_owned(), 0.5)]);
        let score_bytes = encode_scores(&scores).expect("some");
        for len in 2..score_bytes.len() {
            assert!(scores_map(&score_bytes[..len]).is_err(), "cut at {len}");
        }
        assert!(
            metadata_map(br#"{"k":"v"}"#).is_err(),
            "JSON is not this format"
        );
        assert!(
            scores_map(br#"{"q":0.5}"#).is_err(),
            "JSON is not this format"
        );
        assert!(
            metadata_map(&score_bytes).is_err(),
            "scores are not metadata"
        );
        assert!(
            metadata_map(&[METADATA_FORMAT, 1, b'k', 9, 0]).is_err(),
            "bad tag"
        );
        assert!(metadata_map(&[METADATA_FORMAT, 1, b'k', JSON, 1, b'{']).is_err());
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
