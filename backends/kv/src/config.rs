//! Configuration of a kv file system: the store's URL, the volume, cache timeouts, limits.

use crate::error::StoreError;
use std::path::PathBuf;
use std::time::Duration;

/// Where the volume lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    /// `redb:///path/fs.redb`: an embedded redb database file.
    Redb(PathBuf),
    /// `redis://HOST:PORT[/DB]`: a standalone Redis server.
    Redis(String),
    /// `redis+cluster://H:P,H:P,...`: the seed nodes of a Redis Cluster.
    RedisCluster(Vec<String>),
}

impl StoreUrl {
    /// Parses a `--kv-url`.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let bad = |why: &str| StoreError::BadUrl { url: url.to_string(), why: why.to_string() };
        if let Some(path) = url.strip_prefix("redb://") {
            if !path.starts_with('/') {
                return Err(bad("redb URLs name an absolute path: redb:///path/fs.redb"));
            }
            return Ok(StoreUrl::Redb(PathBuf::from(path)));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            return Ok(StoreUrl::Redis(url.to_string()));
        }
        if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> =
                nodes.split(',').filter(|n| !n.is_empty()).map(|n| format!("redis://{n}")).collect();
            if nodes.is_empty() {
                return Err(bad("no cluster node given: redis+cluster://HOST:PORT,HOST:PORT,..."));
            }
            return Ok(StoreUrl::RedisCluster(nodes));
        }
        Err(bad("expected redb:///path, redis://HOST:PORT or redis+cluster://H:P,H:P,..."))
    }
}

/// When a redb commit reaches the disk (Redis: the server's persistence decides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvDurability {
    /// Commits are atomic at once and durable at the next fsync, or within about a
    /// second (the flusher): fastest; a crash loses the last second of un-fsynced work.
    #[default]
    Fsync,
    /// Every commit batch is durable before any of its requests is answered: nothing
    /// answered is ever lost, at the cost of one disk flush per batch.
    Immediate,
}

impl KvDurability {
    /// Parses `fsync` or `immediate`.
    pub fn parse(s: &str) -> Result<KvDurability, String> {
        match s {
            "fsync" => Ok(KvDurability::Fsync),
            "immediate" => Ok(KvDurability::Immediate),
            _ => Err(format!("kv durability {s:?}: expected fsync or immediate")),
        }
    }
}

/// The settings of one [`KvFs`](crate::KvFs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvConfig {
    /// Name of the volume in the store (several file systems can share one store).
    pub volume: String,
    /// How long the guest may cache name → inode mappings (default 1 s): another daemon's
    /// changes to the volume show up after at most this long.
    pub entry_timeout: Duration,
    /// How long the guest may cache attributes (default 1 s).
    pub attr_timeout: Duration,
    /// Bytes statfs reports as the capacity (default 1 TiB; not enforced).
    pub capacity_bytes: u64,
    /// Inodes statfs reports as the limit (default 1 Gi; not enforced).
    pub max_inodes: u64,
    /// Permission bits of a new volume's root directory (default 0o755).
    pub root_mode: u32,
    /// Owner of a new volume's root directory.
    pub root_uid: u32,
    /// Group of a new volume's root directory.
    pub root_gid: u32,
    /// Deadline of one store call (default 10 s): past it the request answers EIO.
    pub op_timeout: Duration,
    /// Worker threads of the backend's tokio runtime (default 2).
    pub workers: usize,
    /// When redb commits reach the disk (default: at fsync or within a second).
    pub durability: KvDurability,
}

impl Default for KvConfig {
    fn default() -> Self {
        KvConfig {
            volume: "default".into(),
            entry_timeout: Duration::from_secs(1),
            attr_timeout: Duration::from_secs(1),
            capacity_bytes: 1 << 40,
            max_inodes: 1 << 30,
            root_mode: 0o755,
            root_uid: 0,
            root_gid: 0,
            op_timeout: Duration::from_secs(10),
            workers: 2,
            durability: KvDurability::Fsync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(StoreUrl::parse("redb:///tmp/a.redb").ok(), Some(StoreUrl::Redb("/tmp/a.redb".into())));
        assert!(StoreUrl::parse("redb://rel/a").is_err());
        assert_eq!(
            StoreUrl::parse("redis://127.0.0.1:6379").ok(),
            Some(StoreUrl::Redis("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            StoreUrl::parse("redis+cluster://a:1,b:2").ok(),
            Some(StoreUrl::RedisCluster(vec!["redis://a:1".into(), "redis://b:2".into()]))
        );
        assert!(StoreUrl::parse("redis+cluster://").is_err());
        assert!(StoreUrl::parse("ramcloud://x").is_err());
    }

    #[test]
    fn durability_names() {
        assert_eq!(KvDurability::parse("fsync"), Ok(KvDurability::Fsync));
        assert_eq!(KvDurability::parse("immediate"), Ok(KvDurability::Immediate));
        assert!(KvDurability::parse("always").unwrap_err().contains("fsync or immediate"));
    }
}
