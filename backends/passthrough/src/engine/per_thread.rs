//! One submission queue per submitting thread, created on first use together with its
//! completion thread, and all of them stopped and joined when the engine is dropped.

use parking_lot::Mutex;
use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

/// What a per-thread queue must offer its owner.
pub(super) trait Queue: Send + Sync + 'static {
    /// The completion thread's body; returns once stopped and drained.
    fn reap_loop(self: Arc<Self>);
    /// Asks `reap_loop` to return once nothing is outstanding.
    fn stop(&self);
}

thread_local! {
    /// This thread's queue for each engine instance (keyed by engine id). Weak: the engine
    /// owns its queues, so dropping it closes them even while this thread lives on.
    static QUEUES: RefCell<HashMap<u64, Weak<dyn Any + Send + Sync>>> = RefCell::new(HashMap::new());
}

/// A queue and its completion thread.
type Reaped<Q> = (Arc<Q>, Option<JoinHandle<()>>);

/// The queues of one engine instance.
pub(super) struct PerThread<Q: Queue> {
    id: u64,
    name: &'static str,
    all: Mutex<Vec<Reaped<Q>>>,
}

impl<Q: Queue> PerThread<Q> {
    /// Queues whose completion threads are called `name`.
    pub(super) fn new(name: &'static str) -> PerThread<Q> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        PerThread { id: IDS.fetch_add(1, Ordering::Relaxed), name, all: Mutex::new(Vec::new()) }
    }

    /// Queues created so far.
    pub(super) fn len(&self) -> usize {
        self.all.lock().len()
    }

    /// The calling thread's queue, made by `make` (and given a completion thread) on first
    /// use; `None` if either cannot be created.
    pub(super) fn get(&self, make: impl FnOnce() -> Option<Q>) -> Option<Arc<Q>> {
        QUEUES.with(|m| {
            if let Some(q) = m.borrow().get(&self.id).and_then(Weak::upgrade) {
                return q.downcast::<Q>().ok();
            }
            let q = Arc::new(make()?);
            let reaper = q.clone();
            let t = std::thread::Builder::new()
                .name(self.name.into())
                .spawn(move || {
                    dpfs_core::thread_role::enter(dpfs_core::ThreadRole::IoCompletion);
                    reaper.reap_loop()
                })
                .ok()?;
            self.all.lock().push((q.clone(), Some(t)));
            let mut m = m.borrow_mut();
            m.retain(|_, q| q.strong_count() > 0);
            let any: Arc<dyn Any + Send + Sync> = q.clone();
            m.insert(self.id, Arc::downgrade(&any));
            Some(q)
        })
    }
}

impl<Q: Queue> Drop for PerThread<Q> {
    fn drop(&mut self) {
        for (q, t) in std::mem::take(&mut *self.all.lock()) {
            q.stop();
            if let Some(t) = t {
                let _ = t.join();
            }
        }
    }
}
