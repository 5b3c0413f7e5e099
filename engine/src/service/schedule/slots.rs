//! Which slot a schedule is at, and what to do about it: a pure function of the time,
//! the schedule and what the catalog recorded, so tests need no clock and no sleeping.
//!
//! Every slot the service acts on is recorded once in the catalog (keyed by schedule and
//! slot), whatever the outcome, and a slot at or before the last recorded one (or
//! before the schedule was first seen) is never considered again. That is what makes a
//! slot run at most once across restarts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::cadence::Cadence;

/// What a server that was down across a slot does when it comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Run the latest missed slot once (however many were missed).
    Once,
    /// Record the missed slot and wait for the next one.
    Skip,
}

/// What became of a slot: recorded in the catalog, shown by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Ran on time.
    Fired,
    /// Ran late, once, after the server was down across it (`catch_up = "once"`).
    CaughtUp,
    /// Not run: the server was down across it (`catch_up = "skip"`).
    Missed,
    /// Not run: the previous run of the same job was still queued or going.
    Busy,
    /// Not run: the schedule was paused.
    Paused,
    /// Not run: its run could not be prepared (the detail says why).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Fired => "fired",
            Outcome::CaughtUp => "caught_up",
            Outcome::Missed => "missed",
            Outcome::Busy => "busy",
            Outcome::Paused => "paused",
            Outcome::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Outcome {
        match s {
            "fired" => Outcome::Fired,
            "caught_up" => Outcome::CaughtUp,
            "missed" => Outcome::Missed,
            "busy" => Outcome::Busy,
            "paused" => Outcome::Paused,
            _ => Outcome::Error,
        }
    }

    /// Whether the slot starts a run.
    pub fn runs(self) -> bool {
        matches!(self, Outcome::Fired | Outcome::CaughtUp)
    }
}

/// What the scheduler knows of a schedule at a tick.
#[derive(Debug, Clone, Copy)]
pub struct Known {
    /// The latest of: when the schedule was first seen, its last recorded slot.
    pub floor: DateTime<Utc>,
    pub paused: bool,
    /// A run of the schedule's job is queued or going.
    pub busy: bool,
}

/// A tick's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No slot is due.
    Idle,
    /// Record `slot` with this outcome (and start a run when it [`Outcome::runs`]).
    Record { slot: DateTime<Utc>, outcome: Outcome },
}

/// A slot is on time while it is at most this old; later, it was missed (the server
/// was down, or stopped, across it) and `catch_up` decides.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10 * 60);

/// The decision at `now` for a schedule with `cadence`.
pub fn decide(now: DateTime<Utc>, known: Known, cadence: &Cadence, catch_up: CatchUp, grace: Duration) -> Decision {
    let Some(slot) = cadence.latest_at_or_before(now) else { return Decision::Idle };
    if slot <= known.floor {
        return Decision::Idle;
    }
    let late = (now - slot).to_std().unwrap_or_default() > grace;
    let outcome = if known.paused {
        Outcome::Paused
    } else if late && catch_up == CatchUp::Skip {
        Outcome::Missed
    } else if known.busy {
        Outcome::Busy
    } else if late {
        Outcome::CaughtUp
    } else {
        Outcome::Fired
    };
    Decision::Record { slot, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::schedule::cadence::{parse_time, parse_tz};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn weekly() -> Cadence {
        // Mondays at 02:00 UTC; 2026-12-07 is a Monday.
        Cadence::Weekly { day: chrono::Weekday::Mon, time: parse_time("02:00").unwrap(), tz: parse_tz("UTC").unwrap() }
    }

    fn known(floor: &str) -> Known {
        Known { floor: utc(floor), paused: false, busy: false }
    }

    /// Ticks from `from` every minute for `minutes`, recording as the scheduler does.
    fn run(mut k: Known, from: &str, minutes: i64, catch_up: CatchUp) -> Vec<(DateTime<Utc>, Outcome)> {
        let mut recorded = Vec::new();
        for m in 0..=minutes {
            let now = utc(from) + chrono::Duration::minutes(m);
            if let Decision::Record { slot, outcome } = decide(now, k, &weekly(), catch_up, DEFAULT_GRACE) {
                recorded.push((slot, outcome));
                k.floor = slot;
            }
        }
        recorded
    }

    #[test]
    fn a_weekly_slot_fires_once() {
        let fired = run(known("2026-12-06T00:00:00Z"), "2026-12-07T01:00:00Z", 6 * 60, CatchUp::Once);
        assert_eq!(fired, vec![(utc("2026-12-07T02:00:00Z"), Outcome::Fired)]);
    }

    #[test]
    fn a_restart_inside_the_slot_does_not_repeat_it() {
        // The catalog recorded the slot before the restart: the floor is that slot.
        let k = known("2026-12-07T02:00:00Z");
        assert_eq!(decide(utc("2026-12-07T02:03:00Z"), k, &weekly(), CatchUp::Once, DEFAULT_GRACE), Decision::Idle);
        assert_eq!(decide(utc("2026-12-09T00:00:00Z"), k, &weekly(), CatchUp::Once, DEFAULT_GRACE), Decision::Idle);
    }

    #[test]
    fn down_across_slots_catches_up_once_or_skips() {
        // Last fired on 2026-11-23; down until Tuesday 2026-12-08, across two slots.
        let k = known("2026-11-23T02:00:00Z");
        let once = run(k, "2026-12-08T09:00:00Z", 60, CatchUp::Once);
        assert_eq!(once, vec![(utc("2026-12-07T02:00:00Z"), Outcome::CaughtUp)]);
        let skip = run(k, "2026-12-08T09:00:00Z", 60, CatchUp::Skip);
        assert_eq!(skip, vec![(utc("2026-12-07T02:00:00Z"), Outcome::Missed)]);
        // Back within the grace period: on time, whatever the policy.
        let d = decide(utc("2026-12-07T02:09:00Z"), k, &weekly(), CatchUp::Skip, DEFAULT_GRACE);
        assert_eq!(d, Decision::Record { slot: utc("2026-12-07T02:00:00Z"), outcome: Outcome::Fired });
    }

    #[test]
    fn a_new_schedule_does_not_run_slots_before_it_was_seen() {
        assert_eq!(
            decide(utc("2026-12-08T00:00:00Z"), known("2026-12-07T12:00:00Z"), &weekly(), CatchUp::Once, DEFAULT_GRACE),
            Decision::Idle
        );
    }

    #[test]
    fn busy_and_paused_slots_are_recorded_not_run() {
        let slot = utc("2026-12-07T02:00:00Z");
        let now = utc("2026-12-07T02:00:05Z");
        let busy = Known { busy: true, ..known("2026-12-01T00:00:00Z") };
        assert_eq!(decide(now, busy, &weekly(), CatchUp::Once, DEFAULT_GRACE), Decision::Record { slot, outcome: Outcome::Busy });
        let paused = Known { paused: true, busy: true, ..known("2026-12-01T00:00:00Z") };
        assert_eq!(decide(now, paused, &weekly(), CatchUp::Once, DEFAULT_GRACE), Decision::Record { slot, outcome: Outcome::Paused });
        assert!(!Outcome::Busy.runs() && Outcome::CaughtUp.runs());
    }

    #[test]
    fn monthly_on_the_31st_fires_on_april_30_and_february_28_and_29() {
        let c = Cadence::Monthly { day: 31, time: parse_time("03:00").unwrap(), tz: parse_tz("UTC").unwrap() };
        let mut k = known("2027-01-31T03:00:00Z");
        let mut fired = Vec::new();
        // Hourly ticks through 2027 and into 2028.
        let mut now = utc("2027-02-01T00:00:00Z");
        while now < utc("2028-03-02T00:00:00Z") {
            if let Decision::Record { slot, outcome } = decide(now, k, &c, CatchUp::Once, DEFAULT_GRACE) {
                assert_eq!(outcome, Outcome::Fired);
                fired.push(slot);
                k.floor = slot;
            }
            now += chrono::Duration::hours(1);
        }
        assert_eq!(fired.len(), 13);
        for s in ["2027-02-28T03:00:00Z", "2027-04-30T03:00:00Z", "2027-06-30T03:00:00Z", "2027-12-31T03:00:00Z", "2028-02-29T03:00:00Z"] {
            assert!(fired.contains(&utc(s)), "{s} not in {fired:?}");
        }
    }
}
