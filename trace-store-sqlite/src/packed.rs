//! The `traces.models` column (schema 3): a summary's per-model usage as a few bytes
//! that decode without a JSON parser, read by every listed summary and by `stats`.
//!
//! Layout: the format byte [`FORMAT`], then per model, in name order: the name's
//! length and UTF-8 bytes, calls, input tokens, output tokens (LEB128 varints of the
//! `u64` values), and the cost in nano-USD (a zigzag LEB128 varint of the `i64`).

use std::collections::BTreeMap;

use trace_store_core::ModelUsage;

/// The first byte of every encoding; another first byte is not this format.
const FORMAT: u8 = 1;

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
