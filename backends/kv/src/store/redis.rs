//! The Redis store (standalone or Cluster), through the `redis` crate on tokio.
//!
//! Every metadata key of a volume starts with `dpfs{VOLUME}`: the hash tag puts the whole
//! volume's metadata in one hash slot, so a commit is one Lua script that Redis runs
//! atomically on the node that owns the slot. Data keys (`schema::DATA`, written once
//! outside commits, see `schema`) are named `dpfsd{VOLUME/INO/GROUP}` + the key, INO and
//! GROUP (chunk index / [`CHUNK_GROUP`](crate::schema::CHUNK_GROUP)) in hex: each 1 MiB of
//! a file has its own hash slot, so a cluster spreads one volume's data over its nodes,
//! while a read within one group is one MGET on one node (reads over several groups send
//! one MGET per group, concurrently). The script compares every key the attempt read with the value it saw and
//! only then writes, deletes and adds. Families that are scanned (directory cookies,
//! xattrs, chunks, orphans) get a sorted-set index per family (`dpfs{VOLUME}\0z` +
//! family, members the key suffixes, all with score 0 so ZRANGEBYLEX orders them as
//! bytes); the commit script keeps it, and a scan is one script reading the index and the
//! values. Counters are native integers (INCRBY) shown to the file system as 8-byte
//! little-endian values.
//!
//! Round trips: a point read or a multi-get is one MGET, a commit one EVALSHA (EVAL the
//! first time a connection meets the script), a scan one EVALSHA; a write of chunk data
//! adds one MSET per group before its commit and one DEL per group after it (the
//! generations it replaced). [`RedisStore::round_trips`]
//! counts them.
//!
//! Durability: [`Store::sync`] asks nothing of the server. A write is as durable as the
//! server's persistence makes it: with `appendonly yes` and `appendfsync always` every
//! commit is on disk when its reply arrives; with `everysec` up to a second can be lost.

use super::{Commit, Pairs, Store};
use crate::error::StoreError;
use crate::schema::{self, CHUNK_GROUP};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Script};
use std::collections::BTreeMap;
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
    volume: String,
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
            volume: self.volume.clone(),
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
        match data_group(k) {
            Some((ino, group)) => [format!("dpfsd{{{}/{ino:x}/{group:x}}}", self.volume).as_bytes(), k].concat(),
            None => [self.prefix.as_slice(), k].concat(),
        }
    }

    /// The volume's key that Redis key `rk` stands for (`None`: another volume's key).
    fn unkey(&self, rk: &[u8]) -> Option<Vec<u8>> {
        let k = match rk.strip_prefix(self.prefix.as_slice()) {
            Some(rest) => rest.to_vec(),
            None => rk.get(rk.len().checked_sub(schema::DATA_KEY_LEN)?..)?.to_vec(),
        };
        (!k.is_empty() && !k.starts_with(b"\0") && self.key(&k) == rk).then_some(k)
    }

    /// Runs `make(keys)` once per hash slot group of data keys `keys` (one group on a
    /// standalone server), the groups concurrently; the answers in group order with the
    /// keys of each group.
    async fn per_group<T, F>(&self, keys: Vec<Vec<u8>>, make: F) -> Result<Vec<(Vec<Vec<u8>>, T)>, StoreError>
    where
        T: FromRedisValue + Send + 'static,
        F: Fn(&[Vec<u8>]) -> Cmd,
    {
        let mut groups: BTreeMap<Option<(u64, u64)>, Vec<Vec<u8>>> = BTreeMap::new();
        for k in keys {
            let g = if matches!(self.conn, Conn::Cluster(_)) { data_group(&k) } else { None };
            groups.entry(g).or_default().push(k);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (n, (_, ks)) in groups.into_iter().enumerate() {
            let cmd = make(&ks);
            let me = self.clone();
            tasks.spawn(async move { (n, ks, me.query::<T>(&cmd).await) });
        }
        let mut out = Vec::with_capacity(tasks.len());
        while let Some(r) = tasks.join_next().await {
            let (n, ks, v) = r.map_err(err)?;
            out.push((n, ks, v?));
        }
        out.sort_by_key(|r| r.0);
        Ok(out.into_iter().map(|(_, ks, v)| (ks, v)).collect())
    }

    /// The `host:port` of every master of the cluster (`None` on a standalone server).
    async fn masters(&self) -> Result<Option<Vec<(String, u16)>>, StoreError> {
        let Conn::Cluster(_) = &self.conn else { return Ok(None) };
        let text: String = self.query(redis::cmd("CLUSTER").arg("NODES")).await?;
        let mut out = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(addr), Some(flags)) = (f.get(1), f.get(2)) else { continue };
            if !flags.split(',').any(|x| x == "master") || flags.contains("fail") {
                continue;
            }
            let hostport = addr.split(['@', ',']).next().unwrap_or_default();
            let Some((host, port)) = hostport.rsplit_once(':') else { continue };
            let port: u16 = port.parse().map_err(|_| err(format!("bad CLUSTER NODES address {addr:?}")))?;
            out.push((host.to_string(), port));
        }
        if out.is_empty() {
            return Err(err("CLUSTER NODES named no master"));
        }
        Ok(Some(out))
    }

    /// Every Redis key matching `pattern` on the server, or on each master of a cluster.
    async fn keys_matching(&self, pattern: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let nodes = match self.masters().await? {
            Some(m) => m.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let mut keys = Vec::new();
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
                let (next, batch): (u64, Vec<Vec<u8>>) = match (&node, &self.conn) {
                    (Some((host, port)), Conn::Cluster(c)) => {
                        self.trips.fetch_add(1, Ordering::Relaxed);
                        let to = SingleNodeRoutingInfo::ByAddress { host: host.clone(), port: *port };
                        let v = c.clone().route_command(cmd, RoutingInfo::SingleNode(to)).await.map_err(err)?;
                        FromRedisValue::from_redis_value(v).map_err(err)?
                    }
                    _ => self.query(&cmd).await?,
                };
                keys.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(keys)
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

/// The inode and chunk group of a data key (its hash slot group).
fn data_group(k: &[u8]) -> Option<(u64, u64)> {
    schema::data_key_parts(k).map(|(ino, idx, _)| (ino, idx / CHUNK_GROUP))
}

/// `s` with Redis glob characters escaped.
fn glob_escape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
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

    fn data_in_commit(&self) -> bool {
        false
    }

    async fn get_data(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let answers = self
            .per_group::<Vec<Option<Vec<u8>>>, _>(keys.to_vec(), |ks| {
                let mut cmd = redis::cmd("MGET");
                for k in ks {
                    cmd.arg(self.key(k));
                }
                cmd
            })
            .await?;
        let mut found: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for (ks, vals) in answers {
            if vals.len() != ks.len() {
                return Err(err("MGET answered a different number of values"));
            }
            found.extend(ks.into_iter().zip(vals));
        }
        Ok(keys.iter().map(|k| found.get(k).cloned().flatten()).collect())
    }

    async fn put_data(&self, pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), StoreError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let vals: BTreeMap<Vec<u8>, Vec<u8>> = pairs.into_iter().collect();
        let keys: Vec<Vec<u8>> = vals.keys().cloned().collect();
        self.per_group::<(), _>(keys, |ks| {
            let mut cmd = redis::cmd("MSET");
            for k in ks {
                cmd.arg(self.key(k)).arg(vals.get(k).map_or(&[][..], Vec::as_slice));
            }
            cmd
        })
        .await
        .map(drop)
    }

    async fn del_data(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.per_group::<i64, _>(keys, |ks| {
            let mut cmd = redis::cmd("DEL");
            for k in ks {
                cmd.arg(self.key(k));
            }
            cmd
        })
        .await
        .map(drop)
    }

    async fn scan_all(&self, after: &[u8], limit: usize) -> Result<Pairs, StoreError> {
        let meta = [b"dpfs{".as_slice(), &glob_escape(self.volume.as_bytes()), b"}*"].concat();
        let data = [b"dpfsd{".as_slice(), &glob_escape(self.volume.as_bytes()), b"/*"].concat();
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for pattern in [meta, data] {
            for rk in self.keys_matching(&pattern).await? {
                if let Some(k) = self.unkey(&rk).filter(|k| k.as_slice() > after) {
                    keys.push(k);
                }
            }
        }
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        let (data, meta): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            keys.into_iter().partition(|k| schema::data_key_parts(k).is_some());
        let mut out: Pairs = Vec::with_capacity(meta.len() + data.len());
        let vals = self.get_many(&meta).await?;
        out.extend(meta.into_iter().zip(vals).filter_map(|(k, v)| v.map(|v| (k, v))));
        let vals = self.get_data(&data).await?;
        out.extend(data.into_iter().zip(vals).filter_map(|(k, v)| v.map(|v| (k, v))));
        out.sort();
        Ok(out)
    }
}
