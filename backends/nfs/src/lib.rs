//! The nfs backend: a FUSE file system whose every operation is an NFSv4.1 compound sent by
//! dpfs's own client ([`dpfs_nfs4`]). FUSE operations run as tasks on the backend's tokio
//! runtime and answer their reply tokens from there: a poller thread never waits for the
//! network, and every request is answered within the configured deadline (EIO past it).
//!
//! # Map
//! - [`config`]: [`NfsConfig`] (server, export, deadline, cache timeouts, table limits).
//! - `nodes`: node id → server file handle (ids are table keys); `handles`: open files
//!   (their NFS open stateid, uncommitted writes) and directories (cookie verifier).
//! - `ids`: caller credentials (AUTH_SYS with the host's supplementary groups) and owner
//!   names mapped through the host's user and group database.
//! - Operations, one domain per file: `namei` (lookup, create-type ops, link, unlink,
//!   rmdir, rename, readlink), `attr` (getattr, setattr, access, statfs), `io` (open,
//!   create, read, write, flush, fsync, release), `readdir`.
//! - `errno`: NFS status → errno.
//! - `libnfs` (feature `libnfs`): the second engine, `LibnfsFs`, on libnfs's NFSv3
//!   client, sharing the node table and core's reply glue.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Server replies are hostile input.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

mod attr;
pub mod config;
mod errno;
mod handles;
mod ids;
mod io;
#[cfg(feature = "libnfs")]
pub mod libnfs;
mod locks;
mod namei;
mod nodes;
mod ops;
mod ranges;
mod readdir;
mod v42;
mod xattr;

pub use config::{NfsClient, NfsConfig};
pub use dpfs_nfs4::MAX_NCONNECT;
#[cfg(feature = "libnfs")]
pub use libnfs::LibnfsFs;

use crate::errno::{errno, retryable};
use crate::handles::Handles;
use crate::ids::Ids;
use crate::nodes::Nodes;
use dpfs_core::fs::ConnInfo;
use dpfs_core::reply::Answer;
use dpfs_core::Errno;
use dpfs_nfs4::compound::Replies;
use dpfs_nfs4::ops::Op;
use dpfs_nfs4::{Client, ClientConfig, Creds};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Why the backend could not start.
#[derive(Debug, thiserror::Error)]
pub enum NfsError {
    /// The tokio runtime could not be built.
    #[error("nfs backend: cannot start its runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The server refused or failed the session or the export.
    #[error("NFS server {server}, export {export}: {cause}")]
    Connect {
        /// The server.
        server: std::net::SocketAddr,
        /// The export.
        export: String,
        /// What failed (in the message: not a separate source, so it is said once).
        cause: dpfs_nfs4::Error,
    },
    /// The server did not answer in time.
    #[error("NFS server {server}, export {export}: no answer within {timeout:?}")]
    Timeout {
        /// The server.
        server: std::net::SocketAddr,
        /// The export.
        export: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// libnfs could not mount the export (its message).
    #[error("NFS server {server}, export {export} (NFSv3, libnfs): {cause}")]
    Libnfs {
        /// The server.
        server: std::net::SocketAddr,
        /// The export.
        export: String,
        /// libnfs's message.
        cause: String,
    },
    /// `--nfs-client libnfs` in a build without the `libnfs` feature.
    #[error("--nfs-client libnfs: this dpfs was built without the `libnfs` cargo feature")]
    NoLibnfs,
    /// The export's root has no file id.
    #[error("NFS server {server}, export {export}: the export's root has no file id")]
    NoFileId {
        /// The server.
        server: std::net::SocketAddr,
        /// The export.
        export: String,
    },
}

/// Most bytes of one READ or WRITE below the session's request/response size (room for the
/// RPC and compound headers).
const IO_HEADROOM: u32 = 4096;

/// The state every operation's task shares.
pub(crate) struct Inner {
    pub client: Arc<Client>,
    pub nodes: Nodes,
    pub handles: Handles,
    pub ids: Ids,
    pub cfg: NfsConfig,
    /// Largest READ or WRITE payload.
    pub max_io: u32,
    /// UNSTABLE writes sent again because the server's write verifier changed.
    pub resent: std::sync::atomic::AtomicU64,
    /// Open files reclaimed with CLAIM_PREVIOUS after server restarts.
    pub reclaimed: std::sync::atomic::AtomicU64,
    /// Lock owners whose locks were reclaimed after server restarts.
    pub reclaimed_locks: std::sync::atomic::AtomicU64,
    /// Which open holds each lock owner's locks on each file.
    pub lock_homes: locks::LockHomes,
}

impl Inner {
    /// Sends `ops` as `creds`, again while the server asks for a delay (NFS4ERR_DELAY,
    /// GRACE): the caller's deadline bounds the retries.
    pub async fn call(&self, creds: &Creds, ops: &[Op]) -> Result<Replies, Errno> {
        self.call_raw(creds, ops).await.map_err(|e| errno(&e))
    }

    /// [`call`](Self::call) with the client's error.
    pub async fn call_raw(&self, creds: &Creds, ops: &[Op]) -> dpfs_nfs4::Result<Replies> {
        let mut backoff = Duration::from_millis(5);
        loop {
            match self.client.compound_as(creds, ops).await {
                Err(e) if retryable(&e) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                r => return r,
            }
        }
    }
}

/// A client result as the guest's errno.
pub(crate) fn nfs<T>(r: dpfs_nfs4::Result<T>) -> Result<T, Errno> {
    r.map_err(|e| errno(&e))
}

/// The backend of `cfg`'s client engine, connected (errors name the server and export).
pub fn backend(cfg: NfsConfig) -> Result<Arc<dyn dpfs_core::FileSystem>, NfsError> {
    match cfg.client {
        NfsClient::Dpfs => Ok(Arc::new(NfsFs::connect(cfg)?)),
        #[cfg(feature = "libnfs")]
        NfsClient::Libnfs => Ok(Arc::new(LibnfsFs::connect(cfg)?)),
        #[cfg(not(feature = "libnfs"))]
        NfsClient::Libnfs => Err(NfsError::NoLibnfs),
    }
}

/// Connects to the export once and ends the session again, on a current-thread runtime
/// (no thread is started: the daemon calls it before it confines itself). Errors name the
/// server and the export.
pub fn probe(cfg: &NfsConfig) -> Result<(), NfsError> {
    if cfg.client == NfsClient::Libnfs {
        #[cfg(feature = "libnfs")]
        return libnfs::probe(cfg);
        #[cfg(not(feature = "libnfs"))]
        return Err(NfsError::NoLibnfs);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = rt.block_on(connect(cfg))?;
    let _ = rt.block_on(async { tokio::time::timeout(cfg.connect_timeout, client.shutdown()).await });
    Ok(())
}

/// The client of `cfg`'s export, within its connect timeout (to be run on a runtime).
async fn connect(cfg: &NfsConfig) -> Result<Client, NfsError> {
    let (server, export) = (cfg.server, cfg.export.clone());
    let ccfg = ClientConfig {
        timeout: cfg.deadline.min(cfg.connect_timeout),
        nconnect: cfg.nconnect,
        minor: cfg.minor,
        ..ClientConfig::default()
    };
    match tokio::time::timeout(cfg.connect_timeout, Client::connect_with(server, &export, Creds::root(), ccfg)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(cause)) => Err(NfsError::Connect { server, export, cause }),
        Err(_) => Err(NfsError::Timeout { server, export, timeout: cfg.connect_timeout }),
    }
}

/// The NFS file system: one client session to one export.
pub struct NfsFs {
    inner: Arc<Inner>,
    rt: Option<tokio::runtime::Runtime>,
    /// Waiting SETLKW requests by FUSE unique: INTERRUPT ends the wait (EINTR).
    waiters: Arc<parking_lot::Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>>>,
}

impl NfsFs {
    /// Connects to the export (bounded by `cfg.connect_timeout`) and starts the lease
    /// renewal. Errors name the server and the export.
    pub fn connect(cfg: NfsConfig) -> Result<Self, NfsError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads.max(1))
            .thread_name("dpfs-nfs")
            // Replies completed on a worker reach the device together, when the worker runs
            // out of work (one ring lock, one guest signal).
            .on_thread_park(dpfs_core::hold::at_park)
            .enable_all()
            .build()?;
        let (server, export) = (cfg.server, cfg.export.clone());
        let client = Arc::new(rt.block_on(connect(&cfg))?);
        let fileid = client.root_attrs().fileid.ok_or(NfsError::NoFileId { server, export: export.clone() })?;
        {
            let _guard = rt.enter();
            client.renew_while_idle();
        }
        let fore = client.fore_channel();
        let max_io =
            fore.max_request.min(fore.max_response).saturating_sub(IO_HEADROOM).min(cfg.max_io).max(4096) & !4095;
        tracing::info!(%server, export, max_io, slots = client.slots().len(), "NFS export mounted");
        let inner = Inner {
            nodes: Nodes::new(client.root().clone(), fileid, cfg.max_nodes),
            handles: Handles::new(cfg.max_handles),
            ids: Ids::default(),
            client,
            cfg,
            max_io,
            resent: Default::default(),
            reclaimed: Default::default(),
            reclaimed_locks: Default::default(),
            lock_homes: Default::default(),
        };
        let inner = Arc::new(inner);
        // The client calls this from its recovery, on the runtime; a weak reference, as the
        // client lives inside `inner`.
        let weak = Arc::downgrade(&inner);
        inner.client.on_server_restart(Box::new(move || {
            if let Some(inner) = weak.upgrade() {
                tokio::spawn(async move { inner.recover_state().await });
            }
        }));
        Ok(Self { inner, rt: Some(rt), waiters: Default::default() })
    }

    /// Largest READ or WRITE payload (the FUSE session's max_write is capped to it).
    pub fn max_io(&self) -> u32 {
        self.inner.max_io
    }

    /// UNSTABLE writes sent again (FILE_SYNC) because the server's write verifier changed
    /// before their COMMIT: a server restart the guest did not see.
    pub fn resent_writes(&self) -> u64 {
        self.inner.resent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Open files reclaimed with CLAIM_PREVIOUS in a restarted server's grace period.
    pub fn reclaimed_opens(&self) -> u64 {
        self.inner.reclaimed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Lock owners whose locks were reclaimed in a restarted server's grace period.
    pub fn reclaimed_locks(&self) -> u64 {
        self.inner.reclaimed_locks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Node ids held (for tests).
    pub fn nodes(&self) -> usize {
        self.inner.nodes.len()
    }

    /// Runs `f` on the runtime and answers `reply` with its result, or EIO past the deadline.
    fn run<R, F, Fut>(&self, reply: R, f: F)
    where
        R: Answer + 'static,
        R::Value: Send + 'static,
        F: FnOnce(Arc<Inner>) -> Fut,
        Fut: Future<Output = Result<R::Value, Errno>> + Send + 'static,
    {
        let deadline = self.inner.cfg.deadline;
        let fut = f(self.inner.clone());
        self.spawn(async move {
            let r = tokio::time::timeout(deadline, fut).await.unwrap_or(Err(Errno::EIO));
            reply.answer(r);
        });
    }

    /// Spawns a task on the runtime (dropped, with its reply token answering EIO, once the
    /// runtime is gone).
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        if let Some(rt) = &self.rt {
            rt.spawn(fut);
        }
    }

    fn creds(&self, ctx: &dpfs_core::fs::Context) -> Creds {
        self.inner.ids.creds(ctx.uid, ctx.gid, ctx.supplementary_gid)
    }

    fn init_conn(&self, conn: &mut ConnInfo) {
        conn.max_write = conn.max_write.min(self.inner.max_io);
        conn.want &= !(dpfs_core::abi::init::DONT_MASK | dpfs_core::abi::init::WRITEBACK_CACHE);
        conn.want |= dpfs_core::abi::init::POSIX_LOCKS & conn.capable;
    }
}

impl Drop for NfsFs {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                // Dropped inside another runtime: blocking here would panic.
                rt.shutdown_background();
                return;
            }
            // Close what the guest left open and end the session, briefly: the server
            // forgets state of a client whose lease expires anyway.
            let inner = self.inner.clone();
            rt.block_on(async move {
                let close = async {
                    for h in inner.handles.drain() {
                        if let Some(f) = h.as_file() {
                            let ops = [Op::PutFh(f.fh.clone()), Op::Close(f.stateid.lock().0)];
                            let _ = inner.client.compound_as(&Creds::root(), &ops).await;
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(2), close).await;
                // The session and the client id go too.
                let _ = tokio::time::timeout(Duration::from_secs(2), inner.client.end()).await;
            });
            rt.shutdown_background();
        }
    }
}
