//! WS-ResourceLifetime: requested termination times and xsd:duration arithmetic.

use chrono::{DateTime, Months, Utc};
use vcds_soap::ns;

/// What a client asked the termination time to become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    At(DateTime<Utc>),
    /// `xsi:nil="true"`: the resource lives until destroyed.
    Never,
    After(iso8601::Duration),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LifetimeError {
    #[error("{0:?} is neither an xsd:dateTime nor an xsd:duration")]
    BadValue(String),
    #[error("SetTerminationTime needs exactly one of RequestedTerminationTime or RequestedLifetimeDuration")]
    BadRequest,
    #[error("a duration of {0:?} overflows the calendar")]
    Overflow(String),
}

impl Requested {
    /// The absolute termination time, `None` for never.
    pub fn resolve(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, LifetimeError> {
        match self {
            Requested::At(t) => Ok(Some(*t)),
            Requested::Never => Ok(None),
            Requested::After(d) => add_duration(now, d)
                .map(Some)
                .ok_or_else(|| LifetimeError::Overflow(format!("{d:?}"))),
        }
    }
}

/// Adds an xsd:duration with calendar months and years, as the XML Schema spec defines.
pub fn add_duration(t: DateTime<Utc>, d: &iso8601::Duration) -> Option<DateTime<Utc>> {
    match *d {
        iso8601::Duration::Weeks(w) => {
            t.checked_add_signed(chrono::Duration::try_weeks(i64::from(w))?)
        }
        iso8601::Duration::YMDHMS {
            year,
            month,
            day,
            hour,
            minute,
            second,
            millisecond,
        } => {
            let months = u64::from(year)
                .checked_mul(12)?
                .checked_add(u64::from(month))?;
            let t = t.checked_add_months(Months::new(u32::try_from(months).ok()?))?;
            let secs = i64::from(day) * 86_400
                + i64::from(hour) * 3600
                + i64::from(minute) * 60
                + i64::from(second);
            t.checked_add_signed(chrono::Duration::try_seconds(secs)?)?
                .checked_add_signed(chrono::Duration::try_milliseconds(i64::from(millisecond))?)
        }
    }
}

/// Parses an xsd:duration (`P30D`, `PT1H30M`, …).
pub fn parse_duration(text: &str) -> Result<iso8601::Duration, LifetimeError> {
    let t = text.trim();
    if !t.starts_with('P') {
        return Err(LifetimeError::BadValue(text.to_string()));
    }
    iso8601::duration(t).map_err(|_| LifetimeError::BadValue(text.to_string()))
}

/// Parses an xsd:dateTime; a time without zone is taken as UTC.
pub fn parse_datetime(text: &str) -> Result<DateTime<Utc>, LifetimeError> {
    let t = text.trim();
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").map(|n| n.and_utc())
        })
        .map_err(|_| LifetimeError::BadValue(text.to_string()))
}

/// The `AbsoluteOrRelativeTimeType` of WS-BaseNotification (InitialTerminationTime, Renew).
pub fn parse_absolute_or_relative(text: &str) -> Result<Requested, LifetimeError> {
    if text.trim_start().starts_with('P') {
        parse_duration(text).map(Requested::After)
    } else {
        parse_datetime(text).map(Requested::At)
    }
}

/// Reads the body of `wsrf-rl:SetTerminationTime`.
pub fn parse_set_termination_time(
    body: roxmltree::Node<'_, '_>,
) -> Result<Requested, LifetimeError> {
    let mut children = body.children().filter(|c| c.is_element());
    let (Some(child), None) = (children.next(), children.next()) else {
        return Err(LifetimeError::BadRequest);
    };
    let text = child.text().unwrap_or("");
    if child.has_tag_name((ns::WSRF_RL, "RequestedTerminationTime")) {
        if child
            .attribute((ns::XSI, "nil"))
            .is_some_and(|v| v.trim() == "true" || v.trim() == "1")
        {
            return Ok(Requested::Never);
        }
        parse_datetime(text).map(Requested::At)
    } else if child.has_tag_name((ns::WSRF_RL, "RequestedLifetimeDuration")) {
        parse_duration(text).map(Requested::After)
    } else {
        Err(LifetimeError::BadRequest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stt(inner: &str) -> Result<Requested, LifetimeError> {
        let text = format!(
            r#"<rl:SetTerminationTime xmlns:rl="{}" xmlns:xsi="{}">{inner}</rl:SetTerminationTime>"#,
            ns::WSRF_RL,
            ns::XSI
        );
        let doc = vcds_xml::parse(&text, &vcds_xml::Limits::default()).unwrap();
        parse_set_termination_time(doc.root_element())
    }

    #[test]
    fn all_three_forms() {
        let now = parse_datetime("2026-01-31T00:00:00Z").unwrap();
        let r = stt("<rl:RequestedLifetimeDuration>PT1H</rl:RequestedLifetimeDuration>").unwrap();
        assert_eq!(
            r.resolve(now).unwrap(),
            Some(parse_datetime("2026-01-31T01:00:00Z").unwrap())
        );
        let r = stt("<rl:RequestedLifetimeDuration>P1M</rl:RequestedLifetimeDuration>").unwrap();
        assert_eq!(
            r.resolve(now).unwrap(),
            Some(parse_datetime("2026-02-28T00:00:00Z").unwrap()),
            "calendar month"
        );
        let r = stt(
            "<rl:RequestedTerminationTime>2026-03-01T10:00:00+01:00</rl:RequestedTerminationTime>",
        )
        .unwrap();
        assert_eq!(
            r.resolve(now).unwrap(),
            Some(parse_datetime("2026-03-01T09:00:00Z").unwrap())
        );
        assert_eq!(
            stt(r#"<rl:RequestedTerminationTime xsi:nil="true"/>"#).unwrap(),
            Requested::Never
        );
    }

    #[test]
    fn bad_values() {
        assert!(matches!(
            stt("<rl:RequestedLifetimeDuration>1 hour</rl:RequestedLifetimeDuration>"),
            Err(LifetimeError::BadValue(_))
        ));
        assert!(matches!(
            stt("<rl:RequestedTerminationTime>tomorrow</rl:RequestedTerminationTime>"),
            Err(LifetimeError::BadValue(_))
        ));
        assert_eq!(stt(""), Err(LifetimeError::BadRequest));
        let huge = parse_duration("P9999999Y").unwrap();
        assert!(Requested::After(huge).resolve(Utc::now()).is_err());
        assert!(matches!(
            parse_absolute_or_relative("PT5M"),
            Ok(Requested::After(_))
        ));
        assert!(matches!(
            parse_absolute_or_relative("2030-01-01T00:00:00Z"),
            Ok(Requested::At(_))
        ));
    }
}
