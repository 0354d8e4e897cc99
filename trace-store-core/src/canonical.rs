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

/// 2^63 and 2^64: every integral `f64` in `-2^63..2^64` has an exact `i64` or `u64`.
const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

fn write_number(n: &Number, out: &mut String) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        // An integral float is written as the integer of the same value, so that it
        // equals that integer whichever of serde_json's representations the integer has
        // (`i64` down to -2^63, `u64` up to 2^64 - 1). The casts are exact in these ranges.
        // `-0.0` lands in the second range (it equals 0.0) and is written as `0`.
        if f.fract() == 0.0 && (-TWO_63..0.0).contains(&f) {
            let _ = write!(out, "{}", f as i64);
        } else if f.fract() == 0.0 && (0.0..TWO_64).contains(&f) {
            let _ = write!(out, "{}", f as u64);
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
    }

    #[test]
    fn integral_floats_equal_the_integer_of_the_same_value() {
        let two_63 = 9_223_372_036_854_775_808.0_f64;
        let cases = [
            // 2^63 does not fit i64 but fits u64: as a float it is still that integer.
            (json!(two_63), json!(9_223_372_036_854_775_808_u64), true),
            (json!(-two_63), json!(i64::MIN), true),
            (json!(1e19), json!(10_000_000_000_000_000_000_u64), true),
            // 2^64 fits neither; u64::MAX is 2^64 - 1, a different value.
            (
                json!(18_446_744_073_709_551_616.0_f64),
                json!(u64::MAX),
                false,
            ),
            (
                json!(9_007_199_254_740_992.0_f64),
                json!(9_007_199_254_740_992_i64),
                true,
            ),
            (
                json!(9_007_199_254_740_992.0_f64),
                json!(9_007_199_254_740_993_i64),
                false,
            ),
            (json!(1e300), json!(1e300), true),
            (json!(-0.0), json!(0_u64), true),
        ];
        for (a, b, equal) in cases {
            assert_eq!(
                canonical_json(&a) == canonical_json(&b),
                equal,
                "{a} vs {b}: {} vs {}",
                canonical_json(&a),
                canonical_json(&b)
            );
            assert_eq!(json_eq(&a, &b), equal, "{a} vs {b}");
        }
        assert_eq!(canonical_json(&json!(two_63)), "9223372036854775808");
        assert_eq!(canonical_json(&json!(-two_63)), "-9223372036854775808");
        assert_eq!(canonical_json(&json!("é\"\n")), r#""é\"\n""#);
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..3).prop_map(Value::from),
            (-3i64..3).prop_map(|i| Value::from(i as f64)),
            prop_oneof![Just(0.5), Just(-2.25), Just(1e20)].prop_map(Value::from),
            // The edges of serde_json's three number representations.
            prop_oneof![
                Just(Value::from(i64::MIN)),
                Just(Value::from(-9_223_372_036_854_775_808.0)),
                Just(Value::from(9_223_372_036_854_775_808_u64)),
                Just(Value::from(9_223_372_036_854_775_808.0)),
                Just(Value::from(u64::MAX)),
                Just(Value::from(18_446_744_073_709_551_616.0)),
                Just(Value::from(-0.0)),
            ],
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
        fn integers_and_floats_are_equal_exactly_when_their_values_are(
            int in prop_oneof![
                any::<i64>().prop_map(i128::from),
                any::<u64>().prop_map(i128::from),
                (-(1i128 << 60)..(1i128 << 60)),
            ],
            float in prop_oneof![
                any::<f64>().prop_filter("finite", |f| f.is_finite()),
                any::<i64>().prop_map(|i| i as f64),
                any::<u64>().prop_map(|u| u as f64),
            ],
        ) {
            let int_value = if int < 0 { Value::from(int as i64) } else { Value::from(int as u64) };
            // Exact comparison: an integral f64 below 2^127 converts to i128 without loss.
            let same = float.fract() == 0.0 && float.abs() < 1e38 && float as i128 == int;
            prop_assert_eq!(json_eq(&int_value, &Value::from(float)), same, "{} vs {}", int, float);
            prop_assert_eq!(
                canonical_json(&int_value) == canonical_json(&Value::from(float)),
                same
            );
        }

        #[test]
        fn canonical_text_reads_back_equal(a in arb_json()) {
            let back: Value = serde_json::from_str(&canonical_json(&a)).unwrap();
            prop_assert!(json_eq(&a, &back));
        }
    }
}
