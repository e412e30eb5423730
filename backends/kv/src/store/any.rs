//! [`AnyStore`]: the store a `--kv-url` names, chosen at run time, and [`Opened`]: a
//! store opened (or checked) before the daemon confines itself.

use super::redb::{RedbFile, RedbStore};
use super::redis::{RedisStore, RedisTarget};
use super::{Commit, Pairs, Store};
use crate::config::{KvConfig, StoreUrl};
use crate::error::StoreError;
use crate::fs::{network_runtime, runtime, KvFs};

/// One of the stores, behind one type (what the CLI serves).
#[derive(Clone)]
pub enum AnyStore {
    /// An embedded redb file.
    Redb(RedbStore),
    /// A Redis server or cluster.
    Redis(RedisStore),
}

/// A store ready to serve: a redb file already open, or a Redis target known reachable.
#[derive(Clone)]
pub enum Opened {
    /// The redb file, the volume's name and when commits reach the disk.
    Redb(RedbFile, String, crate::config::KvDurability),
    /// Where to connect (each backend instance connects in its own runtime).
    Redis(RedisTarget),
}

/// Opens volume `volume` of the store at `url` (redb: the file; Redis: connects once to
/// check it answers within `cfg.op_timeout`). Leaves no thread running.
pub fn open(url: &StoreUrl, volume: &str, cfg: &KvConfig) -> Result<Opened, StoreError> {
    let redis = |nodes: Vec<String>, cluster| {
        let t = RedisTarget { nodes, cluster, volume: volume.to_string(), timeout: cfg.op_timeout };
        t.check().map(|()| Opened::Redis(t))
    };
    match url {
        StoreUrl::Redb(path) => Ok(Opened::Redb(RedbFile::open(path)?, volume.to_string(), cfg.durability)),
        StoreUrl::Redis(u) => redis(vec![u.clone()], false),
        StoreUrl::RedisCluster(nodes) => redis(nodes.clone(), true),
    }
}

impl Opened {
    /// A file system on this store, with its own runtime (and Redis connection).
    pub fn serve(&self, cfg: KvConfig) -> Result<KvFs<AnyStore>, StoreError> {
        let rt = match self {
            Opened::Redb(..) => runtime(cfg.workers)?,
            Opened::Redis(_) => network_runtime(cfg.workers)?,
        };
        let store = self.store(&rt)?;
        KvFs::with_runtime(rt, store, cfg)
    }

    /// The store itself (Redis: connected in `rt`).
    pub fn store(&self, rt: &tokio::runtime::Runtime) -> Result<AnyStore, StoreError> {
        Ok(match self {
            Opened::Redb(f, volume, d) => AnyStore::Redb(f.volume(volume)?.with_durability(*d)),
            Opened::Redis(t) => AnyStore::Redis(rt.block_on(t.connect())?),
        })
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            AnyStore::Redb($s) => $e,
            AnyStore::Redis($s) => $e,
        }
    };
}

impl Store for AnyStore {
    fn is_local(&self) -> bool {
        each!(self, s => s.is_local())
    }
    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        each!(self, s => s.get_many(keys).await)
    }
    async fn scan(&self, family: &[u8], after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        each!(self, s => s.scan(family, after, limit).await)
    }
    async fn commit(&self, c: &Commit) -> Result<bool, StoreError> {
        each!(self, s => s.commit(c).await)
    }
    fn submit(&self, c: Commit) -> impl std::future::Future<Output = Result<bool, StoreError>> + Send + '_ {
        type Fut<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, StoreError>> + Send + 'a>>;
        let f: Fut<'_> = match self {
            AnyStore::Redb(s) => Box::pin(s.submit(c)),
            AnyStore::Redis(s) => Box::pin(s.submit(c)),
        };
        f
    }
    fn reads_queued(&self) -> bool {
        each!(self, s => s.reads_queued())
    }
    fn data_in_commit(&self) -> bool {
        each!(self, s => s.data_in_commit())
    }
    async fn get_data(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        each!(self, s => s.get_data(keys).await)
    }
    async fn put_data(&self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        each!(self, s => s.put_data(pairs).await)
    }
    async fn del_data(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        each!(self, s => s.del_data(keys).await)
    }
    async fn sync(&self) -> Result<(), StoreError> {
        each!(self, s => s.sync().await)
    }
    async fn scan_all(&self, after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        each!(self, s => s.scan_all(after, limit).await)
    }
}
