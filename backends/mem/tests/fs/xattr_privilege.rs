//! Extended attributes and the caller's privilege through the guest path: uid 0 and uid
//! 1000 in each namespace, on a file the non-root caller owns and on one it does not.

use crate::common::*;

fn names(list: &[u8]) -> Vec<&str> {
    list.split(|&b| b == 0).filter(|n| !n.is_empty()).map(|n| std::str::from_utf8(n).unwrap_or("?")).collect()
}

/// A guest with a root-owned 0644 file and a uid-1000 0644 file (their node ids).
fn setup() -> (Guest, u64, u64) {
    let g = Guest::default_fs();
    let (root_file, _) = g.mkfile(ROOT, "root").unwrap();
    let (mine, _) = g.mkfile(ROOT, "mine").unwrap();
    let s = dpfs_core::abi::SetattrIn {
        valid: dpfs_core::abi::fattr::UID | dpfs_core::abi::fattr::GID,
        uid: 1000,
        gid: 1000,
        ..Default::default()
    };
    g.setattr(mine, s).unwrap();
    (g, root_file, mine)
}

#[test]
fn non_root_is_refused_trusted_and_security_on_any_file() {
    let (g, root_file, mine) = setup();
    let user = g.as_user(1000, 1000);
    for ino in [mine, root_file] {
        for name in ["trusted.t", "security.capability", "security.selinux"] {
            assert_eq!(user.setxattr(ino, name, b"v", 0), Err(libc::EPERM), "{name}");
            assert_eq!(user.removexattr(ino, name), Err(libc::EPERM), "{name}");
        }
        assert_eq!(g.listxattr(ino, 1024).map(|l| l.is_empty()), Ok(true));
    }
}

#[test]
fn root_sets_them_and_non_root_sees_only_security() {
    let (g, _, mine) = setup();
    let user = g.as_user(1000, 1000);
    g.setxattr(mine, "trusted.t", b"t", 0).unwrap();
    g.setxattr(mine, "security.capability", b"cap", 0).unwrap();
    user.setxattr(mine, "user.u", b"u", 0).unwrap();
    assert_eq!(g.getxattr(mine, "trusted.t", 10), Ok(b"t".to_vec()));
    assert_eq!(user.getxattr(mine, "trusted.t", 10), Err(libc::ENODATA));
    assert_eq!(user.getxattr(mine, "security.capability", 10), Ok(b"cap".to_vec()));
    assert_eq!(names(&g.listxattr(mine, 1024).unwrap()), ["security.capability", "trusted.t", "user.u"]);
    assert_eq!(names(&user.listxattr(mine, 1024).unwrap()), ["security.capability", "user.u"]);
    // A size probe counts what the caller would get.
    let probe = user.listxattr(mine, 0).unwrap();
    assert_eq!(u32::from_le_bytes(probe[..4].try_into().unwrap()), 27);
    assert_eq!(user.removexattr(mine, "trusted.t"), Err(libc::EPERM));
    assert_eq!(user.removexattr(mine, "security.capability"), Err(libc::EPERM));
    g.removexattr(mine, "trusted.t").unwrap();
    g.removexattr(mine, "security.capability").unwrap();
    assert_eq!(names(&g.listxattr(mine, 1024).unwrap()), ["user.u"]);
}

#[test]
fn user_namespace_follows_permission_bits_and_acls_are_unsupported() {
    let (g, root_file, mine) = setup();
    let user = g.as_user(1000, 1000);
    assert_eq!(user.setxattr(root_file, "user.a", b"1", 0), Err(libc::EACCES));
    g.setxattr(root_file, "user.a", b"1", 0).unwrap();
    assert_eq!(user.getxattr(root_file, "user.a", 10), Ok(b"1".to_vec()));
    assert_eq!(user.removexattr(root_file, "user.a"), Err(libc::EACCES));
    for (who, ino) in [(&g, root_file), (&user, mine), (&user, root_file)] {
        assert_eq!(who.setxattr(ino, "system.posix_acl_access", b"", 0), Err(libc::EOPNOTSUPP));
        assert_eq!(who.getxattr(ino, "system.posix_acl_access", 10), Err(libc::EOPNOTSUPP));
        assert_eq!(who.removexattr(ino, "system.posix_acl_access"), Err(libc::EOPNOTSUPP));
    }
}
