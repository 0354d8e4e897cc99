//! JSON values <-> OTLP `AnyValue`, losslessly in both directions.
//!
//! Most JSON maps one to one (null = the empty AnyValue, integers that fit i64 =
//! `intValue`, other numbers = `doubleValue`, objects = `kvlistValue`). What one side
//! cannot hold travels as a one-key object whose key is reserved:
//!
//! | JSON side                                   | AnyValue side                              |
//! |---------------------------------------------|--------------------------------------------|
//! | integer above `i64::MAX`                    | `{"trace_store.u64": "<decimal>"}`         |
//! | `{"trace_store.bytes": "<base64>"}`         | `bytesValue`                               |
//! | `{"trace_store.double": "NaN"}` (`Infinity`, `-Infinity`) | non-finite `doubleValue`     |
//! | `{"trace_store.kvlist": [[key, value], ...]}` | `kvlistValue` with repeated keys         |
//! | a value nesting deeper than [`TEXT_WRAP_DEPTH`] | `{"trace_store.json": "<JSON text>"}`  |
//! | any other one-key object with a reserved key | `{"trace_store.object": {...}}`           |

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use crate::proto::any_value::Value as Any;
use crate::proto::{AnyValue, ArrayValue, KeyValue, KeyValueList};

const U64: &str = "trace_store.u64";
const BYTES: &str = "trace_store.bytes";
const DOUBLE: &str = "trace_store.double";
const KVLIST: &str = "trace_store.kvlist";
const JSON: &str = "trace_store.json";
const OBJECT: &str = "trace_store.object";
const RESERVED: [&str; 6] = [U64, BYTES, DOUBLE, KVLIST, JSON, OBJECT];

/// JSON values nesting deeper than this travel as JSON text, so that the OTLP message
/// stays within the nesting limits of protobuf (100 messages) and JSON (128) readers even
/// when every level is a kvlist (3 messages, 4 JSON levels) wrapped once more.
pub(crate) const TEXT_WRAP_DEPTH: usize = 10;

/// Deepest AnyValue accepted on input (arrays and kvlists counted).
pub(crate) const MAX_ANY_VALUE_DEPTH: usize = 64;

/// The AnyValue of a JSON value.
pub(crate) fn to_any(value: &Value) -> AnyValue {
    if depth(value) > TEXT_WRAP_DEPTH {
        return one_key(JSON, string(value.to_string()));
    }
    to_any_shallow(value)
}

fn to_any_shallow(value: &Value) -> AnyValue {
    let inner = match value {
        Value::Null => return AnyValue { value: None },
        Value::Bool(b) => Any::BoolValue(*b),
        Value::String(s) => Any::StringValue(s.clone()),
        Value::Number(n) => return number_to_any(n),
        Value::Array(items) => Any::ArrayValue(ArrayValue {
            values: items.iter().map(to_any_shallow).collect(),
        }),
        Value::Object(map) => return object_to_any(map),
    };
    AnyValue { value: Some(inner) }
}

fn number_to_any(n: &Number) -> AnyValue {
    if let Some(i) = n.as_i64() {
        AnyValue {
            value: Some(Any::IntValue(i)),
        }
    } else if let Some(u) = n.as_u64() {
        one_key(U64, string(u.to_string()))
    } else {
        AnyValue {
            value: Some(Any::DoubleValue(n.as_f64().unwrap_or(f64::NAN))),
        }
    }
}

fn object_to_any(map: &Map<String, Value>) -> AnyValue {
    if let Some((key, inner)) = single_entry(map)
        && RESERVED.contains(&key.as_str())
    {
        if let Some(special) = special_to_any(key, inner) {
            return special;
        }
        return one_key(OBJECT, kvlist(map));
    }
    kvlist(map)
}

/// The AnyValue a reserved one-key object stands for, if it is well formed.
fn special_to_any(key: &str, inner: &Value) -> Option<AnyValue> {
    let value = match (key, inner) {
        (BYTES, Value::String(text)) => {
            let bytes = BASE64.decode(text).ok()?;
            (BASE64.encode(&bytes) == *text).then_some(Any::BytesValue(bytes))?
        }
        (DOUBLE, Value::String(text)) => Any::DoubleValue(match text.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            _ => return None,
        }),
        (KVLIST, Value::Array(pairs)) => {
            let mut values = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(k), v]) => values.push(KeyValue {
                        key: k.clone(),
                        value: Some(to_any_shallow(v)),
                    }),
                    _ => return None,
                }
            }
            let mut keys: Vec<&str> = values.iter().map(|kv| kv.key.as_str()).collect();
            keys.sort_unstable();
            let repeated = keys.windows(2).any(|w| w[0] == w[1]);
            repeated.then_some(Any::KvlistValue(KeyValueList { values }))?
        }
        _ => return None,
    };
    Some(AnyValue { value: Some(value) })
}

fn kvlist(map: &Map<String, Value>) -> AnyValue {
    AnyValue {
        value: Some(Any::KvlistValue(KeyValueList {
            values: map
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(to_any_shallow(v)),
                })
                .collect(),
        })),
    }
}

fn one_key(key: &str, value: AnyValue) -> AnyValue {
    AnyValue {
        value: Some(Any::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: key.to_owned(),
                value: Some(value),
            }],
        })),
    }
}

fn string(s: String) -> AnyValue {
    AnyValue {
        value: Some(Any::StringValue(s)),
    }
}

fn single_entry(map: &Map<String, Value>) -> Option<(&String, &Value)> {
    if map.len() == 1 {
        map.iter().next()
    } else {
        None
    }
}

/// Nesting depth of arrays and objects; stops counting past `TEXT_WRAP_DEPTH + 1`.
fn depth(value: &Value) -> usize {
    fn go(value: &Value, level: usize) -> usize {
        if level > TEXT_WRAP_DEPTH {
            return level;
        }
        match value {
            Value::Array(items) => items
                .iter()
                .map(|v| go(v, level + 1))
                .max()
                .unwrap_or(level + 1),
            Value::Object(map) => map
                .values()
                .map(|v| go(v, level + 1))
                .max()
                .unwrap_or(level + 1),
            _ => level,
        }
    }
    go(value, 0)
}

/// The JSON value of an AnyValue; `Err` names why it cannot be read (too deep, or a
/// `trace_store.json` text that is not JSON).
pub(crate) fn from_any(any: &AnyValue) -> Result<Value, String> {
    from_any_at(any, 0)
}

/// The JSON value of an optional AnyValue (a missing one is null).
pub(crate) fn from_opt_any(any: Option<&AnyValue>) -> Result<Value, String> {
    any.map_or(Ok(Value::Null), from_any)
}

/// [`from_opt_any`], moving a string value (most attribute values are) instead of
/// copying it.
pub(crate) fn from_opt_any_owned(any: Option<AnyValue>) -> Result<Value, String> {
    match any {
        Some(AnyValue {
            value: Some(Any::StringValue(s)),
        }) => Ok(Value::String(s)),
        other => from_opt_any(other.as_ref()),
    }
}

fn from_any_at(any: &AnyValue, level: usize) -> Result<Value, String> {
    if level > MAX_ANY_VALUE_DEPTH {
        return Err(format!(
            "an attribute value nests more than {MAX_ANY_VALUE_DEPTH} arrays or maps deep"
        ));
    }
    let Some(inner) = &any.value else {
        return Ok(Value::Null);
    };
    Ok(match inner {
        Any::StringValue(s) => Value::String(s.clone()),
        Any::BoolValue(b) => Value::Bool(*b),
        Any::IntValue(i) => Value::from(*i),
        Any::DoubleValue(d) => match Number::from_f64(*d) {
            Some(n) => Value::Number(n),
            None => special(
                DOUBLE,
                Value::from(if d.is_nan() {
                    "NaN"
                } else if *d > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }),
            ),
        },
        Any::BytesValue(bytes) => special(BYTES, Value::from(BASE64.encode(bytes))),
        Any::ArrayValue(array) => Value::Array(
            array
                .values
                .iter()
                .map(|v| from_any_at(v, level + 1))
                .collect::<Result<_, _>>()?,
        ),
        Any::KvlistValue(list) => kvlist_from_any(list, level)?,
    })
}

fn kvlist_from_any(list: &KeyValueList, level: usize) -> Result<Value, String> {
    if let [only] = list.values.as_slice() {
        let inner = only.value.as_ref().and_then(|v| v.value.as_ref());
        match (only.key.as_str(), inner) {
            (U64, Some(Any::StringValue(text))) => {
                if let Ok(u) = text.parse::<u64>()
                    && u > i64::MAX as u64
                    && u.to_string() == *text
                {
                    return Ok(Value::from(u));
                }
            }
            (JSON, Some(Any::StringValue(text))) => {
                return serde_json::from_str(text)
                    .map_err(|e| format!("a trace_store.json attribute value is not JSON: {e}"));
            }
            (OBJECT, Some(Any::KvlistValue(wrapped))) => {
                let mut map = Map::new();
                for kv in &wrapped.values {
                    map.insert(
                        kv.key.clone(),
                        from_opt_any_at(kv.value.as_ref(), level + 2)?,
                    );
                }
                return Ok(Value::Object(map));
            }
            _ => {}
        }
    }
    let mut map = Map::new();
    let mut repeated = false;
    for kv in &list.values {
        let value = from_opt_any_at(kv.value.as_ref(), level + 1)?;
        repeated |= map.insert(kv.key.clone(), value).is_some();
    }
    if repeated {
        let pairs = list
            .values
            .iter()
            .map(|kv| {
                Ok(Value::Array(vec![
                    Value::from(kv.key.clone()),
                    from_opt_any_at(kv.value.as_ref(), level + 1)?,
                ]))
            })
            .collect::<Result<_, String>>()?;
        return Ok(special(KVLIST, Value::Array(pairs)));
    }
    Ok(Value::Object(map))
}

fn from_opt_any_at(any: Option<&AnyValue>, level: usize) -> Result<Value, String> {
    any.map_or(Ok(Value::Null), |v| from_any_at(v, level))
}

fn special(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(value: Value) {
        let back = from_any(&to_any(&value)).unwrap();
        assert_eq!(back, value, "{value}");
    }

    #[test]
    fn every_json_shape_round_trips() {
        for value in [
            json!(null),
            json!(true),
            json!(-3),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.0),
            json!(-0.5),
            json!("text"),
            json!([1, "a", null, [2.5]]),
            json!({"a": {"b": [1, {"c": null}]}}),
            json!({}),
            json!([]),
            json!({"trace_store.u64": "5"}),
            json!({"trace_store.u64": "18446744073709551615"}),
            json!({"trace_store.bytes": "aGk="}),
            json!({"trace_store.bytes": "not base64"}),
            json!({"trace_store.double": "NaN"}),
            json!({"trace_store.double": "1.5"}),
            json!({"trace_store.kvlist": [["a", 1], ["a", 2]]}),
            json!({"trace_store.kvlist": [["a", 1], ["b", 2]]}),
            json!({"trace_store.json": "[1]"}),
            json!({"trace_store.object": {"x": 1}}),
            json!({"trace_store.object": {"trace_store.object": 1}}),
        ] {
            round_trip(value);
        }
        let mut deep = json!(1);
        for _ in 0..60 {
            deep = json!([deep]);
        }
        round_trip(deep);
    }

    #[test]
    fn integers_and_floats_stay_apart() {
        assert_eq!(
            to_any(&json!(1)).value,
            Some(Any::IntValue(1)),
            "an integer is intValue"
        );
        assert_eq!(to_any(&json!(1.0)).value, Some(Any::DoubleValue(1.0)));
        assert!(from_any(&to_any(&json!(1.0))).unwrap().is_f64());
    }

    #[test]
    fn foreign_values_json_cannot_hold_come_back_as_themselves() {
        for any in [
            Any::BytesValue(vec![0, 255]),
            Any::DoubleValue(f64::INFINITY),
            Any::KvlistValue(KeyValueList {
                values: vec![
                    KeyValue {
                        key: "k".into(),
                        value: Some(string("1".into())),
                    },
                    KeyValue {
                        key: "k".into(),
                        value: Some(AnyValue { value: None }),
                    },
                ],
            }),
        ] {
            let any = AnyValue { value: Some(any) };
            assert_eq!(to_any(&from_any(&any).unwrap()), any);
        }
    }

    #[test]
    fn nesting_past_the_limit_is_an_error() {
        let mut any = AnyValue {
            value: Some(Any::IntValue(1)),
        };
        for _ in 0..=MAX_ANY_VALUE_DEPTH {
            any = AnyValue {
                value: Some(Any::ArrayValue(ArrayValue { values: vec![any] })),
            };
        }
        assert!(from_any(&any).unwrap_err().contains("nests"));
    }
}
