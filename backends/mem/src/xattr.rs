//! Extended attributes: the per-inode store and the XATTR operations, with Linux's limits
//! (name ≤ 255, value ≤ 64 KiB, list ≤ 64 KiB) and namespace rules (`user.`, `trusted.`,
//! `security.`; `system.` and unknown prefixes are not supported).

use crate::inode::Content;
use crate::perm;
use crate::{Inode, MemFs};
use dpfs_core::fs::Context;
use dpfs_core::Errno;
use std::collections::BTreeMap;

/// Longest attribute name.
pub(crate) const NAME_MAX: usize = 255;
/// Largest attribute value.
pub(crate) const SIZE_MAX: usize = 65536;
/// Largest NUL-separated name list per inode.
pub(crate) const LIST_MAX: usize = 65536;

const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ns {
    User,
    Trusted,
    Security,
}

fn namespace(name: &[u8]) -> Result<Ns, Errno> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(Errno::ERANGE);
    }
    let (ns, len) = if name.starts_with(b"user.") {
        (Ns::User, 5)
    } else if name.starts_with(b"trusted.") {
        (Ns::Trusted, 8)
    } else if name.starts_with(b"security.") {
        (Ns::Security, 9)
    } else {
        return Err(Errno::EOPNOTSUPP);
    };
    if name.len() == len {
        return Err(Errno::EINVAL);
    }
    Ok(ns)
}

impl MemFs {
    /// Linux's `xattr_permission` for `name` on `inode`; `write` for set/remove.
    fn xattr_permission(&self, ctx: &Context, inode: &Inode, name: &[u8], write: bool) -> Result<(), Errno> {
        let ns = namespace(name)?;
        let m = inode.meta.lock();
        if m.freed {
            return Err(Errno::ENOENT);
        }
        let denied = if write { Errno::EPERM } else { Errno::ENODATA };
        match ns {
            Ns::Trusted if ctx.uid != 0 => Err(denied),
            Ns::Trusted => Ok(()),
            Ns::Security if write && ctx.uid != 0 => Err(Errno::EPERM),
            Ns::Security => Ok(()),
            Ns::User => {
                if !matches!(inode.content, Content::File(_) | Content::Dir(_)) {
                    return Err(denied);
                }
                if write && m.is_dir() && m.mode & libc::S_ISVTX != 0 && !perm::owner_or_root(ctx, &m) {
                    return Err(Errno::EPERM);
                }
                perm::check(ctx, &m, if write { perm::W } else { perm::R })
            }
        }
    }

    pub(crate) fn do_setxattr(
        &self,
        ctx: &Context,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
            return Err(Errno::EINVAL);
        }
        if value.len() > SIZE_MAX {
            return Err(Errno::E2BIG);
        }
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

    /// GETXATTR: `Ok(Err(len))` answers a size probe, `Ok(Ok(value))` the value.
    pub(crate) fn do_getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32) -> Result<XattrValue, Errno> {
        let inode = self.inode(ino)?;
        self.xattr_permission(ctx, &inode, name, false)?;
        let x = inode.xattrs.lock();
        let v = x.map.get(name).ok_or(Errno::ENODATA)?;
        sized(v.to_vec(), size)
    }

    pub(crate) fn do_listxattr(&self, ctx: &Context, ino: u64, size: u32) -> Result<XattrValue, Errno> {
        let inode = self.inode(ino)?;
        let x = inode.xattrs.lock();
        let mut list = Vec::with_capacity(x.list_len);
        for name in x.map.keys() {
            if ctx.uid != 0 && name.starts_with(b"trusted.") {
                continue;
            }
            list.extend_from_slice(name);
            list.push(0);
        }
        sized(list, size)
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

/// The answer to GETXATTR / LISTXATTR.
pub(crate) enum XattrValue {
    /// A `size == 0` probe: the length.
    Size(u32),
    /// The bytes, known to fit the caller's buffer.
    Data(Vec<u8>),
}

fn sized(v: Vec<u8>, size: u32) -> Result<XattrValue, Errno> {
    if size == 0 {
        Ok(XattrValue::Size(v.len() as u32))
    } else if v.len() > size as usize {
        Err(Errno::ERANGE)
    } else {
        Ok(XattrValue::Data(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_name_limits() {
        assert!(matches!(namespace(b"user.a"), Ok(Ns::User)));
        assert!(matches!(namespace(b"trusted.a"), Ok(Ns::Trusted)));
        assert!(matches!(namespace(b"security.selinux"), Ok(Ns::Security)));
        assert_eq!(namespace(b"system.posix_acl_access").err(), Some(Errno::EOPNOTSUPP));
        assert_eq!(namespace(b"foo").err(), Some(Errno::EOPNOTSUPP));
        assert_eq!(namespace(b"user.").err(), Some(Errno::EINVAL));
        assert_eq!(namespace(b"").err(), Some(Errno::ERANGE));
        let long = [b'a'; 256];
        assert_eq!(namespace(&long).err(), Some(Errno::ERANGE));
    }
}
