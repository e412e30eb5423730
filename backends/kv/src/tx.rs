//! One optimistic attempt of an operation: reads are remembered (the read set), writes are
//! buffered (the write set, read back by later reads of the attempt), and the commit
//! applies the writes only if nothing read has changed since. A conflict makes the caller
//! run the attempt again (`KvFs::run`).

use crate::error::{Fail, StoreError};
use crate::schema::{self, decode, encode, Inode};
use crate::store::{Commit, Store};
use dpfs_core::Errno;
use std::collections::BTreeMap;
use std::time::Duration;

/// An attempt's view of the store.
pub(crate) struct Tx<'a, S> {
    store: &'a S,
    deadline: Duration,
    reads: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    adds: BTreeMap<Vec<u8>, i64>,
}

/// Runs a store call under the deadline.
pub(crate) async fn timed<T>(
    deadline: Duration,
    f: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(deadline, f).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Timeout(deadline)),
    }
}

impl<'a, S: Store> Tx<'a, S> {
    pub(crate) fn new(store: &'a S, deadline: Duration) -> Tx<'a, S> {
        Tx { store, deadline, reads: BTreeMap::new(), writes: BTreeMap::new(), adds: BTreeMap::new() }
    }

    /// The values of `keys` as this attempt sees them (its own writes included).
    pub(crate) async fn get_many(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, Fail> {
        let missing: Vec<Vec<u8>> =
            keys.iter().filter(|k| !self.writes.contains_key(*k) && !self.reads.contains_key(*k)).cloned().collect();
        if !missing.is_empty() {
            let vals = timed(self.deadline, self.store.get_many(&missing)).await?;
            if vals.len() != missing.len() {
                return Err(Fail::Store(StoreError::Redis("short multi-get reply".into())));
            }
            for (k, v) in missing.into_iter().zip(vals) {
                self.reads.insert(k, v);
            }
        }
        Ok(keys.iter().map(|k| self.writes.get(k).or_else(|| self.reads.get(k)).cloned().flatten()).collect())
    }

    /// The value of `key`.
    pub(crate) async fn get(&mut self, key: Vec<u8>) -> Result<Option<Vec<u8>>, Fail> {
        Ok(self.get_many(std::slice::from_ref(&key)).await?.into_iter().next().flatten())
    }

    /// Inode `ino` (ENOENT if absent, EIO if corrupt).
    pub(crate) async fn inode(&mut self, ino: u64) -> Result<Inode, Fail> {
        let k = schema::inode_key(ino);
        match self.get(k.clone()).await? {
            Some(v) => Ok(decode(&k, &v)?),
            None => Err(Fail::Errno(Errno::ENOENT)),
        }
    }

    /// Inodes `inos` (each `None` if absent).
    pub(crate) async fn inodes(&mut self, inos: &[u64]) -> Result<Vec<Option<Inode>>, Fail> {
        let keys: Vec<Vec<u8>> = inos.iter().map(|&i| schema::inode_key(i)).collect();
        let vals = self.get_many(&keys).await?;
        let mut out = Vec::with_capacity(vals.len());
        for (k, v) in keys.iter().zip(vals) {
            out.push(match v {
                Some(v) => Some(decode(k, &v)?),
                None => None,
            });
        }
        Ok(out)
    }

    /// Sets `key`.
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Deletes `key`.
    pub(crate) fn del(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Adds `n` to counter `key`.
    pub(crate) fn add(&mut self, key: Vec<u8>, n: i64) {
        if n != 0 {
            *self.adds.entry(key).or_insert(0) += n;
        }
    }

    /// Writes inode `ino` (`old` as read, `None` for a new one), keeping the counters.
    pub(crate) fn put_inode(&mut self, ino: u64, old: Option<&Inode>, new: &Inode) {
        let before = old.map_or(0, Inode::alloc_bytes) as i64;
        self.add(schema::bytes_key(), new.alloc_bytes() as i64 - before);
        if old.is_none() {
            self.add(schema::inodes_key(), 1);
        }
        self.put(schema::inode_key(ino), encode(new));
    }

    /// Deletes inode `ino` (as read: `old`), keeping the counters.
    pub(crate) fn del_inode(&mut self, ino: u64, old: &Inode) {
        self.add(schema::bytes_key(), -(old.alloc_bytes() as i64));
        self.add(schema::inodes_key(), -1);
        self.del(schema::inode_key(ino));
    }

    /// As [`commit`](Self::commit), calling `release` (letting go of in-process locks)
    /// as soon as later readers see this commit's writes: once it is queued on a store
    /// whose reads see queued writes (redb), else once it is done.
    pub(crate) async fn commit_release(self, release: impl FnOnce()) -> Result<(), Fail> {
        if self.writes.is_empty() && self.adds.is_empty() {
            release();
            return Ok(());
        }
        let (store, deadline) = (self.store, self.deadline);
        let c = Commit {
            checks: self.reads.into_iter().collect(),
            writes: self.writes.into_iter().collect(),
            adds: self.adds.into_iter().collect(),
        };
        let ok = if store.reads_queued() {
            let f = store.submit(c);
            release();
            timed(deadline, f).await
        } else {
            let r = timed(deadline, store.commit(&c)).await;
            release();
            r
        }?;
        if ok {
            Ok(())
        } else {
            Err(Fail::Conflict)
        }
    }

    /// Commits: `Fail::Conflict` if a key read has changed since. A read-only attempt
    /// commits nothing.
    pub(crate) async fn commit(self) -> Result<(), Fail> {
        if self.writes.is_empty() && self.adds.is_empty() {
            return Ok(());
        }
        let c = Commit {
            checks: self.reads.into_iter().collect(),
            writes: self.writes.into_iter().collect(),
            adds: self.adds.into_iter().collect(),
        };
        if timed(self.deadline, self.store.commit(&c)).await? {
            Ok(())
        } else {
            Err(Fail::Conflict)
        }
    }
}
