//! The embedded store: one redb table per volume in one database file.
//!
//! redb is synchronous. Reads and commits without fsync run directly where the operation
//! runs (a poller thread; reads are served from redb's page cache); durable commits run
//! on a committer thread (see below), so a request that waits for one moves off the
//! poller thread that took it (see the crate docs).
//!
//! # Group commit
//! redb has one writer, and a write transaction costs about 18 µs even when it writes
//! nothing durable. Concurrent commits therefore share one: a commit joins a queue; the
//! first caller that finds no batch running becomes the leader (`immediate`: starts the
//! committer, a blocking-pool thread) and runs batches (one
//! redb write transaction each, holding every commit queued while the previous one ran)
//! until the queue is empty. In a batch each commit's checks are tested against the
//! transaction's state so far (earlier commits of the batch included) and, if they hold,
//! its writes applied; a failing check fails only that commit. A redb error fails every
//! commit of the batch (nothing of it is written).
//!
//! Reads see queued writes: until its batch is applied, a queued commit's writes are kept
//! in a map that [`Store::get_many`] consults first ([`Store::reads_queued`]). An
//! operation that read them commits after them (queue order), so its checks hold; the
//! backend uses this to let go of a directory's lock once a create or unlink is queued,
//! and the next one in that directory joins the same batch. Scans read applied commits.
//!
//! # Durability ([`KvDurability`])
//! - `fsync` (default): batches commit with [`Durability::None`]: atomic and visible at
//!   once, on disk with the next [`Durability::Immediate`] commit, which [`Store::sync`]
//!   makes (FSYNC, and the backend's flusher once a second). Concurrent syncs share one
//!   such commit: a sync returns at once when a commit that started after its own call
//!   already made everything durable. A crash loses at most the last second of work that
//!   was not fsynced.
//! - `immediate`: every batch commits with [`Durability::Immediate`] (an fsync of the
//!   file, ~1.4 ms on this machine's disk), so every reply follows a durable commit and
//!   FSYNC costs nothing more. Throughput comes from batch size, i.e. from the guest's
//!   queue depth: a create+unlink needs two durable commits one after the other, so at
//!   queue depth Q it cannot pass Q / (2 × fsync time) operations a second (at QD1 every
//!   create or unlink waits for its own flush).
//!
//! # Bursts
//! In `fsync` mode a commit submitted by a request that started inside a HAL's burst
//! (`dpfs_core::burst`: a vhost-user poller draining a queue) is only queued: the
//! caller does not lead ([`Store::batches_bursts`]). When the burst ends, the backend
//! calls [`Store::run_queued`] and the poller runs the burst's commits as one batch, then
//! answers their requests (see `KvFs::spawn`). A caller that is not deferred (another
//! thread, a runtime task) leads as usual and takes the deferred commits with its own,
//! so none waits for a burst's end longer than it takes. A HAL without bursts (fusedev,
//! the snap model) never defers.
//!
//! In `immediate` mode a committer thread, not the request's thread, waits for the disk:
//! a request whose commit is queued goes on as a runtime task, and the poller takes the
//! next request, whose commit joins the next batch. In `fsync` mode the caller runs the
//! batch itself (a commit without fsync is short, and a thread hop costs as much).
//!
//! After a crash redb reopens at the last durable commit, a consistent state.
//!
//! Measured with `ci/bench-kv.sh` (create+open+release+unlink per op, one directory, one
//! poller thread, a 2-core machine shared with other builds, so absolute figures are
//! noisy; ops/s):
//!
//! | | QD1 | QD32 |
//! |---|---|---|
//! | mem | 2.8k | 119k |
//! | kv-redb, fsync | 2.0k | 16.1k |
//! | kv-redb, immediate, group commit, lock held to the commit | 0.73k | 1.2k |
//! | kv-redb, immediate, lock let go once queued | 0.71k | 15.5k |
//!
//! At QD1 an immediate create or unlink waits for its own flush (~1.4 ms here).
//!
//! Measured again (same script, load average ~6 on the 2 cores, two runs each; the older
//! build first, then this one with immediate requests starting on the poller):
//!
//! | | QD1 | QD32 |
//! |---|---|---|
//! | mem | 26k–48k | 96k–150k |
//! | kv-redb, fsync | 4.9k–7.9k → 10.6k–14.7k | 8.5k–13.9k → 10.3k–11.8k |
//! | kv-redb, immediate | 0.59k–0.72k → 0.45k–0.51k | 5.7k–6.3k → 6.5k–7.3k |
//!
//! A committer thread for `fsync` mode too measured 15.0k–15.8k → 16.2k–18.4k at QD32
//! but 9.0k → 4.1k at QD1 (two thread hops per commit on a loaded machine), so it was
//! not kept. `immediate` mode is bounded by queue depth / (2 × fsync time).
//!
//! Bursts (a burst's commits in one write transaction run by the poller at the burst's
//! end, see "Bursts"), measured the same way, two runs each alternating with the build
//! before:
//!
//! | | QD1 | QD32 |
//! |---|---|---|
//! | mem | 38k–51k | 118k–143k |
//! | kv-redb, fsync | 2.1k–10.1k → 11.4k–11.6k | 11.9k–12.8k → 25.0k–25.5k |
//! | kv-redb, immediate (unchanged) | 0.38k–0.68k → 0.33k–0.46k | 4.8k–7.1k → 6.1k–6.5k |
//!
//! QD32 doubles; still short of a third of mem's rate (about 0.19 of it). Two more runs
//! of this build: QD32 18.8k and 29.6k (mem 173k, 139k). Ending the HAL's burst every
//! 8 requests, so held-back replies reach the guest sooner, measured 14.5k and 22.4k
//! against those (mem 75k, 142k): not kept.

use super::{Commit, Pairs, Store, FAMILY_LEN};
use crate::config::KvDurability;
use crate::error::StoreError;
use parking_lot::Mutex;
use redb::backends::FileBackend;
use redb::{Builder, Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redb(e.to_string())
}

/// A volume in a redb database file. Clones share the database and its sync state.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    table: String,
    /// Commits made so far (bumped after each commit returns).
    committed: Arc<AtomicU64>,
    /// `committed` as it was when the last durable commit started.
    durable: Arc<Mutex<u64>>,
    /// Commits waiting for a batch, and whether a leader is running batches.
    group: Arc<Mutex<Group>>,
    mode: KvDurability,
}

/// A commit waiting in the queue and where its answer goes.
struct Queued {
    seq: u64,
    commit: Commit,
    reply: tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
}

#[derive(Default)]
struct Group {
    queue: Vec<Queued>,
    leading: bool,
    /// Numbers the queued commits.
    seq: u64,
    /// Writes of queued commits not applied yet, the latest per key (with its commit's
    /// number): reads see them, so a lock can be let go once its commit is queued.
    pending: std::collections::HashMap<Vec<u8>, (u64, Option<Vec<u8>>)>,
}

/// Applies `c` inside `t` if its checks hold (`Ok(false)` otherwise, nothing written).
fn apply(t: &mut redb::Table<'_, &'static [u8], &'static [u8]>, c: &Commit) -> Result<bool, StoreError> {
    for (k, want) in &c.checks {
        let have = t.get(k.as_slice()).map_err(err)?;
        if have.as_ref().map(|v| v.value()) != want.as_deref() {
            return Ok(false);
        }
    }
    for (k, v) in &c.writes {
        match v {
            Some(v) => t.insert(k.as_slice(), v.as_slice()).map_err(err)?,
            None => t.remove(k.as_slice()).map_err(err)?,
        };
    }
    for (k, n) in &c.adds {
        let cur = super::counter(t.get(k.as_slice()).map_err(err)?.as_ref().map(|v| v.value()));
        t.insert(k.as_slice(), cur.wrapping_add(*n).to_le_bytes().as_slice()).map_err(err)?;
    }
    Ok(true)
}

impl RedbStore {
    /// Opens (creating if needed) the database at `path` and the table of `volume`.
    ///
    /// Volumes of one file opened in one process share the database (redb locks the file
    /// against a second opener).
    pub fn open(path: &Path, volume: &str) -> Result<RedbStore, StoreError> {
        Self::on(shared_db(path)?, volume)
    }

    fn on(db: Arc<Database>, volume: &str) -> Result<RedbStore, StoreError> {
        let table = format!("vol:{volume}");
        let mut w = db.begin_write().map_err(err)?;
        w.set_durability(Durability::Immediate).map_err(err)?;
        w.open_table(TableDefinition::<&[u8], &[u8]>::new(&table)).map_err(err)?;
        w.commit().map_err(err)?;
        Ok(RedbStore {
            db,
            table,
            committed: Arc::new(AtomicU64::new(0)),
            durable: Arc::new(Mutex::new(0)),
            group: Arc::new(Mutex::new(Group::default())),
            mode: KvDurability::Fsync,
        })
    }

    /// This store with commits made durable as `mode` says.
    pub fn with_durability(mut self, mode: KvDurability) -> RedbStore {
        self.mode = mode;
        self
    }

    /// Write transactions the batches made so far (each holds one or more commits).
    pub fn write_transactions(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Runs the queue's batches, the caller having become the leader.
    fn start_leading(&self) {
        match self.mode {
            // No disk wait: the caller runs the batches itself (no thread hop; a
            // committer thread measured half the rate at QD1 and +10-20 % at QD32
            // on a loaded 2-core machine, see the table).
            KvDurability::Fsync => self.lead(),
            // The committer: batches wait for the disk on a blocking thread, never
            // on the caller's (a poller's request moves to the runtime while its
            // commit waits, see `KvFs::spawn`). Detached: the batches run even if
            // this caller stops waiting.
            KvDurability::Immediate => {
                let me = self.clone();
                drop(tokio::task::spawn_blocking(move || me.lead()));
            }
        }
    }

    /// Runs batches until the queue is empty (the caller is the leader).
    fn lead(&self) {
        loop {
            let batch = {
                let mut g = self.group.lock();
                if g.queue.is_empty() {
                    g.leading = false;
                    return;
                }
                std::mem::take(&mut g.queue)
            };
            let results = self.batch(&batch);
            {
                // Applied or failed: readers now get these keys from redb.
                let mut g = self.group.lock();
                for q in &batch {
                    for (k, _) in &q.commit.writes {
                        if g.pending.get(k).is_some_and(|(seq, _)| *seq == q.seq) {
                            g.pending.remove(k);
                        }
                    }
                }
            }
            for (q, r) in batch.into_iter().zip(results) {
                let _ = q.reply.send(r); // a caller that gave up (deadline) no longer listens
            }
        }
    }

    /// One write transaction for `batch`: each commit's result, in order.
    fn batch(&self, batch: &[Queued]) -> Vec<Result<bool, StoreError>> {
        let all_fail = |e: StoreError| {
            let why = match e {
                StoreError::Redb(m) => m,
                e => e.to_string(),
            };
            batch.iter().map(|_| Err(StoreError::Redb(why.clone()))).collect()
        };
        let mut w = match self.db.begin_write() {
            Ok(w) => w,
            Err(e) => return all_fail(err(e)),
        };
        let durability = match self.mode {
            KvDurability::Fsync => Durability::None,
            KvDurability::Immediate => Durability::Immediate,
        };
        if let Err(e) = w.set_durability(durability) {
            return all_fail(err(e));
        }
        let mut out = Vec::with_capacity(batch.len());
        {
            let mut t = match w.open_table(self.def()) {
                Ok(t) => t,
                Err(e) => return all_fail(err(e)),
            };
            for q in batch {
                match apply(&mut t, &q.commit) {
                    Ok(ok) => out.push(Ok(ok)),
                    // The transaction may hold part of this commit: drop all of it.
                    Err(e) => return all_fail(e),
                }
            }
        }
        let start = self.committed.load(Ordering::Acquire);
        if let Err(e) = w.commit() {
            return all_fail(err(e));
        }
        self.committed.fetch_add(1, Ordering::AcqRel);
        if self.mode == KvDurability::Immediate {
            let mut d = self.durable.lock();
            *d = (*d).max(start + 1);
        }
        out
    }

    fn def(&self) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
        TableDefinition::new(&self.table)
    }

    fn range(&self, lo: Vec<u8>, hi: Option<Vec<u8>>, limit: usize) -> Result<Pairs, StoreError> {
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(self.def()).map_err(err)?;
        let mut out = Vec::new();
        let iter = match &hi {
            Some(hi) => t.range::<&[u8]>(lo.as_slice()..hi.as_slice()).map_err(err)?,
            None => t.range::<&[u8]>(lo.as_slice()..).map_err(err)?,
        };
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(err)?;
            if k.value() == lo.as_slice() {
                continue;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

/// A redb file opened before the daemon forks: only its descriptor. The database is
/// made from it in the process that serves ([`RedbFile::volume`]), so a supervisor that
/// keeps a copy never writes to the file (a second `Database` on one file would).
#[derive(Clone)]
pub struct RedbFile {
    file: Arc<File>,
    db: Arc<Mutex<Option<Arc<Database>>>>,
}

fn on_file(file: &File, path: &Path) -> Result<Database, StoreError> {
    let dup = file.try_clone().map_err(err)?;
    let backend = FileBackend::new(dup).map_err(err)?;
    Builder::new().create_with_backend(backend).map_err(|e| StoreError::Redb(format!("{}: {e}", path.display())))
}

impl RedbFile {
    /// Opens (creating) `path` and checks it holds a redb database (or nothing yet).
    pub fn open(path: &Path) -> Result<RedbFile, StoreError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::Redb(format!("{}: {e}", path.display())))?;
        // Opened once and closed again: a bad file is an error now, not in the daemon.
        drop(on_file(&file, path)?);
        Ok(RedbFile { file: Arc::new(file), db: Arc::new(Mutex::new(None)) })
    }

    /// Volume `volume`; the first call in a process makes the database.
    pub fn volume(&self, volume: &str) -> Result<RedbStore, StoreError> {
        let db = {
            let mut cell = self.db.lock();
            match &*cell {
                Some(db) => db.clone(),
                None => {
                    let db = Arc::new(on_file(&self.file, Path::new("kv store"))?);
                    *cell = Some(db.clone());
                    db
                }
            }
        };
        RedbStore::on(db, volume)
    }
}

/// The process's open database at `path`, opening (or creating) it if none is.
fn shared_db(path: &Path) -> Result<Arc<Database>, StoreError> {
    static OPEN: Mutex<Vec<(PathBuf, Weak<Database>)>> = Mutex::new(Vec::new());
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut open = OPEN.lock();
    open.retain(|(_, w)| w.strong_count() > 0);
    if let Some(db) = open.iter().find(|(p, _)| *p == key).and_then(|(_, w)| w.upgrade()) {
        return Ok(db);
    }
    let db = Arc::new(Database::create(path).map_err(|e| StoreError::Redb(format!("{}: {e}", path.display())))?);
    let key = path.canonicalize().unwrap_or(key);
    open.push((key, Arc::downgrade(&db)));
    Ok(db)
}

/// The smallest key greater than every key starting with `prefix` (`None`: no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Store for RedbStore {
    fn is_local(&self) -> bool {
        // No call blocks the calling thread on the disk: commits without fsync run
        // inline, durable ones on the committer thread.
        true
    }

    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        // Queued writes first (taken before the read transaction begins: a write that
        // leaves the queue meanwhile is in redb by then).
        let queued: Vec<Option<Option<Vec<u8>>>> = {
            let g = self.group.lock();
            if g.pending.is_empty() {
                vec![None; keys.len()]
            } else {
                keys.iter().map(|k| g.pending.get(k).map(|(_, v)| v.clone())).collect()
            }
        };
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(self.def()).map_err(err)?;
        let mut out = Vec::with_capacity(keys.len());
        for (k, q) in keys.iter().zip(queued) {
            out.push(match q {
                Some(v) => v,
                None => t.get(k.as_slice()).map_err(err)?.map(|v| v.value().to_vec()),
            });
        }
        Ok(out)
    }

    async fn scan(&self, family: &[u8], after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        if family.len() != FAMILY_LEN {
            return Ok(Vec::new());
        }
        let mut lo = family.to_vec();
        lo.extend_from_slice(after);
        self.range(lo, prefix_end(family), limit)
    }

    async fn commit(&self, c: &Commit) -> Result<bool, StoreError> {
        self.submit(c.clone()).await
    }

    fn reads_queued(&self) -> bool {
        true
    }

    fn submit(&self, commit: Commit) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + '_ {
        let (reply, answer) = tokio::sync::oneshot::channel();
        // Deferred (a burst's request, `fsync` mode): queued for the burst's batch.
        let defer = self.batches_bursts() && super::deferred();
        let lead = {
            let mut g = self.group.lock();
            g.seq += 1;
            let seq = g.seq;
            for (k, v) in &commit.writes {
                g.pending.insert(k.clone(), (seq, v.clone()));
            }
            g.queue.push(Queued { seq, commit, reply });
            !defer && !std::mem::replace(&mut g.leading, true)
        };
        if lead {
            self.start_leading();
        }
        async move { answer.await.map_err(|_| StoreError::Redb("the redb committer stopped".into()))? }
    }

    fn batches_bursts(&self) -> bool {
        self.mode == KvDurability::Fsync
    }

    fn run_queued(&self) {
        let lead = {
            let mut g = self.group.lock();
            !g.queue.is_empty() && !std::mem::replace(&mut g.leading, true)
        };
        if lead {
            self.start_leading();
        }
    }

    async fn sync(&self) -> Result<(), StoreError> {
        let target = self.committed.load(Ordering::Acquire);
        if *self.durable.lock() >= target {
            return Ok(());
        }
        let (db, durable, committed) = (self.db.clone(), self.durable.clone(), self.committed.clone());
        let job = move || -> Result<(), StoreError> {
            let mut d = durable.lock();
            if *d >= target {
                return Ok(()); // a commit that started after our call made it durable
            }
            let start = committed.load(Ordering::Acquire);
            let mut w = db.begin_write().map_err(err)?;
            w.set_durability(Durability::Immediate).map_err(err)?;
            w.commit().map_err(err)?;
            // Everything committed before this durable commit began is now on disk.
            *d = (*d).max(start);
            Ok(())
        };
        tokio::task::spawn_blocking(job).await.map_err(err)?
    }

    async fn scan_all(&self, after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        self.range(after.to_vec(), None, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(check: Option<&[u8]>, key: &[u8], val: &[u8]) -> Commit {
        Commit {
            checks: vec![(key.to_vec(), check.map(<[u8]>::to_vec))],
            writes: vec![(key.to_vec(), Some(val.to_vec()))],
            adds: vec![(b"n".to_vec(), 1)],
        }
    }

    /// Many concurrent commits (batched): each compare is checked against the commits
    /// applied before it, and a failing one fails alone.
    fn concurrent_commits(mode: KvDurability) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("fs.redb"), "v").unwrap().with_durability(mode);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..64u32 {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    // Everyone races for key "one"; each also writes its own key.
                    let race = s.commit(&commit(None, b"one", &i.to_le_bytes())).await.unwrap();
                    let own = s.commit(&commit(None, &i.to_be_bytes(), b"x")).await.unwrap();
                    (race, own)
                }));
            }
            let mut winners = 0;
            for t in tasks {
                let (race, own) = t.await.unwrap();
                winners += race as u32;
                assert!(own, "a commit on its own key must not fail");
            }
            assert_eq!(winners, 1, "exactly one compare on an absent key can win");
            let v = s_get(&store, b"n").await;
            assert_eq!(crate::store::counter(v.as_deref()), 65, "counters of failed commits are not added");
            store.sync().await.unwrap();
        });
    }

    async fn s_get(s: &RedbStore, k: &[u8]) -> Option<Vec<u8>> {
        s.get_many(&[k.to_vec()]).await.unwrap().pop().flatten()
    }

    #[test]
    fn concurrent_commits_fsync() {
        concurrent_commits(KvDurability::Fsync);
    }

    #[test]
    fn concurrent_commits_immediate() {
        concurrent_commits(KvDurability::Immediate);
    }

    /// A commit's writes are visible from the moment it is queued, and a commit queued
    /// after it that checks those values succeeds (the lock hand-off of the crate docs).
    #[test]
    fn queued_writes_are_read_and_checked_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("fs.redb"), "v").unwrap().with_durability(KvDurability::Immediate);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            for i in 0..50u32 {
                let old = s_get(&store, b"k").await;
                let a = store.submit(commit(old.as_deref(), b"k", &i.to_le_bytes()));
                assert_eq!(s_get(&store, b"k").await, Some(i.to_le_bytes().to_vec()));
                // b read k while a was queued: its check holds when applied after a.
                let b = store.submit(Commit {
                    checks: vec![(b"k".to_vec(), Some(i.to_le_bytes().to_vec()))],
                    writes: vec![(i.to_be_bytes().to_vec(), Some(b"x".to_vec()))],
                    adds: vec![],
                });
                // c expects the value before a: a stale read fails alone.
                let c = store.submit(commit(old.as_deref(), b"k", b"stale"));
                let (a, b, c) = (a.await.unwrap(), b.await.unwrap(), c.await.unwrap());
                assert!(a && b && !c, "round {i}: {a} {b} {c}");
            }
        });
    }

    /// Commits submitted while deferred wait in the queue (readable, not applied) until
    /// `run_queued`, which applies them in one write transaction, each checked alone.
    #[test]
    fn deferred_commits_wait_for_run_queued_and_share_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("fs.redb"), "v").unwrap();
        assert!(store.batches_bursts());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let before = store.write_transactions();
        let (a, b) = super::super::deferring(|| {
            (store.submit(commit(None, b"k", b"1")), store.submit(commit(Some(b"1"), b"k", b"2")))
        });
        assert_eq!(rt.block_on(s_get(&store, b"k")), Some(b"2".to_vec()), "queued writes are read");
        let c = super::super::deferring(|| store.submit(commit(None, b"k", b"stale")));
        assert_eq!(store.write_transactions(), before, "nothing applied before run_queued");
        store.run_queued();
        assert_eq!(store.write_transactions(), before + 1);
        let (a, b, c) = rt.block_on(async { (a.await.unwrap(), b.await.unwrap(), c.await.unwrap()) });
        assert!(a && b && !c, "{a} {b} {c}");
        assert_eq!(crate::store::counter(rt.block_on(s_get(&store, b"n")).as_deref()), 2);
    }

    /// A deferred commit does not wait for `run_queued` when another caller's batch runs
    /// first: it takes the whole queue.
    #[test]
    fn a_later_commit_applies_deferred_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("fs.redb"), "v").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let a = super::super::deferring(|| store.submit(commit(None, b"a", b"1")));
        assert!(rt.block_on(store.commit(&commit(None, b"b", b"1"))).unwrap());
        assert!(rt.block_on(a).unwrap());
    }

    #[test]
    fn immediate_commits_survive_a_reopen_without_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fs.redb");
        {
            let store = RedbStore::open(&path, "v").unwrap().with_durability(KvDurability::Immediate);
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            assert!(rt.block_on(store.commit(&commit(None, b"k", b"v"))).unwrap());
            assert!(store.is_local(), "commits run on the committer thread: requests start on the caller's");
        }
        let store = RedbStore::open(&path, "v").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(s_get(&store, b"k")), Some(b"v".to_vec()));
    }
}
