//! Canonical JSON: the one definition of "equal JSON" every index uses.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// The canonical text of a JSON value: two values are equal for
/// [`TraceFilter::metadata_match`](crate::TraceFilter) exactly when their canonical texts
/// are equal, so a backend can index metadata by this string.
///
/// - numbers compare by value: an integral number is written as an integer (`1.0` → `1`,
///   `-0.0` → `0`), any other as the shortest text that reads back as the same `f64`;
/// - object keys are sorted, whatever order the input had;
/// - arrays keep their order; strings, `true`, `false` and `null` keep their type, so
///   `"1"`, `1` and `true` all differ, and `null` is a value of its own.
///
/// ```
/// use serde_json::json;
/// use trace_store_core::canonical_json;
///
/// assert_eq!(canonical_json(&json!(1.0)), canonical_json(&json!(1)));
/// assert_ne!(canonical_json(&json!("1")), canonical_json(&json!(1)));
/// assert_eq!(canonical_json(&json!({"b": 1, "a": [2, 1]})), r#"{"a":[2,1],"b":1}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map may preserve insertion order (feature `preserve_order`
            // anywhere in the build), so sort explicitly.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // Serialising a str cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

/// Largest magnitude below which every integral `f64` converts to `i64` exactly.
const I64_EXACT_LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63

fn write_number(n: &Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        if f.fract() == 0.0 && f.abs() < I64_EXACT_LIMIT {
            let _ = write!(out, "{}", f as i64);
        } else {
            // serde_json writes the shortest text that reads back as the same f64.
            out.push_str(&Value::from(f).to_string());
        }
    }
}

/// JSON equality as [`canonical_json`] defines it, without building the strings:
/// `json_eq(a, b) == (canonical_json(a) == canonical_json(b))`.
///
/// ```
/// use serde_json::json;
/// use trace_store_core::json_eq;
///
/// assert!(json_eq(&json!({"a": 1, "b": 2.0}), &json!({"b": 2, "a": 1.0})));
/// assert!(!json_eq(&json!(true), &json!(1)));
/// assert!(!json_eq(&json!([1, 2]), &json!([2, 1])));
/// ```
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => number_eq(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, a)| y.get(key).is_some_and(|b| json_eq(a, b)))
        }
        _ => false,
    }
}

fn number_eq(x: &Number, y: &Number) -> bool {
    if x.is_f64() || y.is_f64() {
        let (mut a, mut b) = (String::new(), String::new());
        write_number(x, &mut a);
        write_number(y, &mut b);
        a == b
    } else {
        x == y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn edges() {
        let cases = [
            (json!(1), json!(1.0), true),
            (json!(-0.0), json!(0), true),
            (json!(1.5), json!(1.5), true),
            (json!(1e300), json!(1e300), true),
            (json!(u64::MAX), json!(u64::MAX), true),
            (json!("1"), json!(1), false),
            (json!(true), json!(1), false),
            (json!(null), json!(false), false),
            (json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1}), true),
            (json!([1, 2]), json!([2, 1]), false),
            (json!({"a": [1.0]}), json!({"a": [1]}), true),
            (json!({"a": 1}), json!({"a": 1, "b": null}), false),
        ];
        for (a, b, equal) in cases {
            assert_eq!(
                canonical_json(&a) == canonical_json(&b),
                equal,
                "{a} vs {b}"
            );
            assert_eq!(json_eq(&a, &b), equal, "{a} vs {b}");
        }
        assert_eq!(canonical_json(&json!(-0.0)), "0");
        assert_eq!(canonical_json(&json!("é\"\n")), r#""é\"\n""#);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            (-3i64..3).prop_map(|i| Value::from(i as f64)),
            prop_oneof![Just(0.5), Just(-2.25), Just(1e20)].prop_map(Value::from),
            "[a-c1]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map("[a-c]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn json_eq_agrees_with_canonical_text(a in arb_json(), b in arb_json()) {
            prop_assert_eq!(json_eq(&a, &b), canonical_json(&a) == canonical_json(&b));
            prop_assert!(json_eq(&a, &a));
        }

        #[test]
        fn canonical_text_reads_back_equal(a in arb_json()) {
            let back: Value = serde_json::from_str(&canonical_json(&a)).unwrap();
            prop_assert!(json_eq(&a, &back));
        }
    }
}
