//! The tests' guest: core's typed guest over a `KvFs`, and fresh volumes on each store.
#![allow(dead_code)]

use crate::redis_server::{RedisCluster, RedisServer};
use dpfs_backend_kv::store::redb::RedbStore;
use dpfs_backend_kv::store::redis::{RedisStore, RedisTarget};
use dpfs_backend_kv::{KvConfig, KvFs, Store};
pub use dpfs_core::guest::ROOT;
use std::sync::Arc;

/// A guest of a kv file system on store `S`.
pub type G<S> = dpfs_core::guest::Guest<KvFs<S>>;

/// A guest and what keeps its volume alive.
pub struct Env<S: Store> {
    /// The guest.
    pub g: G<S>,
    /// The redb file's directory (removed at the end).
    pub dir: Option<tempfile::TempDir>,
    /// The Redis server (stopped at the end).
    pub server: Option<RedisServer>,
    /// The Redis Cluster (stopped at the end).
    pub cluster: Option<RedisCluster>,
}

impl<S: Store> std::ops::Deref for Env<S> {
    type Target = G<S>;
    fn deref(&self) -> &G<S> {
        &self.g
    }
}

impl<S: Store> dpfs_backend_suite::AsGuest for Env<S> {
    type Fs = KvFs<S>;
    fn guest(&self) -> &G<S> {
        &self.g
    }
}

/// A guest of `fs`.
pub fn guest<S: Store>(fs: KvFs<S>) -> G<S> {
    dpfs_core::guest::Guest::new(Arc::new(fs)).expect("INIT").0
}

/// A fresh volume in a fresh redb file.
pub fn redb() -> Option<Env<RedbStore>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(&dir.path().join("fs.redb"), "test").expect("redb");
    let fs = KvFs::new(store, KvConfig::default()).expect("kv");
    Some(Env { g: guest(fs), dir: Some(dir), server: None, cluster: None })
}

/// A kv file system on volume `volume` of the Redis server at `url`.
pub fn redis_fs(url: &str, volume: &str) -> KvFs<RedisStore> {
    let cfg = KvConfig { volume: volume.into(), ..Default::default() };
    let target =
        RedisTarget { nodes: vec![url.into()], cluster: false, volume: volume.into(), timeout: cfg.op_timeout };
    let rt = dpfs_backend_kv::runtime(2).expect("runtime");
    let store = rt.block_on(target.connect()).expect("connect");
    KvFs::with_runtime(rt, store, cfg).expect("kv")
}

/// A fresh volume on a fresh 3-node Redis Cluster (`None`: redis-server is missing).
pub fn cluster() -> Option<Env<RedisStore>> {
    if !crate::redis_server::available() {
        return None;
    }
    let cluster = RedisCluster::start();
    let cfg = KvConfig { volume: "test".into(), ..Default::default() };
    let target = RedisTarget { nodes: cluster.urls(), cluster: true, volume: "test".into(), timeout: cfg.op_timeout };
    let rt = dpfs_backend_kv::runtime(2).expect("runtime");
    let store = rt.block_on(target.connect()).expect("connect to the cluster");
    let fs = KvFs::with_runtime(rt, store, cfg).expect("kv");
    Some(Env { g: guest(fs), dir: None, server: None, cluster: Some(cluster) })
}

/// A fresh volume on a fresh redis-server (`None`: redis-server is missing, skipped).
pub fn redis() -> Option<Env<RedisStore>> {
    if !crate::redis_server::available() {
        return None;
    }
    let server = RedisServer::start();
    let fs = redis_fs(&server.url(), "test");
    Some(Env { g: guest(fs), dir: None, server: Some(server), cluster: None })
}

/// Inodes in use, from statfs.
pub fn inodes<S: Store>(g: &G<S>) -> u64 {
    let st = g.statfs().unwrap();
    st.files - st.ffree
}

/// Instantiates generic tests `fn t<S: Store>(e: Env<S>)` for a store constructor.
#[macro_export]
macro_rules! suite {
    ($store:ident, $make:path; $($t:ident),* $(,)?) => {
        mod $store {
            $(
                #[test]
                fn $t() {
                    if let Some(env) = $make() {
                        super::$t(env)
                    }
                }
            )*
        }
    };
}
