//! A volume's life: formatting a new one, node-id ranges, and reclaiming inodes that lost
//! their last name (orphans).

use crate::error::{Fail, StoreError};
use crate::fs::{now, Inner};
use crate::schema::{self, decode, encode, Inode, Super, CHUNK, VERSION};
use crate::store::Store;
use crate::tx::timed;
use dpfs_core::Errno;

/// The root directory's node id.
pub const ROOT: u64 = 1;
/// Node ids a daemon reserves at a time.
pub const INO_BATCH: u64 = 1024;
/// Keys deleted per transaction while reclaiming.
const RECLAIM_BATCH: usize = 256;

/// Why a volume with superblock `sb` cannot be served by this dpfs.
pub(crate) fn format_mismatch(sb: &Super) -> String {
    format!(
        "volume format {} (chunk {} bytes) is not this dpfs's format {VERSION} (chunk {CHUNK}); \
         format 1 kept chunk bytes under their references, format 2 keeps them under data keys \
         of their own: copy the files to a new volume with the dpfs that wrote it",
        sb.version, sb.chunk
    )
}

impl<S: Store> Inner<S> {
    /// Creates the superblock and the root directory if the volume is new; checks the
    /// format of an existing one.
    pub(crate) async fn format(&self) -> Result<(), StoreError> {
        for _ in 0..16 {
            let mut tx = self.tx();
            let r: Result<(), Fail> = async {
                let sk = schema::super_key();
                if let Some(v) = tx.get(sk.clone()).await? {
                    let sb: Super = decode(&sk, &v)?;
                    if sb.version != VERSION || sb.chunk != CHUNK {
                        return Err(Fail::Store(StoreError::Corrupt { key: "S".into(), why: format_mismatch(&sb) }));
                    }
                    return Ok(());
                }
                let t = now();
                let root = Inode {
                    mode: libc::S_IFDIR | (self.cfg.root_mode & 0o7777),
                    uid: self.cfg.root_uid,
                    gid: self.cfg.root_gid,
                    nlink: 2,
                    atime: t,
                    mtime: t,
                    ctime: t,
                    parent: ROOT,
                    next_cookie: 3,
                    ..Default::default()
                };
                tx.put(sk, encode(&Super { version: VERSION, chunk: CHUNK, next_ino: ROOT + 1 }));
                tx.put_inode(ROOT, None, &root);
                tx.commit().await
            }
            .await;
            match r {
                Ok(()) => return timed(self.cfg.op_timeout, self.store.sync()).await,
                Err(Fail::Conflict) => continue,
                Err(Fail::Store(e)) => return Err(e),
                Err(Fail::Errno(e)) => return Err(StoreError::Redb(format!("formatting the volume: {e:?}"))),
            }
        }
        Err(StoreError::Redb("formatting the volume kept conflicting".into()))
    }

    /// A node id never used before in this volume.
    pub(crate) async fn alloc_ino(&self) -> Result<u64, Fail> {
        {
            let mut r = self.inos.lock();
            if r.0 < r.1 {
                r.0 += 1;
                return Ok(r.0 - 1);
            }
        }
        let start = self
            .run(|mut tx| async move {
                let sk = schema::super_key();
                let v = tx.get(sk.clone()).await?.ok_or(Fail::Errno(Errno::EIO))?;
                let mut sb: Super = decode(&sk, &v)?;
                let start = sb.next_ino;
                sb.next_ino = start.checked_add(INO_BATCH).ok_or(Fail::Errno(Errno::ENOSPC))?;
                tx.put(sk, encode(&sb));
                tx.commit().await?;
                Ok(start)
            })
            .await?;
        *self.inos.lock() = (start + 1, start + INO_BATCH);
        Ok(start)
    }

    /// Reclaims every orphan of the volume (at start: no daemon holds them open any more).
    pub(crate) async fn reclaim_orphans(&self) -> Result<(), StoreError> {
        let fam = schema::orphan_family();
        let mut after = Vec::new();
        loop {
            let batch = timed(self.cfg.op_timeout, self.store.scan(&fam, &after, RECLAIM_BATCH)).await?;
            let Some((last, _)) = batch.last() else { return Ok(()) };
            after = last.get(fam.len()..).unwrap_or_default().to_vec();
            for (k, _) in &batch {
                if let Some(ino) = schema::suffix_u64(k) {
                    if let Err(e) = self.reclaim(ino).await {
                        tracing::warn!(ino, "kv: could not reclaim orphan: {e:?}");
                    }
                }
            }
        }
    }

    /// Deletes inode `ino`'s chunks, xattrs and record if it has no name and this daemon
    /// has it closed; drops its orphan key.
    pub(crate) async fn reclaim(&self, ino: u64) -> Result<(), Errno> {
        if self.is_open(ino) {
            return Ok(());
        }
        for fam in [schema::chunk_family(ino), schema::xattr_family(ino)] {
            loop {
                let batch = timed(self.cfg.op_timeout, self.store.scan(&fam, &[], RECLAIM_BATCH))
                    .await
                    .map_err(crate::fs::store_failed)?;
                if batch.is_empty() {
                    break;
                }
                let is_chunk = fam.first() == Some(&b'B');
                let batch = &batch;
                self.run(|mut tx| async move {
                    let old = match tx.inode(ino).await {
                        Ok(i) => Some(i),
                        Err(Fail::Errno(e)) if e == Errno::ENOENT => None,
                        Err(e) => return Err(e),
                    };
                    if old.as_ref().is_some_and(|i| i.nlink > 0) {
                        return Err(Fail::Errno(Errno::EBUSY));
                    }
                    for (k, v) in batch {
                        match schema::suffix_u64(k) {
                            Some(idx) if is_chunk => tx.drop_chunk(ino, idx, schema::ref_gen(k, v)?),
                            _ => tx.del(k.clone()),
                        }
                    }
                    if let Some(old) = old {
                        let mut new = old.clone();
                        let n = batch.len() as u64;
                        if is_chunk {
                            new.chunks = new.chunks.saturating_sub(n);
                        } else {
                            new.xattrs = new.xattrs.saturating_sub(n as u32);
                        }
                        tx.put_inode(ino, Some(&old), &new);
                    }
                    tx.commit().await
                })
                .await
                .or_else(|e| if e == Errno::EBUSY { Ok(()) } else { Err(e) })?;
                if self.store_has_name(ino).await {
                    return Ok(());
                }
            }
        }
        self.run(|mut tx| async move {
            match tx.inode(ino).await {
                Ok(i) if i.nlink == 0 => tx.del_inode(ino, &i),
                Ok(_) => {}
                Err(Fail::Errno(e)) if e == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
            tx.del(schema::orphan_key(ino));
            tx.commit().await
        })
        .await
    }

    /// True if inode `ino` exists with a name (a reclaim must stop).
    async fn store_has_name(&self, ino: u64) -> bool {
        let mut tx = self.tx();
        matches!(tx.inode(ino).await, Ok(i) if i.nlink > 0)
    }
}
