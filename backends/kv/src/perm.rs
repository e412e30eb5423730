//! POSIX permission checks with `default_permissions` semantics (the mem backend's rules,
//! on stored inode records). The caller's groups are its fsgid and, when the guest sent
//! one, its supplementary group.

use crate::schema::Inode;
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
pub(crate) fn owner_or_root(ctx: &Context, i: &Inode) -> bool {
    ctx.uid == 0 || ctx.uid == i.uid
}

/// True if the caller may access the inode for `mask` (`R|W|X` bits).
pub(crate) fn allowed(ctx: &Context, i: &Inode, mask: u32) -> bool {
    let mask = mask & 7;
    if ctx.uid == 0 {
        return mask & X == 0 || i.is_dir() || i.mode & 0o111 != 0;
    }
    let bits = if ctx.uid == i.uid {
        i.mode >> 6
    } else if in_group(ctx, i.gid) {
        i.mode >> 3
    } else {
        i.mode
    } & 7;
    bits & mask == mask
}

/// [`allowed`] as a result (EACCES).
pub(crate) fn check(ctx: &Context, i: &Inode, mask: u32) -> Result<(), Errno> {
    if allowed(ctx, i, mask) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Sticky-directory rule: may the caller remove or rename `child` from `dir`? (EPERM.)
pub(crate) fn check_sticky(ctx: &Context, dir: &Inode, child: &Inode) -> Result<(), Errno> {
    if dir.mode & libc::S_ISVTX == 0 || ctx.uid == 0 || ctx.uid == dir.uid || ctx.uid == child.uid {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// Owner group and final mode of a new inode in directory `p` (setgid directories pass on
/// their group, and to subdirectories their setgid bit).
pub(crate) fn new_owner(ctx: &Context, p: &Inode, mut mode: u32) -> (u32, u32) {
    let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
    let gid = if p.mode & libc::S_ISGID != 0 {
        if is_dir {
            mode |= libc::S_ISGID;
        }
        p.gid
    } else {
        ctx.gid
    };
    let sgid_x = libc::S_ISGID | libc::S_IXGRP;
    if !is_dir && mode & sgid_x == sgid_x && ctx.uid != 0 && !in_group(ctx, gid) {
        mode &= !libc::S_ISGID;
    }
    (mode, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ino(mode: u32, uid: u32, gid: u32) -> Inode {
        Inode { mode, uid, gid, ..Default::default() }
    }
    fn ctx(uid: u32, gid: u32) -> Context {
        Context { uid, gid, ..Default::default() }
    }

    #[test]
    fn owner_group_other_and_root() {
        let m = ino(libc::S_IFREG | 0o640, 10, 20);
        assert!(allowed(&ctx(10, 0), &m, R | W));
        assert!(!allowed(&ctx(10, 0), &m, X));
        assert!(allowed(&ctx(11, 20), &m, R));
        assert!(!allowed(&ctx(11, 20), &m, W));
        assert!(!allowed(&ctx(11, 21), &m, R));
        assert!(allowed(&ctx(0, 0), &m, R | W));
        assert!(!allowed(&ctx(0, 0), &m, X));
        let d = ino(libc::S_IFDIR | 0o1777, 1, 1);
        assert_eq!(check_sticky(&ctx(5, 5), &d, &ino(libc::S_IFREG, 7, 7)), Err(Errno::EPERM));
        assert!(check_sticky(&ctx(7, 5), &d, &ino(libc::S_IFREG, 7, 7)).is_ok());
    }
}
