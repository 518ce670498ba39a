//! The working calendar (SPEC O-1): weekends, public holidays and make-up working days
//! (调休), and "due time of N working hours/days from instant T in zone Z".
//!
//! Every "working days" rule in the playbook (follow-up SLAs, legal review, meeting notes)
//! counts in this calendar, so it lives here as a pure function of data.

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

const NANOS_PER_MINUTE: i64 = 60_000_000_000;
const NANOS_PER_DAY: i64 = 24 * 60 * NANOS_PER_MINUTE;
/// A search for the next working instant gives up after this many days: a calendar whose
/// holidays cover more than ten years in a row has no answer worth waiting for.
const MAX_DAYS_SCANNED: i64 = 3660;

/// Working periods of one day, e.g. 09:00–12:00 and 13:00–18:00 (sorted, not overlapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    periods: Vec<(Time, Time)>,
}

impl WorkingHours {
    pub fn new(periods: Vec<(Time, Time)>) -> Result<WorkingHours, String> {
        if periods.is_empty() {
            return Err("needs at least one period, e.g. 09:00-18:00".into());
        }
        let mut prev_end: Option<Time> = None;
        for (s, e) in &periods {
            if s >= e {
                return Err(format!("period {}-{} ends before it starts", hm(*s), hm(*e)));
            }
            if let Some(p) = prev_end
                && *s < p
            {
                return Err("periods must be in order and must not overlap".into());
            }
            prev_end = Some(*e);
        }
        Ok(WorkingHours { periods })
    }

    /// Parses `09:00-12:00,13:00-18:00`.
    pub fn parse(text: &str) -> Result<WorkingHours, String> {
        let mut periods = Vec::new();
        for part in text.split([',', '，', ';']).map(str::trim).filter(|p| !p.is_empty()) {
            let Some((a, b)) = part.split_once(['-', '–', '~']) else {
                return Err(format!("`{part}` is not a period like 09:00-18:00"));
            };
            let parse_t = |s: &str| -> Result<Time, String> {
                let s = s.trim();
                let (h, m) = s.split_once(':').ok_or_else(|| format!("`{s}` is not a time like 09:00"))?;
                let h: i8 = h.parse().map_err(|_| format!("`{s}` is not a time like 09:00"))?;
                let m: i8 = m.parse().map_err(|_| format!("`{s}` is not a time like 09:00"))?;
                if h == 24 && m == 0 {
                    return Ok(Time::MAX);
                }
                Time::new(h, m, 0, 0).map_err(|_| format!("`{s}` is not a valid time of day"))
            };
            periods.push((parse_t(a)?, parse_t(b)?));
        }
        WorkingHours::new(periods)
    }

    pub fn periods(&self) -> &[(Time, Time)] {
        &self.periods
    }

    pub fn minutes_per_day(&self) -> i64 {
        self.nanos_per_day() / NANOS_PER_MINUTE
    }

    fn nanos_per_day(&self) -> i64 {
        self.periods.iter().map(|(s, e)| nanos_of(*e) - nanos_of(*s)).sum()
    }
}

impl Default for WorkingHours {
    /// The common Chinese office day: 09:00–12:00 and 13:00–18:00 (8 working hours).
    fn default() -> Self {
        WorkingHours {
            periods: vec![
                (Time::constant(9, 0, 0, 0), Time::constant(12, 0, 0, 0)),
                (Time::constant(13, 0, 0, 0), Time::constant(18, 0, 0, 0)),
            ],
        }
    }
}

impl fmt::Display for WorkingHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.periods.iter().map(|(s, e)| format!("{}-{}", hm(*s), hm(*e))).collect();
        f.write_str(&parts.join(","))
    }
}

fn hm(t: Time) -> String {
    if t == Time::MAX {
        return "24:00".into();
    }
    format!("{:02}:{:02}", t.hour(), t.minute())
}

fn nanos_of(t: Time) -> i64 {
    if t == Time::MAX {
        return NANOS_PER_DAY;
    }
    i64::from(t.hour()) * 3_600_000_000_000
        + i64::from(t.minute()) * NANOS_PER_MINUTE
        + i64::from(t.second()) * 1_000_000_000
        + i64::from(t.subsec_nanosecond())
}

fn at_nanos(d: Date, nanos: i64) -> DateTime {
    d.to_datetime(Time::MIN) + SignedDuration::from_nanos(nanos)
}

/// What a calendar entry says about a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// A public holiday: not worked even on a weekday.
    Holiday,
    /// A make-up working day (调休上班): worked even on a weekend.
    Workday,
}

impl DayKind {
    pub const ALL: &'static [DayKind] = &[DayKind::Holiday, DayKind::Workday];
    pub fn code(self) -> &'static str {
        match self {
            DayKind::Holiday => "holiday",
            DayKind::Workday => "workday",
        }
    }
}

/// One dated exception to the weekly pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    pub date: Date,
    pub kind: DayKind,
    pub name: String,
}

/// Why a day was skipped while counting working time (P-2: judgements explain themselves).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedDay {
    pub date: Date,
    /// `weekend`, or the holiday's name.
    pub reason: String,
}

/// A due time with the non-working days it stepped over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Due {
    pub at: Timestamp,
    pub skipped: Vec<SkippedDay>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("the calendar has no working time within {MAX_DAYS_SCANNED} days of {0}")]
    NoWorkingTime(Date),
    #[error("the amount of working time must not be negative")]
    Negative,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingCalendar {
    weekend: Vec<Weekday>,
    hours: WorkingHours,
    days: BTreeMap<Date, (DayKind, String)>,
}

impl WorkingCalendar {
    pub fn new(weekend: Vec<Weekday>, hours: WorkingHours, days: &[CalendarDay]) -> WorkingCalendar {
        WorkingCalendar { weekend, hours, days: days.iter().map(|d| (d.date, (d.kind, d.name.clone()))).collect() }
    }

    pub fn hours(&self) -> &WorkingHours {
        &self.hours
    }

    /// A holiday is never worked; a make-up day is always worked; otherwise the weekday decides.
    pub fn is_working_day(&self, d: Date) -> bool {
        match self.days.get(&d) {
            Some((DayKind::Holiday, _)) => false,
            Some((DayKind::Workday, _)) => true,
            None => !self.weekend.contains(&d.weekday()),
        }
    }

    fn skip_reason(&self, d: Date) -> String {
        match self.days.get(&d) {
            Some((DayKind::Holiday, name)) => name.clone(),
            _ => "weekend".into(),
        }
    }

    /// Due time of `minutes` working minutes counted from `start`, in zone `tz`.
    ///
    /// Time outside the working periods does not count: a lead arriving on Friday evening
    /// with a 6-working-hour SLA is due on Monday (or on a make-up Saturday) afternoon.
    pub fn add_working_minutes(&self, start: Timestamp, tz: &TimeZone, minutes: i64) -> Result<Due, CalendarError> {
        if minutes < 0 {
            return Err(CalendarError::Negative);
        }
        let mut remaining = minutes.checked_mul(NANOS_PER_MINUTE).ok_or(CalendarError::Negative)?;
        let local = start.to_zoned(tz.clone()).datetime();
        let mut date = local.date();
        let mut t = nanos_of(local.time());
        let mut skipped = Vec::new();
        for _ in 0..MAX_DAYS_SCANNED {
            if self.is_working_day(date) {
                for (s, e) in &self.hours.periods {
                    let (s, e) = (nanos_of(*s), nanos_of(*e));
                    if t >= e {
                        continue;
                    }
                    let from = t.max(s);
                    let available = e - from;
                    if remaining <= available {
                        let dt = at_nanos(date, from + remaining);
                        let at = tz.to_timestamp(dt).map_err(|_| CalendarError::NoWorkingTime(date))?;
                        return Ok(Due { at, skipped });
                    }
                    remaining -= available;
                    t = e;
                }
            } else {
                skipped.push(SkippedDay { date, reason: self.skip_reason(date) });
            }
            date = date.tomorrow().map_err(|_| CalendarError::NoWorkingTime(date))?;
            t = 0;
        }
        Err(CalendarError::NoWorkingTime(local.date()))
    }

    /// Due time of `hours` working hours from `start`.
    pub fn add_working_hours(&self, start: Timestamp, tz: &TimeZone, hours: i64) -> Result<Due, CalendarError> {
        self.add_working_minutes(start, tz, hours.checked_mul(60).ok_or(CalendarError::Negative)?)
    }

    /// Due time of `days` working days from `start`: that many full working days of working
    /// time, so a request made on Monday 10:00 with 3 working days is due Thursday 10:00,
    /// and one made after hours on Friday is due at the end of Wednesday.
    pub fn add_working_days(&self, start: Timestamp, tz: &TimeZone, days: i64) -> Result<Due, CalendarError> {
        let per_day = self.hours.minutes_per_day();
        self.add_working_minutes(start, tz, days.checked_mul(per_day).ok_or(CalendarError::Negative)?)
    }

    /// Working minutes between two instants (0 if `end` is not after `start`); the measure
    /// an SLA report uses for "how long did the first response take".
    pub fn working_minutes_between(&self, start: Timestamp, end: Timestamp, tz: &TimeZone) -> i64 {
        if end <= start {
            return 0;
        }
        let a = start.to_zoned(tz.clone()).datetime();
        let b = end.to_zoned(tz.clone()).datetime();
        let mut total = 0i64;
        let mut date = a.date();
        while date <= b.date() {
            if self.is_working_day(date) {
                let lo = if date == a.date() { nanos_of(a.time()) } else { 0 };
                let hi = if date == b.date() { nanos_of(b.time()) } else { NANOS_PER_DAY };
                for (s, e) in &self.hours.periods {
                    let (s, e) = (nanos_of(*s).max(lo), nanos_of(*e).min(hi));
                    if e > s {
                        total += e - s;
                    }
                }
            }
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        total / NANOS_PER_MINUTE
    }
}

/// A shipped holiday file (see `data/`), expanded to one entry per date.
#[derive(Debug, Deserialize)]
struct HolidayFile {
    region: String,
    year: i16,
    holidays: Vec<HolidayRange>,
    workdays: Vec<MakeupDay>,
}

#[derive(Debug, Deserialize)]
struct HolidayRange {
    name: String,
    from: Date,
    to: Date,
}

#[derive(Debug, Deserialize)]
struct MakeupDay {
    name: String,
    date: Date,
}

/// The mainland-China arrangement shipped with MarketOps, by year.
pub const SHIPPED: &[(&str, i16, &str)] = &[("CN", 2026, include_str!("../data/cn-mainland-2026.toml"))];

/// Parses a holiday file into calendar days.
pub fn parse_holiday_file(text: &str) -> Result<(String, i16, Vec<CalendarDay>), String> {
    let file: HolidayFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for h in &file.holidays {
        if h.to < h.from {
            return Err(format!("holiday {} ends before it starts", h.name));
        }
        let mut d = h.from;
        while d <= h.to {
            out.push(CalendarDay { date: d, kind: DayKind::Holiday, name: h.name.clone() });
            d = d.tomorrow().map_err(|e| e.to_string())?;
        }
    }
    for w in &file.workdays {
        out.push(CalendarDay { date: w.date, kind: DayKind::Workday, name: w.name.clone() });
    }
    out.sort_by_key(|d| d.date);
    Ok((file.region, file.year, out))
}

/// The shipped days for `year`, if MarketOps ships that year.
pub fn shipped_days(region: &str, year: i16) -> Option<Vec<CalendarDay>> {
    SHIPPED
        .iter()
        .find(|(r, y, _)| *r == region && *y == year)
        .and_then(|(_, _, text)| parse_holiday_file(text).ok())
        .map(|(_, _, days)| days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn cn() -> WorkingCalendar {
        let days = shipped_days("CN", 2026).unwrap();
        WorkingCalendar::new(vec![Weekday::Saturday, Weekday::Sunday], WorkingHours::default(), &days)
    }

    fn sh() -> TimeZone {
        TimeZone::get("Asia/Shanghai").unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        date(2026, 1, 1).at(0, 0, 0, 0); // keep the import used in every cfg
        let dt: DateTime = s.parse().unwrap();
        sh().to_timestamp(dt).unwrap()
    }

    fn local(t: Timestamp) -> String {
        t.to_zoned(sh()).datetime().to_string()
    }

    #[test]
    fn shipped_2026_file_is_complete() {
        let days = shipped_days("CN", 2026).unwrap();
        let holidays = days.iter().filter(|d| d.kind == DayKind::Holiday).count();
        // 3 + 9 + 3 + 5 + 3 + 3 + 7 days off, six make-up Saturdays/Sundays.
        assert_eq!(holidays, 33);
        assert_eq!(days.len() - holidays, 6);
        let cal = cn();
        assert!(!cal.is_working_day(date(2026, 10, 1)));
        assert!(cal.is_working_day(date(2026, 10, 10)), "make-up Saturday is worked");
        assert!(cal.is_working_day(date(2026, 9, 20)), "make-up Sunday is worked");
        assert!(!cal.is_working_day(date(2026, 10, 17)), "an ordinary Saturday is not");
    }

    /// O-1: 6 working hours from Wednesday 30 Sep 15:00 → 3 h that day, then the National Day
    /// holiday (1–7 Oct) and the weekend inside it are skipped; Thursday 8 Oct is next.
    #[test]
    fn o1_working_hours_across_a_holiday() {
        let due = cn().add_working_hours(ts("2026-09-30T15:00"), &sh(), 6).unwrap();
        assert_eq!(local(due.at), "2026-10-08T12:00:00");
        assert_eq!(due.skipped.len(), 7);
        assert_eq!(due.skipped[0].reason, "国庆节");
    }

    /// O-1: a make-up Saturday (10 Oct 2026) counts as a working day.
    #[test]
    fn o1_working_days_across_a_makeup_saturday() {
        // Friday 9 Oct 10:00 + 1 working day → Saturday 10 Oct 10:00, not Monday.
        let due = cn().add_working_days(ts("2026-10-09T10:00"), &sh(), 1).unwrap();
        assert_eq!(local(due.at), "2026-10-10T10:00:00");
        assert!(due.skipped.is_empty());
        // And an ordinary Saturday is skipped: Friday 16 Oct → Monday 19 Oct.
        let due = cn().add_working_days(ts("2026-10-16T10:00"), &sh(), 1).unwrap();
        assert_eq!(local(due.at), "2026-10-19T10:00:00");
        assert_eq!(due.skipped.iter().map(|s| s.reason.as_str()).collect::<Vec<_>>(), ["weekend", "weekend"]);
    }

    /// R-2's "3 working days" for something filed on Friday evening before the Spring
    /// Festival: the make-up Saturday 14 Feb is worked, then 15–23 Feb are off.
    #[test]
    fn o1_three_working_days_around_spring_festival() {
        let due = cn().add_working_days(ts("2026-02-13T20:00"), &sh(), 3).unwrap();
        // Saturday 14 Feb (make-up day) = day 1, Tuesday 24 Feb = day 2, Wednesday 25 = day 3.
        assert_eq!(local(due.at), "2026-02-25T18:00:00");
    }

    #[test]
    fn lunch_break_and_edges() {
        let cal = cn();
        // 11:00 + 2h: 1 h before lunch, 1 h after → 14:00.
        assert_eq!(local(cal.add_working_hours(ts("2026-03-02T11:00"), &sh(), 2).unwrap().at), "2026-03-02T14:00:00");
        // Zero hours outside working time → the next working instant.
        assert_eq!(local(cal.add_working_hours(ts("2026-03-02T07:30"), &sh(), 0).unwrap().at), "2026-03-02T09:00:00");
        // Exactly at the end of the day: the next day's work.
        assert_eq!(local(cal.add_working_hours(ts("2026-03-02T18:00"), &sh(), 1).unwrap().at), "2026-03-03T10:00:00");
        assert_eq!(cal.add_working_hours(ts("2026-03-02T18:00"), &sh(), -1), Err(CalendarError::Negative));
    }

    #[test]
    fn the_same_instant_in_another_zone() {
        // 09:00 in Shanghai is 01:00 UTC: in a UTC calendar that is before work starts.
        let utc = TimeZone::UTC;
        let due = cn().add_working_hours(ts("2026-03-02T09:00"), &utc, 1).unwrap();
        assert_eq!(due.at.to_string(), "2026-03-02T10:00:00Z");
    }

    #[test]
    fn working_minutes_between_counts_only_working_time() {
        let cal = cn();
        assert_eq!(cal.working_minutes_between(ts("2026-09-30T15:00"), ts("2026-10-08T12:00"), &sh()), 6 * 60);
        assert_eq!(cal.working_minutes_between(ts("2026-03-02T11:00"), ts("2026-03-02T14:00"), &sh()), 120);
        assert_eq!(cal.working_minutes_between(ts("2026-03-02T14:00"), ts("2026-03-02T11:00"), &sh()), 0);
    }

    #[test]
    fn working_hours_parse_errors() {
        assert!(WorkingHours::parse("").is_err());
        assert!(WorkingHours::parse("9-18").is_err());
        assert!(WorkingHours::parse("13:00-18:00,09:00-12:00").is_err());
        assert!(WorkingHours::parse("09:00-25:00").is_err());
        assert_eq!(WorkingHours::parse("09:00-12:00, 13:00-18:00").unwrap(), WorkingHours::default());
        assert_eq!(WorkingHours::parse("00:00-24:00").unwrap().minutes_per_day(), 1440);
    }

    #[test]
    fn no_working_time_is_an_error_not_a_hang() {
        let all = crate::company::WEEKDAYS.to_vec();
        let cal = WorkingCalendar::new(all, WorkingHours::default(), &[]);
        assert!(matches!(
            cal.add_working_hours(ts("2026-03-02T09:00"), &sh(), 1),
            Err(CalendarError::NoWorkingTime(_))
        ));
    }
}
