//! Extended-attribute namespaces and who may touch them: Linux's rules, decided by the
//! guest caller's credentials rather than the daemon's.
//!
//! A daemon that only switches fsuid/fsgid keeps `CAP_SYS_ADMIN` and `CAP_SETFCAP`, which
//! the host kernel checks for `trusted.*` and `security.*`; so backends ask [`check_caller`]
//! and [`listed_for`] before they go near a file. dpfs has no notion of guest capabilities
//! beyond the FUSE in-header: a caller is privileged exactly when its uid is 0
//! ([`privileged`]), which is what a guest root with a full capability set looks like.
//!
//! What Linux does (`man 7 xattr`, `man 7 capabilities`; `fs/xattr.c` `xattr_permission`,
//! `security/commoncap.c`, `fs/posix_acl.c`), and so what dpfs answers:
//!
//! | namespace | operation | root caller | non-root caller |
//! |---|---|---|---|
//! | `user.*` | set, remove | regular files and directories only (else EPERM) | the same, plus write permission (EACCES) and, in a sticky directory, owner only (EPERM) |
//! | `user.*` | get | regular files and directories only (else ENODATA) | the same, plus read permission (EACCES) |
//! | `user.*` | list | listed | listed |
//! | `trusted.*` | set, remove | allowed (`CAP_SYS_ADMIN`) | EPERM |
//! | `trusted.*` | get | allowed | ENODATA |
//! | `trusted.*` | list | listed | omitted |
//! | `security.capability` | set, remove | allowed (`CAP_SETFCAP`) | EPERM |
//! | `security.capability` | get, list | allowed | allowed (anyone may read file capabilities) |
//! | other `security.*` | set, remove | allowed (`CAP_SYS_ADMIN`; an LSM may add its own rules) | EPERM |
//! | other `security.*` | get, list | allowed | allowed |
//! | `system.posix_acl_access`, `system.posix_acl_default` | set, remove | allowed (`CAP_FOWNER`) | the file's owner only (else EPERM) |
//! | `system.posix_acl_*` | get, list | allowed | allowed |
//! | other `system.*`, unknown prefixes | any | the backend's answer (usually EOPNOTSUPP) | the same |
//!
//! [`check_caller`] decides the privilege columns (the `trusted.*`, `security.*` and ACL
//! rows); the `user.*` rules (file type, permission bits, sticky directories) stay with the
//! backend or the host kernel, which check them against the caller's fsuid already.

use crate::fs::Context;
use crate::posix::{self, Owner};
use crate::Errno;

/// Longest attribute name (`XATTR_NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Largest attribute value (`XATTR_SIZE_MAX`).
pub const SIZE_MAX: usize = 65536;
/// Largest LISTXATTR answer (`XATTR_LIST_MAX`).
pub const LIST_MAX: usize = 65536;
/// SETXATTR: fail if the attribute exists.
pub const XATTR_CREATE: u32 = 1;
/// SETXATTR: fail if the attribute does not exist.
pub const XATTR_REPLACE: u32 = 2;

/// `security.capability`: file capabilities, granted to whoever executes the file.
pub const SECURITY_CAPABILITY: &[u8] = b"security.capability";
/// The access ACL of a file.
pub const POSIX_ACL_ACCESS: &[u8] = b"system.posix_acl_access";
/// The default ACL of a directory.
pub const POSIX_ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// The namespace of an extended-attribute name, as Linux's VFS tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// `user.*`: ordinary attributes under the file's permission bits.
    User,
    /// `trusted.*`: visible to and changed by privileged callers only.
    Trusted,
    /// `security.capability`: file capabilities.
    SecurityCapability,
    /// Any other `security.*` name (LSM labels such as `security.selinux`).
    Security,
    /// `system.posix_acl_access` or `system.posix_acl_default`.
    PosixAcl,
    /// Any other `system.*` name.
    System,
    /// No known prefix.
    Other,
}

impl Namespace {
    /// The namespace `name` belongs to (by prefix; the name itself is not validated).
    pub fn of(name: &[u8]) -> Namespace {
        if name.starts_with(b"user.") {
            Namespace::User
        } else if name.starts_with(b"trusted.") {
            Namespace::Trusted
        } else if name == SECURITY_CAPABILITY {
            Namespace::SecurityCapability
        } else if name.starts_with(b"security.") {
            Namespace::Security
        } else if name == POSIX_ACL_ACCESS || name == POSIX_ACL_DEFAULT {
            Namespace::PosixAcl
        } else if name.starts_with(b"system.") {
            Namespace::System
        } else {
            Namespace::Other
        }
    }
}

/// What a request does to an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// GETXATTR.
    Read,
    /// SETXATTR or REMOVEXATTR.
    Write,
}

/// Whether the caller counts as privileged (root in the guest: uid 0).
pub fn privileged(ctx: &Context) -> bool {
    ctx.uid == 0
}

/// The caller-privilege rules of the table above for `name`.
///
/// `owner` gives the file's owner uid; it is called only when the answer depends on it (a
/// non-root caller writing an ACL), so backends need not stat the file otherwise. `Ok` means
/// the caller's privilege is not what refuses the request: the backend still applies the
/// rest (the `user.*` permission rules, existence, limits).
pub fn check_caller(
    ctx: &Context,
    name: &[u8],
    access: Access,
    owner: impl FnOnce() -> Result<u32, Errno>,
) -> Result<(), Errno> {
    if privileged(ctx) {
        return Ok(());
    }
    match (Namespace::of(name), access) {
        (Namespace::Trusted, Access::Read) => Err(Errno::ENODATA),
        (Namespace::Trusted | Namespace::SecurityCapability | Namespace::Security, Access::Write) => Err(Errno::EPERM),
        (Namespace::PosixAcl, Access::Write) if owner()? != ctx.uid => Err(Errno::EPERM),
        _ => Ok(()),
    }
}

/// Whether LISTXATTR shows `name` to the caller (`trusted.*` only to privileged callers).
pub fn listed_for(ctx: &Context, name: &[u8]) -> bool {
    privileged(ctx) || Namespace::of(name) != Namespace::Trusted
}

/// For backends that store attributes themselves (mem, kv): the namespaces they keep
/// (`user.*`, `trusted.*`, `security.*`; anything else EOPNOTSUPP), after Linux's name
/// checks (empty or longer than [`NAME_MAX`]: ERANGE; a bare prefix: EINVAL).
pub fn stored_namespace(name: &[u8]) -> Result<Namespace, Errno> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(Errno::ERANGE);
    }
    let prefix = match Namespace::of(name) {
        ns @ Namespace::User => (ns, b"user.".len()),
        ns @ Namespace::Trusted => (ns, b"trusted.".len()),
        ns @ (Namespace::Security | Namespace::SecurityCapability) => (ns, b"security.".len()),
        _ => return Err(Errno::EOPNOTSUPP),
    };
    if name.len() == prefix.1 {
        return Err(Errno::EINVAL);
    }
    Ok(prefix.0)
}

/// For backends that store attributes themselves: SETXATTR's flags and value size
/// (EINVAL for unknown flags, E2BIG past [`SIZE_MAX`]).
pub fn check_set(flags: u32, value_len: usize) -> Result<(), Errno> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    if value_len > SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    Ok(())
}

/// Linux's whole `xattr_permission` for a node the backend keeps itself: [`stored_namespace`],
/// the caller's privilege ([`check_caller`]), then for `user.*` the file type (regular files
/// and directories only: EPERM to write, ENODATA to read), the sticky-directory owner rule
/// and the permission bits.
pub fn check_stored(ctx: &Context, node: Owner, name: &[u8], access: Access) -> Result<(), Errno> {
    let ns = stored_namespace(name)?;
    check_caller(ctx, name, access, || Ok(node.uid))?;
    if ns != Namespace::User {
        return Ok(());
    }
    let write = access == Access::Write;
    if !node.is_file() && !node.is_dir() {
        return Err(if write { Errno::EPERM } else { Errno::ENODATA });
    }
    if write && node.is_dir() && node.mode & libc::S_ISVTX != 0 && !posix::owner_or_root(ctx, node) {
        return Err(Errno::EPERM);
    }
    posix::check(ctx, node, if write { posix::W } else { posix::R })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(uid: u32) -> Context {
        Context { uid, gid: uid, ..Default::default() }
    }

    fn owned_by(uid: u32) -> impl FnOnce() -> Result<u32, Errno> {
        move || Ok(uid)
    }

    #[test]
    fn namespaces_by_prefix() {
        assert_eq!(Namespace::of(b"user.a"), Namespace::User);
        assert_eq!(Namespace::of(b"trusted.overlay.opaque"), Namespace::Trusted);
        assert_eq!(Namespace::of(b"security.capability"), Namespace::SecurityCapability);
        assert_eq!(Namespace::of(b"security.capabilityx"), Namespace::Security);
        assert_eq!(Namespace::of(b"security.selinux"), Namespace::Security);
        assert_eq!(Namespace::of(b"system.posix_acl_access"), Namespace::PosixAcl);
        assert_eq!(Namespace::of(b"system.posix_acl_default"), Namespace::PosixAcl);
        assert_eq!(Namespace::of(b"system.nfs4_acl"), Namespace::System);
        assert_eq!(Namespace::of(b"usr.a"), Namespace::Other);
        assert_eq!(Namespace::of(b""), Namespace::Other);
    }

    #[test]
    fn root_may_do_everything() {
        let root = ctx(0);
        for name in [&b"trusted.a"[..], b"security.capability", b"security.selinux", b"system.posix_acl_access"] {
            for access in [Access::Read, Access::Write] {
                assert_eq!(check_caller(&root, name, access, owned_by(1000)), Ok(()));
            }
            assert!(listed_for(&root, name));
        }
    }

    #[test]
    fn non_root_is_refused_the_privileged_namespaces() {
        let user = ctx(1000);
        let w = |name: &[u8], owner| check_caller(&user, name, Access::Write, owned_by(owner));
        let r = |name: &[u8]| check_caller(&user, name, Access::Read, owned_by(0));
        assert_eq!(w(b"trusted.a", 1000), Err(Errno::EPERM));
        assert_eq!(r(b"trusted.a"), Err(Errno::ENODATA));
        assert!(!listed_for(&user, b"trusted.a"));
        assert_eq!(w(b"security.capability", 1000), Err(Errno::EPERM));
        assert_eq!(r(b"security.capability"), Ok(()));
        assert!(listed_for(&user, b"security.capability"));
        assert_eq!(w(b"security.selinux", 1000), Err(Errno::EPERM));
        assert_eq!(r(b"security.selinux"), Ok(()));
        // ACLs: the owner may, others may not.
        assert_eq!(w(b"system.posix_acl_access", 1000), Ok(()));
        assert_eq!(w(b"system.posix_acl_default", 0), Err(Errno::EPERM));
        assert_eq!(r(b"system.posix_acl_access"), Ok(()));
        // user.* is left to the permission bits.
        assert_eq!(w(b"user.a", 0), Ok(()));
        assert!(listed_for(&user, b"user.a"));
    }

    #[test]
    fn owner_is_only_asked_for_acl_writes_by_non_root() {
        let asked = |uid, name: &[u8], access| {
            let mut called = false;
            let _ = check_caller(&ctx(uid), name, access, || {
                called = true;
                Ok(0)
            });
            called
        };
        assert!(asked(1000, b"system.posix_acl_access", Access::Write));
        assert!(!asked(0, b"system.posix_acl_access", Access::Write));
        assert!(!asked(1000, b"system.posix_acl_access", Access::Read));
        assert!(!asked(1000, b"user.a", Access::Write));
        // A failing owner lookup is the answer.
        let e = check_caller(&ctx(5), b"system.posix_acl_access", Access::Write, || Err(Errno::ESTALE));
        assert_eq!(e, Err(Errno::ESTALE));
    }

    #[test]
    fn stored_names() {
        assert_eq!(stored_namespace(b"user.a"), Ok(Namespace::User));
        assert_eq!(stored_namespace(b"security.capability"), Ok(Namespace::SecurityCapability));
        assert_eq!(stored_namespace(b"user."), Err(Errno::EINVAL));
        assert_eq!(stored_namespace(b""), Err(Errno::ERANGE));
        assert_eq!(stored_namespace(&[b'u'; NAME_MAX + 1]), Err(Errno::ERANGE));
        assert_eq!(stored_namespace(b"system.posix_acl_access"), Err(Errno::EOPNOTSUPP));
        assert_eq!(stored_namespace(b"os2.x"), Err(Errno::EOPNOTSUPP));
        assert_eq!(check_set(XATTR_CREATE, SIZE_MAX), Ok(()));
        assert_eq!(check_set(4, 1), Err(Errno::EINVAL));
        assert_eq!(check_set(0, SIZE_MAX + 1), Err(Errno::E2BIG));
    }

    #[test]
    fn stored_permission() {
        let file = Owner { mode: libc::S_IFREG | 0o644, uid: 10, gid: 10 };
        let fifo = Owner { mode: libc::S_IFIFO | 0o666, uid: 10, gid: 10 };
        let sticky = Owner { mode: libc::S_IFDIR | 0o1777, uid: 10, gid: 10 };
        let other = Context { uid: 5, gid: 5, ..Default::default() };
        assert_eq!(check_stored(&other, file, b"user.a", Access::Read), Ok(()));
        assert_eq!(check_stored(&other, file, b"user.a", Access::Write), Err(Errno::EACCES));
        assert_eq!(check_stored(&ctx(10), file, b"user.a", Access::Write), Ok(()));
        assert_eq!(check_stored(&ctx(0), fifo, b"user.a", Access::Write), Err(Errno::EPERM));
        assert_eq!(check_stored(&ctx(0), fifo, b"user.a", Access::Read), Err(Errno::ENODATA));
        assert_eq!(check_stored(&other, sticky, b"user.a", Access::Write), Err(Errno::EPERM));
        assert_eq!(check_stored(&other, file, b"trusted.a", Access::Read), Err(Errno::ENODATA));
        assert_eq!(check_stored(&ctx(0), fifo, b"trusted.a", Access::Write), Ok(()));
    }
}
