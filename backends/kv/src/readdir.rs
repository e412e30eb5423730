//! READDIR and READDIRPLUS. Offsets are the directory's cookies: 1 and 2 follow `.` and
//! `..`, every other entry's offset is its own cookie, handed out by a counter that only
//! grows, so a listing continues at the right place while the directory changes.

use crate::error::Fail;
use crate::fs::{store_failed, Inner};
use crate::namei::DT_DIR;
use crate::schema::{self, decode, Dirent, Inode};
use crate::store::Store;
use crate::tx::timed;
use dpfs_core::fs::ReadArgs;
use dpfs_core::reply::{ReplyDir, ReplyDirPlus};
use dpfs_core::Errno;

/// Most entries read from the store per scan.
const BATCH: usize = 256;

fn errno(f: Fail) -> Errno {
    match f {
        Fail::Errno(e) => e,
        Fail::Store(e) => store_failed(e),
        Fail::Conflict => Errno::EIO,
    }
}

impl<S: Store> Inner<S> {
    /// The directory `ino` (ENOTDIR / ENOENT for a removed one).
    async fn live_dir(&self, ino: u64) -> Result<Inode, Errno> {
        let mut tx = self.tx();
        let d = tx.inode(ino).await.map_err(errno)?;
        if !d.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if d.is_dead_dir() {
            return Err(Errno::ENOENT);
        }
        Ok(d)
    }

    /// Up to [`BATCH`] entries of `ino` with a cookie greater than `after`.
    async fn entries_after(&self, ino: u64, after: u64) -> Result<Vec<Dirent>, Errno> {
        let fam = schema::cookie_family(ino);
        let raw = timed(self.cfg.op_timeout, self.store.scan(&fam, &after.to_be_bytes(), BATCH))
            .await
            .map_err(store_failed)?;
        raw.iter().map(|(k, v)| decode(k, v).map_err(store_failed)).collect()
    }

    pub(crate) async fn do_readdir(&self, ino: u64, args: ReadArgs, mut reply: ReplyDir) {
        let d = match self.live_dir(ino).await {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        if args.offset < 1 && !reply.add(ino, 1, DT_DIR, b".") {
            return reply.done();
        }
        if args.offset < 2 && !reply.add(d.parent, 2, DT_DIR, b"..") {
            return reply.done();
        }
        let mut after = args.offset.max(2);
        loop {
            let batch = match self.entries_after(ino, after).await {
                Ok(b) => b,
                Err(e) => return reply.error(e),
            };
            for e in &batch {
                if !reply.add(e.ino, e.cookie, e.typ, &e.name) {
                    return reply.done();
                }
                after = e.cookie;
            }
            if batch.len() < BATCH {
                return reply.done();
            }
        }
    }

    pub(crate) async fn do_readdirplus(&self, ino: u64, args: ReadArgs, mut reply: ReplyDirPlus) {
        let d = match self.live_dir(ino).await {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let me = self.entry(ino, &d);
        if args.offset < 1 && !reply.add(&me, 1, b".") {
            return reply.done();
        }
        if args.offset < 2 {
            let mut tx = self.tx();
            let pe = match tx.inode(d.parent).await {
                Ok(p) => self.entry(d.parent, &p),
                Err(_) => me,
            };
            if !reply.add(&pe, 2, b"..") {
                return reply.done();
            }
        }
        let mut after = args.offset.max(2);
        loop {
            let batch = match self.entries_after(ino, after).await {
                Ok(b) => b,
                Err(e) => return reply.error(e),
            };
            let inos: Vec<u64> = batch.iter().map(|e| e.ino).collect();
            let mut tx = self.tx();
            let inodes = match tx.inodes(&inos).await {
                Ok(v) => v,
                Err(e) => return reply.error(errno(e)),
            };
            for (e, i) in batch.iter().zip(inodes) {
                after = e.cookie;
                // Removed between the two reads: skip it, as a later listing would.
                let Some(i) = i else { continue };
                if !reply.fits(e.name.len()) || !reply.add(&self.entry(e.ino, &i), e.cookie, &e.name) {
                    return reply.done();
                }
            }
            if batch.len() < BATCH {
                return reply.done();
            }
        }
    }
}
