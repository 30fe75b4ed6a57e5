//! Calendar values as the EHR speaks them, parsed once: [`Date`] (ISO, years 1900-2100), [`Timestamp`]
//! (ISO date-time, same years), [`DateOrTimestamp`] (lab dates, written either way), and [`TimeOfDay`]
//! (appointment times in 12- or 24-hour form, kept as written with their 24-hour slot). Each formats back
//! to the text the earlier system wrote, so an export reproduces its import.

use std::fmt;
use std::ops::RangeInclusive;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DomainError;

/// The years a birth date, a clinical date or a timestamp may fall in. Anything outside is a typo
/// (`+10000-01-01`, `-0001-01-01`) that no engine or client handles alike.
pub const YEARS: RangeInclusive<i32> = 1900..=2100;

const DATE_RULE: &str = "expected a date as YYYY-MM-DD between 1900-01-01 and 2100-12-31, \
                         for example 2025-12-05";

/// A calendar date, `YYYY-MM-DD`, in [`YEARS`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(NaiveDate);

impl Date {
    /// Parses `YYYY-MM-DD` (surrounding space ignored); `field` names the input in the error.
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .ok()
            .and_then(Self::checked)
            .ok_or_else(|| DomainError::new(field, DATE_RULE))
    }

    /// `date` if it lies in [`YEARS`].
    pub fn checked(date: NaiveDate) -> Option<Self> {
        YEARS.contains(&date.year()).then_some(Self(date))
    }

    /// Today (UTC). Always in range until 2101.
    pub fn today() -> Self {
        Self(chrono::Utc::now().date_naive())
    }

    /// A date that must not be in the future (a birth date, an allergy's onset): not after `today`.
    pub fn not_after(self, field: &str, today: Date) -> Result<Self, DomainError> {
        if self > today {
            return Err(DomainError::new(field, "must not be in the future"));
        }
        Ok(self)
    }

    pub fn naive(self) -> NaiveDate {
        self.0
    }

    /// Its midnight.
    pub fn at_midnight(self) -> NaiveDateTime {
        self.0.and_time(NaiveTime::MIN)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

/// An ISO 8601 timestamp without offset (`2025-11-21T08:09:31.946571`), in [`YEARS`]. An offset or `Z`
/// is accepted and converted to UTC; a date alone means its midnight.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(NaiveDateTime);

impl Timestamp {
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        parse_date_time(raw).and_then(Self::checked).ok_or_else(|| {
            DomainError::new(
                field,
                "expected an ISO 8601 timestamp such as 2025-11-21T08:09:31, \
                     between the years 1900 and 2100",
            )
        })
    }

    /// `value` if it lies in [`YEARS`].
    pub fn checked(value: NaiveDateTime) -> Option<Self> {
        YEARS.contains(&value.year()).then_some(Self(value))
    }

    /// The current UTC time.
    pub fn now() -> Self {
        Self(chrono::Utc::now().naive_utc())
    }

    pub fn naive(self) -> NaiveDateTime {
        self.0
    }
}

/// Formats as ISO 8601 without offset, with microseconds when non-zero (the earlier system's
/// `datetime.isoformat()` shape).
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.and_utc().timestamp_subsec_micros() == 0 {
            write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S"))
        } else {
            write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S%.6f"))
        }
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

fn parse_date_time(raw: &str) -> Option<NaiveDateTime> {
    let value = raw.trim();
    if let Ok(with_offset) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(with_offset.naive_utc());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(parsed) = NaiveDateTime::parse_from_str(value, format) {
            return Some(parsed);
        }
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .map(|date| date.and_time(NaiveTime::MIN))
}

/// A date the earlier system wrote either as a date or as a timestamp (lab order dates); kept in the form
/// it was written in.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateOrTimestamp {
    Date(Date),
    Timestamp(Timestamp),
}

impl DateOrTimestamp {
    pub fn parse(field: &str, raw: &str) -> Result<Self, DomainError> {
        match Date::parse(field, raw) {
            Ok(date) => Ok(Self::Date(date)),
            Err(_) => Timestamp::parse(field, raw).map(Self::Timestamp),
        }
    }

    /// The point in time (a date alone meaning its midnight).
    pub fn at(self) -> NaiveDateTime {
        match self {
            Self::Date(date) => date.at_midnight(),
            Self::Timestamp(timestamp) => timestamp.naive(),
        }
    }
}

impl From<Date> for DateOrTimestamp {
    fn from(date: Date) -> Self {
        Self::Date(date)
    }
}

impl fmt::Display for DateOrTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Date(date) => date.fmt(f),
            Self::Timestamp(timestamp) => timestamp.fmt(f),
        }
    }
}

impl fmt::Debug for DateOrTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateOrTimestamp({self})")
    }
}

/// An appointment time as the caller wrote it, with its normalised 24-hour slot.
///
/// Accepted: `14:30`, `9:00`, `10:00 AM`, `2 PM`, `10am`, and a 24-hour time written with `AM`
/// (`13:00 AM`, which the earlier system stored and its export holds). Refused: `13:00 PM` (no such time),
/// `0:30 AM`, `25:00`, `10:60`, a bare `10`. The written form is kept for the wire and a lossless export;
/// slots are booked and ordered by the normalised `HH:MM`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TimeOfDay {
    written: String,
    slot: NaiveTime,
}

impl TimeOfDay {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let written = raw.trim();
        let slot = parse_clock(written).ok_or_else(|| {
            DomainError::new("time", "expected a time such as \"10:00 AM\" or \"14:30\"")
        })?;
        Ok(Self {
            written: written.to_owned(),
            slot,
        })
    }

    /// As written (`10:00 AM`).
    pub fn written(&self) -> &str {
        &self.written
    }

    /// The 24-hour slot.
    pub fn slot(&self) -> NaiveTime {
        self.slot
    }

    /// The slot as `HH:MM` (24-hour), the form used for booking and ordering.
    pub fn slot_text(&self) -> String {
        self.slot.format("%H:%M").to_string()
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl fmt::Debug for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeOfDay({})", self.written)
    }
}

fn parse_clock(text: &str) -> Option<NaiveTime> {
    let upper = text.to_ascii_uppercase();
    let (clock, meridiem) = if let Some(rest) = upper.strip_suffix("AM") {
        (rest.trim_end(), Some(false))
    } else if let Some(rest) = upper.strip_suffix("PM") {
        (rest.trim_end(), Some(true))
    } else {
        (upper.as_str(), None)
    };
    // "10am": a 12-hour time with the minutes left out.
    let (hour_text, minute_text) = match clock.split_once(':') {
        Some(parts) => parts,
        None if meridiem.is_some() => (clock, "00"),
        None => return None,
    };
    if hour_text.is_empty() || hour_text.len() > 2 || minute_text.len() != 2 {
        return None;
    }
    let written_hour: u32 = hour_text.parse().ok()?;
    let minute: u32 = minute_text.parse().ok()?;
    let hour = match meridiem {
        None => written_hour,
        Some(_) if written_hour == 0 => return None,
        // The earlier system wrote a few 24-hour times with "AM" ("13:00 AM"): read them as 24-hour.
        Some(false) if written_hour > 12 => written_hour,
        // "13:00 PM" is no time at all.
        Some(true) if written_hour > 12 => return None,
        Some(false) if written_hour == 12 => 0,
        Some(false) => written_hour,
        Some(true) if written_hour == 12 => 12,
        Some(true) => written_hour + 12,
    };
    NaiveTime::from_hms_opt(hour, minute, 0)
}

/// Serde and `FromStr` as text, through `parse`: the export file, tool arguments and tests read the
/// same rule.
macro_rules! serde_as_text {
    ($name:ty, $parse:expr) => {
        impl std::str::FromStr for $name {
            type Err = DomainError;
            fn from_str(raw: &str) -> Result<Self, DomainError> {
                let parse: fn(&str) -> Result<$name, DomainError> = $parse;
                parse(raw)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                let parse: fn(&str) -> Result<$name, DomainError> = $parse;
                // The rule only: the caller (serde_path_to_error, the import) names the field.
                parse(&raw).map_err(|error| serde::de::Error::custom(error.rule))
            }
        }
    };
}

serde_as_text!(Date, |raw| Date::parse("date", raw));
serde_as_text!(Timestamp, |raw| Timestamp::parse("timestamp", raw));
serde_as_text!(DateOrTimestamp, |raw| DateOrTimestamp::parse("date", raw));
serde_as_text!(TimeOfDay, TimeOfDay::parse);

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(raw: &str) -> Option<String> {
        TimeOfDay::parse(raw).ok().map(|t| t.slot_text())
    }

    #[test]
    fn twelve_and_twenty_four_hour_times() {
        assert_eq!(slot("10:00 AM").as_deref(), Some("10:00"));
        assert_eq!(slot("9:00 am").as_deref(), Some("09:00"));
        assert_eq!(slot("10am").as_deref(), Some("10:00"));
        assert_eq!(slot("2 PM").as_deref(), Some("14:00"));
        assert_eq!(slot("2:00 PM").as_deref(), Some("14:00"));
        assert_eq!(slot("12:00 PM").as_deref(), Some("12:00"));
        assert_eq!(slot("12:00 AM").as_deref(), Some("00:00"));
        assert_eq!(slot("14:30").as_deref(), Some("14:30"));
        assert_eq!(slot("13:00 AM").as_deref(), Some("13:00"));
        assert_eq!(slot("13:00 PM"), None);
        assert_eq!(slot("0:30 AM"), None);
        assert_eq!(slot("25:00"), None);
        assert_eq!(slot("10:60"), None);
        assert_eq!(slot("ten"), None);
        assert_eq!(slot("10"), None);
        let time = TimeOfDay::parse(" 10:00 AM ").ok();
        assert_eq!(time.map(|t| t.to_string()).as_deref(), Some("10:00 AM"));
    }

    #[test]
    fn dates_stay_in_a_sane_range() {
        assert_eq!(
            Date::parse("dob", "1985-06-15").map(|d| d.to_string()),
            Ok("1985-06-15".to_owned())
        );
        assert!(Date::parse("dob", "1985-02-30").is_err());
        assert!(Date::parse("dob", "06/15/1985").is_err());
        assert!(Date::parse("dob", "+10000-01-01").is_err());
        assert!(Date::parse("onset_date", "-0001-01-01").is_err());
        assert!(Date::parse("dob", "1899-12-31").is_err());
        assert!(Date::parse("dob", "2100-12-31").is_ok());
        let today = Date::parse("today", "2025-01-01").unwrap_or_else(|_| Date::today());
        let dob = |raw| Date::parse("dob", raw).and_then(|d| d.not_after("dob", today));
        assert!(dob("2025-01-02").is_err());
        assert!(dob("2025-01-01").is_ok());
    }

    #[test]
    fn timestamps_keep_their_form() {
        let stamp = Timestamp::parse("recorded_date", "2025-11-21T08:09:31.946571");
        assert_eq!(
            stamp.map(|s| s.to_string()).ok().as_deref(),
            Some("2025-11-21T08:09:31.946571")
        );
        assert!(Timestamp::parse("recorded_date", "+10000-01-01T00:00:00").is_err());
        let lab = |raw| DateOrTimestamp::parse("ordered_date", raw).map(|d| d.to_string());
        assert_eq!(lab("2025-11-18"), Ok("2025-11-18".to_owned()));
        assert_eq!(
            lab("2025-11-18T10:00:00"),
            Ok("2025-11-18T10:00:00".to_owned())
        );
        assert!(lab("soon").is_err());
    }

    #[test]
    fn serde_reads_and_writes_the_text() {
        let date: Result<Date, _> = serde_json::from_str("\"2025-12-05\"");
        assert_eq!(
            date.ok().and_then(|d| serde_json::to_string(&d).ok()),
            Some("\"2025-12-05\"".to_owned())
        );
        let refused: Result<Date, _> = serde_json::from_str("\"+10000-01-01\"");
        assert!(refused.is_err());
    }
}
