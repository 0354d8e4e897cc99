//! Trace and span ids: the model's strings <-> OTLP's 16- and 8-byte ids.

use sha2::{Digest, Sha256};

/// `text` as `N` bytes, if it is exactly `2 * N` lower-case hex digits and not all zero
/// (an all-zero id is invalid in OTLP).
pub(crate) fn parse_lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    (out != [0u8; N]).then_some(out)
}

/// Lower-case hex of `bytes`. Every span's ids pass through here, so no formatter.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn digest<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefixed, so that ("ab", "c") and ("a", "bc") hash apart.
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let full = hasher.finalize();
    let mut out = [0u8; N];
    out.copy_from_slice(&full[..N]);
    if out == [0u8; N] {
        out[N - 1] = 1;
    }
    out
}

/// The trace id of a run: the run_id itself when it is 32 lower-case hex digits, else
/// the first 16 bytes of SHA-256 over it. The bool is true when the run_id must travel
/// as `trace_store.run_id` because the id does not spell it.
pub(crate) fn trace_id(run_id: &str) -> ([u8; 16], bool) {
    match parse_lower_hex::<16>(run_id) {
        Some(id) => (id, false),
        None => (digest(&[b"trace_store.run_id", run_id.as_bytes()]), true),
    }
}

/// The span id of the run span of a trace: derived from the trace id, so that spans
/// arriving without their run span still know their parent is it.
pub(crate) fn run_span_id(trace_id: &[u8]) -> [u8; 8] {
    digest(&[b"trace_store.run", trace_id])
}

/// The span id of a step id: itself when 16 lower-case hex digits, else a hash of the
/// trace id and the step id (receivers such as Phoenix need span ids unique across
/// traces, and step ids like `s1` repeat in every trace). The bool is true when the step
/// id must travel as an attribute.
pub(crate) fn span_id(trace_id: &[u8], step_id: &str) -> ([u8; 8], bool) {
    match parse_lower_hex::<8>(step_id) {
        Some(id) => (id, false),
        None => (
            digest(&[b"trace_store.step_id", trace_id, step_id.as_bytes()]),
            true,
        ),
    }
}

/// The generated span id of the `index`-th step of a trace, for a step without id.
pub(crate) fn generated_span_id(trace_id: &[u8], index: usize) -> [u8; 8] {
    digest(&[
        b"trace_store.generated",
        trace_id,
        &(index as u64).to_le_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_themselves_and_others_hash() {
        let run = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(trace_id(run), (parse_lower_hex(run).unwrap(), false));
        assert_eq!(hex(&trace_id(run).0), run);
        let (hashed, travels) = trace_id("run-1");
        assert!(travels);
        assert_eq!(hashed, trace_id("run-1").0, "stable");
        assert!(
            trace_id("0AF7651916CD43DD8448EB211C80319C").1,
            "upper case is not the id"
        );
        assert!(
            trace_id(&"0".repeat(32)).1,
            "the zero id is invalid in OTLP"
        );
        assert_eq!(
            span_id(&hashed, "b7ad6b7169203331"),
            (parse_lower_hex("b7ad6b7169203331").unwrap(), false)
        );
        assert!(span_id(&hashed, "s1").1);
        assert_ne!(
            span_id(&hashed, "s1"),
            span_id(&trace_id(run).0, "s1"),
            "unique across traces"
        );
        assert_ne!(generated_span_id(&hashed, 0), generated_span_id(&hashed, 1));
    }
}
