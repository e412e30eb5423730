//! The embedded store: one redb table per volume in one database file.
//!
//! redb is synchronous. Its calls run directly where the operation runs (the poller thread
//! that took the request, see the crate docs): reads are served from its page cache and a
//! commit without durability costs about 18 µs, short enough to run inline. The one call
//! that waits for the disk, the durable commit of a sync, runs in `spawn_blocking`.
//!
//! Commits are made with [`Durability::None`]: they are atomic and visible at once, and
//! reach the disk with the next [`Durability::Immediate`] commit, which [`Store::sync`]
//! makes. Concurrent syncs share one such commit (group commit): a sync returns at once
//! when a commit that started after its own call already made everything durable. After
//! a crash redb reopens at the last durable commit, a consistent state.

use super::{Commit, Pairs, Store, FAMILY_LEN};
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
        Ok(RedbStore { db, table, committed: Arc::new(AtomicU64::new(0)), durable: Arc::new(Mutex::new(0)) })
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
        true
    }

    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let r = self.db.begin_read().map_err(err)?;
        let t = r.open_table(self.def()).map_err(err)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(t.get(k.as_slice()).map_err(err)?.map(|v| v.value().to_vec()));
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
        let mut w = self.db.begin_write().map_err(err)?;
        w.set_durability(Durability::None).map_err(err)?;
        {
            let mut t = w.open_table(self.def()).map_err(err)?;
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
        }
        w.commit().map_err(err)?;
        self.committed.fetch_add(1, Ordering::AcqRel);
        Ok(true)
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
