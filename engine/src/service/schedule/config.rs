//! `[[schedule]]` in the service config: as written, and validated.

use std::time::Duration;

use serde::Deserialize;

use super::cadence::{self, Cadence, CadenceError};
use super::slots::{CatchUp, DEFAULT_GRACE};

/// One `[[schedule]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleFile {
    /// The schedule's name, used by the API (`/api/v1/schedules/{name}/pause`) and in
    /// the catalog's record of its slots: letters, digits, `_` and `-`.
    pub name: String,
    /// The configured job (`[[job]] name`) it runs, whole (no narrowing).
    pub job: String,
    /// "weekly" (with `day` and `time`), "monthly" (with `day_of_month` and `time`) or
    /// "cron" (with `cron`).
    pub cadence: String,
    /// Weekly: the weekday, "monday" to "sunday" (or "mon" to "sun").
    pub day: Option<String>,
    /// Monthly: 1 to 31; a month shorter than that runs on its last day.
    pub day_of_month: Option<u32>,
    /// Weekly and monthly: the local time, "HH:MM" (24-hour).
    pub time: Option<String>,
    /// Cron: five fields (minute hour day-of-month month day-of-week), e.g. "30 2 * * 1".
    pub cron: Option<String>,
    /// The IANA time zone of `time` or `cron` ("UTC", the default; "Europe/Berlin").
    pub time_zone: Option<String>,
    /// After the server was down across a slot: "once" (the default) runs the latest
    /// missed slot once when it is back; "skip" records it missed and waits for the next.
    pub catch_up: Option<CatchUp>,
    /// How late a slot may still start and count as on time ("10m", the default); a
    /// slot found later than this was missed and `catch_up` applies.
    pub grace: Option<String>,
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub job: String,
    pub cadence: Cadence,
    pub catch_up: CatchUp,
    pub grace: Duration,
}

/// What is wrong with a `[[schedule]]` table: the key and why.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{0:?} is not a schedule name; use 1 to 64 letters, digits, _ and -")]
    Name(String),
    #[error("{0:?} is listed twice; give each schedule its own name")]
    Duplicate(String),
    #[error("{job:?} is not a configured job; add it as [[job]] or use one of: {known}")]
    Job { job: String, known: String },
    #[error("{0:?} is not a cadence; use \"weekly\", \"monthly\" or \"cron\"")]
    Cadence(String),
    #[error("is required with cadence = \"{0}\"")]
    Missing(&'static str),
    #[error("does not apply to cadence = \"{0}\"; remove it")]
    NotApplicable(&'static str),
    #[error(transparent)]
    Value(#[from] CadenceError),
    #[error("{0}")]
    Grace(String),
}

impl ScheduleError {
    /// The offending key within the table.
    fn at(self, i: usize, key: &str) -> (String, ScheduleError) {
        (format!("schedule[{i}].{key}"), self)
    }
}

/// Validates every `[[schedule]]` against the configured job names; errors come with
/// the key they are about.
pub fn build(files: &[ScheduleFile], jobs: &[&str]) -> Result<Vec<Schedule>, (String, ScheduleError)> {
    let mut out: Vec<Schedule> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if f.name.is_empty() || f.name.len() > 64 || !f.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(ScheduleError::Name(f.name.clone()).at(i, "name"));
        }
        if out.iter().any(|s| s.name == f.name) {
            return Err(ScheduleError::Duplicate(f.name.clone()).at(i, "name"));
        }
        if !jobs.contains(&f.job.as_str()) {
            return Err(ScheduleError::Job { job: f.job.clone(), known: jobs.join(", ") }.at(i, "job"));
        }
        let tz = cadence::parse_tz(f.time_zone.as_deref().unwrap_or("UTC")).map_err(|e| ScheduleError::from(e).at(i, "time_zone"))?;
        let kind: &'static str = match f.cadence.as_str() {
            "weekly" => "weekly",
            "monthly" => "monthly",
            "cron" => "cron",
            other => return Err(ScheduleError::Cadence(other.into()).at(i, "cadence")),
        };
        let required = |v: Option<&str>, key: &str| v.map(str::to_string).ok_or_else(|| ScheduleError::Missing(kind).at(i, key));
        let stray = |present: bool, key: &str| if present { Err(ScheduleError::NotApplicable(kind).at(i, key)) } else { Ok(()) };
        let time = |f: &ScheduleFile| -> Result<_, (String, ScheduleError)> {
            cadence::parse_time(&required(f.time.as_deref(), "time")?).map_err(|e| ScheduleError::from(e).at(i, "time"))
        };
        let cadence = match kind {
            "weekly" => {
                stray(f.day_of_month.is_some(), "day_of_month")?;
                stray(f.cron.is_some(), "cron")?;
                let day = cadence::parse_weekday(&required(f.day.as_deref(), "day")?).map_err(|e| ScheduleError::from(e).at(i, "day"))?;
                Cadence::Weekly { day, time: time(f)?, tz }
            }
            "monthly" => {
                stray(f.day.is_some(), "day")?;
                stray(f.cron.is_some(), "cron")?;
                let day = f.day_of_month.ok_or_else(|| ScheduleError::Missing(kind).at(i, "day_of_month"))?;
                let day = cadence::parse_day_of_month(day).map_err(|e| ScheduleError::from(e).at(i, "day_of_month"))?;
                Cadence::Monthly { day, time: time(f)?, tz }
            }
            _ => {
                stray(f.day.is_some(), "day")?;
                stray(f.day_of_month.is_some(), "day_of_month")?;
                stray(f.time.is_some(), "time")?;
                cadence::parse_cron(&required(f.cron.as_deref(), "cron")?, tz).map_err(|e| ScheduleError::from(e).at(i, "cron"))?
            }
        };
        let grace = match &f.grace {
            None => DEFAULT_GRACE,
            Some(g) => crate::job::parse_duration(g).map_err(|m| ScheduleError::Grace(m).at(i, "grace"))?,
        };
        out.push(Schedule { name: f.name.clone(), job: f.job.clone(), cadence, catch_up: f.catch_up.unwrap_or(CatchUp::Once), grace });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_one(body: &str) -> Result<Vec<Schedule>, (String, String)> {
        #[derive(Deserialize)]
        struct F {
            schedule: Vec<ScheduleFile>,
        }
        let f: F = toml::from_str(&format!("[[schedule]]\nname = \"s\"\njob = \"demo\"\n{body}")).unwrap();
        build(&f.schedule, &["demo"]).map_err(|(k, e)| (k, e.to_string()))
    }

    #[test]
    fn each_cadence_takes_its_own_keys() {
        let ok = build_one("cadence = \"weekly\"\nday = \"friday\"\ntime = \"18:00\"\ntime_zone = \"Asia/Tokyo\"\ncatch_up = \"skip\"\n")
            .unwrap();
        assert_eq!(ok[0].cadence.describe(), "every Friday at 18:00 (Asia/Tokyo)");
        assert_eq!(ok[0].catch_up, CatchUp::Skip);
        assert_eq!(ok[0].grace, DEFAULT_GRACE);
        let e = build_one("cadence = \"weekly\"\nday = \"friday\"\n").unwrap_err();
        assert_eq!(e, ("schedule[0].time".into(), "is required with cadence = \"weekly\"".into()));
        let e = build_one("cadence = \"monthly\"\nday = \"friday\"\nday_of_month = 3\ntime = \"01:00\"\n").unwrap_err();
        assert_eq!(e.0, "schedule[0].day");
        let e = build_one("cadence = \"cron\"\ncron = \"0 6 * * 1-5\"\ntime = \"01:00\"\n").unwrap_err();
        assert_eq!(e, ("schedule[0].time".into(), "does not apply to cadence = \"cron\"; remove it".into()));
        let e = build_one("cadence = \"daily\"\n").unwrap_err();
        assert_eq!(e.0, "schedule[0].cadence");
        let e = build_one("cadence = \"cron\"\ncron = \"0 6 * * 1-5\"\ntime_zone = \"Berlin\"\n").unwrap_err();
        assert!(e.1.contains("\"Berlin\" is not an IANA time zone"), "{e:?}");
    }

    #[test]
    fn names_and_jobs_are_checked() {
        #[derive(Deserialize)]
        struct F {
            schedule: Vec<ScheduleFile>,
        }
        let two = "[[schedule]]\nname = \"a\"\njob = \"demo\"\ncadence = \"cron\"\ncron = \"* * * * *\"\n";
        let f: F = toml::from_str(&format!("{two}{two}")).unwrap();
        let (key, e) = build(&f.schedule, &["demo"]).unwrap_err();
        assert_eq!((key.as_str(), e.to_string().as_str()), ("schedule[1].name", "\"a\" is listed twice; give each schedule its own name"));
        let (key, e) = build(&f.schedule, &["nightly"]).unwrap_err();
        assert_eq!(key, "schedule[0].job");
        assert!(e.to_string().contains("use one of: nightly"));
    }
}
