//! When a schedule's slots are: weekly (a weekday and a local time), monthly (a day of
//! the month, the month's last day when it is shorter, and a local time) or a cron
//! expression, each in an IANA time zone. Pure functions of a time: no clock here.
//!
//! A local time that does not exist (the hour skipped when clocks go forward) runs at
//! the first local time after the gap; one that exists twice (clocks go back) runs once,
//! at the earlier of the two.

use std::fmt;

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CadenceError {
    #[error("{0:?} is not a day of the week; use monday to sunday (or mon to sun)")]
    Weekday(String),
    #[error("{0} is not a day of the month; use 1 to 31 (31 runs on the last day of shorter months)")]
    DayOfMonth(u32),
    #[error("{0:?} is not a time of day; write it as \"HH:MM\", e.g. \"02:30\"")]
    Time(String),
    #[error("{0:?} is not an IANA time zone; use a name such as \"UTC\" or \"Europe/Berlin\"")]
    TimeZone(String),
    #[error("{expr:?} is not a cron expression ({reason}); use five fields, e.g. \"30 2 * * 1\" for Mondays at 02:30")]
    Cron { expr: String, reason: String },
}

/// A schedule's cadence, validated.
#[derive(Clone)]
pub enum Cadence {
    Weekly { day: Weekday, time: NaiveTime, tz: Tz },
    Monthly { day: u32, time: NaiveTime, tz: Tz },
    Cron { expr: String, cron: Box<croner::Cron>, tz: Tz },
}

impl fmt::Debug for Cadence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

pub fn parse_weekday(s: &str) -> Result<Weekday, CadenceError> {
    let lower = s.trim().to_ascii_lowercase();
    let day = match lower.get(..3) {
        Some("mon") => Weekday::Mon,
        Some("tue") => Weekday::Tue,
        Some("wed") => Weekday::Wed,
        Some("thu") => Weekday::Thu,
        Some("fri") => Weekday::Fri,
        Some("sat") => Weekday::Sat,
        Some("sun") => Weekday::Sun,
        _ => return Err(CadenceError::Weekday(s.into())),
    };
    // "mon" or the full English name, nothing in between ("mond" is a typo).
    let full = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][day.num_days_from_monday() as usize];
    if lower.len() == 3 || lower == full { Ok(day) } else { Err(CadenceError::Weekday(s.into())) }
}

pub fn parse_time(s: &str) -> Result<NaiveTime, CadenceError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| CadenceError::Time(s.into()))
}

pub fn parse_tz(s: &str) -> Result<Tz, CadenceError> {
    s.trim().parse::<Tz>().map_err(|_| CadenceError::TimeZone(s.into()))
}

pub fn parse_day_of_month(day: u32) -> Result<u32, CadenceError> {
    if (1..=31).contains(&day) { Ok(day) } else { Err(CadenceError::DayOfMonth(day)) }
}

pub fn parse_cron(expr: &str, tz: Tz) -> Result<Cadence, CadenceError> {
    let cron = croner::parser::CronParser::builder()
        .build()
        .parse(expr.trim())
        .map_err(|e| CadenceError::Cron { expr: expr.into(), reason: e.to_string() })?;
    Ok(Cadence::Cron { expr: expr.trim().into(), cron: Box::new(cron), tz })
}

/// The last day of a month (28 to 31).
pub fn last_day_of_month(year: i32, month: u32) -> u32 {
    let first_next = if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    first_next.and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// `date` at local `time` in `tz`, as an instant: the earlier of two in a repeated hour,
/// the first valid minute after a skipped one.
fn resolve(tz: Tz, date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    let local = date.and_time(time);
    for minutes in 0..=24 * 60 {
        let t = local + chrono::Duration::minutes(minutes);
        match tz.from_local_datetime(&t) {
            LocalResult::Single(x) => return Some(x.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => {}
        }
    }
    None
}

impl Cadence {
    pub fn tz(&self) -> Tz {
        match self {
            Cadence::Weekly { tz, .. } | Cadence::Monthly { tz, .. } | Cadence::Cron { tz, .. } => *tz,
        }
    }

    /// `weekly`, `monthly` or `cron`.
    pub fn kind(&self) -> &'static str {
        match self {
            Cadence::Weekly { .. } => "weekly",
            Cadence::Monthly { .. } => "monthly",
            Cadence::Cron { .. } => "cron",
        }
    }

    /// For people: "every Monday at 02:30 (Europe/Berlin)".
    pub fn describe(&self) -> String {
        match self {
            Cadence::Weekly { day, time, tz } => {
                let name =
                    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][day.num_days_from_monday() as usize];
                format!("every {name} at {} ({tz})", time.format("%H:%M"))
            }
            Cadence::Monthly { day, time, tz } => {
                let shorter = if *day > 28 { ", or the month's last day when it is shorter" } else { "" };
                format!("monthly on day {day}{shorter}, at {} ({tz})", time.format("%H:%M"))
            }
            Cadence::Cron { expr, tz, .. } => format!("cron \"{expr}\" ({tz})"),
        }
    }

    /// The slots of the local days around `t`, in order (weekly and monthly).
    fn day_slots(&self, t: DateTime<Utc>, backwards: bool) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        let local = t.with_timezone(&self.tz()).date_naive();
        // 70 days cover two months either way; a slot is at most 31 days apart.
        (0..70u64).filter_map(move |k| {
            let date = if backwards { local.checked_sub_days(Days::new(k))? } else { local.checked_add_days(Days::new(k))? };
            let date = if backwards { date.checked_add_days(Days::new(1))? } else { date.checked_sub_days(Days::new(1))? };
            match self {
                Cadence::Weekly { day, time, tz } => (date.weekday() == *day).then(|| resolve(*tz, date, *time)).flatten(),
                Cadence::Monthly { day, time, tz } => {
                    let wanted = (*day).min(last_day_of_month(date.year(), date.month()));
                    (date.day() == wanted).then(|| resolve(*tz, date, *time)).flatten()
                }
                Cadence::Cron { .. } => None,
            }
        })
    }

    /// The latest slot at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Cron { cron, tz, .. } => cron.find_previous_occurrence(&t.with_timezone(tz), true).ok().map(|x| x.with_timezone(&Utc)),
            _ => self.day_slots(t, true).find(|s| *s <= t),
        }
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Cadence::Cron { cron, tz, .. } => cron.find_next_occurrence(&t.with_timezone(tz), false).ok().map(|x| x.with_timezone(&Utc)),
            _ => self.day_slots(t, false).find(|s| *s > t),
        }
    }

    /// The next `n` slots after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            let Some(next) = self.next_after(at) else { break };
            out.push(next);
            at = next;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn monthly(day: u32, time: &str, tz: &str) -> Cadence {
        Cadence::Monthly { day, time: parse_time(time).unwrap(), tz: parse_tz(tz).unwrap() }
    }

    #[test]
    fn monthly_on_the_31st_runs_on_the_last_day_of_shorter_months() {
        let c = monthly(31, "02:00", "UTC");
        let next = c.upcoming(utc("2027-01-31T03:00:00Z"), 4);
        assert_eq!(
            next,
            vec![utc("2027-02-28T02:00:00Z"), utc("2027-03-31T02:00:00Z"), utc("2027-04-30T02:00:00Z"), utc("2027-05-31T02:00:00Z")]
        );
        // A leap year's February has 29 days.
        assert_eq!(c.next_after(utc("2028-02-01T00:00:00Z")), Some(utc("2028-02-29T02:00:00Z")));
        assert_eq!(c.latest_at_or_before(utc("2027-05-10T00:00:00Z")), Some(utc("2027-04-30T02:00:00Z")));
        assert_eq!(c.latest_at_or_before(utc("2027-04-30T02:00:00Z")), Some(utc("2027-04-30T02:00:00Z")));
        assert_eq!(c.latest_at_or_before(utc("2027-04-30T01:59:59Z")), Some(utc("2027-03-31T02:00:00Z")));
    }

    #[test]
    fn monthly_on_the_30th_skips_nothing_in_february() {
        let c = monthly(30, "00:00", "UTC");
        assert_eq!(c.next_after(utc("2026-02-01T00:00:00Z")), Some(utc("2026-02-28T00:00:00Z")));
        assert_eq!(c.next_after(utc("2026-02-28T00:00:00Z")), Some(utc("2026-03-30T00:00:00Z")));
    }

    #[test]
    fn weekly_in_a_time_zone() {
        let c = Cadence::Weekly { day: Weekday::Mon, time: parse_time("02:30").unwrap(), tz: parse_tz("Europe/Berlin").unwrap() };
        // 2026-12-07 is a Monday; Berlin is UTC+1 in winter.
        assert_eq!(c.next_after(utc("2026-12-01T00:00:00Z")), Some(utc("2026-12-07T01:30:00Z")));
        assert_eq!(c.latest_at_or_before(utc("2026-12-07T01:30:00Z")), Some(utc("2026-12-07T01:30:00Z")));
        assert_eq!(c.latest_at_or_before(utc("2026-12-07T01:29:00Z")), Some(utc("2026-11-30T01:30:00Z")));
        // Summer time: UTC+2.
        assert_eq!(c.next_after(utc("2026-07-01T00:00:00Z")), Some(utc("2026-07-06T00:30:00Z")));
        assert_eq!(c.upcoming(utc("2026-12-01T00:00:00Z"), 3).len(), 3);
    }

    #[test]
    fn a_skipped_local_time_runs_after_the_gap_and_a_repeated_one_once() {
        // Berlin skips 02:00-03:00 on 2027-03-28 (a Sunday).
        let c = Cadence::Weekly { day: Weekday::Sun, time: parse_time("02:30").unwrap(), tz: parse_tz("Europe/Berlin").unwrap() };
        assert_eq!(c.next_after(utc("2027-03-27T00:00:00Z")), Some(utc("2027-03-28T01:00:00Z")));
        // ...and repeats 02:00-03:00 on 2027-10-31: the earlier one, once.
        let slots = c.upcoming(utc("2027-10-30T00:00:00Z"), 2);
        assert_eq!(slots, vec![utc("2027-10-31T00:30:00Z"), utc("2027-11-07T01:30:00Z")]);
    }

    #[test]
    fn cron_in_a_time_zone() {
        let c = parse_cron("0 6 * * 1-5", parse_tz("America/New_York").unwrap()).unwrap();
        // 2026-12-04 is a Friday; New York is UTC-5 in December.
        assert_eq!(c.next_after(utc("2026-12-04T12:00:00Z")), Some(utc("2026-12-07T11:00:00Z")));
        assert_eq!(c.latest_at_or_before(utc("2026-12-05T12:00:00Z")), Some(utc("2026-12-04T11:00:00Z")));
        assert!(matches!(parse_cron("61 * * * *", Tz::UTC), Err(CadenceError::Cron { .. })));
    }

    #[test]
    fn parsing_names_the_value() {
        assert_eq!(parse_weekday("Monday"), Ok(Weekday::Mon));
        assert_eq!(parse_weekday("sun"), Ok(Weekday::Sun));
        assert!(parse_weekday("mond").unwrap_err().to_string().contains("\"mond\""));
        assert!(parse_time("25:00").is_err());
        assert!(parse_tz("Mars/Olympus").unwrap_err().to_string().contains("Mars/Olympus"));
        assert_eq!(parse_day_of_month(0), Err(CadenceError::DayOfMonth(0)));
        assert_eq!(last_day_of_month(2028, 2), 29);
        assert_eq!(last_day_of_month(2027, 12), 31);
    }
}
