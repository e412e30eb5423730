//! A bounded LRU of `O_PATH` descriptors, keyed by node id.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::sync::Arc;

struct Inner {
    map: HashMap<u64, (Arc<OwnedFd>, u64)>,
    order: BTreeMap<u64, u64>,
    tick: u64,
}

/// Least-recently-used descriptors. Evicted descriptors close once their last user is done.
pub(crate) struct FdCache {
    cap: usize,
    inner: Mutex<Inner>,
}

impl FdCache {
    /// A cache of at most `cap` descriptors (at least 1).
    pub(crate) fn new(cap: usize) -> FdCache {
        FdCache { cap: cap.max(1), inner: Mutex::new(Inner { map: HashMap::new(), order: BTreeMap::new(), tick: 0 }) }
    }

    /// The cached descriptor of `id`, marked most recently used.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<OwnedFd>> {
        let mut g = self.inner.lock();
        g.tick += 1;
        let t = g.tick;
        let (fd, old) = {
            let e = g.map.get_mut(&id)?;
            let old = std::mem::replace(&mut e.1, t);
            (e.0.clone(), old)
        };
        g.order.remove(&old);
        g.order.insert(t, id);
        Some(fd)
    }

    /// Caches `fd` for `id`, evicting the least recently used beyond capacity.
    pub(crate) fn put(&self, id: u64, fd: Arc<OwnedFd>) {
        let mut g = self.inner.lock();
        g.tick += 1;
        let t = g.tick;
        if let Some((_, old)) = g.map.insert(id, (fd, t)) {
            g.order.remove(&old);
        }
        g.order.insert(t, id);
        while g.map.len() > self.cap {
            let Some((_, victim)) = g.order.pop_first() else { break };
            g.map.remove(&victim);
        }
    }

    /// Drops `id`'s descriptor.
    pub(crate) fn remove(&self, id: u64) {
        let mut g = self.inner.lock();
        if let Some((_, t)) = g.map.remove(&id) {
            g.order.remove(&t);
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        let mut g = self.inner.lock();
        g.map.clear();
        g.order.clear();
    }

    /// Descriptors cached now.
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn fd() -> Arc<OwnedFd> {
        // SAFETY: a fresh descriptor of /dev/null.
        Arc::new(unsafe { OwnedFd::from_raw_fd(libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)) })
    }

    #[test]
    fn evicts_least_recently_used() {
        let c = FdCache::new(2);
        c.put(1, fd());
        c.put(2, fd());
        assert!(c.get(1).is_some());
        c.put(3, fd());
        assert_eq!(c.len(), 2);
        assert!(c.get(2).is_none(), "2 was least recently used");
        assert!(c.get(1).is_some() && c.get(3).is_some());
        c.remove(1);
        assert_eq!(c.len(), 1);
    }
}
