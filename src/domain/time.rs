//! Calendar values as the EHR speaks them: ISO dates, appointment times in 12- or 24-hour form, timestamps.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::DomainError;

/// Parses an ISO calendar date `YYYY-MM-DD`.
pub fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, DomainError> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
        DomainError::new(
            field,
            "expected a date as YYYY-MM-DD, for example 2025-12-05",
        )
    })
}

/// Formats a date as `YYYY-MM-DD`.
pub fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Parses an ISO timestamp (`2025-11-21T08:09:31.946571`, optional fraction, optional `Z`/offset
/// which is dropped after conversion to UTC, or a date alone meaning midnight).
pub fn parse_timestamp(field: &str, raw: &str) -> Result<NaiveDateTime, DomainError> {
    let value = raw.trim();
    if let Ok(with_offset) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(with_offset.naive_utc());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(parsed) = NaiveDateTime::parse_from_str(value, format) {
            return Ok(parsed);
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_time(NaiveTime::MIN));
    }
    Err(DomainError::new(
        field,
        "expected an ISO 8601 timestamp such as 2025-11-21T08:09:31",
    ))
}

/// Formats a timestamp as ISO 8601 without offset, with microseconds when non-zero
/// (the earlier system's `datetime.isoformat()` shape).
pub fn format_timestamp(value: NaiveDateTime) -> String {
    if value.and_utc().timestamp_subsec_micros() == 0 {
        value.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        value.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// An appointment time as the caller wrote it, with its normalised 24-hour slot.
///
/// The earlier system stored times as written (`10:00 AM`, `14:30`, even `13:00 AM`); we keep the
/// written form for a lossless export and book slots by the normalised `HH:MM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentTime {
    pub written: String,
    pub slot: NaiveTime,
}

impl AppointmentTime {
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

    /// The slot as `HH:MM` (24-hour), the form used for booking and ordering.
    pub fn slot_text(&self) -> String {
        self.slot.format("%H:%M").to_string()
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
    let hour: u32 = hour_text.parse().ok()?;
    let minute: u32 = minute_text.parse().ok()?;
    let hour = match meridiem {
        None => hour,
        // The earlier system wrote a few 24-hour times with "AM" ("13:00 AM"): read them as 24-hour.
        Some(_) if hour > 12 => hour,
        Some(false) if hour == 12 => 0,
        Some(false) => hour,
        Some(true) if hour == 12 => 12,
        Some(true) => hour + 12,
    };
    if meridiem.is_some() && hour_text.parse::<u32>().ok()? == 0 {
        return None;
    }
    NaiveTime::from_hms_opt(hour, minute, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(raw: &str) -> Option<String> {
        AppointmentTime::parse(raw).ok().map(|t| t.slot_text())
    }

    #[test]
    fn twelve_and_twenty_four_hour_times() {
        assert_eq!(slot("10:00 AM").as_deref(), Some("10:00"));
        assert_eq!(slot("9:00 am").as_deref(), Some("09:00"));
        assert_eq!(slot("10am").as_deref(), Some("10:00"));
        assert_eq!(slot("2 PM").as_deref(), Some("14:00"));
        assert_eq!(slot("10").as_deref(), None);
        assert_eq!(slot("2:00 PM").as_deref(), Some("14:00"));
        assert_eq!(slot("12:00 PM").as_deref(), Some("12:00"));
        assert_eq!(slot("12:00 AM").as_deref(), Some("00:00"));
        assert_eq!(slot("14:30").as_deref(), Some("14:30"));
        assert_eq!(slot("13:00 AM").as_deref(), Some("13:00"));
        assert_eq!(slot("25:00"), None);
        assert_eq!(slot("10:60"), None);
        assert_eq!(slot("ten"), None);
        assert_eq!(slot("10"), None);
    }

    #[test]
    fn dates_and_timestamps() {
        assert!(parse_date("dob", "1985-06-15").is_ok());
        assert!(parse_date("dob", "1985-02-30").is_err());
        assert!(parse_date("dob", "06/15/1985").is_err());
        let stamp = parse_timestamp("recorded_date", "2025-11-21T08:09:31.946571");
        assert_eq!(
            stamp.map(format_timestamp).ok().as_deref(),
            Some("2025-11-21T08:09:31.946571")
        );
    }
}
