//! One optimistic attempt of an operation: reads are remembered (the read set), writes are
//! buffered (the write set, read back by later reads of the attempt), and the commit
//! applies the writes only if nothing read has changed since. A conflict makes the caller
//! run the attempt again (`KvFs::run`).
//!
//! Chunk data goes through [`Tx::set_chunk`] and friends: new data keys are written before
//! the commit (or inside it, on a store where [`Store::data_in_commit`]), replaced ones are
//! deleted after it (see `schema`, "Data keys and metadata keys").

use crate::error::{Fail, StoreError};
use crate::schema::{self, decode, encode, Inode, ZERO_GEN};
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
    /// Data keys to store before the commit.
    data_puts: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Data keys to delete once the commit is applied.
    data_dels: Vec<Vec<u8>>,
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
        Tx {
            store,
            deadline,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            adds: BTreeMap::new(),
            data_puts: BTreeMap::new(),
            data_dels: Vec::new(),
        }
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

    /// The generations of chunks `idxs` of `ino` (`None`: no such chunk, a hole), in the
    /// read set.
    pub(crate) async fn chunk_refs(&mut self, ino: u64, idxs: &[u64]) -> Result<Vec<Option<u64>>, Fail> {
        let keys: Vec<Vec<u8>> = idxs.iter().map(|&c| schema::chunk_key(ino, c)).collect();
        let vals = self.get_many(&keys).await?;
        let mut out = Vec::with_capacity(vals.len());
        for (k, v) in keys.iter().zip(vals) {
            out.push(match v {
                Some(v) => Some(schema::ref_gen(k, &v)?),
                None => None,
            });
        }
        Ok(out)
    }

    /// The bytes of chunks `(idx, generation)` of `ino` (`None` for a hole; a
    /// [`ZERO_GEN`] chunk is empty). A data key that is missing means a writer replaced
    /// the chunk since its reference was read (`Fail::Conflict`: the attempt runs again),
    /// or, if the reference has not moved, a corrupt volume.
    pub(crate) async fn chunk_data(
        &mut self,
        ino: u64,
        refs: &[(u64, Option<u64>)],
    ) -> Result<Vec<Option<Vec<u8>>>, Fail> {
        let mut out: Vec<Option<Vec<u8>>> = vec![None; refs.len()];
        let mut fetch = Vec::new();
        let mut slots = Vec::new();
        for (n, &(idx, gen)) in refs.iter().enumerate() {
            let Some(gen) = gen else { continue };
            if gen == ZERO_GEN {
                out[n] = Some(Vec::new());
                continue;
            }
            let k = schema::data_key(ino, idx, gen);
            match self.data_puts.get(&k) {
                Some(v) => out[n] = Some(v.clone()),
                None => {
                    fetch.push(k);
                    slots.push(n);
                }
            }
        }
        if fetch.is_empty() {
            return Ok(out);
        }
        let vals = timed(self.deadline, self.store.get_data(&fetch)).await?;
        if vals.len() != fetch.len() {
            return Err(Fail::Store(StoreError::Redis("short data reply".into())));
        }
        let mut lost = Vec::new();
        for ((n, k), v) in slots.into_iter().zip(&fetch).zip(vals) {
            if v.is_none() {
                lost.push(k.clone());
            }
            out[n] = v;
        }
        if let Some(k) = lost.first() {
            // Did the references move since this attempt read them?
            let refs: Vec<Vec<u8>> = lost
                .iter()
                .filter_map(|k| schema::data_key_parts(k))
                .map(|(i, c, _)| schema::chunk_key(i, c))
                .collect();
            let now = timed(self.deadline, self.store.get_many(&refs)).await?;
            let moved = refs.iter().zip(&now).any(|(r, v)| self.reads.get(r) != Some(v));
            if moved {
                return Err(Fail::Conflict);
            }
            return Err(Fail::Store(StoreError::Corrupt {
                key: String::from_utf8_lossy(k).into_owned(),
                why: "a chunk reference names missing data".into(),
            }));
        }
        Ok(out)
    }

    /// Makes chunk `idx` of `ino` hold `bytes` under a fresh generation; `old` is the
    /// generation read (its data is deleted after the commit).
    pub(crate) fn set_chunk(&mut self, ino: u64, idx: u64, old: Option<u64>, bytes: Vec<u8>) {
        let gen = schema::fresh_gen();
        self.data_puts.insert(schema::data_key(ino, idx, gen), bytes);
        self.put(schema::chunk_key(ino, idx), schema::chunk_ref(gen));
        self.forget_data(ino, idx, old);
    }

    /// Makes chunk `idx` of `ino` exist holding zeros (no data key).
    pub(crate) fn zero_chunk(&mut self, ino: u64, idx: u64, old: Option<u64>) {
        self.put(schema::chunk_key(ino, idx), schema::chunk_ref(ZERO_GEN));
        self.forget_data(ino, idx, old);
    }

    /// Deletes chunk `idx` of `ino` (generation `old`): a hole from now on.
    pub(crate) fn drop_chunk(&mut self, ino: u64, idx: u64, old: u64) {
        self.del(schema::chunk_key(ino, idx));
        self.forget_data(ino, idx, Some(old));
    }

    /// The data of generation `old` of a chunk goes: not stored at all if this attempt
    /// wrote it, else deleted after the commit.
    fn forget_data(&mut self, ino: u64, idx: u64, old: Option<u64>) {
        let Some(old) = old.filter(|&g| g != ZERO_GEN) else { return };
        let k = schema::data_key(ino, idx, old);
        if self.data_puts.remove(&k).is_none() {
            self.data_dels.push(k);
        }
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
        if self.writes.is_empty() && self.adds.is_empty() && self.data_puts.is_empty() && self.data_dels.is_empty() {
            release();
            return Ok(());
        }
        let (store, deadline) = (self.store, self.deadline);
        let mut writes = self.writes;
        let inline = store.data_in_commit();
        let (mut puts, mut dels) = (Vec::new(), Vec::new());
        if inline {
            writes.extend(self.data_puts.into_iter().map(|(k, v)| (k, Some(v))));
            writes.extend(self.data_dels.into_iter().map(|k| (k, None)));
        } else {
            puts = self.data_puts.into_iter().collect::<Vec<_>>();
            dels = self.data_dels;
            if !puts.is_empty() {
                // Data first: a crash from here on leaves data keys no reference names.
                timed(deadline, store.put_data(puts.clone())).await?;
            }
        }
        let c = Commit {
            checks: self.reads.into_iter().collect(),
            writes: writes.into_iter().collect(),
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
        if !inline {
            // Applied: the replaced data goes; refused: this attempt's data goes. (An
            // unknown outcome keeps both: fsck reclaims what no reference names.)
            let gone: Vec<Vec<u8>> = if ok { dels } else { puts.into_iter().map(|(k, _)| k).collect() };
            if !gone.is_empty() {
                if let Err(e) = timed(deadline, store.del_data(gone)).await {
                    tracing::warn!("kv: data keys left for fsck to reclaim: {e}");
                }
            }
        }
        if ok {
            Ok(())
        } else {
            Err(Fail::Conflict)
        }
    }

    /// Commits: `Fail::Conflict` if a key read has changed since. A read-only attempt
    /// commits nothing.
    pub(crate) async fn commit(self) -> Result<(), Fail> {
        self.commit_release(|| {}).await
    }
}
