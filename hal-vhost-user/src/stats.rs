//! Per-queue counters of one device, kept across frontend connections.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::Arc;

/// Counters and lifecycle state of one virtqueue.
#[derive(Debug, Default)]
pub struct QueueStats {
    requests: AtomicU64,
    broken: AtomicU64,
    in_flight: AtomicU64,
    /// Bumped whenever the queue is stopped or reset: completions of an older generation
    /// must not touch the ring any more.
    generation: AtomicU64,
}

impl QueueStats {
    /// Counts `n` chains popped and in flight; returns the generation they belong to.
    pub(crate) fn popped(&self, n: u64) -> u64 {
        self.requests.fetch_add(n, Relaxed);
        self.in_flight.fetch_add(n, Relaxed);
        self.generation.load(Acquire)
    }

    pub(crate) fn broken(&self) -> u64 {
        self.broken.fetch_add(1, Relaxed)
    }

    pub(crate) fn done(&self) {
        self.in_flight.fetch_sub(1, Release);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Acquire)
    }

    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, AcqRel);
    }

    /// Requests popped from the queue but not completed yet.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Acquire)
    }
}

/// A snapshot of one queue's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// Queue index (0 = hiprio).
    pub queue: u16,
    /// Descriptor chains popped.
    pub requests: u64,
    /// Chains that were malformed and returned without reaching core, plus kicks on a
    /// queue whose available ring could not be trusted.
    pub broken: u64,
    /// Chains not completed yet.
    pub in_flight: u64,
}

/// Counters of one device.
#[derive(Debug)]
pub struct DeviceStats {
    queues: Box<[Arc<QueueStats>]>,
    connections: AtomicU64,
}

impl DeviceStats {
    /// Counters for `num_queues` queues.
    pub fn new(num_queues: usize) -> DeviceStats {
        DeviceStats {
            queues: (0..num_queues).map(|_| Arc::new(QueueStats::default())).collect(),
            connections: AtomicU64::new(0),
        }
    }

    /// The counters of queue `q`.
    pub fn queue(&self, q: usize) -> Option<&Arc<QueueStats>> {
        self.queues.get(q)
    }

    pub(crate) fn connected(&self) {
        self.connections.fetch_add(1, Relaxed);
    }

    /// Frontend connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Relaxed)
    }

    /// Requests in flight over all queues.
    pub fn in_flight(&self) -> u64 {
        self.queues.iter().map(|q| q.in_flight()).sum()
    }

    /// Invalidates every queue's outstanding completions (device reset, disconnect).
    pub(crate) fn bump_all(&self) {
        self.queues.iter().for_each(|q| q.bump_generation());
    }

    /// A snapshot of every queue.
    pub fn snapshot(&self) -> Vec<QueueSnapshot> {
        self.queues
            .iter()
            .enumerate()
            .map(|(i, q)| QueueSnapshot {
                queue: i as u16,
                requests: q.requests.load(Relaxed),
                broken: q.broken.load(Relaxed),
                in_flight: q.in_flight(),
            })
            .collect()
    }

    /// Waits until no request is in flight on `queue` (all queues if `None`), at most
    /// `limit`. Returns whether everything drained.
    pub fn drain(&self, queue: Option<usize>, limit: std::time::Duration) -> bool {
        let start = std::time::Instant::now();
        loop {
            let busy = match queue {
                Some(q) => self.queue(q).map(|s| s.in_flight()).unwrap_or(0),
                None => self.in_flight(),
            };
            if busy == 0 {
                return true;
            }
            if start.elapsed() >= limit {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
