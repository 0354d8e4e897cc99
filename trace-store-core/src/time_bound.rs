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
/// (`sec`, `min`, `hours`, `days`, `weeks`, `months`, `years`, ...). A time ago too far
/// back clamps to [`Timestamp::MIN`].
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

/// Microseconds of a duration such as `7d`, `1h30m` or `1h 30m`, saturating; `None`
/// unless the whole text is one or more `<whole number><unit>` pieces.
fn relative_micros(text: &str) -> Option<i64> {
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        // Too many digits for u64 is still a (very long) time ago: it clamps.
        let number = rest[..digits].parse::<u64>().unwrap_or(u64::MAX);
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = unit_micros(&rest[..letters])?;
        rest = rest[letters..].trim_start();
        let micros = i64::try_from(u128::from(number) * u128::from(unit)).unwrap_or(i64::MAX);
        total = total.saturating_add(micros);
    }
    Some(total)
}

/// The units humantime (and so `--older-than`) knows, down to seconds.
fn unit_micros(unit: &str) -> Option<u64> {
    const SECOND: u64 = 1_000_000;
    Some(match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => SECOND,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * SECOND,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * SECOND,
        "d" | "day" | "days" => 86_400 * SECOND,
        "w" | "week" | "weeks" => 7 * 86_400 * SECOND,
        "M" | "month" | "months" => 2_630_016 * SECOND,
        "y" | "year" | "years" => 31_557_600 * SECOND,
        _ => return None,
    })
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
