use serde::Deserialize;
use serde_json::json;
use trace_store_core::{ErrorInfo, Score, ScoreSource, Status, Step, StepKind, Timestamp, Trace};

use super::{decode, encode};

fn at(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros).expect("in range")
}

/// Every field of the model set, every kind of JSON value, numbers at their edges.
fn rich() -> Trace {
    let numbers = json!([
        0,
        1,
        63,
        64,
        4095,
        4096,
        u64::MAX,
        -1,
        i64::MIN,
        0.5,
        -0.0,
        1e300,
        -2.5e-300,
        0.1,
        12345.678
    ]);
    let mut tool_step = Step::tool_call("search")
        .with_id("s2")
        .with_parent_id("s1")
        .with_name("lookup")
        .with_started_at(at(-5))
        .with_duration_us(u64::MAX)
        .with_status(Status::Running)
        .with_input(json!({"q": "naïve 東京 🚀", "empty": "", "nested": {"a": [[], {}, null]}}))
        .with_output(json!(null))
        .with_attribute("numbers", numbers)
        .with_attribute("", json!(true));
    if let Some(tool) = tool_step.tool.as_mut() {
        tool.call_id = Some("call-1".into());
    }
    let mut usage_step = Step::llm_call("gpt-4o")
        .with_id("s1")
        .with_provider("openai")
        .with_usage(1200, 80)
        .with_cost_nano_usd(-7)
        .with_error(
            ErrorInfo::new("")
                .with_type("Timeout")
                .with_stacktrace("at x\nat y"),
        );
    usage_step.usage.cache_read_input_tokens = 3;
    usage_step.usage.cache_creation_input_tokens = 4;
    usage_step.usage.reasoning_tokens = u64::MAX;
    Trace::new("run-ü")
        .with_parent_run_id("parent")
        .with_name("agent")
        .with_session_id("session")
        .with_created_at(at(1_767_225_713_132_803))
        .with_ended_at(at(i64::from(i32::MAX)))
        .with_error(ErrorInfo::new("boom"))
        .with_metadata("user_id", "u1")
        .with_metadata("n", 1.0)
        .with_metadata("list", json!([1, "two", false]))
        .with_step(usage_step)
        .with_step(tool_step)
        .with_step(Step::new(StepKind::from_name("my_custom_kind")))
        .with_step(Step::new(StepKind::CacheHit).with_output("cached"))
        .with_score(
            Score::new("helpful")
                .with_value(0.25)
                .with_created_at(at(9)),
        )
        .with_score(
            Score::new("grade")
                .with_label("A")
                .with_comment("fine")
                .with_source(ScoreSource::from_name("my_judge"))
                .with_step_id("s1")
                .with_created_at(at(-9)),
        )
        .with_score(
            Score::new("judge")
                .with_source(ScoreSource::Llm)
                .with_value(-0.0),
        )
}

fn assert_round_trips(trace: &Trace) {
    trace.validate().expect("a valid trace");
    let body = encode(trace);
    let back = decode(&body).expect("decodes");
    assert_eq!(&back, trace);
    // PartialEq takes -0.0 for 0.0 and 1.0 for 1: the JSON must be the same too.
    assert_eq!(
        back.to_json_vec().expect("encodes"),
        trace.to_json_vec().expect("encodes")
    );
}

#[test]
fn every_field_and_value_comes_back_exactly() {
    assert_round_trips(&rich());
    assert_round_trips(&Trace::new("bare").with_created_at(at(0)));
    let mut old = rich();
    old.schema_version = 0;
    assert_round_trips(&old);
}

#[test]
fn the_encoding_is_smaller_than_the_json() {
    let trace = rich();
    assert!(encode(&trace).len() < trace.to_json_vec().expect("encodes").len());
}

#[test]
fn damaged_encodings_are_refused_not_misread() {
    let body = encode(&rich());
    for end in 0..body.len() {
        if body.is_char_boundary(end) {
            assert!(decode(&body[..end]).is_none(), "prefix of {end} bytes");
        }
    }
    assert!(decode(&format!("{body}x")).is_none(), "trailing bytes");
    assert!(decode("\u{7f}\u{7f}\u{7f}").is_none());
}

/// Captures the field list serde's derive passes to `deserialize_struct`: the model's
/// fields as they are, not as a test remembers them.
fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    use serde::de::{Error, Visitor, value::Error as Failure};

    struct Introspect<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for Introspect<'_> {
        type Error = Failure;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Failure> {
            Err(Failure::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Failure> {
            *self.0 = fields;
            Err(Failure::custom("fields captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut fields));
    fields
}

#[test]
fn the_codec_knows_every_field() {
    // A field added to the model must be added to the codec (and here) too, or stored
    // traces would lose it.
    let cases: [(&str, &[&str], &[&str]); 6] = [
        (
            "Trace",
            fields_of::<Trace>(),
            &[
                "schema_version",
                "run_id",
                "parent_run_id",
                "name",
                "session_id",
                "created_at",
                "ended_at",
                "status",
                "error",
                "metadata",
                "steps",
                "scores",
            ],
        ),
        (
            "Step",
            fields_of::<Step>(),
            &[
                "id",
                "parent_id",
                "kind",
                "name",
                "started_at",
                "duration_us",
                "status",
                "model",
                "provider",
                "usage",
                "cost_nano_usd",
                "tool",
                "input",
                "output",
                "error",
                "attributes",
            ],
        ),
        (
            "Usage",
            fields_of::<trace_store_core::Usage>(),
            &[
                "input_tokens",
                "output_tokens",
                "cache_read_input_tokens",
                "cache_creation_input_tokens",
                "reasoning_tokens",
            ],
        ),
        (
            "ToolCall",
            fields_of::<trace_store_core::ToolCall>(),
            &["name", "call_id"],
        ),
        (
            "ErrorInfo",
            fields_of::<ErrorInfo>(),
            &["type", "message", "stacktrace"],
        ),
        (
            "Score",
            fields_of::<Score>(),
            &[
                "name",
                "value",
                "label",
                "comment",
                "source",
                "step_id",
                "created_at",
            ],
        ),
    ];
    for (name, actual, known) in cases {
        assert_eq!(actual, known, "the fields of {name}");
    }
    assert_eq!(
        Status::ALL.len(),
        4,
        "a new status needs no codec change, but check"
    );
}
