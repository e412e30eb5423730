//! The Redis store (standalone or Cluster), through the `redis` crate on tokio.
//!
//! Every key of a volume starts with `dpfs{VOLUME}`: the hash tag puts the whole volume in
//! one hash slot, so a commit is one Lua script that Redis runs atomically on the node that
//! owns the slot (a cluster spreads volumes over its nodes, not one volume; JuiceFS does
//! the same). The script compares every key the attempt read with the value it saw and
//! only then writes, deletes and adds. Families that are scanned (directory cookies,
//! xattrs, chunks, orphans) get a sorted-set index per family (`dpfs{VOLUME}\0z` +
//! family, members the key suffixes, all with score 0 so ZRANGEBYLEX orders them as
//! bytes); the commit script keeps it, and a scan is one script reading the index and the
//! values. Counters are native integers (INCRBY) shown to the file system as 8-byte
//! little-endian values.
//!
//! Round trips: a point read or a multi-get is one MGET, a commit one EVALSHA (EVAL the
//! first time a connection meets the script), a scan one EVALSHA. [`RedisStore::round_trips`]
//! counts them.
//!
//! Durability: [`Store::sync`] asks nothing of the server. A write is as durable as the
//! server's persistence makes it: with `appendonly yes` and `appendfsync always` every
//! commit is on disk when its reply arrives; with `everysec` up to a second can be lost.

use super::{Commit, Pairs, Store};
use crate::error::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Script};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const COMMIT: &str = r#"
local nc, nw, na, plen = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local a = 5
for i = 1, nc do
  local v = redis.call('GET', KEYS[i])
  if ARGV[a] == '1' then
    if v ~= ARGV[a + 1] then return 0 end
  elseif v then
    return 0
  end
  a = a + 2
end
for i = 1, nw do
  local k = KEYS[nc + i]
  local tag = string.sub(k, plen + 1, plen + 1)
  local idx = nil
  if tag == 'C' or tag == 'X' or tag == 'B' or tag == 'O' then
    idx = string.sub(k, 1, plen) .. '\0z' .. string.sub(k, plen + 1, plen + 9)
  end
  if ARGV[a] == '1' then
    redis.call('SET', k, ARGV[a + 1])
    if idx then redis.call('ZADD', idx, 0, string.sub(k, plen + 10)) end
  else
    redis.call('DEL', k)
    if idx then redis.call('ZREM', idx, string.sub(k, plen + 10)) end
  end
  a = a + 2
end
for i = 1, na do
  redis.call('INCRBY', KEYS[nc + nw + i], ARGV[a])
  a = a + 1
end
return 1
"#;

const SCAN: &str = r#"
local m = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, s in ipairs(m) do
  local v = redis.call('GET', ARGV[3] .. s)
  if v then
    table.insert(out, s)
    table.insert(out, v)
  end
end
return out
"#;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Redis(e.to_string())
}

/// Where a Redis volume lives (opened in the daemon's runtime with [`RedisTarget::connect`]).
#[derive(Clone, Debug)]
pub struct RedisTarget {
    /// `redis://` URLs: one for a standalone server, the seed nodes of a cluster.
    pub nodes: Vec<String>,
    /// Whether `nodes` are a cluster's.
    pub cluster: bool,
    /// The volume.
    pub volume: String,
    /// Connect and response timeout.
    pub timeout: Duration,
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A volume on a Redis server or cluster.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    prefix: Vec<u8>,
    commit: Arc<Script>,
    scan: Arc<Script>,
    trips: Arc<AtomicU64>,
}

impl RedisTarget {
    /// Connects (in the current tokio runtime) and checks the server answers.
    pub async fn connect(&self) -> Result<RedisStore, StoreError> {
        let t = self.timeout;
        let conn = if self.cluster {
            let client = redis::cluster::ClusterClient::builder(self.nodes.clone())
                .connection_timeout(t)
                .response_timeout(t)
                .build()
                .map_err(err)?;
            Conn::Cluster(tokio::time::timeout(t, client.get_async_connection()).await.map_err(err)?.map_err(err)?)
        } else {
            let url = self.nodes.first().ok_or_else(|| err("no server"))?;
            let client = redis::Client::open(url.as_str()).map_err(err)?;
            let cfg = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(t))
                .set_response_timeout(Some(t))
                .set_number_of_retries(2);
            let m = tokio::time::timeout(t, client.get_connection_manager_with_config(cfg));
            Conn::Single(m.await.map_err(err)?.map_err(err)?)
        };
        let store = RedisStore {
            conn,
            prefix: format!("dpfs{{{}}}", self.volume).into_bytes(),
            commit: Arc::new(Script::new(COMMIT)),
            scan: Arc::new(Script::new(SCAN)),
            trips: Arc::new(AtomicU64::new(0)),
        };
        let pong: String = store.query(&redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err(err(format!("unexpected PING answer {pong:?}")));
        }
        Ok(store)
    }

    /// Connects from a throwaway single-thread runtime and disconnects: the reachability
    /// check made before the daemon forks.
    pub fn check(&self) -> Result<(), StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(err)?;
        let r = rt.block_on(async { self.connect().await.map(drop) });
        rt.shutdown_timeout(Duration::from_millis(100));
        r
    }
}

impl RedisStore {
    /// Commands and scripts sent so far (each is one round trip).
    pub fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    fn key(&self, k: &[u8]) -> Vec<u8> {
        [self.prefix.as_slice(), k].concat()
    }

    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        match &self.conn {
            Conn::Single(c) => cmd.query_async(&mut c.clone()).await,
            Conn::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        }
        .map_err(err)
    }

    async fn invoke<T: FromRedisValue>(&self, inv: &redis::ScriptInvocation<'_>) -> Result<T, StoreError> {
        self.trips.fetch_add(1, Ordering::Relaxed);
        match &self.conn {
            Conn::Single(c) => inv.invoke_async(&mut c.clone()).await,
            Conn::Cluster(c) => inv.invoke_async(&mut c.clone()).await,
        }
        .map_err(err)
    }
}

/// A counter as the file system reads it: Redis's decimal integer as 8-byte LE.
fn counter_bytes(v: &[u8]) -> Option<Vec<u8>> {
    let n: i64 = std::str::from_utf8(v).ok()?.parse().ok()?;
    Some(n.to_le_bytes().to_vec())
}

fn is_counter(k: &[u8]) -> bool {
    k.first() == Some(&b'N')
}

impl Store for RedisStore {
    async fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(self.key(k));
        }
        let vals: Vec<Option<Vec<u8>>> = self.query(&cmd).await?;
        if vals.len() != keys.len() {
            return Err(err("MGET answered a different number of values"));
        }
        Ok(keys
            .iter()
            .zip(vals)
            .map(|(k, v)| if is_counter(k) { v.and_then(|v| counter_bytes(&v)) } else { v })
            .collect())
    }

    async fn scan(&self, family: &[u8], after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        let idx = [self.prefix.as_slice(), b"\0z", family].concat();
        let min = if after.is_empty() { b"-".to_vec() } else { [b"(", after].concat() };
        let mut inv = self.scan.prepare_invoke();
        inv.key(idx).arg(min).arg(limit).arg(self.key(family));
        let flat: Vec<Vec<u8>> = self.invoke(&inv).await?;
        let mut out = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(s), Some(v)) = (it.next(), it.next()) {
            out.push(([family, s.as_slice()].concat(), v));
        }
        Ok(out)
    }

    async fn commit(&self, c: &Commit) -> Result<bool, StoreError> {
        let mut inv = self.commit.prepare_invoke();
        inv.arg(c.checks.len()).arg(c.writes.len()).arg(c.adds.len()).arg(self.prefix.len());
        for (k, v) in c.checks.iter().chain(&c.writes) {
            inv.key(self.key(k));
            match v {
                Some(v) => inv.arg("1").arg(v.as_slice()),
                None => inv.arg("0").arg(""),
            };
        }
        for (k, n) in &c.adds {
            inv.key(self.key(k)).arg(*n);
        }
        let applied: i64 = self.invoke(&inv).await?;
        Ok(applied == 1)
    }

    async fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn scan_all(&self, after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        let Conn::Single(_) = &self.conn else {
            return Err(err("listing every key of a volume is not supported on a cluster"));
        };
        let pattern = [self.prefix.as_slice(), b"*"].concat();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor).arg("MATCH").arg(pattern.as_slice()).arg("COUNT").arg(1000);
            let (next, batch): (u64, Vec<Vec<u8>>) = self.query(&cmd).await?;
            for k in batch {
                let rest = k.get(self.prefix.len()..).unwrap_or_default();
                if !rest.is_empty() && !rest.starts_with(b"\0") && rest > after {
                    keys.push(rest.to_vec());
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        let vals = self.get_many(&keys).await?;
        Ok(keys.into_iter().zip(vals).filter_map(|(k, v)| v.map(|v| (k, v))).collect())
    }
}
