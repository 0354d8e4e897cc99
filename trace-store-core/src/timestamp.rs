//! Microsecond UTC timestamps.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// A point in time: UTC, microsecond precision.
///
/// Stored as whole microseconds since the Unix epoch, so every backend orders timestamps
/// exactly (no text comparison, no float rounding). The valid range is the one RFC 3339
/// can write, years 0001 to 9999; [`Timestamp::from_micros`] rejects anything outside it.
///
/// In JSON a timestamp is an RFC 3339 string in UTC with exactly six fractional digits:
///
/// ```
/// use trace_store_core::Timestamp;
///
/// let t: Timestamp = "2026-01-16T09:30:00.5+01:00".parse()?;
/// assert_eq!(t.to_string(), "2026-01-16T08:30:00.500000Z");
/// assert_eq!(Timestamp::from_micros(t.as_micros())?, t);
/// # Ok::<(), trace_store_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0001-01-01T00:00:00.000000Z, the earliest timestamp.
    pub const MIN: Timestamp = Timestamp(-62_135_596_800_000_000);
    /// 9999-12-31T23:59:59.999999Z, the latest timestamp.
    pub const MAX: Timestamp = Timestamp(253_402_300_799_999_999);
    /// 1970-01-01T00:00:00.000000Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// The current time, truncated to the microsecond.
    pub fn now() -> Timestamp {
        Timestamp::from_datetime_saturating(Utc::now())
    }

    /// A timestamp from microseconds since the Unix epoch.
    ///
    /// Returns [`Error::InvalidInput`] outside [`Timestamp::MIN`]..=[`Timestamp::MAX`].
    pub fn from_micros(micros: i64) -> Result<Timestamp> {
        if (Self::MIN.0..=Self::MAX.0).contains(&micros) {
            Ok(Timestamp(micros))
        } else {
            Err(Error::invalid(format!(
                "timestamp {micros} µs is outside the years 0001..=9999"
            )))
        }
    }

    /// Microseconds since the Unix epoch (negative before 1970).
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// A timestamp from a chrono date-time; sub-microsecond digits are dropped.
    ///
    /// Returns [`Error::InvalidInput`] outside the years 0001..=9999.
    pub fn from_datetime(datetime: DateTime<Utc>) -> Result<Timestamp> {
        Timestamp::from_micros(datetime.timestamp_micros())
    }

    /// A timestamp from fractional seconds since the Unix epoch, as Python's
    /// `time.time()` writes them, rounded to the nearest microsecond.
    pub fn from_unix_seconds_f64(seconds: f64) -> Result<Timestamp> {
        let micros = (seconds * 1e6).round();
        if !micros.is_finite() || micros < Self::MIN.0 as f64 || micros > Self::MAX.0 as f64 {
            return Err(Error::invalid(format!(
                "{seconds} seconds since the epoch is not a valid timestamp"
            )));
        }
        Timestamp::from_micros(micros as i64)
    }

    /// The same instant as a chrono date-time.
    pub fn to_datetime(self) -> DateTime<Utc> {
        // Every value in MIN..=MAX is representable by chrono.
        DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// This timestamp moved by `micros` (negative moves back), clamped to the valid range.
    #[must_use]
    pub fn saturating_add_micros(self, micros: i64) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(micros)
                .clamp(Self::MIN.0, Self::MAX.0),
        )
    }

    fn from_datetime_saturating(datetime: DateTime<Utc>) -> Timestamp {
        Timestamp(datetime.timestamp_micros().clamp(Self::MIN.0, Self::MAX.0))
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::UNIX_EPOCH
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            &self
                .to_datetime()
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = Error;

    /// Parses RFC 3339 with any UTC offset; digits past the microsecond are dropped.
    fn from_str(s: &str) -> Result<Timestamp> {
        let parsed = DateTime::parse_from_rfc3339(s)
            .map_err(|e| Error::invalid(format!("invalid RFC 3339 timestamp {s:?}: {e}")))?;
        Timestamp::from_datetime(parsed.with_timezone(&Utc))
    }
}

impl TryFrom<DateTime<Utc>> for Timestamp {
    type Error = Error;

    fn try_from(datetime: DateTime<Utc>) -> Result<Timestamp> {
        Timestamp::from_datetime(datetime)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(timestamp: Timestamp) -> Self {
        timestamp.to_datetime()
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Timestamp, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_six_digits_and_z() {
        let t = Timestamp::from_micros(1_767_249_377_075_216).unwrap();
        assert_eq!(t.to_string(), "2026-01-01T06:36:17.075216Z");
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn parse_normalises_offsets_and_truncates_nanos() {
        let t: Timestamp = "2026-01-01T07:36:17.0752169+01:00".parse().unwrap();
        assert_eq!(t.as_micros(), 1_767_249_377_075_216);
        let before_epoch: Timestamp = "1969-12-31T23:59:59.9999999Z".parse().unwrap();
        assert_eq!(before_epoch.as_micros(), -1);
    }

    #[test]
    fn parse_edges() {
        let micros = |s: &str| s.parse::<Timestamp>().map(Timestamp::as_micros);
        // A leap second is the first instant of the next second: order is kept, and
        // the value prints as a valid RFC 3339 time.
        let leap = micros("2016-12-31T23:59:60.5Z").unwrap();
        assert_eq!(leap, micros("2017-01-01T00:00:00.5Z").unwrap());
        assert!(leap > micros("2016-12-31T23:59:59.999999Z").unwrap());
        // Lower-case separators and `-00:00` are RFC 3339 too.
        assert_eq!(
            micros("2026-01-01t00:00:00z").unwrap(),
            micros("2026-01-01T00:00:00-00:00").unwrap()
        );
        // Digits past the microsecond are dropped toward the past on both sides of 1970.
        assert_eq!(micros("1970-01-01T00:00:00.0000019Z").unwrap(), 1);
        assert_eq!(micros("1969-12-31T23:59:59.0000005Z").unwrap(), -1_000_000);
        // Outside RFC 3339 or outside 0001..=9999 (also after applying the offset).
        for bad in [
            "-0001-01-01T00:00:00Z",
            "+2026-01-01T00:00:00Z",
            "0000-06-01T00:00:00Z",
            "0001-01-01T00:00:00+00:01",
            "9999-12-31T23:59:59-00:01",
            "2026-02-30T00:00:00Z",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "",
        ] {
            assert!(
                matches!(bad.parse::<Timestamp>(), Err(Error::InvalidInput { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(
            micros("0001-01-01T00:59:00+00:59").unwrap(),
            Timestamp::MIN.as_micros()
        );
    }

    #[test]
    fn range_is_enforced() {
        assert!(Timestamp::from_micros(Timestamp::MAX.as_micros() + 1).is_err());
        assert!(Timestamp::from_micros(Timestamp::MIN.as_micros() - 1).is_err());
        assert_eq!(Timestamp::MIN.to_string(), "0001-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999999Z");
        assert!("not a date".parse::<Timestamp>().is_err());
        assert!(Timestamp::from_unix_seconds_f64(f64::NAN).is_err());
    }

    #[test]
    fn python_float_seconds_round_to_micros() {
        let t = Timestamp::from_unix_seconds_f64(1767249378.7289882).unwrap();
        assert_eq!(t.as_micros(), 1_767_249_378_728_988);
    }

    #[test]
    fn serde_round_trip() {
        let t = Timestamp::from_micros(-5).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"1969-12-31T23:59:59.999995Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }
}
