//! Parsing of filter values given on the command line.

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::Value;
use trace_store::{Status, Timestamp};

/// One `--meta KEY=VALUE`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MetaPair(pub(crate) String, pub(crate) Value);

/// `KEY=VALUE`, the value read as JSON when it parses (`42`, `true`, `null`, `"42"`,
/// `{"a":1}`) and as a plain string otherwise, so `--meta user_id=u_42` needs no quotes.
pub(crate) fn parse_meta(text: &str) -> Result<MetaPair, String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE, as in --meta user_id=u_42".to_owned())?;
    if key.is_empty() {
        return Err("the key before '=' is empty".to_owned());
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok(MetaPair(key.to_owned(), value))
}

/// An RFC 3339 date-time, a date (its midnight UTC), `now`, or a time ago such as
/// `7d`, `12h`, `90m`, `2w`, `1h30m` (an `ago` suffix is allowed).
pub(crate) fn parse_time(text: &str) -> Result<Timestamp, String> {
    parse_time_at(text, Timestamp::now())
}

fn parse_time_at(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Ok(timestamp) = text.parse::<Timestamp>() {
        return Ok(timestamp);
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Timestamp::from_datetime(Utc.from_utc_datetime(&date.and_time(Default::default())))
            .map_err(|error| error.to_string());
    }
    let ago = text.strip_suffix("ago").unwrap_or(text).trim_end();
    match humantime::parse_duration(ago) {
        Ok(duration) => {
            let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
            Ok(now.saturating_add_micros(-micros))
        }
        Err(_) => Err(
            "expected an RFC 3339 time (2026-01-15T09:00:00Z), a date (2026-01-15) or a time ago (7d, 12h, 30m)"
                .to_owned(),
        ),
    }
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
        assert!(parse_meta("user_id").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_meta("=x").is_err());
    }

    #[test]
    fn times_absolute_dates_and_relative() {
        let now: Timestamp = "2026-01-31T12:00:00Z".parse().unwrap();
        let at = |text| parse_time_at(text, now).map(|t| t.to_string());
        assert_eq!(
            at("2026-01-15T09:00:00+01:00").unwrap(),
            "2026-01-15T08:00:00.000000Z"
        );
        assert_eq!(at("2026-01-15").unwrap(), "2026-01-15T00:00:00.000000Z");
        assert_eq!(at("7d").unwrap(), "2026-01-24T12:00:00.000000Z");
        assert_eq!(at("12h").unwrap(), "2026-01-31T00:00:00.000000Z");
        assert_eq!(at("1h30m ago").unwrap(), "2026-01-31T10:30:00.000000Z");
        assert_eq!(at("2w").unwrap(), "2026-01-17T12:00:00.000000Z");
        assert_eq!(at("now").unwrap(), now.to_string());
        for bad in ["yesterday", "2026-13-01", "7x", "", "-3d"] {
            assert!(at(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(parse_status("error"), Ok(Status::Error));
        assert!(parse_status("failed").unwrap_err().contains("expected ok"));
    }
}
