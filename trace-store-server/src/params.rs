//! Query parameters: the filters shared by the list, count, stats, sessions and delete
//! endpoints, and the opaque keyset cursor.

use std::collections::BTreeMap;

use serde_json::Value;
use trace_store_core::{Cursor, Status, TimeBound, Timestamp, TraceFilter};

use crate::error::{ApiError, ApiResult};

/// Page size when the client names none.
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// Largest page a client may ask for.
pub(crate) const MAX_LIMIT: usize = 1000;

/// The query string, decoded, each parameter taken out as it is read so that what is
/// left at the end is unknown (and refused: a typo must not silently widen a delete).
#[derive(Debug, Default)]
pub(crate) struct Params {
    single: BTreeMap<String, String>,
    meta: BTreeMap<String, Value>,
}

impl Params {
    pub(crate) fn parse(query: Option<&str>) -> ApiResult<Params> {
        let mut params = Params::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            // An empty value means "not set", as an empty form field does (match an
            // empty string with meta.KEY="").
            if value.is_empty() {
                continue;
            }
            if let Some(meta_key) = key.strip_prefix("meta.") {
                if meta_key.is_empty() {
                    return Err(ApiError::invalid("parameter meta. names no metadata key"));
                }
                let json = serde_json::from_str(&value)
                    .unwrap_or_else(|_| Value::String(value.clone().into_owned()));
                if params.meta.insert(meta_key.to_owned(), json).is_some() {
                    return Err(ApiError::invalid(format!(
                        "parameter meta.{meta_key} is given twice; a trace has one value per key"
                    )));
                }
                continue;
            }
            if params
                .single
                .insert(key.clone().into_owned(), value.into_owned())
                .is_some()
            {
                return Err(ApiError::invalid(format!("parameter {key} is given twice")));
            }
        }
        Ok(params)
    }

    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.single.remove(name)
    }

    pub(crate) fn take_number(&mut self, name: &str) -> ApiResult<Option<usize>> {
        self.take(name)
            .map(|text| {
                text.trim().parse::<usize>().map_err(|_| {
                    ApiError::invalid(format!(
                        "parameter {name}: {text:?} is not a non-negative whole number"
                    ))
                })
            })
            .transpose()
    }

    pub(crate) fn take_bool(&mut self, name: &str) -> ApiResult<bool> {
        match self.take(name).as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::invalid(format!(
                "parameter {name}: {other:?} is not true or false"
            ))),
        }
    }

    /// Refuses any parameter no one took.
    pub(crate) fn finish(self) -> ApiResult<()> {
        match self.single.keys().next() {
            None => Ok(()),
            Some(unknown) => Err(ApiError::invalid(format!(
                "unknown parameter {unknown:?} (filters: name, status, session, parent, text, since, until, min_steps, max_steps, meta.KEY, score, limit, offset, after)"
            ))),
        }
    }

    /// Takes every filter criterion (not the paging parameters) and checks the
    /// result with core's `validate`.
    pub(crate) fn take_filter(&mut self) -> ApiResult<TraceFilter> {
        let mut filter = TraceFilter::new();
        filter.metadata_match = std::mem::take(&mut self.meta);
        filter.name = self.take("name");
        filter.session_id = self.take("session");
        filter.parent_run_id = self.take("parent");
        filter.text = self.take("text");
        if let Some(status) = self.take("status") {
            filter.status = Some(status.parse::<Status>().map_err(|_| {
                ApiError::invalid(format!(
                    "parameter status: unknown status {status:?}; expected unset, running, ok or error"
                ))
            })?);
        }
        let now = Timestamp::now();
        if let Some(since) = self.take("since") {
            filter.since = Some(parse_time("since", &since, TimeBound::Since, now)?);
        }
        if let Some(until) = self.take("until") {
            filter.until = Some(parse_time("until", &until, TimeBound::Until, now)?);
        }
        filter.min_steps = self.take_number("min_steps")?;
        filter.max_steps = self.take_number("max_steps")?;
        if let Some(score) = self.take("score") {
            let (name, min, max) = parse_score(&score)?;
            filter = filter.with_score(name, min, max);
        }
        filter.validate()?;
        Ok(filter)
    }

    /// Takes `after`, `offset` and `limit` into `filter`; `limit` falls back to
    /// `default_limit` and may not exceed [`MAX_LIMIT`].
    pub(crate) fn take_paging(
        &mut self,
        filter: &mut TraceFilter,
        default_limit: Option<usize>,
    ) -> ApiResult<()> {
        if let Some(after) = self.take("after") {
            filter.after = Some(decode_cursor(&after)?);
        }
        filter.offset = self.take_number("offset")?.unwrap_or(0);
        filter.limit = match self.take_number("limit")? {
            Some(limit) if limit > MAX_LIMIT => {
                return Err(ApiError::invalid(format!(
                    "parameter limit: {limit} is more than the maximum of {MAX_LIMIT}"
                )));
            }
            Some(limit) => Some(limit),
            None => default_limit,
        };
        Ok(())
    }
}

/// `NAME:MIN..MAX`, either bound optional; the name runs to the last `:`.
fn parse_score(text: &str) -> ApiResult<(String, Option<f64>, Option<f64>)> {
    let bad = |why: &str| {
        ApiError::invalid(format!(
            "parameter score: {text:?} {why}; expected NAME:MIN..MAX, as in thumbs:1.. or quality:0.5..0.9"
        ))
    };
    let (name, range) = text.rsplit_once(':').ok_or_else(|| bad("has no ':'"))?;
    if name.is_empty() {
        return Err(bad("names no score"));
    }
    let (min, max) = range.split_once("..").ok_or_else(|| bad("has no '..'"))?;
    let bound = |side: &str| -> ApiResult<Option<f64>> {
        let side = side.trim();
        if side.is_empty() {
            return Ok(None);
        }
        match side.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(Some(value)),
            _ => Err(bad(&format!(
                "has a bound {side:?} that is not a finite number"
            ))),
        }
    };
    Ok((name.to_owned(), bound(min)?, bound(max)?))
}

/// A `since` / `until` parameter, parsed by core's [`TimeBound`] (the CLI's parser
/// too), its error naming the parameter.
fn parse_time(name: &str, text: &str, bound: TimeBound, now: Timestamp) -> ApiResult<Timestamp> {
    bound
        .parse_at(text, now)
        .map_err(|error| ApiError::invalid(format!("parameter {name}: {}", describe(error))))
}

/// An error's message without the `invalid input:` prefix, for a message that adds
/// its own context.
pub(crate) fn describe(error: trace_store_core::Error) -> String {
    match error {
        trace_store_core::Error::InvalidInput { message } => message,
        other => other.to_string(),
    }
}

/// The opaque `next` cursor ([`Cursor::to_token`]).
pub(crate) fn encode_cursor(cursor: &Cursor) -> String {
    cursor.to_token()
}

pub(crate) fn decode_cursor(text: &str) -> ApiResult<Cursor> {
    Cursor::from_token(text).map_err(|_| {
        ApiError::invalid(
            "parameter after: not a cursor this server made (pass the `next` value of a previous page unchanged)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn cursors_round_trip_any_run_id() {
        for run_id in ["a", "a/b:c d%2F", "你好", "\"quoted\""] {
            let cursor = Cursor::new(
                Timestamp::from_micros(1_700_000_000_123_456).unwrap(),
                run_id,
            );
            assert_eq!(decode_cursor(&encode_cursor(&cursor)).unwrap(), cursor);
        }
        assert!(decode_cursor("not a cursor").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(b"[1]")).is_err());
    }

    #[test]
    fn scores_and_times_parse_or_name_the_parameter() {
        assert_eq!(
            parse_score("thumbs:1..").unwrap(),
            ("thumbs".into(), Some(1.0), None)
        );
        assert_eq!(
            parse_score("a:b:..0.5").unwrap(),
            ("a:b".into(), None, Some(0.5))
        );
        assert!(
            parse_score("thumbs:x..")
                .unwrap_err()
                .message
                .contains("score")
        );
        let day = 86_400_000_000;
        let now = Timestamp::from_micros(10 * day).unwrap();
        let since = |text| parse_time("since", text, TimeBound::Since, now);
        assert_eq!(since("7d").unwrap().as_micros(), 3 * day);
        assert_eq!(
            since("7d ago").unwrap().as_micros(),
            3 * day,
            "the CLI's form"
        );
        let end = parse_time("until", "1970-01-02", TimeBound::Until, now).unwrap();
        assert_eq!(end.as_micros(), 2 * day - 1);
        let message = parse_time("until", "yesterday-ish", TimeBound::Until, now)
            .unwrap_err()
            .message;
        assert!(
            message.starts_with("parameter until: \"yesterday-ish\" is not a time"),
            "{message}"
        );
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        let mut params = Params::parse(Some("name=a&meta.user=42&meta.tag=x&bogus=1")).unwrap();
        let filter = params.take_filter().unwrap();
        assert_eq!(filter.metadata_match["user"], 42);
        assert_eq!(filter.metadata_match["tag"], "x");
        assert!(params.finish().unwrap_err().message.contains("bogus"));
        assert!(Params::parse(Some("name=a&name=b")).is_err());
        let mut bad = Params::parse(Some("status=fine")).unwrap();
        assert!(
            bad.take_filter()
                .unwrap_err()
                .message
                .starts_with("parameter status")
        );
    }
}
