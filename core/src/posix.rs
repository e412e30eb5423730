//! POSIX rules that backends keeping their own namespace (mem, kv) apply alike: permission
//! checks with `default_permissions` semantics, the owner of a new node, which node types
//! MKNOD may make for which caller, and which `renameat2` flags are accepted.
//!
//! The caller's groups are its fsgid and, when the guest sent one, its supplementary group
//! (the FUSE in-header carries no full group list).

use crate::fs::Context;
use crate::Errno;

/// Read permission (an `access` mask bit).
pub const R: u32 = 4;
/// Write permission.
pub const W: u32 = 2;
/// Execute / search permission.
pub const X: u32 = 1;

/// What the permission rules need of a node: its mode (type and bits) and owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `st_mode`, type bits included.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

impl Owner {
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// True if `gid` is one of the caller's groups.
pub fn in_group(ctx: &Context, gid: u32) -> bool {
    ctx.gid == gid || ctx.supplementary_gid == Some(gid)
}

/// True if the caller is root or owns the node.
pub fn owner_or_root(ctx: &Context, node: Owner) -> bool {
    ctx.uid == 0 || ctx.uid == node.uid
}

/// True if the caller may access `node` for `mask` ([`R`]|[`W`]|[`X`]).
pub fn allowed(ctx: &Context, node: Owner, mask: u32) -> bool {
    let mask = mask & 7;
    if ctx.uid == 0 {
        // Root passes read and write checks; execute needs some x bit (or a directory).
        return mask & X == 0 || node.is_dir() || node.mode & 0o111 != 0;
    }
    // The owner's bits decide for the owner even when they are stricter than the group's.
    let bits = if ctx.uid == node.uid {
        node.mode >> 6
    } else if in_group(ctx, node.gid) {
        node.mode >> 3
    } else {
        node.mode
    } & 7;
    bits & mask == mask
}

/// [`allowed`] as a result (EACCES).
pub fn check(ctx: &Context, node: Owner, mask: u32) -> Result<(), Errno> {
    if allowed(ctx, node, mask) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// The sticky-directory rule: may the caller remove or rename an entry owned by `child_uid`
/// from `dir`? (EPERM if not.)
pub fn check_sticky(ctx: &Context, dir: Owner, child_uid: u32) -> Result<(), Errno> {
    if dir.mode & libc::S_ISVTX == 0 || ctx.uid == 0 || ctx.uid == dir.uid || ctx.uid == child_uid {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// Final mode and owner group of a node made with `mode` in directory `parent`: a setgid
/// directory passes on its group (and to subdirectories its setgid bit); a non-root caller
/// outside that group loses the setgid bit of an executable file.
pub fn new_owner(ctx: &Context, parent: Owner, mut mode: u32) -> (u32, u32) {
    let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
    let gid = if parent.mode & libc::S_ISGID != 0 {
        if is_dir {
            mode |= libc::S_ISGID;
        }
        parent.gid
    } else {
        ctx.gid
    };
    let sgid_x = libc::S_ISGID | libc::S_IXGRP;
    if !is_dir && mode & sgid_x == sgid_x && ctx.uid != 0 && !in_group(ctx, gid) {
        mode &= !libc::S_ISGID;
    }
    (mode, gid)
}

/// `renameat2`: fail if the new name exists.
pub const RENAME_NOREPLACE: u32 = 1;
/// `renameat2`: swap the two names.
pub const RENAME_EXCHANGE: u32 = 2;
/// `renameat2`: leave a whiteout (overlayfs); refused.
pub const RENAME_WHITEOUT: u32 = 4;

/// The file type (`S_IF*`) MKNOD makes of `mode`: no type is a regular file; device nodes
/// need a root caller (EPERM); directories go through MKDIR (EPERM); an unknown type is
/// EINVAL, as Linux answers.
pub fn mknod_type(mode: u32, caller_uid: u32) -> Result<u32, Errno> {
    match mode & libc::S_IFMT {
        0 | libc::S_IFREG => Ok(libc::S_IFREG),
        t @ (libc::S_IFCHR | libc::S_IFBLK) if caller_uid == 0 => Ok(t),
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFDIR => Err(Errno::EPERM),
        t @ (libc::S_IFIFO | libc::S_IFSOCK) => Ok(t),
        _ => Err(Errno::EINVAL),
    }
}

/// MKNOD's whole mode and device number: the type of [`mknod_type`], the permission bits
/// less `umask`, and `rdev` kept for device nodes only.
pub fn mknod_mode(mode: u32, rdev: u32, umask: u32, caller_uid: u32) -> Result<(u32, u32), Errno> {
    let typ = mknod_type(mode, caller_uid)?;
    let rdev = if matches!(typ, libc::S_IFCHR | libc::S_IFBLK) { rdev } else { 0 };
    Ok((typ | (mode & 0o7777 & !umask), rdev))
}

/// EINVAL for flags other than NOREPLACE and EXCHANGE, for WHITEOUT, and for both at once.
pub fn check_rename_flags(flags: u32) -> Result<(), Errno> {
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
        || flags & (RENAME_NOREPLACE | RENAME_EXCHANGE) == (RENAME_NOREPLACE | RENAME_EXCHANGE)
    {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(mode: u32, uid: u32, gid: u32) -> Owner {
        Owner { mode, uid, gid }
    }
    fn ctx(uid: u32, gid: u32) -> Context {
        Context { uid, gid, ..Default::default() }
    }

    #[test]
    fn owner_group_other() {
        let m = node(libc::S_IFREG | 0o640, 10, 20);
        assert!(allowed(&ctx(10, 0), m, R | W));
        assert!(!allowed(&ctx(10, 0), m, X));
        assert!(allowed(&ctx(11, 20), m, R));
        assert!(!allowed(&ctx(11, 20), m, W));
        let supp = Context { supplementary_gid: Some(20), ..ctx(11, 5) };
        assert!(allowed(&supp, m, R));
        assert!(!allowed(&ctx(11, 21), m, R));
        assert_eq!(check(&ctx(11, 21), m, R), Err(Errno::EACCES));
        // Owner bits win even when they are stricter than the group's.
        assert!(!allowed(&ctx(10, 20), node(libc::S_IFREG | 0o070, 10, 20), R));
    }

    #[test]
    fn root_bypasses_except_exec() {
        let m = node(libc::S_IFREG, 10, 20);
        assert!(allowed(&ctx(0, 0), m, R | W));
        assert!(!allowed(&ctx(0, 0), m, X));
        assert!(allowed(&ctx(0, 0), node(libc::S_IFREG | 0o001, 10, 20), X));
        assert!(allowed(&ctx(0, 0), node(libc::S_IFDIR, 10, 20), X));
        assert!(owner_or_root(&ctx(0, 0), m) && owner_or_root(&ctx(10, 0), m) && !owner_or_root(&ctx(11, 20), m));
    }

    #[test]
    fn sticky() {
        let d = node(libc::S_IFDIR | 0o1777, 1, 1);
        assert!(check_sticky(&ctx(5, 5), d, 5).is_ok());
        assert!(check_sticky(&ctx(1, 5), d, 7).is_ok());
        assert_eq!(check_sticky(&ctx(5, 5), d, 7), Err(Errno::EPERM));
        assert!(check_sticky(&ctx(5, 5), node(libc::S_IFDIR | 0o777, 1, 1), 7).is_ok());
    }

    #[test]
    fn new_owner_setgid() {
        let c = ctx(1000, 1000);
        let sgid_dir = node(libc::S_IFDIR | libc::S_ISGID | 0o775, 0, 9);
        assert_eq!(new_owner(&c, sgid_dir, libc::S_IFDIR | 0o755), (libc::S_IFDIR | libc::S_ISGID | 0o755, 9));
        // Not in group 9: an executable file loses setgid.
        assert_eq!(new_owner(&c, sgid_dir, libc::S_IFREG | 0o2775), (libc::S_IFREG | 0o775, 9));
        // Without a setgid parent the group is the caller's own: the bit stays.
        assert_eq!(
            new_owner(&c, node(libc::S_IFDIR | 0o755, 0, 9), libc::S_IFREG | 0o2775),
            (libc::S_IFREG | 0o2775, 1000)
        );
        let member = Context { supplementary_gid: Some(9), ..c };
        assert_eq!(new_owner(&member, sgid_dir, libc::S_IFREG | 0o2775), (libc::S_IFREG | 0o2775, 9));
    }

    #[test]
    fn mknod_types() {
        assert_eq!(mknod_type(0o644, 1000), Ok(libc::S_IFREG));
        assert_eq!(mknod_type(libc::S_IFIFO | 0o644, 1000), Ok(libc::S_IFIFO));
        assert_eq!(mknod_type(libc::S_IFCHR, 0), Ok(libc::S_IFCHR));
        assert_eq!(mknod_type(libc::S_IFBLK, 1000), Err(Errno::EPERM));
        assert_eq!(mknod_type(libc::S_IFDIR, 0), Err(Errno::EPERM));
        assert_eq!(mknod_type(libc::S_IFLNK, 0), Err(Errno::EINVAL));
    }

    #[test]
    fn mknod_modes() {
        assert_eq!(mknod_mode(libc::S_IFIFO | 0o666, 7, 0o022, 5), Ok((libc::S_IFIFO | 0o644, 0)));
        assert_eq!(mknod_mode(libc::S_IFCHR | 0o600, 7, 0, 0), Ok((libc::S_IFCHR | 0o600, 7)));
        assert_eq!(mknod_mode(0o4755, 7, 0o077, 5), Ok((libc::S_IFREG | 0o4700, 0)));
        assert_eq!(mknod_mode(libc::S_IFBLK, 7, 0, 5), Err(Errno::EPERM));
    }

    #[test]
    fn rename_flags() {
        assert_eq!(check_rename_flags(0), Ok(()));
        assert_eq!(check_rename_flags(RENAME_NOREPLACE), Ok(()));
        assert_eq!(check_rename_flags(RENAME_EXCHANGE), Ok(()));
        assert_eq!(check_rename_flags(RENAME_NOREPLACE | RENAME_EXCHANGE), Err(Errno::EINVAL));
        assert_eq!(check_rename_flags(RENAME_WHITEOUT), Err(Errno::EINVAL));
        assert_eq!(check_rename_flags(8), Err(Errno::EINVAL));
    }
}
