//! The time the scheduler and the retention purge go by: the system clock, or (only in
//! builds with the `test-hooks` feature) a time the tests write to a file, so a test can
//! move the service a week ahead without sleeping for one.

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A fixed time: for unit tests.
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Under `test-hooks`, `FERRY_TEST_CLOCK` names a file holding an RFC 3339 time, read at
/// every tick (the system clock while the file is missing or unreadable).
#[cfg(feature = "test-hooks")]
struct FileClock(std::path::PathBuf);

#[cfg(feature = "test-hooks")]
impl Clock for FileClock {
    fn now(&self) -> DateTime<Utc> {
        std::fs::read_to_string(&self.0)
            .ok()
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
    }
}

/// The service's clock: the system's, unless a test build is told otherwise.
pub fn service_clock() -> Arc<dyn Clock> {
    #[cfg(feature = "test-hooks")]
    if let Some(path) = std::env::var_os("FERRY_TEST_CLOCK") {
        return Arc::new(FileClock(path.into()));
    }
    Arc::new(SystemClock)
}
