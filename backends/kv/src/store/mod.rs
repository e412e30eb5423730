//! The store trait: point reads, family range scans and atomic compare-and-set commits.
//!
//! Keys are bytes whose first [`FAMILY_LEN`] bytes name a *family* (a tag byte and a node
//! id, see `schema`); [`Store::scan`] lists one family in key order. A [`Commit`] is an
//! optimistic transaction: it applies its writes only if every checked key still holds
//! the value the attempt read (absent included), all or nothing. Counters are added to
//! without being checked, so statfs counters never make two commits conflict.

mod any;
pub mod redb;
pub mod redis;

pub use any::{open, AnyStore, Opened};

use crate::error::StoreError;
use std::future::Future;

/// Length of a key's family prefix: a tag byte and a big-endian u64.
pub const FAMILY_LEN: usize = 9;

/// A key and its value, or `None` for absent / delete.
pub type Pair = (Vec<u8>, Option<Vec<u8>>);

/// Key-value pairs of a scan, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One atomic, conditional multi-key update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    /// Keys that must still hold these values (`None`: still absent).
    pub checks: Vec<Pair>,
    /// Keys to set (`Some`) or delete (`None`).
    pub writes: Vec<Pair>,
    /// Counters (8-byte little-endian i64 values) to add to; an absent counter is 0.
    pub adds: Vec<(Vec<u8>, i64)>,
}

/// A key-value store holding one volume's keys (the volume is chosen when it is opened).
pub trait Store: Send + Sync + 'static {
    /// The values of `keys`, in order (`None` for absent ones), from one consistent view.
    fn get_many(&self, keys: &[Vec<u8>]) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, StoreError>> + Send;

    /// Up to `limit` pairs of family `family` (a [`FAMILY_LEN`]-byte prefix) whose key is
    /// greater than `family ++ after`, in key order.
    fn scan(&self, family: &[u8], after: &[u8], limit: usize)
        -> impl Future<Output = Result<Pairs, StoreError>> + Send;

    /// Applies `c` atomically if all its checks hold; `Ok(false)` if one did not (nothing
    /// was written).
    fn commit(&self, c: &Commit) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Queues `c` now, before the returned future is first polled, and resolves with what
    /// [`commit`](Self::commit) would answer. Stores where [`reads_queued`](Self::reads_queued)
    /// holds show a queued commit's writes to readers at once; others commit when polled.
    fn submit(&self, c: Commit) -> impl Future<Output = Result<bool, StoreError>> + Send + '_ {
        async move { self.commit(&c).await }
    }

    /// True if reads see the writes of commits queued by [`submit`](Self::submit) and not
    /// yet applied (then a lock may be let go once the commit is queued).
    fn reads_queued(&self) -> bool {
        false
    }

    /// True if data keys (`schema::DATA`) may be written and deleted inside a [`Commit`]
    /// (redb: one file, one transaction). Otherwise they go through
    /// [`put_data`](Self::put_data) and [`del_data`](Self::del_data), outside commits.
    fn data_in_commit(&self) -> bool {
        true
    }

    /// The values of data keys `keys`, in order (`None` for absent ones). Data keys are
    /// written once, so no consistent view is needed across them.
    fn get_data(&self, keys: &[Vec<u8>]) -> impl Future<Output = Result<Vec<Option<Vec<u8>>>, StoreError>> + Send {
        self.get_many(keys)
    }

    /// Stores data keys (not atomically as a group: each key is written whole).
    fn put_data(&self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> impl Future<Output = Result<(), StoreError>> + Send {
        let c = Commit { writes: pairs.into_iter().map(|(k, v)| (k, Some(v))).collect(), ..Default::default() };
        async move { self.commit(&c).await.map(drop) }
    }

    /// Deletes data keys.
    fn del_data(&self, keys: Vec<Vec<u8>>) -> impl Future<Output = Result<(), StoreError>> + Send {
        let c = Commit { writes: keys.into_iter().map(|k| (k, None)).collect(), ..Default::default() };
        async move { self.commit(&c).await.map(drop) }
    }

    /// Makes every commit that returned before this call durable (fsync).
    fn sync(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// True if calls never block their thread for more than a local read (an embedded
    /// store whose commits wait on a thread of their own): requests may then start on the
    /// calling thread and move to a runtime worker only when they have to wait.
    fn is_local(&self) -> bool {
        false
    }

    /// Every key of the volume with its value (data keys included, on every node of a
    /// cluster), in batches after `after` (fsck).
    fn scan_all(&self, after: &[u8], limit: usize) -> impl Future<Output = Result<Pairs, StoreError>> + Send;
}

/// Reads a counter value (8 bytes little-endian); anything else counts as 0.
pub fn counter(v: Option<&[u8]>) -> i64 {
    v.and_then(|b| <[u8; 8]>::try_from(b).ok()).map(i64::from_le_bytes).unwrap_or(0)
}
