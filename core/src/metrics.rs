//! Per-opcode request counters and latency histograms, per device.
//!
//! Off by default: then the request path does not read the clock and touches no shared
//! cache line. On, each completion adds to relaxed atomics: a count, an error count and a
//! log-linear latency bucket (4 sub-buckets per power of two, ~19% resolution).

use crate::abi::{Opcode, OPCODE_SLOTS};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const SUB: usize = 4;
const BUCKETS: usize = 40 * SUB;

/// Counters of one device.
pub struct Metrics {
    enabled: AtomicBool,
    count: [AtomicU64; OPCODE_SLOTS],
    errors: [AtomicU64; OPCODE_SLOTS],
    latency: Box<[[AtomicU64; BUCKETS]; OPCODE_SLOTS]>,
}

/// A snapshot of one opcode's counters.
#[derive(Clone, Debug, PartialEq)]
pub struct OpStats {
    /// Opcode name.
    pub op: &'static str,
    /// Completed requests.
    pub count: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Median latency, decode to completion.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            enabled: AtomicBool::new(false),
            count: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            latency: Box::new(std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))),
        }
    }
}

fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let exp = 63 - ns.leading_zeros() as usize; // ns >= 4 → exp >= 2
    let sub = ((ns >> (exp - 2)) & (SUB as u64 - 1)) as usize;
    ((exp - 1) * SUB + sub).min(BUCKETS - 1)
}

fn bucket_floor(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let exp = b / SUB + 1;
    let sub = (b % SUB) as u64;
    (1u64 << exp) + (sub << (exp - 2))
}

impl Metrics {
    /// Turns collection on or off.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Relaxed);
    }

    /// Whether collection is on.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// Records one completed request.
    pub fn record(&self, op: Opcode, error: bool, latency: Duration) {
        let s = op.slot();
        self.count[s].fetch_add(1, Relaxed);
        if error {
            self.errors[s].fetch_add(1, Relaxed);
        }
        let ns = latency.as_nanos().min(u64::MAX as u128) as u64;
        self.latency[s][bucket(ns)].fetch_add(1, Relaxed);
    }

    /// Snapshot of every opcode that saw at least one request.
    pub fn snapshot(&self) -> Vec<OpStats> {
        (0..OPCODE_SLOTS)
            .filter_map(|s| {
                let count = self.count[s].load(Relaxed);
                if count == 0 {
                    return None;
                }
                let hist: Vec<u64> = self.latency[s].iter().map(|a| a.load(Relaxed)).collect();
                let pct = |p: f64| {
                    let target = ((count as f64) * p).ceil() as u64;
                    let mut acc = 0;
                    for (b, n) in hist.iter().enumerate() {
                        acc += n;
                        if acc >= target.max(1) {
                            return Duration::from_nanos(bucket_floor(b));
                        }
                    }
                    Duration::ZERO
                };
                Some(OpStats {
                    op: Opcode::from_u32(s as u32).name(),
                    count,
                    errors: self.errors[s].load(Relaxed),
                    p50: pct(0.5),
                    p99: pct(0.99),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_bracket_the_value() {
        let mut last = 0;
        for ns in [0u64, 1, 3, 4, 5, 7, 8, 100, 1000, 123_456, 10_000_000_000] {
            let b = bucket(ns);
            assert!(b >= last, "bucket order broke at {ns}");
            last = b;
            assert!(bucket_floor(b) <= ns, "floor above value for {ns}");
            if b + 1 < BUCKETS {
                assert!(bucket_floor(b + 1) > ns, "next floor not above value for {ns}");
            }
        }
    }

    #[test]
    fn snapshot_reports_counts_errors_and_percentiles() {
        let m = Metrics::default();
        for i in 0..100u64 {
            m.record(Opcode::Getattr, i % 10 == 0, Duration::from_micros(i + 1));
        }
        let s = m.snapshot();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].op, "getattr");
        assert_eq!(s[0].count, 100);
        assert_eq!(s[0].errors, 10);
        assert!(s[0].p50 >= Duration::from_micros(40) && s[0].p50 <= Duration::from_micros(51));
        assert!(s[0].p99 >= Duration::from_micros(80) && s[0].p99 <= Duration::from_micros(100));
    }
}
