//! POSIX permission checks with `default_permissions` semantics.
//!
//! The caller's groups are its fsgid and, when the guest sent one, its supplementary group.

use crate::inode::Meta;
use dpfs_core::fs::Context;
use dpfs_core::Errno;

/// Read permission.
pub(crate) const R: u32 = 4;
/// Write permission.
pub(crate) const W: u32 = 2;
/// Execute / search permission.
pub(crate) const X: u32 = 1;

/// True if `gid` is one of the caller's groups.
pub(crate) fn in_group(ctx: &Context, gid: u32) -> bool {
    ctx.gid == gid || ctx.supplementary_gid == Some(gid)
}

/// True if the caller is root or owns the inode.
pub(crate) fn owner_or_root(ctx: &Context, m: &Meta) -> bool {
    ctx.uid == 0 || ctx.uid == m.uid
}

/// True if the caller may access the inode for `mask` (`R|W|X` bits).
pub(crate) fn allowed(ctx: &Context, m: &Meta, mask: u32) -> bool {
    let mask = mask & 7;
    if ctx.uid == 0 {
        // Root passes read and write checks; execute needs some x bit (or a directory).
        return mask & X == 0 || m.is_dir() || m.mode & 0o111 != 0;
    }
    let bits = if ctx.uid == m.uid {
        m.mode >> 6
    } else if in_group(ctx, m.gid) {
        m.mode >> 3
    } else {
        m.mode
    } & 7;
    bits & mask == mask
}

/// [`allowed`] as a result (EACCES).
pub(crate) fn check(ctx: &Context, m: &Meta, mask: u32) -> Result<(), Errno> {
    if allowed(ctx, m, mask) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Sticky-directory rule: may the caller remove or rename an entry owned by `child_uid`
/// from a directory with mode `dir_mode` owned by `dir_uid`? (EPERM if not.)
pub(crate) fn check_sticky(ctx: &Context, dir_mode: u32, dir_uid: u32, child_uid: u32) -> Result<(), Errno> {
    if dir_mode & libc::S_ISVTX == 0 || ctx.uid == 0 || ctx.uid == dir_uid || ctx.uid == child_uid {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32, uid: u32, gid: u32) -> Meta {
        Meta::new(mode, uid, gid, 1, 0)
    }
    fn ctx(uid: u32, gid: u32) -> Context {
        Context { uid, gid, ..Default::default() }
    }

    #[test]
    fn owner_group_other() {
        let m = meta(libc::S_IFREG | 0o640, 10, 20);
        assert!(allowed(&ctx(10, 0), &m, R | W));
        assert!(!allowed(&ctx(10, 0), &m, X));
        assert!(allowed(&ctx(11, 20), &m, R));
        assert!(!allowed(&ctx(11, 20), &m, W));
        let supp = Context { supplementary_gid: Some(20), ..ctx(11, 5) };
        assert!(allowed(&supp, &m, R));
        assert!(!allowed(&ctx(11, 21), &m, R));
        // Owner bits win even when they are stricter than the group's.
        let m2 = meta(libc::S_IFREG | 0o070, 10, 20);
        assert!(!allowed(&ctx(10, 20), &m2, R));
    }

    #[test]
    fn root_bypasses_except_exec() {
        let m = meta(libc::S_IFREG, 10, 20);
        assert!(allowed(&ctx(0, 0), &m, R | W));
        assert!(!allowed(&ctx(0, 0), &m, X));
        assert!(allowed(&ctx(0, 0), &meta(libc::S_IFREG | 0o001, 10, 20), X));
        assert!(allowed(&ctx(0, 0), &meta(libc::S_IFDIR, 10, 20), X));
    }

    #[test]
    fn sticky() {
        let mode = libc::S_IFDIR | 0o1777;
        assert!(check_sticky(&ctx(5, 5), mode, 1, 5).is_ok());
        assert!(check_sticky(&ctx(1, 5), mode, 1, 7).is_ok());
        assert_eq!(check_sticky(&ctx(5, 5), mode, 1, 7), Err(Errno::EPERM));
        assert!(check_sticky(&ctx(5, 5), libc::S_IFDIR | 0o777, 1, 7).is_ok());
    }
}
