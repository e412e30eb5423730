//! The gateway server (`dpfs gateway`): accepts forwarders on TCP, authenticates them and
//! runs one core [`Device`] (FUSE session + backend instance) per forwarded device
//! identity, unlike DPFS's RVFS, where every device shared one session.
//!
//! Threads: an accept thread, and `threads` workers, each a single-threaded tokio runtime
//! that owns the connections given to it (round robin). A request runs inline on its
//! connection's worker, with the worker's index as the request's thread (backends keep
//! per-thread resources by it), and is answered from whichever thread the backend
//! completes on.

mod conn;
mod session;

use dpfs_core::{Device, DeviceId, FileSystem, SessionConfig};
use dpfs_remote_wire::{Key, Nonce};
use parking_lot::Mutex;
use session::Session;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::watch;

/// Makes the backend instance of a new device.
pub type Factory = dyn Fn(DeviceId) -> Result<Arc<dyn FileSystem>, String> + Send + Sync;

/// What the gateway runs.
pub struct GatewayConfig {
    /// The pre-shared key.
    pub key: Key,
    /// Worker threads (at least 1).
    pub threads: u16,
    /// FUSE session settings of every device.
    pub session: SessionConfig,
    /// Backend of every device.
    pub factory: Arc<Factory>,
}

/// Counters, for logs and tests.
#[derive(Debug, Default)]
pub struct GatewayStats {
    /// Requests handed to a backend (each sequence number at most once).
    pub executed: AtomicU64,
    /// Replies sent again from the cache for resent requests.
    pub replayed: AtomicU64,
    /// Connections refused (wrong key or version).
    pub refused: AtomicU64,
    /// Sessions created.
    pub sessions: AtomicU64,
}

pub(crate) struct Shared {
    cfg: GatewayConfig,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    next_dev: AtomicU32,
    next_conn: AtomicU64,
    stats: Arc<GatewayStats>,
}

impl Shared {
    /// The session to use for `identity`: the one asked for if it still exists, else a
    /// new one (replacing, and closing, an older session of the same identity).
    fn session_for(&self, identity: &str, resume: u64) -> Result<(Arc<Session>, bool), String> {
        let mut map = self.sessions.lock();
        if let Some(s) = map.get(identity).filter(|s| resume != 0 && s.id == resume) {
            return Ok((s.clone(), true));
        }
        let dev = DeviceId(self.next_dev.fetch_add(1, Ordering::Relaxed));
        let fs = (self.cfg.factory)(dev)?;
        let device = Arc::new(Device::new(dev, fs, self.cfg.session.clone()));
        let id = session_id().map_err(|e| e.to_string())?;
        let s = Arc::new(Session::new(id, device));
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = map.insert(identity.to_owned(), s.clone()) {
            tracing::info!(identity, old = old.id, new = id, "the forwarder started over: old session closed");
            old.close();
        }
        Ok((s, false))
    }
}

/// Sessions no connection served for this long are dropped (their forwarder is gone; one
/// that comes back later finds no session and starts over, as after a gateway restart).
pub const SESSION_IDLE: std::time::Duration = std::time::Duration::from_secs(600);

impl Shared {
    /// Drops the sessions idle for `idle`; returns how many.
    fn reap(&self, now: std::time::Instant, idle: std::time::Duration) -> usize {
        let mut map = self.sessions.lock();
        let before = map.len();
        map.retain(|identity, s| {
            let keep = !s.idle(now, idle);
            if !keep {
                tracing::info!(identity, session = s.id, "session idle too long: closed");
                s.close();
            }
            keep
        });
        before - map.len()
    }
}

fn session_id() -> Result<u64, dpfs_remote_wire::KeyError> {
    loop {
        let n = Nonce::random()?;
        let id = u64::from_le_bytes(*n.0.first_chunk::<8>().unwrap_or(&[0; 8]));
        if id != 0 {
            return Ok(id);
        }
    }
}

/// A bound gateway, not yet serving.
pub struct Gateway {
    listener: TcpListener,
    cfg: GatewayConfig,
}

impl Gateway {
    /// Binds the listening socket.
    pub fn bind(addr: SocketAddr, cfg: GatewayConfig) -> std::io::Result<Gateway> {
        Ok(Gateway { listener: TcpListener::bind(addr)?, cfg })
    }

    /// The address it listens on (with the port chosen when binding port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Starts the accept thread and the workers.
    pub fn start(self) -> std::io::Result<GatewayHandle> {
        let addr = self.listener.local_addr()?;
        let threads = self.cfg.threads.max(1);
        let stats = Arc::new(GatewayStats::default());
        let shared = Arc::new(Shared {
            cfg: self.cfg,
            sessions: Mutex::new(HashMap::new()),
            next_dev: AtomicU32::new(0),
            next_conn: AtomicU64::new(0),
            stats: stats.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let mut joins = Vec::new();
        let mut workers = Vec::new();
        for t in 0..threads {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            workers.push(rt.handle().clone());
            let mut stopped = stopped.clone();
            joins.push(std::thread::Builder::new().name(format!("dpfs-gw-{t}")).spawn(move || {
                rt.block_on(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                });
            })?);
        }
        self.listener.set_nonblocking(true)?;
        let listener = self.listener;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let mut stopped_accept = stopped.clone();
        joins.push(std::thread::Builder::new().name("dpfs-gw-accept".into()).spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let mut next = 0usize;
                let mut reap = tokio::time::interval(SESSION_IDLE / 10);
                loop {
                    tokio::select! {
                        _ = stopped_accept.wait_for(|s| *s) => return,
                        _ = reap.tick() => {
                            shared.reap(std::time::Instant::now(), SESSION_IDLE);
                        }
                        a = listener.accept() => match a {
                            Ok((s, _)) => {
                                let Ok(s) = s.into_std() else { continue };
                                let t = next % workers.len();
                                next += 1;
                                if let Some(w) = workers.get(t) {
                                    w.spawn(conn::serve(s, shared.clone(), t as u16));
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
            });
        })?);
        Ok(GatewayHandle { addr, stop, joins, stats })
    }
}

/// A running gateway.
pub struct GatewayHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    joins: Vec<JoinHandle<()>>,
    stats: Arc<GatewayStats>,
}

impl GatewayHandle {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its counters.
    pub fn stats(&self) -> &Arc<GatewayStats> {
        &self.stats
    }

    /// Stops accepting, drops every connection and session (as a crash would), and waits
    /// for the threads.
    pub fn shutdown(self) {
        let _ = self.stop.send(true);
        for j in self.joins {
            let _ = j.join();
        }
    }

    /// Serves until the process ends.
    pub fn wait(self) {
        for j in self.joins {
            let _ = j.join();
        }
    }
}
