//! Extended attributes with Linux's limits (name ≤ 255, value ≤ 64 KiB, list ≤ 64 KiB) and
//! namespace rules (`user.`, `trusted.`, `security.`; `system.` and unknown prefixes are
//! not supported), the caller-privilege rules being core's ([`dpfs_core::xattr`]), as in
//! the mem backend. Each attribute is one key, so a value is read in one round trip.

use crate::error::Fail;
use crate::fs::{now, Inner};
use crate::schema::{self, Inode};
use crate::store::Store;
use crate::tx::timed;
use dpfs_core::fs::Context;
use dpfs_core::reply::Xattr;
use dpfs_core::xattr::{check_set, check_stored, listed_for, Access, XATTR_CREATE, XATTR_REPLACE};
use dpfs_core::Errno;

/// Largest NUL-separated name list per inode, as the counter `xattr_list` stores it.
const LIST_MAX: u32 = dpfs_core::xattr::LIST_MAX as u32;

/// Linux's `xattr_permission` for `name` on `i`; `write` for set/remove.
fn permission(ctx: &Context, i: &Inode, name: &[u8], write: bool) -> Result<(), Errno> {
    check_stored(ctx, i.owner(), name, if write { Access::Write } else { Access::Read })
}

impl<S: Store> Inner<S> {
    pub(crate) async fn do_setxattr(
        &self,
        ctx: &Context,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        check_set(flags, value.len())?;
        let _g = self.lock(&[ino]).await;
        self.run(|mut tx| async move {
            let old = tx.inode(ino).await?;
            permission(ctx, &old, name, true)?;
            let key = schema::xattr_key(ino, name);
            let exists = tx.get(key.clone()).await?.is_some();
            match exists {
                true if flags & XATTR_CREATE != 0 => return Err(Errno::EEXIST.into()),
                false if flags & XATTR_REPLACE != 0 => return Err(Errno::ENODATA.into()),
                _ => {}
            }
            let mut i = old.clone();
            if !exists {
                let list = i.xattr_list + name.len() as u32 + 1;
                if list > LIST_MAX {
                    return Err(Errno::ENOSPC.into());
                }
                i.xattr_list = list;
                i.xattrs += 1;
            }
            i.ctime = now();
            tx.put(key, value.to_vec());
            tx.put_inode(ino, Some(&old), &i);
            tx.commit().await
        })
        .await
    }

    /// GETXATTR: the value's length for a size probe (`size == 0`), else the value.
    pub(crate) async fn do_getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32) -> Result<Xattr, Errno> {
        let v = self
            .run(|mut tx| async move {
                let keys = [schema::inode_key(ino), schema::xattr_key(ino, name)];
                let mut v = tx.get_many(&keys).await?.into_iter();
                let i: Inode = match v.next().flatten() {
                    Some(b) => schema::decode(&keys[0], &b)?,
                    None => return Err(Errno::ENOENT.into()),
                };
                permission(ctx, &i, name, false)?;
                v.next().flatten().ok_or(Fail::Errno(Errno::ENODATA))
            })
            .await?;
        Xattr::sized(v, size)
    }

    pub(crate) async fn do_listxattr(&self, ctx: &Context, ino: u64, size: u32) -> Result<Xattr, Errno> {
        let i = self.run(|mut tx| async move { tx.inode(ino).await }).await?;
        let fam = schema::xattr_family(ino);
        let mut list = Vec::with_capacity(i.xattr_list.min(LIST_MAX) as usize);
        let mut after = Vec::new();
        loop {
            let batch = timed(self.cfg.op_timeout, self.store.scan(&fam, &after, 512))
                .await
                .map_err(crate::fs::store_failed)?;
            for (k, _) in &batch {
                let name = k.get(fam.len()..).unwrap_or_default();
                if listed_for(ctx, name) {
                    list.extend_from_slice(name);
                    list.push(0);
                }
                after = name.to_vec();
            }
            if batch.len() < 512 {
                break;
            }
        }
        Xattr::sized(list, size)
    }

    pub(crate) async fn do_removexattr(&self, ctx: &Context, ino: u64, name: &[u8]) -> Result<(), Errno> {
        let _g = self.lock(&[ino]).await;
        self.run(|mut tx| async move {
            let old = tx.inode(ino).await?;
            permission(ctx, &old, name, true)?;
            let key = schema::xattr_key(ino, name);
            if tx.get(key.clone()).await?.is_none() {
                return Err(Errno::ENODATA.into());
            }
            let mut i = old.clone();
            i.xattrs = i.xattrs.saturating_sub(1);
            i.xattr_list = i.xattr_list.saturating_sub(name.len() as u32 + 1);
            i.ctime = now();
            tx.del(key);
            tx.put_inode(ino, Some(&old), &i);
            tx.commit().await
        })
        .await
    }
}
