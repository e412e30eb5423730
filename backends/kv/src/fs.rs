//! [`KvFs`]: the runtime, the per-daemon state (open handles, locks, node-id range) and the
//! `FileSystem` glue that turns each request into a task answering its token.

use crate::config::KvConfig;
use crate::error::{Fail, StoreError};
use crate::schema::{Inode, Ts};
use crate::store::Store;
use crate::tx::Tx;
use dpfs_core::fs::{Attr, Context, Entry, ReadArgs, SetAttr, WriteArgs, WriteData};
use dpfs_core::reply::*;
use dpfs_core::{Errno, FileSystem};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Stripes of the in-process lock table.
const STRIPES: usize = 256;
/// How often commits are made durable without an fsync.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Attempts of one operation before it answers EIO.
const ATTEMPTS: u32 = 64;

/// An open file or directory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Handle {
    pub ino: u64,
    pub flags: u32,
}

/// What the operations share.
pub(crate) struct Inner<S> {
    pub store: S,
    pub cfg: KvConfig,
    pub handles: Mutex<HashMap<u64, Handle>>,
    /// Open handles per inode.
    pub opens: Mutex<HashMap<u64, u64>>,
    /// Inodes this daemon kept open after their last name went (reclaimed at last release).
    pub orphans: Mutex<std::collections::HashSet<u64>>,
    pub next_fh: AtomicU64,
    /// The reserved node-id range `[next, end)`.
    pub inos: Mutex<(u64, u64)>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    /// Taken by cross-directory renames (keeps the ancestor walk stable in this daemon).
    pub rename_lock: tokio::sync::Mutex<()>,
}

/// A file system on a [`Store`]. Safe to share between threads.
pub struct KvFs<S: Store> {
    inner: Arc<Inner<S>>,
    rt: tokio::runtime::Runtime,
}

impl<S: Store> KvFs<S> {
    /// Serves volume `cfg.volume` of `store` (formatting it if new, reclaiming orphans).
    pub fn new(store: S, cfg: KvConfig) -> Result<KvFs<S>, StoreError> {
        let rt = runtime(cfg.workers)?;
        Self::with_runtime(rt, store, cfg)
    }

    /// As [`new`](Self::new), on a runtime the store was made in (Redis connections).
    pub fn with_runtime(rt: tokio::runtime::Runtime, store: S, cfg: KvConfig) -> Result<KvFs<S>, StoreError> {
        let inner = Arc::new(Inner {
            store,
            cfg,
            handles: Mutex::new(HashMap::new()),
            opens: Mutex::new(HashMap::new()),
            orphans: Mutex::new(Default::default()),
            next_fh: AtomicU64::new(1),
            inos: Mutex::new((0, 0)),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            rename_lock: tokio::sync::Mutex::new(()),
        });
        let i = inner.clone();
        rt.block_on(async move {
            i.format().await?;
            i.reclaim_orphans().await
        })?;
        rt.spawn(flusher(Arc::downgrade(&inner)));
        Ok(KvFs { inner, rt })
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Open handles of this daemon.
    pub fn handle_count(&self) -> usize {
        self.inner.handles.lock().len()
    }

    /// Inodes in use and bytes allocated, from the volume's counters.
    pub fn usage(&self) -> Result<(u64, u64), StoreError> {
        let keys = [crate::schema::inodes_key(), crate::schema::bytes_key()];
        let v = self.rt.block_on(self.inner.store.get_many(&keys))?;
        let c = |n: usize| crate::store::counter(v.get(n).and_then(|x| x.as_deref())).max(0) as u64;
        Ok((c(0), c(1)))
    }

    /// Runs `f` on the backend's runtime and waits for it (host-side helpers and tests).
    pub fn block_on<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt.block_on(f)
    }

    /// Runs a request. On a local store (redb) it starts on the calling thread (a HAL
    /// poller or FUSE reader): it is polled once there, which runs it up to its first
    /// wait (its reads and `fsync`-mode commits only touch memory and the local file's
    /// page cache; the two thread hops of a task cost more than that). A request that then
    /// has to wait — for a lock, or for an `immediate` commit, which redb's committer
    /// applies on its own thread — moves to the runtime as a task, so the poller goes on
    /// with the next request and never waits for the disk. A network store's requests are
    /// runtime tasks from the start. A caller that is itself inside a tokio runtime
    /// always gets a task.
    pub(crate) fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        if self.inner.store.is_local() && tokio::runtime::Handle::try_current().is_err() {
            let _rt = self.rt.enter();
            let mut f = Box::pin(f);
            // A waker that does nothing: if the request is not done, the runtime polls
            // it again at once.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if f.as_mut().poll(&mut cx).is_pending() {
                drop(self.rt.spawn(f));
            }
        } else {
            drop(self.rt.spawn(f));
        }
    }
}

/// Makes the commits of the last second durable, once a second, while the file system
/// lives: a crash loses at most about a second of un-fsynced work (fsync loses none).
async fn flusher<S: Store>(inner: std::sync::Weak<Inner<S>>) {
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        let Some(i) = inner.upgrade() else { return };
        if let Err(e) = crate::tx::timed(i.cfg.op_timeout, i.store.sync()).await {
            tracing::warn!("kv: periodic flush: {e}");
        }
    }
}

/// A multi-thread runtime with `workers` threads (at least 1).
pub fn runtime(workers: usize) -> Result<tokio::runtime::Runtime, StoreError> {
    builder(workers).build().map_err(|e| StoreError::Redb(format!("cannot start the kv runtime: {e}")))
}

/// As [`runtime`], for a store reached over the network (Redis): replies completed on a
/// worker reach the device together, when the worker runs out of work (`dpfs_core::hold`:
/// one ring lock and one guest signal for the lot, as nfs does). Not for redb, whose
/// commits and flushes may keep a worker in a system call while held replies wait.
pub fn network_runtime(workers: usize) -> Result<tokio::runtime::Runtime, StoreError> {
    builder(workers)
        .on_thread_park(dpfs_core::hold::at_park)
        .build()
        .map_err(|e| StoreError::Redb(format!("cannot start the kv runtime: {e}")))
}

fn builder(workers: usize) -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.worker_threads(workers.max(1)).thread_name("dpfs-kv").enable_all();
    b
}

impl<S: Store> Inner<S> {
    /// A fresh attempt.
    pub fn tx(&self) -> Tx<'_, S> {
        Tx::new(&self.store, self.cfg.op_timeout)
    }

    /// Runs attempts of `f` until one commits, fails with an errno, or the attempts run out.
    pub async fn run<'a, T, F, Fut>(&'a self, mut f: F) -> Result<T, Errno>
    where
        F: FnMut(Tx<'a, S>) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        for attempt in 0..ATTEMPTS {
            match f(self.tx()).await {
                Ok(v) => return Ok(v),
                Err(Fail::Errno(e)) => return Err(e),
                Err(Fail::Store(e)) => return Err(store_failed(e)),
                Err(Fail::Conflict) => {
                    let pause = 50u64 << attempt.min(8);
                    tokio::time::sleep(Duration::from_micros(pause + (attempt as u64 * 37) % 97)).await;
                }
            }
        }
        tracing::warn!("kv: an operation kept conflicting with other writers; answering EIO");
        Err(Errno::EIO)
    }

    /// Takes the in-process locks of `inos` (sorted, so no two tasks deadlock).
    pub async fn lock(&self, inos: &[u64]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut idx: Vec<usize> = inos.iter().map(|&i| (i as usize) % STRIPES).collect();
        idx.sort_unstable();
        idx.dedup();
        let mut guards = Vec::with_capacity(idx.len());
        for i in idx {
            if let Some(m) = self.stripes.get(i) {
                guards.push(m.lock().await);
            }
        }
        guards
    }

    /// The attributes the guest sees.
    pub fn attr(&self, ino: u64, i: &Inode) -> Attr {
        let size = if i.is_dir() { (i.entries + 2) * 20 } else { i.size };
        let blocks = match &i.inline {
            Some(d) => (d.len() as u64).div_ceil(4096) * 8,
            None => i.chunks * (crate::schema::CHUNK / 512),
        };
        Attr {
            ino,
            size,
            blocks,
            atime: i.atime.sec as u64,
            mtime: i.mtime.sec as u64,
            ctime: i.ctime.sec as u64,
            atimensec: i.atime.nsec,
            mtimensec: i.mtime.nsec,
            ctimensec: i.ctime.nsec,
            mode: i.mode,
            nlink: i.nlink,
            uid: i.uid,
            gid: i.gid,
            rdev: i.rdev,
            blksize: 4096,
            flags: 0,
        }
    }

    /// The entry the guest sees.
    pub fn entry(&self, ino: u64, i: &Inode) -> Entry {
        Entry {
            ino,
            generation: 1,
            attr: self.attr(ino, i),
            entry_timeout: self.cfg.entry_timeout,
            attr_timeout: self.cfg.attr_timeout,
        }
    }

    /// The handle `fh`, which must belong to `ino` (EBADF otherwise).
    pub fn handle(&self, fh: u64, ino: u64) -> Result<Handle, Errno> {
        match self.handles.lock().get(&fh) {
            Some(h) if h.ino == ino => Ok(*h),
            _ => Err(Errno::EBADF),
        }
    }

    /// True if this daemon has `ino` open.
    pub fn is_open(&self, ino: u64) -> bool {
        self.opens.lock().get(&ino).is_some_and(|&n| n > 0)
    }
}

/// Logs a store failure and turns it into the guest's EIO.
pub(crate) fn store_failed(e: StoreError) -> Errno {
    tracing::warn!("kv store: {e}");
    Errno::EIO
}

/// Now, for timestamps.
pub(crate) fn now() -> Ts {
    Ts::now()
}

macro_rules! spawn_answer {
    ($self:ident, $reply:ident, |$i:ident| $body:expr) => {{
        let $i = $self.inner.clone();
        $self.spawn(async move { $reply.answer($body.await) })
    }};
}

impl<S: Store> FileSystem for KvFs<S> {
    fn destroy(&self) {
        let i = self.inner.clone();
        match tokio::runtime::Handle::try_current() {
            Err(_) => self.rt.block_on(async move { i.drop_all_handles().await }),
            Ok(_) => drop(self.rt.spawn(async move { i.drop_all_handles().await })),
        }
    }
    fn lookup(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEntry) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| i.do_lookup(&ctx, parent, &name))
    }
    fn getattr(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let ttl = self.inner.cfg.attr_timeout;
        spawn_answer!(self, reply, |i| async move { i.do_getattr(ino).await.map(|a| (a, ttl)) })
    }
    fn setattr(&self, ctx: &Context, ino: u64, attr: &SetAttr, reply: ReplyAttr) {
        let (ctx, sa, ttl) = (*ctx, *attr, self.inner.cfg.attr_timeout);
        spawn_answer!(self, reply, |i| async move { i.do_setattr(&ctx, ino, &sa).await.map(|a| (a, ttl)) })
    }
    fn readlink(&self, _ctx: &Context, ino: u64, reply: ReplyData) {
        spawn_answer!(self, reply, |i| i.do_readlink(ino))
    }
    fn symlink(&self, ctx: &Context, parent: u64, name: &[u8], target: &[u8], reply: ReplyEntry) {
        let (ctx, name, target) = (*ctx, name.to_vec(), target.to_vec());
        spawn_answer!(self, reply, |i| i.do_symlink(&ctx, parent, &name, &target))
    }
    fn mknod(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, rdev: u32, umask: u32, reply: ReplyEntry) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| i.do_mknod(&ctx, parent, &name, mode, rdev, umask))
    }
    fn mkdir(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, reply: ReplyEntry) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| i.do_mkdir(&ctx, parent, &name, mode, umask))
    }
    fn unlink(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| i.do_unlink(&ctx, parent, &name))
    }
    fn rmdir(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| i.do_rmdir(&ctx, parent, &name))
    }
    fn rename(&self, ctx: &Context, p: u64, name: &[u8], np: u64, newname: &[u8], flags: u32, reply: ReplyEmpty) {
        let (ctx, name, newname) = (*ctx, name.to_vec(), newname.to_vec());
        spawn_answer!(self, reply, |i| i.do_rename(&ctx, p, &name, np, &newname, flags))
    }
    fn link(&self, ctx: &Context, ino: u64, newparent: u64, newname: &[u8], reply: ReplyEntry) {
        let (ctx, newname) = (*ctx, newname.to_vec());
        spawn_answer!(self, reply, |i| i.do_link(&ctx, ino, newparent, &newname))
    }
    fn open(&self, ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        let ctx = *ctx;
        spawn_answer!(self, reply, |i| async move { i.do_open(&ctx, ino, flags).await.map(|fh| (fh, 0)) })
    }
    fn read(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyData) {
        spawn_answer!(self, reply, |i| i.do_read(ino, args))
    }
    fn write(&self, ctx: &Context, ino: u64, args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        // The payload is copied out of request memory before the request call returns.
        let mut buf = vec![0u8; data.len()];
        data.copy_to(&mut buf);
        let ctx = *ctx;
        spawn_answer!(self, reply, |i| i.do_write(&ctx, ino, args, buf))
    }
    fn statfs(&self, _ctx: &Context, _ino: u64, reply: ReplyStatfs) {
        spawn_answer!(self, reply, |i| i.do_statfs())
    }
    fn release(&self, _c: &Context, ino: u64, fh: u64, _f: u32, _o: u64, _fl: bool, _fu: bool, reply: ReplyEmpty) {
        spawn_answer!(self, reply, |i| i.do_release(ino, fh))
    }
    fn fsync(&self, _ctx: &Context, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        spawn_answer!(self, reply, |i| i.do_fsync(ino))
    }
    fn setxattr(&self, ctx: &Context, ino: u64, name: &[u8], value: &[u8], flags: u32, _x: u32, reply: ReplyEmpty) {
        let (ctx, name, value) = (*ctx, name.to_vec(), value.to_vec());
        spawn_answer!(self, reply, |i| i.do_setxattr(&ctx, ino, &name, &value, flags))
    }
    fn getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32, reply: ReplyXattr) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| i.do_getxattr(&ctx, ino, &name, size))
    }
    fn listxattr(&self, ctx: &Context, ino: u64, size: u32, reply: ReplyXattr) {
        let ctx = *ctx;
        spawn_answer!(self, reply, |i| i.do_listxattr(&ctx, ino, size))
    }
    fn removexattr(&self, ctx: &Context, ino: u64, name: &[u8], reply: ReplyEmpty) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| i.do_removexattr(&ctx, ino, &name))
    }
    fn flush(&self, _ctx: &Context, _ino: u64, _fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        reply.ok()
    }
    fn opendir(&self, ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        let ctx = *ctx;
        spawn_answer!(self, reply, |i| async move { i.do_opendir(&ctx, ino, flags).await.map(|fh| (fh, 0)) })
    }
    fn readdir(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDir) {
        let i = self.inner.clone();
        self.spawn(async move { i.do_readdir(ino, args, reply).await })
    }
    fn readdirplus(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDirPlus) {
        let i = self.inner.clone();
        self.spawn(async move { i.do_readdirplus(ino, args, reply).await })
    }
    fn releasedir(&self, _ctx: &Context, ino: u64, fh: u64, _flags: u32, reply: ReplyEmpty) {
        spawn_answer!(self, reply, |i| i.do_release(ino, fh))
    }
    fn fsyncdir(&self, _ctx: &Context, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        spawn_answer!(self, reply, |i| i.do_fsync(ino))
    }
    fn access(&self, ctx: &Context, ino: u64, mask: u32, reply: ReplyEmpty) {
        let ctx = *ctx;
        spawn_answer!(self, reply, |i| i.do_access(&ctx, ino, mask))
    }
    fn create(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        let (ctx, name) = (*ctx, name.to_vec());
        spawn_answer!(self, reply, |i| async move {
            i.do_create(&ctx, parent, &name, mode, umask, flags).await.map(|(e, fh)| (e, fh, 0))
        })
    }
    fn fallocate(&self, _ctx: &Context, ino: u64, fh: u64, offset: u64, length: u64, mode: u32, reply: ReplyEmpty) {
        spawn_answer!(self, reply, |i| i.do_fallocate(ino, fh, offset, length, mode))
    }
    fn syncfs(&self, _ctx: &Context, _ino: u64, reply: ReplyEmpty) {
        spawn_answer!(self, reply, |i| i.do_fsync(crate::volume::ROOT))
    }
}
