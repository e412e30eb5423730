//! Sharded tables keyed by node id or handle number: no pointer ever comes from the guest,
//! and unrelated requests rarely contend for the same shard lock.

use parking_lot::RwLock;
use std::collections::HashMap;

const SHARDS: usize = 64;

/// A map from `u64` to `V`, split into independently locked shards. Shard locks are
/// leaves of the lock order: nothing else is acquired while one is held.
pub(crate) struct Sharded<V> {
    shards: Box<[RwLock<HashMap<u64, V>>]>,
}

impl<V: Clone> Sharded<V> {
    pub(crate) fn new() -> Self {
        Sharded { shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect() }
    }

    fn shard(&self, k: u64) -> &RwLock<HashMap<u64, V>> {
        // Sequential ids spread evenly; the index is always in range.
        &self.shards[(k % SHARDS as u64) as usize]
    }

    pub(crate) fn get(&self, k: u64) -> Option<V> {
        self.shard(k).read().get(&k).cloned()
    }

    pub(crate) fn insert(&self, k: u64, v: V) {
        self.shard(k).write().insert(k, v);
    }

    pub(crate) fn remove(&self, k: u64) -> Option<V> {
        self.shard(k).write().remove(&k)
    }

    /// A snapshot of all values (DESTROY, tests).
    pub(crate) fn values(&self) -> Vec<V> {
        self.shards.iter().flat_map(|s| s.read().values().cloned().collect::<Vec<_>>()).collect()
    }

    /// Removes and returns everything.
    pub(crate) fn drain(&self) -> Vec<V> {
        self.shards.iter().flat_map(|s| s.write().drain().map(|(_, v)| v).collect::<Vec<_>>()).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let t = Sharded::new();
        for k in 0..200u64 {
            t.insert(k, k * 2);
        }
        assert_eq!(t.len(), 200);
        assert_eq!(t.get(77), Some(154));
        assert_eq!(t.remove(77), Some(154));
        assert_eq!(t.get(77), None);
        assert_eq!(t.values().len(), 199);
        assert_eq!(t.drain().len(), 199);
        assert_eq!(t.len(), 0);
    }
}
