//! Month windows, MX style: the past 1, 2, 3, 6, 12 or 24 months, or all time.
//!
//! The one calendar rule of ferry: a window of N months is `[as_of − N calendar months,
//! as_of)` in UTC. When the day does not exist in the earlier month it clamps to that
//! month's last day at the same time of day (2026-03-31T14:30:22Z minus one month starts
//! at 2026-02-28T14:30:22Z; 2024-03-31 minus one month starts on 2024-02-29). Records at
//! or after as_of are never in a window, "all" included.

use chrono::{DateTime, Utc};

/// The month counts MX offers.
pub const ALLOWED_MONTHS: [u32; 6] = [1, 2, 3, 6, 12, 24];

/// A resource's window choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Months {
    Last(u32),
    All,
}

impl Months {
    /// Parses a job value: one of [`ALLOWED_MONTHS`] or "all".
    pub fn parse(value: &toml::Value) -> Result<Months, String> {
        let allowed = || format!("allowed: {}, or \"all\"", ALLOWED_MONTHS.map(|m| m.to_string()).join(", "));
        match value {
            toml::Value::Integer(n) if ALLOWED_MONTHS.iter().any(|&m| m as i64 == *n) => Ok(Months::Last(*n as u32)),
            toml::Value::String(s) if s == "all" => Ok(Months::All),
            other => Err(format!("months = {other} is not a window MX offers ({})", allowed())),
        }
    }
}

/// Concrete bounds `[start, end)`, microseconds since the epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub start: Option<i64>,
    pub end: i64,
}

/// Checks that a window of `months` before `as_of` starts in year 1 or later (the
/// manifest writes its start in RFC 3339, which has no earlier years).
pub fn check(as_of: DateTime<Utc>, months: Months) -> Result<(), String> {
    let Months::Last(n) = months else { return Ok(()) };
    match as_of.checked_sub_months(chrono::Months::new(n)) {
        Some(start) if chrono::Datelike::year(&start) >= 1 => Ok(()),
        _ => Err(format!("months = {n} would start the window before year 1 (as_of is {}); use a later as_of or fewer months", as_of.to_rfc3339())),
    }
}

/// Resolves a window against the snapshot's as-of time.
pub fn resolve(as_of: DateTime<Utc>, months: Months) -> Bounds {
    let start = match months {
        Months::All => None,
        Months::Last(n) => Some(
            as_of
                .checked_sub_months(chrono::Months::new(n))
                .expect("as_of minus at most 24 months is a valid time")
                .timestamp_micros(),
        ),
    };
    Bounds { start, end: as_of.timestamp_micros() }
}

/// A resource's resolved window: its column and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub column: String,
    pub bounds: Bounds,
}

impl Window {
    /// `start`, RFC 3339 with microseconds (UTC), or `None` for all time.
    pub fn start_rfc3339(&self) -> Option<String> {
        self.bounds.start.map(rfc3339_micros)
    }

    pub fn end_rfc3339(&self) -> String {
        rfc3339_micros(self.bounds.end)
    }
}

fn rfc3339_micros(t: i64) -> String {
    DateTime::from_timestamp_micros(t).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)).unwrap_or_default()
}

/// Why a resource's window cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("`months` is set, but plugin `{plugin}` has no time window; remove `months` from this resource")]
    NoWindowColumn { plugin: String },
}

/// The window a resource exports: none when its plugin has no window column, else the
/// job's `months` (all time when unset) against `as_of`. `ferry run` and `ferry plan`
/// both resolve it here, so they count and read the same rows.
pub fn for_resource(plugin: &str, window_column: Option<&str>, months: Option<Months>, as_of: DateTime<Utc>) -> Result<Option<Window>, WindowError> {
    match (window_column, months) {
        (None, Some(_)) => Err(WindowError::NoWindowColumn { plugin: plugin.to_string() }),
        (None, None) => Ok(None),
        (Some(column), months) => Ok(Some(Window { column: column.to_string(), bounds: resolve(as_of, months.unwrap_or(Months::All)) })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn start(as_of: &str, months: u32) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(resolve(t(as_of), Months::Last(months)).start.unwrap()).unwrap()
    }

    #[test]
    fn the_31st_clamps_to_the_end_of_shorter_months() {
        assert_eq!(start("2026-03-31T14:30:22Z", 1), t("2026-02-28T14:30:22Z"));
        assert_eq!(start("2026-03-31T14:30:22Z", 6), t("2025-09-30T14:30:22Z"));
        assert_eq!(start("2026-05-31T00:00:00Z", 1), t("2026-04-30T00:00:00Z"));
        assert_eq!(start("2026-03-31T14:30:22Z", 12), t("2025-03-31T14:30:22Z"));
    }

    #[test]
    fn leap_years() {
        assert_eq!(start("2024-03-31T08:00:00Z", 1), t("2024-02-29T08:00:00Z"));
        assert_eq!(start("2024-02-29T08:00:00Z", 12), t("2023-02-28T08:00:00Z"));
        assert_eq!(start("2026-02-28T08:00:00Z", 24), t("2024-02-28T08:00:00Z"));
        assert_eq!(start("2028-02-29T23:59:59Z", 24), t("2026-02-28T23:59:59Z"));
    }

    #[test]
    fn the_end_is_as_of_and_all_has_no_start() {
        let as_of = t("2026-03-31T14:30:22Z");
        assert_eq!(resolve(as_of, Months::All), Bounds { start: None, end: as_of.timestamp_micros() });
        assert_eq!(resolve(as_of, Months::Last(3)).end, as_of.timestamp_micros());
    }

    #[test]
    fn months_need_a_window_column() {
        let as_of = t("2026-03-31T14:30:22Z");
        assert_eq!(for_resource("users", None, None, as_of), Ok(None));
        let e = for_resource("users", None, Some(Months::Last(3)), as_of).unwrap_err();
        assert!(e.to_string().contains("plugin `users` has no time window"), "{e}");
        let w = for_resource("transactions", Some("transacted_at"), None, as_of).unwrap().unwrap();
        assert_eq!((w.start_rfc3339(), w.end_rfc3339()), (None, "2026-03-31T14:30:22.000000Z".to_string()));
    }

    #[test]
    fn only_mx_windows_parse() {
        assert_eq!(Months::parse(&toml::Value::Integer(6)), Ok(Months::Last(6)));
        assert_eq!(Months::parse(&toml::Value::String("all".into())), Ok(Months::All));
        let e = Months::parse(&toml::Value::Integer(5)).unwrap_err();
        assert!(e.contains("months = 5") && e.contains("1, 2, 3, 6, 12, 24"), "{e}");
        assert!(Months::parse(&toml::Value::String("ever".into())).is_err());
    }
}
