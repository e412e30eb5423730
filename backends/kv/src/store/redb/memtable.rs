//! `fsync` mode's write-back table: commits are checked and applied in memory, and reach
//! redb later, many at once, in one non-durable write transaction (a *flush*).
//!
//! Why: a redb write transaction costs tens of microseconds of page copies and file
//! writes however little it holds, and a create+unlink storm writes keys that are gone
//! again a few milliseconds later. In memory, a commit is a few hash-map inserts; a key
//! written and deleted between two flushes never reaches redb; a flush writes each key
//! once, in key order, however often it changed.
//!
//! Semantics (the store's, unchanged): a commit's checks are tested against everything
//! committed before it, in submission order, under one lock, so commits are serialisable
//! exactly as when each ran its own transaction. Every reader sees a commit from the
//! moment it returns. A flush applies everything committed before it began as one redb
//! transaction, so what a crash leaves (redb reopens at its last durable commit) is the
//! state after some prefix of the commits: consistent. Durability is `fsync` mode's: the
//! backend's flusher syncs (flush, then a durable commit) once a second, FSYNC syncs at
//! once, so a crash loses at most about a second of work that was not fsynced.
//!
//! Two tables: `active` takes new commits; a flush freezes it (`frozen`), writes it to
//! redb without holding the lock, and drops it once redb has it. Readers look in
//! `active`, then `frozen`, then redb. A flush that fails puts what it held back under
//! `active` (newer values win), so nothing is dropped; the next flush retries, and a sync
//! reports the error if it fails again.

use super::{err, Def};
use crate::error::StoreError;
use crate::store::{counter, Commit};
use parking_lot::Mutex;
use redb::{Database, Durability, ReadableDatabase};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Keys in `active` past which a commit starts a flush in the background.
pub(super) const FLUSH_AT: usize = 2048;
/// Bytes (keys and values) in `active` past which a commit starts a flush in the
/// background: file data (64 KiB chunks) fills memory long before the key count does.
const FLUSH_BYTES: usize = 8 << 20;
/// Past 8 times either, the committer flushes itself (the background flush is behind):
/// memory stays bounded.
const BEHIND: usize = 8;
/// Values read from redb kept (`clean`) at most; past it the cache starts again empty.
const CLEAN_MAX: usize = 16 * 1024;
/// Only values up to this size are cached (metadata, not file data).
const CLEAN_VALUE_MAX: usize = 1024;

type Table = FxHashMap<Vec<u8>, Option<Vec<u8>>>;

fn table(capacity: usize) -> Table {
    Table::with_capacity_and_hasher(capacity, Default::default())
}

#[derive(Default)]
struct State {
    /// Writes not flushed yet, the latest per key (`None`: deleted).
    active: Table,
    /// Bytes of keys and values put in `active` (overwrites counted again: a bound).
    active_bytes: usize,
    /// The table a flush is writing to redb.
    frozen: Option<Arc<Table>>,
    /// A background flush is queued or running.
    flushing: bool,
    /// Values as redb holds them (absent ones too), for keys read there lately: a
    /// create's check of the name it read a moment before needs no second redb read. Only
    /// a flush changes redb (the file is locked against other processes), and it updates
    /// the keys it wrote here.
    clean: Table,
}

/// What was committed and not yet written to redb (see the module docs).
#[derive(Default)]
pub(super) struct Memtable {
    state: Mutex<State>,
    /// One flush at a time.
    flush_lock: Mutex<()>,
}

/// Where a key's value stands: in memory, or to be read from redb.
enum Found<'a> {
    Memory(Option<&'a [u8]>),
    Redb,
}

fn find<'a>(s: &'a State, k: &[u8]) -> Found<'a> {
    let v = s.active.get(k).or_else(|| s.frozen.as_ref().and_then(|f| f.get(k))).or_else(|| s.clean.get(k));
    match v {
        Some(v) => Found::Memory(v.as_deref()),
        None => Found::Redb,
    }
}

/// True if `active` holds enough for a flush.
fn full(s: &State) -> bool {
    s.active.len() >= FLUSH_AT || s.active_bytes >= FLUSH_BYTES
}

/// Remembers what redb holds for `k` (if it is small).
fn keep_clean(s: &mut State, k: &[u8], v: &Option<Vec<u8>>) {
    if v.as_ref().is_some_and(|v| v.len() > CLEAN_VALUE_MAX) {
        return;
    }
    if s.clean.len() >= CLEAN_MAX {
        s.clean = table(0);
    }
    s.clean.insert(k.to_vec(), v.clone());
}

/// A read view of redb opened on first use (most commits' checks are all in memory).
struct Lazy<'a> {
    db: &'a Database,
    def: Def<'a>,
    table: Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl Lazy<'_> {
    fn get(&mut self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let t = match &mut self.table {
            Some(t) => t,
            slot @ None => {
                let r = self.db.begin_read().map_err(err)?;
                slot.insert(r.open_table(self.def).map_err(err)?)
            }
        };
        Ok(t.get(k).map_err(err)?.map(|v| v.value().to_vec()))
    }
}

impl Memtable {
    /// True if nothing waits for a flush.
    pub(super) fn is_empty(&self) -> bool {
        let s = self.state.lock();
        s.active.is_empty() && s.frozen.is_none()
    }

    /// Keys waiting for a flush (tests).
    pub(super) fn len(&self) -> usize {
        let s = self.state.lock();
        s.active.len() + s.frozen.as_ref().map_or(0, |f| f.len())
    }

    /// The values of `keys` from one consistent view: memory, then redb as it was while
    /// the lock was held (a flush drops `frozen` only under the lock, after its commit).
    pub(super) fn get_many(
        &self,
        db: &Database,
        def: Def<'_>,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut s = self.state.lock();
        let mut redb = Lazy { db, def, table: None };
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(match find(&s, k) {
                Found::Memory(v) => v.map(<[u8]>::to_vec),
                Found::Redb => {
                    let v = redb.get(k)?;
                    keep_clean(&mut s, k, &v);
                    v
                }
            });
        }
        Ok(out)
    }

    /// Checks `c` against everything committed so far and, if its checks hold, applies
    /// it: true if applied, and whether the caller must start a flush.
    pub(super) fn commit(&self, db: &Database, def: Def<'_>, c: Commit) -> Result<(bool, Flush), StoreError> {
        let mut s = self.state.lock();
        let mut redb = Lazy { db, def, table: None };
        for (k, want) in &c.checks {
            let holds = match find(&s, k) {
                Found::Memory(v) => v == want.as_deref(),
                Found::Redb => {
                    let v = redb.get(k)?;
                    keep_clean(&mut s, k, &v);
                    v == *want
                }
            };
            if !holds {
                return Ok((false, Flush::No));
            }
        }
        // Counters as they stand after this commit's own writes (as in one transaction),
        // all read before anything is applied: a failed read applies nothing.
        let mut sums = Vec::with_capacity(c.adds.len());
        for (k, n) in &c.adds {
            let own = sums.iter().rev().chain(c.writes.iter().rev()).find(|(w, _)| w == k);
            let cur = match own {
                Some((_, v)) => counter(v.as_deref()),
                None => match find(&s, k) {
                    Found::Memory(v) => counter(v),
                    Found::Redb => counter(redb.get(k)?.as_deref()),
                },
            };
            sums.push((k.clone(), Some(cur.wrapping_add(*n).to_le_bytes().to_vec())));
        }
        for (k, v) in c.writes.into_iter().chain(sums) {
            s.active_bytes += k.len() + v.as_ref().map_or(0, Vec::len);
            s.active.insert(k, v);
        }
        let flush = if s.active.len() >= BEHIND * FLUSH_AT || s.active_bytes >= BEHIND * FLUSH_BYTES {
            Flush::Now
        } else if full(&s) && !s.flushing {
            s.flushing = true;
            Flush::Background
        } else {
            Flush::No
        };
        Ok((true, flush))
    }

    /// Writes everything committed so far to redb in one transaction with `durability`:
    /// the number of keys written (0: nothing to do, no transaction made).
    pub(super) fn flush(&self, db: &Database, def: Def<'_>, durability: Durability) -> Result<usize, StoreError> {
        let _one = self.flush_lock.lock();
        let frozen = {
            let mut s = self.state.lock();
            if s.active.is_empty() {
                return Ok(0);
            }
            let f = Arc::new(std::mem::replace(&mut s.active, table(FLUSH_AT + FLUSH_AT / 2)));
            s.active_bytes = 0;
            s.frozen = Some(f.clone());
            f
        };
        let written = write(db, def, &frozen, durability);
        let mut s = self.state.lock();
        s.frozen = None; // the only other handle: `frozen` comes apart without a copy
        let f = frozen;
        match written {
            Ok(()) => {
                // What redb holds now.
                if s.clean.len() + f.len() > CLEAN_MAX {
                    s.clean = table(0);
                }
                let n = f.len();
                let f = Arc::try_unwrap(f).unwrap_or_else(|f| (*f).clone());
                s.clean.extend(f.into_iter().filter(|(_, v)| v.as_ref().is_none_or(|v| v.len() <= CLEAN_VALUE_MAX)));
                Ok(n)
            }
            Err(e) => {
                // Keep it all: commits made meanwhile are newer and win.
                let f = Arc::try_unwrap(f).unwrap_or_else(|f| (*f).clone());
                let st = &mut *s;
                for (k, v) in f {
                    if let std::collections::hash_map::Entry::Vacant(e) = st.active.entry(k) {
                        st.active_bytes += e.key().len() + v.as_ref().map_or(0, Vec::len);
                        e.insert(v);
                    }
                }
                Err(e)
            }
        }
    }

    /// A background flush has ended (`ok`: it succeeded): true if another should start at
    /// once (commits kept coming meanwhile). After a failure the next sync retries.
    pub(super) fn background_done(&self, ok: bool) -> bool {
        let mut s = self.state.lock();
        if ok && full(&s) {
            return true;
        }
        s.flushing = false;
        false
    }
}

/// What a commit asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flush {
    /// Nothing.
    No,
    /// Start a flush in the background (none runs yet).
    Background,
    /// Flush before answering: the background flush is far behind.
    Now,
}

/// One write transaction holding `t`, keys in order (neighbouring keys share pages).
fn write(db: &Database, def: Def<'_>, t: &Table, durability: Durability) -> Result<(), StoreError> {
    let mut keys: Vec<&Vec<u8>> = t.keys().collect();
    keys.sort_unstable();
    let mut w = db.begin_write().map_err(err)?;
    w.set_durability(durability).map_err(err)?;
    {
        let mut table = w.open_table(def).map_err(err)?;
        for k in keys {
            match &t[k] {
                Some(v) => drop(table.insert(k.as_slice(), v.as_slice()).map_err(err)?),
                None => drop(table.remove(k.as_slice()).map_err(err)?),
            }
        }
    }
    w.commit().map_err(err)
}
