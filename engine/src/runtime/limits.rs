//! What one plugin may use: memory, wall time, log volume, open reads.

use std::time::Duration;

/// Bounds for one plugin instance. Defaults suit the built-in resources; a job can
/// raise or lower them per resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Size of each linear memory of the plugin (a Rust plugin has one).
    pub memory_bytes: u64,
    /// Wall time of one export, host calls included.
    pub time: Duration,
    /// Bytes of log messages kept per export (longer messages are cut, the rest dropped
    /// and counted).
    pub log_bytes: usize,
    /// Bytes in one record batch.
    pub batch_bytes: usize,
    /// Reads open at once.
    pub open_cursors: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: 256 << 20, time: Duration::from_secs(30 * 60), log_bytes: 1 << 20, batch_bytes: 16 << 20, open_cursors: 8 }
    }
}

/// `ResourceLimiter` that remembers whether the cap was hit, so a memory bomb is
/// reported as one instead of as a generic trap, and how much linear memory the
/// instance holds (`ferry plugins test` and the manifest's timings report its peak).
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    pub cap: u64,
    pub hit: Option<u64>,
    /// Bytes of all the instance's linear memories: their initial sizes plus every
    /// growth granted. Memories never shrink, so this is also the peak.
    pub linear_bytes: u64,
}

impl MemoryLimiter {
    pub fn new(cap: u64) -> Self {
        MemoryLimiter { cap, hit: None, linear_bytes: 0 }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = desired as u64;
        if total > self.cap {
            self.hit = Some(total);
            return Err(wasmtime::format_err!("memory cap of {} bytes reached (growing from {current} to {desired} bytes)", self.cap));
        }
        // Also called with `current` 0 when a memory is created at instantiation.
        self.linear_bytes += desired.saturating_sub(current) as u64;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use wasmtime::ResourceLimiter;

    use super::MemoryLimiter;

    #[test]
    fn linear_bytes_sum_every_memory_and_growth_under_the_cap() {
        let mut l = MemoryLimiter::new(10 << 20);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(l.memory_growing(0, 2 << 20, None).unwrap());
        assert!(l.memory_growing(1 << 20, 3 << 20, None).unwrap());
        assert_eq!(l.linear_bytes, 5 << 20);
        assert!(l.memory_growing(3 << 20, 11 << 20, None).is_err());
        assert_eq!((l.linear_bytes, l.hit), (5 << 20, Some(11 << 20)));
    }
}
