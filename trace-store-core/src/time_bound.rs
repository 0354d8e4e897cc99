//! The one parser of `since` / `until` bounds, shared by the CLI (`--since 7d`) and the
//! server (`?since=7d`), so both accept the same forms and name bad text the same way.

use chrono::{NaiveDate, NaiveTime, TimeZone, Utc};

use crate::{Error, Result, Timestamp};

const DAY_MICROS: i64 = 86_400_000_000;

/// Which side of a time range a text bounds: it decides what a bare date stands for.
///
/// Accepted forms: an RFC 3339 time (`2026-01-15T09:00:00Z`), a UTC date
/// (`2026-01-15`), `now`, or a time ago: whole numbers with units, optionally followed
/// by `ago` (`30m`, `12h`, `7d`, `2w`, `1h30m`, `1h 30m`, `30d ago`). Units: `s`, `m`,
/// `h`, `d`, `w`, `M` (30.44 days), `y` (365.25 days), and their long spellings
/// (`sec`, `min`, `hours`, `days`, `weeks`, `months`, `years`, ...): the ages of
/// [`parse_age`]. A time ago too far back clamps to [`Timestamp::MIN`].
///
/// ```
/// use trace_store_core::{TimeBound, Timestamp};
///
/// let now: Timestamp = "2026-01-31T12:00:00Z".parse().unwrap();
/// let since = TimeBound::Since.parse_at("30d ago", now).unwrap();
/// assert_eq!(since.to_string(), "2026-01-01T12:00:00.000000Z");
/// // A date as the upper bound takes in the whole day.
/// let until = TimeBound::Until.parse_at("2026-01-15", now).unwrap();
/// assert_eq!(until.to_string(), "2026-01-15T23:59:59.999999Z");
/// assert!(TimeBound::Since.parse_at("yesterday", now).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeBound {
    /// The lower bound: a date stands for its first microsecond (midnight UTC).
    Since,
    /// The upper bound, inclusive: a date stands for its last microsecond.
    Until,
}

impl TimeBound {
    /// Parses `text` with relative forms counted back from now.
    pub fn parse(self, text: &str) -> Result<Timestamp> {
        self.parse_at(text, Timestamp::now())
    }

    /// Parses `text` with relative forms counted back from `now`. Bad text is
    /// [`Error::InvalidInput`] quoting it and listing the accepted forms.
    pub fn parse_at(self, text: &str, now: Timestamp) -> Result<Timestamp> {
        let trimmed = text.trim();
        if trimmed == "now" {
            return Ok(now);
        }
        if let Ok(timestamp) = trimmed.parse::<Timestamp>() {
            return Ok(timestamp);
        }
        if let Ok(date) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
            let midnight = Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN));
            let start = Timestamp::from_datetime(midnight).map_err(|error| {
                Error::invalid(format!("{text:?} is out of range: {}", describe(error)))
            })?;
            return Ok(match self {
                TimeBound::Since => start,
                // Clamped, so 9999-12-31 ends at the last timestamp there is.
                TimeBound::Until => start.saturating_add_micros(DAY_MICROS - 1),
            });
        }
        let ago = match trimmed.strip_suffix("ago") {
            Some(rest) if rest.ends_with(char::is_whitespace) => rest.trim_end(),
            _ => trimmed,
        };
        match relative_micros(ago) {
            Some(micros) => Ok(now.saturating_add_micros(-micros)),
            None => Err(Error::invalid(format!(
                "{text:?} is not a time: expected an RFC 3339 time (2026-01-15T09:00:00Z), a date (2026-01-15), now, or a time ago (30m, 12h, 7d, 2w, \"30d ago\")"
            ))),
        }
    }
}

fn describe(error: Error) -> String {
    match error {
        Error::InvalidInput { message } => message,
        other => other.to_string(),
    }
}

/// Parses an age such as `30d`, `12h`, `2w` or `1h 30m`: whole numbers with units
/// (`s`, `m`, `h`, `d`, `w`, `M` = 30.44 days, `y` = 365.25 days, their long spellings,
/// and `ms`, `us`, `ns`), as humantime reads them. This is `--older-than`, the server's
/// `older_than`, and the relative form of a [`TimeBound`]. Bad text is
/// [`Error::InvalidInput`] quoting it.
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(trace_store_core::parse_age("1h 30m")?, Duration::from_secs(5_400));
/// assert!(trace_store_core::parse_age("yesterday").is_err());
/// # Ok::<(), trace_store_core::Error>(())
/// ```
pub fn parse_age(text: &str) -> Result<std::time::Duration> {
    let invalid = |why: &dyn std::fmt::Display| {
        Error::invalid(format!(
            "{text:?} is not an age such as 30d, 12h, 2w or 1h 30m ({why})"
        ))
    };
    whole_numbers(text)
        .ok_or_else(|| invalid(&"whole numbers only"))
        .and_then(|text| humantime::parse_duration(text).map_err(|error| invalid(&error)))
}

/// `text` trimmed, unless it holds a fraction: humantime reads `1.5h`, and an age here
/// is whole numbers of its units, as the CLI and the API have always said.
fn whole_numbers(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.contains('.')).then_some(text)
}

/// Microseconds of an age (see [`parse_age`]), saturating: too long an age is still a
/// (very long) time ago. `None` unless the whole text is an age.
fn relative_micros(text: &str) -> Option<i64> {
    match humantime::parse_duration(whole_numbers(text)?) {
        Ok(age) => Some(i64::try_from(age.as_micros()).unwrap_or(i64::MAX)),
        Err(humantime::DurationError::NumberOverflow) => Some(i64::MAX),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-31T12:00:00Z".parse().unwrap()
    }

    fn since(text: &str) -> Result<String> {
        TimeBound::Since
            .parse_at(text, now())
            .map(|t| t.to_string())
    }

    #[test]
    fn absolute_times_and_dates() {
        assert_eq!(
            since("2026-01-15T09:00:00+01:00").unwrap(),
            "2026-01-15T08:00:00.000000Z"
        );
        assert_eq!(
            since(" 2026-01-15 ").unwrap(),
            "2026-01-15T00:00:00.000000Z"
        );
        assert_eq!(since("now").unwrap(), now().to_string());
        let until = |text| TimeBound::Until.parse_at(text, now()).unwrap().to_string();
        assert_eq!(until("2026-01-15"), "2026-01-15T23:59:59.999999Z");
        assert_eq!(until("9999-12-31"), Timestamp::MAX.to_string());
        // Times and times ago are instants: no day to extend.
        assert_eq!(until("2026-01-15T00:00:00Z"), "2026-01-15T00:00:00.000000Z");
        assert_eq!(until("12h"), "2026-01-31T00:00:00.000000Z");
    }

    #[test]
    fn relative_times_with_or_without_ago() {
        assert_eq!(since("7d").unwrap(), "2026-01-24T12:00:00.000000Z");
        assert_eq!(since("30d ago").unwrap(), "2026-01-01T12:00:00.000000Z");
        assert_eq!(since("12h").unwrap(), "2026-01-31T00:00:00.000000Z");
        assert_eq!(since("1h30m ago").unwrap(), "2026-01-31T10:30:00.000000Z");
        assert_eq!(since("1h 30m").unwrap(), "2026-01-31T10:30:00.000000Z");
        assert_eq!(since("2w").unwrap(), "2026-01-17T12:00:00.000000Z");
        assert_eq!(since("90 minutes").unwrap(), "2026-01-31T10:30:00.000000Z");
        assert_eq!(since("45s").unwrap(), "2026-01-31T11:59:15.000000Z");
        assert_eq!(since("1y").unwrap(), "2025-01-31T06:00:00.000000Z");
        assert_eq!(since("100000y").unwrap(), Timestamp::MIN.to_string());
        assert_eq!(
            since("99999999999999999999999d").unwrap(),
            Timestamp::MIN.to_string()
        );
    }

    #[test]
    fn bad_text_is_invalid_input_quoting_it() {
        for bad in [
            "yesterday",
            "2026-13-01",
            "7x",
            "",
            "   ",
            "-3d",
            "2026-01-15T09:00:00",
            "d",
            "7",
            "7d ago ago",
            "7dago",
            "1.5h",
            "ago",
        ] {
            match since(bad) {
                Err(Error::InvalidInput { message }) => {
                    assert!(message.contains(&format!("{bad:?}")), "{bad}: {message}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        let Err(Error::InvalidInput { message }) = since("0000-01-01") else {
            panic!("a date before year 1 is refused");
        };
        assert!(
            message.contains("\"0000-01-01\" is out of range"),
            "{message}"
        );
    }

    #[test]
    fn parse_counts_back_from_the_clock() {
        let before = Timestamp::now();
        let parsed = TimeBound::Since.parse("1h").unwrap();
        let after = Timestamp::now();
        let hour = 3_600_000_000;
        assert!(parsed >= before.saturating_add_micros(-hour));
        assert!(parsed <= after.saturating_add_micros(-hour));
    }
}
