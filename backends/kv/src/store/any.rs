//! [`AnyStore`]: the store a `--kv-url` names, chosen at run time.

use super::redb::RedbStore;
use super::{Commit, Pairs, Store};
use crate::config::StoreUrl;
use crate::error::StoreError;

/// One of the stores, behind one type (what the CLI serves).
#[derive(Clone)]
pub enum AnyStore {
    /// An embedded redb file.
    Redb(RedbStore),
}

/// Opens volume `volume` of the store at `url`. Makes no thread (the daemon opens its
/// store before it forks into its sandbox).
pub fn open(url: &StoreUrl, volume: &str) -> Result<AnyStore, StoreError> {
    match url {
        StoreUrl::Redb(path) => Ok(AnyStore::Redb(RedbStore::open(path, volume)?)),
        other => Err(StoreError::BadUrl { url: format!("{other:?}"), why: "Redis stores are not built in yet".into() }),
    }
}

impl Store for AnyStore {
    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        match self {
            AnyStore::Redb(s) => s.get_many(keys).await,
        }
    }
    async fn scan(&self, family: &[u8], after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        match self {
            AnyStore::Redb(s) => s.scan(family, after, limit).await,
        }
    }
    async fn commit(&self, c: &Commit) -> Result<bool, StoreError> {
        match self {
            AnyStore::Redb(s) => s.commit(c).await,
        }
    }
    async fn sync(&self) -> Result<(), StoreError> {
        match self {
            AnyStore::Redb(s) => s.sync().await,
        }
    }
    async fn scan_all(&self, after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        match self {
            AnyStore::Redb(s) => s.scan_all(after, limit).await,
        }
    }
}
