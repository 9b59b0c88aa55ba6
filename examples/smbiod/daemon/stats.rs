//! A snapshot of a daemon's counters, for the CLI's summary and the tests.

pub use super::shared::Accounting;

/// What a daemon has done so far.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Credit and traffic counters.
    pub acct: Accounting,
    /// Credits held now.
    pub credits: u32,
    /// Times the daemon went to sleep on `smbiod_wait`.
    pub sleeps: u64,
    /// Wakes that found it asleep.
    pub wakes: u64,
    /// Request latencies (queued → final reply), microseconds.
    pub latencies_us: Vec<u32>,
}

impl Stats {
    /// The `p`-th percentile latency (0..=100) in microseconds; 0 with no
    /// samples.
    pub fn percentile_us(&self, p: f64) -> u32 {
        percentile(&self.latencies_us, p)
    }
}

/// The `p`-th percentile (nearest rank) of `samples`; 0 when empty.
pub fn percentile(samples: &[u32], p: f64) -> u32 {
    if samples.is_empty() {
        return 0;
    }
    let mut v = samples.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
