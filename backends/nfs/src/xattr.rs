//! Extended attributes over NFSv4.2 (RFC 8276: GETXATTR, SETXATTR, LISTXATTRS, REMOVEXATTR),
//! with `--nfs-minor 2`: the guest's `user.` namespace, sent without its prefix. Other
//! namespaces, minor version 1, and servers without the ops (NFS4ERR_NOTSUPP, OP_ILLEGAL;
//! Debian 12's ganesha 4.3 with FSAL_VFS) answer EOPNOTSUPP.

use crate::v42::v42_errno;
use crate::{nfs, Inner};
use dpfs_core::Errno;
use dpfs_nfs4::ops::xattr::{MAX_XATTR_NAME, MAX_XATTR_NAMES, MAX_XATTR_VALUE};
use dpfs_nfs4::ops::{Op, SetXattrArgs, SetXattrHow};
use dpfs_nfs4::Creds;

/// The only namespace NFS carries.
const USER: &[u8] = b"user.";
/// Longest name list returned (Linux's XATTR_LIST_MAX).
const MAX_LIST: usize = 64 << 10;
/// Bytes of names asked per LISTXATTRS.
const LIST_PAGE: u32 = 8 << 10;

/// The NFS name of guest name `name`: `user.` stripped; other namespaces EOPNOTSUPP.
fn nfs_name(name: &[u8]) -> Result<Vec<u8>, Errno> {
    let key = name.strip_prefix(USER).ok_or(Errno::EOPNOTSUPP)?;
    if key.is_empty() || key.contains(&0) {
        return Err(Errno::EINVAL);
    }
    if key.len() > MAX_XATTR_NAME {
        return Err(Errno::ERANGE);
    }
    Ok(key.to_vec())
}

impl Inner {
    fn xattrs(&self) -> Result<(), Errno> {
        if self.client.minor() >= 2 {
            Ok(())
        } else {
            Err(Errno::EOPNOTSUPP)
        }
    }

    async fn xattr_call(&self, creds: &Creds, ino: u64, op: Op) -> Result<dpfs_nfs4::compound::Replies, Errno> {
        let fh = self.nodes.fh(ino)?;
        let mut r = self.call_raw(creds, &[Op::PutFh(fh), op]).await.map_err(|e| v42_errno(&e, Errno::EOPNOTSUPP))?;
        nfs(r.skip())?;
        Ok(r)
    }

    /// getxattr(2) of node `ino`: the value.
    pub async fn getxattr(&self, creds: &Creds, ino: u64, name: &[u8]) -> Result<Vec<u8>, Errno> {
        let key = nfs_name(name)?;
        self.xattrs()?;
        nfs(self.xattr_call(creds, ino, Op::GetXattr(key)).await?.getxattr())
    }

    /// setxattr(2) of node `ino` (`flags`: XATTR_CREATE, XATTR_REPLACE).
    pub async fn setxattr(
        &self,
        creds: &Creds,
        ino: u64,
        name: &[u8],
        value: Vec<u8>,
        flags: u32,
    ) -> Result<(), Errno> {
        let key = nfs_name(name)?;
        let how = match flags as i32 {
            0 => SetXattrHow::Either,
            libc::XATTR_CREATE => SetXattrHow::Create,
            libc::XATTR_REPLACE => SetXattrHow::Replace,
            _ => return Err(Errno::EINVAL),
        };
        if value.len() > MAX_XATTR_VALUE {
            return Err(Errno::E2BIG);
        }
        self.xattrs()?;
        self.xattr_call(creds, ino, Op::SetXattr(SetXattrArgs { how, name: key, value })).await?;
        Ok(())
    }

    /// removexattr(2) of node `ino`.
    pub async fn removexattr(&self, creds: &Creds, ino: u64, name: &[u8]) -> Result<(), Errno> {
        let key = nfs_name(name)?;
        self.xattrs()?;
        self.xattr_call(creds, ino, Op::RemoveXattr(key)).await?;
        Ok(())
    }

    /// listxattr(2) of node `ino`: `user.NAME\0` for each name, in LISTXATTRS pages.
    pub async fn listxattr(&self, creds: &Creds, ino: u64) -> Result<Vec<u8>, Errno> {
        self.xattrs()?;
        let (mut out, mut cookie, mut names) = (Vec::new(), 0, 0usize);
        loop {
            let op = Op::ListXattrs { cookie, maxcount: LIST_PAGE };
            let page = nfs(self.xattr_call(creds, ino, op).await?.listxattrs())?;
            names += page.names.len();
            for n in &page.names {
                if n.is_empty() || n.contains(&0) {
                    tracing::warn!("NFS LISTXATTRS returned an empty name or one with a NUL");
                    return Err(Errno::EIO);
                }
                out.extend_from_slice(USER);
                out.extend_from_slice(n);
                out.push(0);
            }
            if out.len() > MAX_LIST {
                return Err(Errno::E2BIG);
            }
            if page.eof {
                return Ok(out);
            }
            // A server that never says eof, or repeats a cookie, is not followed forever.
            if page.names.is_empty() || page.cookie == cookie || names > MAX_XATTR_NAMES {
                tracing::warn!("NFS LISTXATTRS does not progress");
                return Err(Errno::EIO);
            }
            cookie = page.cookie;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_user_names_go_to_the_server() {
        assert_eq!(nfs_name(b"user.k"), Ok(b"k".to_vec()));
        assert_eq!(nfs_name(b"trusted.k"), Err(Errno::EOPNOTSUPP));
        assert_eq!(nfs_name(b"security.capability"), Err(Errno::EOPNOTSUPP));
        assert_eq!(nfs_name(b"user."), Err(Errno::EINVAL));
        assert_eq!(nfs_name(&[b"user.".as_slice(), &[b'a'; 256]].concat()), Err(Errno::ERANGE));
    }
}
