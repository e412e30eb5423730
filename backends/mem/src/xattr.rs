//! Extended attributes: the per-inode store and the XATTR operations, with Linux's limits
//! (name ≤ 255, value ≤ 64 KiB, list ≤ 64 KiB) and namespace rules (`user.`, `trusted.`,
//! `security.`; `system.` and unknown prefixes are not supported).
//!
//! Who may touch `trusted.*` and `security.*` (`security.capability` included) is decided by
//! the caller's privilege, with the rules (and the table) of [`dpfs_core::xattr`]: a
//! non-root caller gets EPERM for set/remove, ENODATA for getting `trusted.*`, and listings
//! without `trusted.*`. POSIX ACLs are not supported (EOPNOTSUPP for every caller, as on a
//! Linux file system without ACLs, where that answer comes before the owner check). There
//! are no host files, so no mapping policy applies: names are stored as the guest gives them.

use crate::{Inode, MemFs};
use dpfs_core::fs::Context;
use dpfs_core::reply::Xattr;
use dpfs_core::xattr::{check_set, check_stored, listed_for, Access, LIST_MAX, XATTR_CREATE, XATTR_REPLACE};
use dpfs_core::Errno;
use std::collections::BTreeMap;

/// The attributes of one inode.
#[derive(Debug, Default)]
pub(crate) struct Xattrs {
    map: BTreeMap<Box<[u8]>, Box<[u8]>>,
    bytes: u64,
    list_len: usize,
}

impl Xattrs {
    /// Bytes of names and values (charged against the capacity).
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl MemFs {
    /// Linux's `xattr_permission` for `name` on `inode`; `write` for set/remove.
    fn xattr_permission(&self, ctx: &Context, inode: &Inode, name: &[u8], write: bool) -> Result<(), Errno> {
        let m = inode.meta.lock();
        if m.freed {
            return Err(Errno::ENOENT);
        }
        check_stored(ctx, m.owner(), name, if write { Access::Write } else { Access::Read })
    }

    pub(crate) fn do_setxattr(
        &self,
        ctx: &Context,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        check_set(flags, value.len())?;
        let inode = self.inode(ino)?;
        self.xattr_permission(ctx, &inode, name, true)?;
        {
            let mut x = inode.xattrs.lock();
            let old = x.map.get(name).map(|v| v.len());
            match old {
                Some(_) if flags & XATTR_CREATE != 0 => return Err(Errno::EEXIST),
                None if flags & XATTR_REPLACE != 0 => return Err(Errno::ENODATA),
                _ => {}
            }
            let add_list = if old.is_none() { name.len() + 1 } else { 0 };
            if x.list_len + add_list > LIST_MAX {
                return Err(Errno::ENOSPC);
            }
            let new_bytes = value.len() as u64 + if old.is_none() { name.len() as u64 } else { 0 };
            let old_bytes = old.unwrap_or(0) as u64;
            if new_bytes > old_bytes {
                self.space.reserve_bytes(new_bytes - old_bytes)?;
            } else {
                self.space.release_bytes(old_bytes - new_bytes);
            }
            x.bytes = x.bytes + new_bytes - old_bytes;
            x.list_len += add_list;
            x.map.insert(name.into(), value.into());
        }
        self.touch_ctime(&inode);
        Ok(())
    }

    /// GETXATTR: the value's length for a size probe (`size == 0`), else the value
    /// (ERANGE if it does not fit).
    pub(crate) fn do_getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32) -> Result<Xattr, Errno> {
        let inode = self.inode(ino)?;
        self.xattr_permission(ctx, &inode, name, false)?;
        let x = inode.xattrs.lock();
        let v = x.map.get(name).ok_or(Errno::ENODATA)?;
        Xattr::sized(v.to_vec(), size)
    }

    pub(crate) fn do_listxattr(&self, ctx: &Context, ino: u64, size: u32) -> Result<Xattr, Errno> {
        let inode = self.inode(ino)?;
        let x = inode.xattrs.lock();
        let mut list = Vec::with_capacity(x.list_len);
        for name in x.map.keys() {
            if !listed_for(ctx, name) {
                continue;
            }
            list.extend_from_slice(name);
            list.push(0);
        }
        Xattr::sized(list, size)
    }

    pub(crate) fn do_removexattr(&self, ctx: &Context, ino: u64, name: &[u8]) -> Result<(), Errno> {
        let inode = self.inode(ino)?;
        self.xattr_permission(ctx, &inode, name, true)?;
        {
            let mut x = inode.xattrs.lock();
            let v = x.map.remove(name).ok_or(Errno::ENODATA)?;
            let bytes = (name.len() + v.len()) as u64;
            x.bytes -= bytes;
            x.list_len -= name.len() + 1;
            self.space.release_bytes(bytes);
        }
        self.touch_ctime(&inode);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemConfig;
    use dpfs_core::abi::ROOT_ID;

    fn ctx(uid: u32) -> Context {
        Context { uid, gid: uid, ..Default::default() }
    }

    fn list(fs: &MemFs, c: &Context, ino: u64) -> Vec<u8> {
        match fs.do_listxattr(c, ino, 4096) {
            Ok(Xattr::Data(v)) => v,
            Ok(Xattr::Size(_)) | Err(_) => panic!("list failed"),
        }
    }

    /// Each namespace, root and uid 1000, on a directory the caller owns (so the `user.*`
    /// permission bits are not what refuses uid 1000 anything).
    #[test]
    fn caller_privilege_per_namespace() {
        let fs = MemFs::new(MemConfig { root_uid: 1000, root_gid: 1000, ..Default::default() });
        let (root, user) = (ctx(0), ctx(1000));
        let dir = ROOT_ID;
        let get = |c: &Context, n: &[u8]| fs.do_getxattr(c, dir, n, 100).map(|_| ()).err();
        // Root sets one of each; uid 1000 may set user.* only.
        for name in [&b"user.u"[..], b"trusted.t", b"security.capability", b"security.selinux"] {
            assert_eq!(fs.do_setxattr(&root, dir, name, b"v", 0), Ok(()));
        }
        assert_eq!(fs.do_setxattr(&user, dir, b"user.v", b"v", 0), Ok(()));
        for name in [&b"trusted.x"[..], b"security.capability", b"security.selinux"] {
            assert_eq!(fs.do_setxattr(&user, dir, name, b"v", 0), Err(Errno::EPERM));
            assert_eq!(fs.do_removexattr(&user, dir, name), Err(Errno::EPERM));
        }
        assert_eq!(fs.do_removexattr(&user, dir, b"trusted.t"), Err(Errno::EPERM));
        // Reads: trusted.* is root's, security.* is anyone's.
        assert_eq!(get(&user, b"trusted.t"), Some(Errno::ENODATA));
        assert_eq!(get(&user, b"security.capability"), None);
        assert_eq!(get(&user, b"security.selinux"), None);
        assert_eq!(get(&root, b"trusted.t"), None);
        assert_eq!(list(&fs, &user, dir), b"security.capability\0security.selinux\0user.u\0user.v\0");
        assert_eq!(list(&fs, &root, dir), b"security.capability\0security.selinux\0trusted.t\0user.u\0user.v\0");
        // No ACLs here, for anyone.
        for c in [&root, &user] {
            assert_eq!(fs.do_setxattr(c, dir, b"system.posix_acl_access", b"", 0), Err(Errno::EOPNOTSUPP));
            assert_eq!(get(c, b"system.posix_acl_access"), Some(Errno::EOPNOTSUPP));
        }
        for name in [&b"trusted.t"[..], b"security.capability", b"security.selinux", b"user.v"] {
            assert_eq!(fs.do_removexattr(&root, dir, name), Ok(()));
        }
        assert_eq!(fs.do_removexattr(&user, dir, b"user.u"), Ok(()));
        assert_eq!(list(&fs, &root, dir), b"");
    }
}
