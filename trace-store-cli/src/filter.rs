//! Parsing of filter values given on the command line.

use serde_json::Value;
use trace_store::{Status, TimeBound, Timestamp};

use crate::error::describe;

/// One `--meta KEY=VALUE`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MetaPair(pub(crate) String, pub(crate) Value);

/// `KEY=VALUE`, the value read as JSON when it parses (`42`, `true`, `null`, `"42"`,
/// `{"a":1}`) and as a plain string otherwise, so `--meta user_id=u_42` needs no quotes.
/// The key ends at the first `=`; a key that holds `=` itself is written as a JSON
/// string: `--meta '"a=b"=1'`.
pub(crate) fn parse_meta(text: &str) -> Result<MetaPair, String> {
    let (key, value) = if text.starts_with('"') {
        quoted_key(text)?
    } else {
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| "expected KEY=VALUE, as in --meta user_id=u_42".to_owned())?;
        (key.to_owned(), value)
    };
    if key.is_empty() {
        return Err("the key before '=' is empty".to_owned());
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok(MetaPair(key, value))
}

/// `"KEY"=VALUE`: the key is the JSON string at the start.
fn quoted_key(text: &str) -> Result<(String, &str), String> {
    let mut strings = serde_json::Deserializer::from_str(text).into_iter::<String>();
    let key = match strings.next() {
        Some(Ok(key)) => key,
        _ => {
            return Err(
                "a key starting with '\"' must be a JSON string, as in '\"a=b\"=1'".to_owned(),
            );
        }
    };
    text.get(strings.byte_offset()..)
        .and_then(|rest| rest.strip_prefix('='))
        .map(|value| (key, value))
        .ok_or_else(|| "expected '=' right after the quoted key, as in '\"a=b\"=1'".to_owned())
}

/// `--since`: an RFC 3339 date-time, a date (from its midnight UTC), `now`, or a time
/// ago such as `7d`, `12h`, `90m`, `2w`, `1h30m` (an `ago` suffix is allowed): core's
/// [`TimeBound`], the parser the server's `?since=` uses too.
pub(crate) fn parse_since(text: &str) -> Result<Timestamp, String> {
    TimeBound::Since
        .parse(text)
        .map_err(|error| describe(&error))
}

/// `--until`: as `--since`, except that a date runs to the end of that day (UTC), so
/// `--until 2026-01-31` includes the 31st, as the inclusive range promises.
pub(crate) fn parse_until(text: &str) -> Result<Timestamp, String> {
    TimeBound::Until
        .parse(text)
        .map_err(|error| describe(&error))
}

/// One `--score NAME=MIN..MAX`: either bound may be left out (`helpful=1..`,
/// `quality=..0.5`); `NAME=X` alone means exactly X.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ScoreArg {
    pub(crate) name: String,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
}

pub(crate) fn parse_score(text: &str) -> Result<ScoreArg, String> {
    let (name, range) = text.rsplit_once('=').ok_or_else(|| {
        "expected NAME=MIN..MAX, as in --score helpful=1.. or quality=0.5..1".to_owned()
    })?;
    if name.is_empty() {
        return Err("the score name before '=' is empty".to_owned());
    }
    let bound = |text: &str| -> Result<Option<f64>, String> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Some(value)),
            _ => Err(format!("score bound {text:?} is not a number")),
        }
    };
    let (min, max) = match range.split_once("..") {
        Some((min, max)) => (bound(min)?, bound(max)?),
        None => {
            let exact = bound(range)?.ok_or("expected a value or a range MIN..MAX after '='")?;
            (Some(exact), Some(exact))
        }
    };
    if let (Some(min), Some(max)) = (min, max)
        && min > max
    {
        return Err(format!(
            "score range {min}..{max} is empty: min is greater than max"
        ));
    }
    Ok(ScoreArg {
        name: name.to_owned(),
        min,
        max,
    })
}

/// `--by`: day, name, session, status, model or meta:KEY.
pub(crate) fn parse_group(text: &str) -> Result<trace_store::GroupBy, String> {
    text.parse().map_err(|error| describe(&error))
}

/// An age such as `30d`, `12h` or `2w` (`--older-than`): core's, as the API reads it.
pub(crate) fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    trace_store::parse_age(text).map_err(|error| describe(&error))
}

/// `human`, `llm`, `code` or any other name.
pub(crate) fn parse_source(text: &str) -> Result<trace_store::ScoreSource, String> {
    if text.is_empty() {
        return Err("the score source is empty".to_owned());
    }
    Ok(trace_store::ScoreSource::from_name(text))
}

/// `ok`, `error`, `running` or `unset`.
pub(crate) fn parse_status(text: &str) -> Result<Status, String> {
    text.parse::<Status>()
        .map_err(|_| format!("unknown status {text:?}; expected ok, error, running or unset"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn meta_values_are_json_when_they_parse() {
        let pair = |text| parse_meta(text).unwrap();
        assert_eq!(
            pair("user_id=u_42"),
            MetaPair("user_id".into(), json!("u_42"))
        );
        assert_eq!(pair("n=42"), MetaPair("n".into(), json!(42)));
        assert_eq!(pair("n=\"42\""), MetaPair("n".into(), json!("42")));
        assert_eq!(pair("ok=true"), MetaPair("ok".into(), json!(true)));
        assert_eq!(pair("gone=null"), MetaPair("gone".into(), Value::Null));
        assert_eq!(pair("empty="), MetaPair("empty".into(), json!("")));
        assert_eq!(pair("eq=a=b"), MetaPair("eq".into(), json!("a=b")));
        assert_eq!(
            pair("o={\"a\":[1]}"),
            MetaPair("o".into(), json!({"a": [1]}))
        );
        assert_eq!(pair("list=[1,2]"), MetaPair("list".into(), json!([1, 2])));
        assert_eq!(pair("n=01"), MetaPair("n".into(), json!("01")));
        assert!(parse_meta("user_id").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_meta("=x").is_err());
    }

    #[test]
    fn meta_keys_holding_an_equals_sign_are_quoted() {
        let pair = |text| parse_meta(text).unwrap();
        assert_eq!(pair(r#""a=b"=c"#), MetaPair("a=b".into(), json!("c")));
        assert_eq!(pair(r#""a=b"=1"#), MetaPair("a=b".into(), json!(1)));
        assert_eq!(pair(r#""x\"y"="""#), MetaPair("x\"y".into(), json!("")));
        for bad in [r#""a=b"#, r#""a"b=1"#, r#"""=1"#] {
            assert!(parse_meta(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_and_until_are_cores_time_bounds() {
        // The forms themselves are tested in core (TimeBound); here, the wiring: which
        // end of a date each flag takes, "ago", and a message without the error prefix.
        assert!(
            parse_since("2026-01-15")
                .unwrap()
                .to_string()
                .starts_with("2026-01-15T00:00:00")
        );
        assert!(
            parse_until("2026-01-15")
                .unwrap()
                .to_string()
                .starts_with("2026-01-15T23:59:59")
        );
        let day = 86_400_000_000;
        let ago = parse_since("30d ago").unwrap().as_micros();
        assert!((Timestamp::now().as_micros() - ago - 30 * day).abs() < 60_000_000);
        let error = parse_since("yesterday").unwrap_err();
        assert!(error.starts_with("\"yesterday\" is not a time"), "{error}");
        assert!(
            !parse_until("0000-01-01")
                .unwrap_err()
                .starts_with("invalid input")
        );
    }

    #[test]
    fn score_ranges() {
        let range = |text| parse_score(text).map(|s| (s.name, s.min, s.max));
        assert_eq!(
            range("helpful=1.."),
            Ok(("helpful".into(), Some(1.0), None))
        );
        assert_eq!(range("q=..0.5"), Ok(("q".into(), None, Some(0.5))));
        assert_eq!(range("q=0.2..0.8"), Ok(("q".into(), Some(0.2), Some(0.8))));
        assert_eq!(range("a=b=1"), Ok(("a=b".into(), Some(1.0), Some(1.0))));
        for bad in ["q", "=1", "q=x..1", "q=2..1", "q=", "q=nan.."] {
            assert!(parse_score(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("error"), Ok(Status::Error));
        assert!(parse_status("failed").unwrap_err().contains("expected ok"));
    }
}
