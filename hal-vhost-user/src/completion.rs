//! Returning finished chains to the guest: from the poller thread in batches (at most one
//! signal per batch), or from any other thread one at a time.
//!
//! A [`VringCompletion`] owns what its request's segments need (an `Arc` of the guest
//! memory mapping) and what the used ring needs (the vring handle, the head index). While a
//! poller thread processes a burst it opens a [`BurstScope`]: completions that run inline on
//! that thread only record `(head, len)`; a flush (every few completions, and when the
//! scope closes) puts them on the used ring under one lock and signals the guest once if
//! EVENT_IDX says so. Completions from other
//! threads (asynchronous backends) take the vring lock themselves.

use crate::stats::QueueStats;
use dpfs_core::Completion;
use std::cell::RefCell;
use std::sync::Arc;
use vhost_user_backend::{VringRwLock, VringT};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// The vring type of this HAL.
pub(crate) type Vring = VringRwLock<GuestMemoryAtomic<GuestMemoryMmap>>;

#[derive(Clone, Copy)]
struct Pending {
    head: u16,
    len: u32,
    generation: u64,
}

struct Burst {
    /// Identity of the queue being processed (address of its `QueueStats`).
    key: *const QueueStats,
    used: Vec<Pending>,
}

thread_local! {
    static BURST: RefCell<Option<Burst>> = const { RefCell::new(None) };
}

/// Completes one chain. Created when the chain is popped.
pub(crate) struct VringCompletion {
    pub(crate) vring: Vring,
    /// Keeps the mapping the request's segments point into alive until completion.
    pub(crate) _mem: Arc<GuestMemoryMmap>,
    pub(crate) head: u16,
    pub(crate) queue: Arc<QueueStats>,
    pub(crate) generation: u64,
}

impl Completion for VringCompletion {
    fn complete(self: Box<Self>, written: usize) {
        let len = u32::try_from(written).unwrap_or(u32::MAX);
        let key = Arc::as_ptr(&self.queue);
        let pending = Pending { head: self.head, len, generation: self.generation };
        let deferred = BURST.with(|b| match b.try_borrow_mut() {
            Ok(mut b) => match b.as_mut() {
                Some(burst) if burst.key == key => {
                    burst.used.push(pending);
                    None
                }
                _ => Some(pending),
            },
            Err(_) => Some(pending),
        });
        if let Some(p) = deferred {
            if dpfs_core::hold::is_held() {
                hold(self.vring, self.queue, p);
            } else {
                put_used(&self.vring, &self.queue, std::slice::from_ref(&p));
            }
        }
    }
}

/// Completions held on a backend thread that opted in (`dpfs_core::hold`).
#[derive(Default)]
struct Held {
    /// In arrival order.
    entries: Vec<(Vring, Arc<QueueStats>, Pending)>,
    /// A flush is registered with `dpfs_core::hold` for them.
    registered: bool,
}

/// Held completions handed over at once past this many (a busy thread that never idles still
/// returns them promptly).
const HELD_MAX: usize = 8;

thread_local! {
    static HELD: RefCell<Held> = RefCell::new(Held::default());
}

fn hold(vring: Vring, queue: Arc<QueueStats>, p: Pending) {
    let mut entry = Some((vring, queue, p));
    let held = HELD.try_with(|h| {
        let mut h = h.borrow_mut();
        if !h.registered {
            // Once until the thread's next `hold::flush` (not again after each HELD_MAX).
            dpfs_core::hold::on_flush(flush_registered);
            h.registered = true;
        }
        h.entries.extend(entry.take());
        h.entries.len()
    });
    match held {
        Ok(n) if n >= HELD_MAX => flush_held(),
        Ok(_) => {}
        // The thread is ending: nothing can be held any more; put it on its ring now.
        Err(std::thread::AccessError { .. }) => {
            if let Some((vring, queue, p)) = entry {
                put_used(&vring, &queue, std::slice::from_ref(&p));
            }
        }
    }
}

/// The flush registered with `dpfs_core::hold`: it has run, so the next hold registers again.
fn flush_registered() {
    let _ = HELD.try_with(|h| h.borrow_mut().registered = false);
    flush_held();
}

/// Puts every held completion on its ring: one lock and at most one signal per run of the
/// same queue and generation.
fn flush_held() {
    let entries = HELD.try_with(|h| std::mem::take(&mut h.borrow_mut().entries)).unwrap_or_default();
    Held { entries, registered: false }.put();
}

/// How many of `keys` (queue, generation), from the first, go on the ring together: the
/// same queue and the same generation. A queue's generation changes when the frontend stops
/// or resets it, and a new connection brings new rings: an older entry must never take a
/// newer one with it (it would be put on the old ring, or the newer one dropped as stale).
fn run_len(mut keys: impl Iterator<Item = (*const QueueStats, u64)>) -> usize {
    keys.next().map_or(0, |first| 1 + keys.take_while(|k| *k == first).count())
}

impl Held {
    fn put(&mut self) {
        let mut rest = &self.entries[..];
        while let Some((vring, queue, _)) = rest.first() {
            let run = run_len(rest.iter().map(|(_, q, p)| (Arc::as_ptr(q), p.generation)));
            let (batch, later) = rest.split_at(run);
            let used: Vec<Pending> = batch.iter().map(|(_, _, p)| *p).collect();
            put_used(vring, queue, &used);
            rest = later;
        }
        self.entries.clear();
    }
}

impl Drop for Held {
    // A thread that ends with completions held (its runtime shut down) still returns them.
    fn drop(&mut self) {
        self.put();
    }
}

/// Puts `used` on the ring under one lock and signals the guest if needed. Entries of an
/// older generation (the queue was stopped or reset since) are dropped.
fn put_used(vring: &Vring, queue: &QueueStats, used: &[Pending]) {
    if used.is_empty() {
        return;
    }
    let signal = {
        let mut state = vring.get_mut();
        // Read under the ring's lock, as the poller does: a reset between the read and the
        // lock could otherwise let a stale head onto the new ring.
        let current = queue.generation();
        let mut added = false;
        for p in used {
            if p.generation != current {
                tracing::debug!(head = p.head, "completion after queue reset dropped");
                continue;
            }
            match state.add_used(p.head, p.len) {
                Ok(()) => added = true,
                Err(e) => tracing::warn!(head = p.head, error = %e, "cannot put chain on the used ring"),
            }
        }
        added
            && state.needs_notification().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the used event index");
                false
            })
    };
    // The eventfd write happens outside the ring's write lock (the poller popping chains
    // waits on that lock); the used index it announces is already published.
    if signal {
        if let Err(e) = vring.signal_used_queue() {
            tracing::warn!(error = %e, "cannot signal the guest");
        }
    }
    for _ in used {
        queue.done();
    }
}

/// While alive, inline completions for `queue` on this thread are batched.
pub(crate) struct BurstScope<'a> {
    vring: &'a Vring,
    queue: &'a Arc<QueueStats>,
}

impl<'a> BurstScope<'a> {
    /// Opens a burst for `queue` on this thread.
    pub(crate) fn enter(vring: &'a Vring, queue: &'a Arc<QueueStats>) -> BurstScope<'a> {
        BURST.with(|b| {
            if let Ok(mut b) = b.try_borrow_mut() {
                *b = Some(Burst { key: Arc::as_ptr(queue), used: Vec::new() });
            }
        });
        BurstScope { vring, queue }
    }

    /// Flushes once at least `n` completions are recorded: the guest starts on the first
    /// replies while this thread works on the rest of a long burst.
    pub(crate) fn flush_over(&self, n: usize) {
        let full = BURST.with(|b| b.try_borrow().is_ok_and(|b| b.as_ref().is_some_and(|b| b.used.len() >= n)));
        if full {
            self.flush();
        }
    }

    /// Puts the completions recorded so far on the used ring, signalling once.
    pub(crate) fn flush(&self) {
        let used = BURST.with(|b| match b.try_borrow_mut() {
            Ok(mut b) => b.as_mut().map(|burst| std::mem::take(&mut burst.used)).unwrap_or_default(),
            Err(_) => Vec::new(),
        });
        put_used(self.vring, self.queue, &used);
    }
}

impl Drop for BurstScope<'_> {
    fn drop(&mut self) {
        self.flush();
        BURST.with(|b| {
            if let Ok(mut b) = b.try_borrow_mut() {
                *b = None;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::run_len;
    use crate::stats::QueueStats;

    #[test]
    fn a_run_is_one_queue_and_one_generation() {
        let (qa, qb) = (QueueStats::default(), QueueStats::default());
        let (a, b) = (&qa as *const QueueStats, &qb as *const QueueStats);
        assert_eq!(run_len(std::iter::empty()), 0);
        assert_eq!(run_len([(a, 1), (a, 1), (b, 1), (a, 1)].into_iter()), 2);
        // The same queue after a reset or a reconnect: the older entries go alone.
        assert_eq!(run_len([(a, 1), (a, 2), (a, 2)].into_iter()), 1);
        assert_eq!(run_len([(a, 2), (a, 2), (a, 2)].into_iter()), 3);
    }
}
