//! The JSON codec and the validation every store runs before it writes.

use serde::Deserialize;
use serde_json::Value;

use crate::model::SCHEMA_VERSION;
use crate::{Error, Result, Trace};

/// Longest accepted run_id, in bytes.
pub const MAX_RUN_ID_BYTES: usize = 256;

/// Deepest nesting of arrays and objects accepted in a JSON value of a trace (metadata
/// values, step input, output and attributes).
///
/// JSON readers cap nesting (serde_json at 128 levels, counted from the outermost
/// object a store writes), so a deeper value would be written and then fail to load.
/// 64 leaves room for the levels of the trace itself and of any envelope a backend
/// wraps it in.
pub const MAX_JSON_DEPTH: usize = 64;

/// Checks that `run_id` is 1..=256 bytes long and has no control characters
/// (U+0000..U+001F, U+007F).
///
/// Everything else is a legal run_id and works in every backend: spaces, `/`, `:`, `*`,
/// `%`, `_`, braces, quotes, SQL and Lua metacharacters, non-ASCII.
///
/// ```
/// use trace_store_core::validate_run_id;
///
/// assert!(validate_run_id("'; DROP TABLE traces; --").is_ok());
/// assert!(validate_run_id("").is_err());
/// assert!(validate_run_id("tab\there").is_err());
/// ```
pub fn validate_run_id(run_id: &str) -> Result<()> {
    if run_id.is_empty() {
        return Err(Error::invalid("run_id is empty"));
    }
    if run_id.len() > MAX_RUN_ID_BYTES {
        return Err(Error::invalid(format!(
            "run_id is {} bytes long; the limit is {MAX_RUN_ID_BYTES}",
            run_id.len()
        )));
    }
    if let Some((at, c)) = run_id.char_indices().find(|(_, c)| c.is_ascii_control()) {
        return Err(Error::invalid(format!(
            "run_id {run_id:?} has the control character U+{:04X} at byte {at}",
            c as u32
        )));
    }
    Ok(())
}

impl Trace {
    /// Checks everything a store checks before it writes: the run_id, the schema
    /// version, every score ([`Score::validate`](crate::Score::validate)), that no step kind is an `Other` spelling a known kind (it would not
    /// read back as itself), and that no JSON value nests deeper than
    /// [`MAX_JSON_DEPTH`] (it could not be read back at all).
    pub fn validate(&self) -> Result<()> {
        validate_run_id(&self.run_id)?;
        if self.schema_version > SCHEMA_VERSION {
            return Err(Error::UnsupportedVersion {
                found: self.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        if let Some((index, step)) = self
            .steps
            .iter()
            .enumerate()
            .find(|(_, step)| step.kind.is_ambiguous())
        {
            return Err(Error::invalid(format!(
                "step {index} of trace {:?} has kind Other({:?}); use StepKind::from_name, which gives the known variant",
                self.run_id,
                step.kind.as_str()
            )));
        }
        for score in &self.scores {
            score.validate().map_err(|error| match error {
                Error::InvalidInput { message } => {
                    Error::invalid(format!("trace {:?}: {message}", self.run_id))
                }
                other => other,
            })?;
        }
        self.validate_depth()
    }

    fn validate_depth(&self) -> Result<()> {
        let too_deep = |what: String| {
            Err(Error::invalid(format!(
                "{what} of trace {:?} nests arrays and objects more than {MAX_JSON_DEPTH} levels deep, which JSON readers refuse to read back; flatten it or store it as a string",
                self.run_id
            )))
        };
        for (key, value) in &self.metadata {
            if too_deep_json(value, MAX_JSON_DEPTH) {
                return too_deep(format!("metadata {key:?}"));
            }
        }
        for (index, step) in self.steps.iter().enumerate() {
            for (field, value) in [("input", &step.input), ("output", &step.output)] {
                if value
                    .as_ref()
                    .is_some_and(|v| too_deep_json(v, MAX_JSON_DEPTH))
                {
                    return too_deep(format!("the {field} of step {index}"));
                }
            }
            for (key, value) in &step.attributes {
                if too_deep_json(value, MAX_JSON_DEPTH) {
                    return too_deep(format!("attribute {key:?} of step {index}"));
                }
            }
        }
        Ok(())
    }

    /// The trace as compact JSON bytes (schema version 1; empty fields omitted).
    pub fn to_json_vec(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::invalid(format!("cannot encode trace: {e}")))
    }

    /// The trace as a compact JSON string.
    pub fn to_json_string(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::invalid(format!("cannot encode trace: {e}")))
    }

    /// Decodes a trace from JSON bytes.
    ///
    /// Unknown fields are ignored and missing optional fields take their defaults, so
    /// older and newer writers of the same schema version interoperate. A trace written
    /// by a newer schema is [`Error::UnsupportedVersion`]; bytes that are not a trace are
    /// [`Error::Corrupt`], with serde's line and column.
    ///
    /// ```
    /// use trace_store_core::{Error, Trace};
    ///
    /// let t = Trace::from_json_slice(br#"{"run_id":"r1","created_at":"2026-01-01T00:00:00Z","extra":1}"#)?;
    /// assert_eq!(t.run_id, "r1");
    /// let newer = Trace::from_json_slice(br#"{"schema_version":9,"run_id":"r1"}"#);
    /// assert!(matches!(newer, Err(Error::UnsupportedVersion { found: 9, supported: 1 })));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn from_json_slice(bytes: &[u8]) -> Result<Trace> {
        match serde_json::from_slice::<Trace>(bytes) {
            Ok(trace) if trace.schema_version > SCHEMA_VERSION => Err(Error::UnsupportedVersion {
                found: trace.schema_version,
                supported: SCHEMA_VERSION,
            }),
            Ok(trace) => Ok(trace),
            Err(error) => Err(newer_version(bytes)
                .unwrap_or_else(|| Error::corrupt(format!("cannot decode trace JSON: {error}")))),
        }
    }

    /// Decodes a trace from a JSON string; see [`Trace::from_json_slice`].
    pub fn from_json_str(json: &str) -> Result<Trace> {
        Trace::from_json_slice(json.as_bytes())
    }
}

/// True if `value` nests more than `levels` arrays or objects. The recursion stops at
/// `levels`, so even a value nested far deeper cannot exhaust the stack here.
fn too_deep_json(value: &Value, levels: usize) -> bool {
    let Some(rest) = levels.checked_sub(1) else {
        return matches!(value, Value::Array(_) | Value::Object(_));
    };
    match value {
        Value::Array(items) => items.iter().any(|item| too_deep_json(item, rest)),
        Value::Object(map) => map.values().any(|item| too_deep_json(item, rest)),
        _ => false,
    }
}

/// A newer writer may change the shape in ways this version cannot decode; report the
/// version rather than the shape mismatch it causes.
fn newer_version(bytes: &[u8]) -> Option<Error> {
    #[derive(Deserialize)]
    struct VersionOnly {
        schema_version: u32,
    }
    let found = serde_json::from_slice::<VersionOnly>(bytes)
        .ok()?
        .schema_version;
    (found > SCHEMA_VERSION).then_some(Error::UnsupportedVersion {
        found,
        supported: SCHEMA_VERSION,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Status, Step, StepKind, Timestamp};
    use serde_json::json;

    fn sample() -> Trace {
        Trace::new("r1")
            .with_created_at(Timestamp::from_micros(1_000_000).unwrap())
            .with_step(
                Step::llm_call("m")
                    .with_input(serde_json::Value::Null)
                    .with_output(json!({"b": [1, 2.5, "x"], "a": null})),
            )
    }

    #[test]
    fn omits_empty_fields_and_round_trips() {
        let trace = sample();
        let json = trace.to_json_string().unwrap();
        assert_eq!(
            json,
            r#"{"schema_version":1,"run_id":"r1","created_at":"1970-01-01T00:00:01.000000Z","steps":[{"kind":"llm_call","model":"m","input":null,"output":{"a":null,"b":[1,2.5,"x"]}}]}"#
        );
        assert_eq!(Trace::from_json_str(&json).unwrap(), trace);
    }

    #[test]
    fn unknown_kind_round_trips_and_ambiguous_other_is_rejected() {
        let mut trace = sample();
        trace.steps[0].kind = StepKind::from_name("planner");
        let back = Trace::from_json_slice(&trace.to_json_vec().unwrap()).unwrap();
        assert_eq!(back.steps[0].kind, StepKind::Other("planner".into()));
        trace.steps[0].kind = StepKind::Other("llm_call".into());
        assert!(matches!(trace.validate(), Err(Error::InvalidInput { .. })));
    }

    #[test]
    fn bad_json_is_corrupt_not_panic() {
        for bad in [&b"{"[..], b"[]", b"{\"run_id\":1}", b"\xff", b""] {
            assert!(matches!(
                Trace::from_json_slice(bad),
                Err(Error::Corrupt { .. })
            ));
        }
        let bad_status = br#"{"run_id":"r","created_at":"2026-01-01T00:00:00Z","status":"meh"}"#;
        assert!(matches!(
            Trace::from_json_slice(bad_status),
            Err(Error::Corrupt { .. })
        ));
    }

    fn nested(depth: usize) -> serde_json::Value {
        (0..depth).fold(json!("leaf"), |inner, i| {
            if i % 2 == 0 {
                json!([inner])
            } else {
                json!({ "k": inner })
            }
        })
    }

    #[test]
    fn every_trace_that_validates_decodes_from_its_own_encoding() {
        // serde_json refuses to read JSON nested 128 deep; a store would write such a
        // trace and then fail to load it.
        for depth in [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 124, 200] {
            let deep = nested(depth);
            let traces = [
                sample().with_metadata("deep", deep.clone()),
                sample().with_step(Step::llm_call("m").with_input(deep.clone())),
                sample().with_step(Step::llm_call("m").with_output(deep.clone())),
                sample().with_step(Step::llm_call("m").with_attribute("a", deep.clone())),
            ];
            for trace in traces {
                match trace.validate() {
                    Ok(()) => {
                        assert!(depth <= MAX_JSON_DEPTH, "depth {depth} accepted");
                        let back = Trace::from_json_slice(&trace.to_json_vec().unwrap());
                        assert_eq!(back.unwrap(), trace, "depth {depth}");
                    }
                    Err(Error::InvalidInput { message }) => {
                        assert!(depth > MAX_JSON_DEPTH, "depth {depth} rejected: {message}");
                        assert!(message.contains("64"), "{message}");
                    }
                    Err(other) => panic!("depth {depth}: {other}"),
                }
            }
        }
    }

    #[test]
    fn run_id_rules() {
        assert!(validate_run_id(&"x".repeat(256)).is_ok());
        assert!(validate_run_id(&"x".repeat(257)).is_err());
        assert!(validate_run_id("é".repeat(128).as_str()).is_ok());
        assert!(validate_run_id("a\u{7f}").is_err());
        assert!(validate_run_id("a\0").is_err());
        let mut newer = sample();
        newer.schema_version = 2;
        assert!(matches!(
            newer.validate(),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        assert_eq!(sample().status, Status::Unset);
    }
}
