//! POSIX rules that backends keeping their own namespace (mem, kv) apply alike: which node
//! types MKNOD may make for which caller, and which `renameat2` flags are accepted.

use crate::Errno;

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
    fn rename_flags() {
        assert_eq!(check_rename_flags(0), Ok(()));
        assert_eq!(check_rename_flags(RENAME_NOREPLACE), Ok(()));
        assert_eq!(check_rename_flags(RENAME_EXCHANGE), Ok(()));
        assert_eq!(check_rename_flags(RENAME_NOREPLACE | RENAME_EXCHANGE), Err(Errno::EINVAL));
        assert_eq!(check_rename_flags(RENAME_WHITEOUT), Err(Errno::EINVAL));
        assert_eq!(check_rename_flags(8), Err(Errno::EINVAL));
    }
}
