//! Open files: OPEN, CREATE, OPENDIR, RELEASE(DIR), FSYNC, and DESTROY (which drops every
//! handle). An inode unlinked while open here is reclaimed at its last release.

use crate::fs::{now, Handle, Inner};
use crate::namei::{dot, NewNode};
use crate::perm;
use crate::store::Store;
use crate::tx::timed;
use dpfs_core::fs::{Context, Entry};
use dpfs_core::Errno;
use std::sync::atomic::Ordering;

/// The permission an `open(2)` with `flags` needs.
fn open_mask(flags: u32) -> Result<u32, Errno> {
    let mut mask = match (flags & libc::O_ACCMODE as u32) as i32 {
        libc::O_RDONLY => perm::R,
        libc::O_WRONLY => perm::W,
        libc::O_RDWR => perm::R | perm::W,
        _ => return Err(Errno::EINVAL),
    };
    if flags & libc::O_TRUNC as u32 != 0 {
        mask |= perm::W;
    }
    Ok(mask)
}

impl<S: Store> Inner<S> {
    /// Registers an open handle of `ino`.
    fn add_handle(&self, ino: u64, flags: u32) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        *self.opens.lock().entry(ino).or_insert(0) += 1;
        self.handles.lock().insert(fh, Handle { ino, flags });
        fh
    }

    pub(crate) async fn do_open(&self, ctx: &Context, ino: u64, flags: u32) -> Result<u64, Errno> {
        let mask = open_mask(flags)?;
        let trunc = flags & libc::O_TRUNC as u32 != 0;
        let _g = if trunc { Some(self.lock(&[ino]).await) } else { None };
        self.run(|mut tx| async move {
            let old = tx.inode(ino).await?;
            if old.is_dir() {
                return Err(Errno::EISDIR.into());
            }
            if old.mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(Errno::ELOOP.into());
            }
            perm::check(ctx, old.owner(), mask)?;
            if trunc && old.is_file() {
                let mut i = old.clone();
                if old.size > 0 {
                    self.truncate(&mut tx, ino, &mut i, 0).await?;
                    let t = now();
                    i.mtime = t;
                    i.ctime = t;
                }
                if ctx.uid != 0 {
                    i.kill_suid();
                }
                if i != old {
                    tx.put_inode(ino, Some(&old), &i);
                }
                tx.commit().await?;
            }
            Ok(())
        })
        .await?;
        Ok(self.add_handle(ino, flags))
    }

    pub(crate) async fn do_create(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
        flags: u32,
    ) -> Result<(Entry, u64), Errno> {
        let mode = libc::S_IFREG | (mode & 0o7777 & !umask);
        open_mask(flags)?;
        match self.make_node(ctx, parent, name, mode, 0, NewNode::File).await {
            Ok((ino, entry)) => Ok((entry, self.add_handle(ino, flags))),
            // Without O_EXCL an existing name is opened, as open(O_CREAT) does.
            Err(e) if e == Errno::EEXIST && flags & libc::O_EXCL as u32 == 0 && !dot(name) => {
                let entry = self.do_lookup(ctx, parent, name).await?;
                let fh = self.do_open(ctx, entry.ino, flags).await?;
                let mut entry = entry;
                if let Ok(a) = self.do_getattr(entry.ino).await {
                    entry.attr = a;
                }
                Ok((entry, fh))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn do_opendir(&self, ctx: &Context, ino: u64, flags: u32) -> Result<u64, Errno> {
        self.run(|mut tx| async move {
            let i = tx.inode(ino).await?;
            if !i.is_dir() {
                return Err(Errno::ENOTDIR.into());
            }
            let mask =
                if flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 { perm::R } else { perm::R | perm::W };
            perm::check(ctx, i.owner(), mask)?;
            Ok(())
        })
        .await?;
        Ok(self.add_handle(ino, flags))
    }

    /// Drops handle `fh`; the last release of an inode without names reclaims it.
    pub(crate) async fn do_release(&self, ino: u64, fh: u64) -> Result<(), Errno> {
        if self.handle(fh, ino).is_err() {
            return Ok(());
        }
        self.handles.lock().remove(&fh);
        let last = {
            let mut opens = self.opens.lock();
            match opens.get_mut(&ino) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    opens.remove(&ino);
                    true
                }
            }
        };
        // Only an inode this daemon kept after its last name went can need reclaiming
        // (a store read per close otherwise).
        if last && self.orphans.lock().remove(&ino) {
            self.reclaim_if_orphan(ino).await?;
        }
        Ok(())
    }

    /// Reclaims `ino` if it is on the orphan list.
    async fn reclaim_if_orphan(&self, ino: u64) -> Result<(), Errno> {
        let orphan =
            self.run(|mut tx| async move { Ok(tx.get(crate::schema::orphan_key(ino)).await?.is_some()) }).await?;
        if orphan {
            self.reclaim(ino).await?;
        }
        Ok(())
    }

    /// FSYNC / FSYNCDIR / SYNCFS: every commit so far reaches stable storage.
    pub(crate) async fn do_fsync(&self, ino: u64) -> Result<(), Errno> {
        self.run(|mut tx| async move {
            tx.inode(ino).await?;
            Ok(())
        })
        .await?;
        timed(self.cfg.op_timeout, self.store.sync()).await.map_err(crate::fs::store_failed)
    }

    /// DESTROY / reset: drops every handle, reclaims the orphans that held, and makes
    /// everything durable (an unmount keeps what was written, fsynced or not).
    pub(crate) async fn drop_all_handles(&self) {
        self.handles.lock().clear();
        self.opens.lock().clear();
        let inos: Vec<u64> = self.orphans.lock().drain().collect();
        for ino in inos {
            if let Err(e) = self.reclaim_if_orphan(ino).await {
                tracing::warn!(ino, "kv: reclaiming at destroy failed: {e:?}");
            }
        }
        if let Err(e) = timed(self.cfg.op_timeout, self.store.sync()).await {
            tracing::warn!("kv: sync at destroy failed: {e}");
        }
    }
}
