//! Extended attributes on kv: the mem backend's semantics and core's privilege rules.

use crate::common::*;
use dpfs_backend_kv::Store;

fn probe(v: Vec<u8>) -> u32 {
    u32::from_le_bytes(v[..4].try_into().unwrap())
}

pub fn xattr_semantics<S: Store>(g: Env<S>) {
    let (f, _) = g.mkfile(ROOT, "f").unwrap();
    g.setxattr(f, "user.a", b"1", 0).unwrap();
    g.setxattr(f, "user.bb", b"22", 0).unwrap();
    assert_eq!(g.setxattr(f, "user.a", b"x", 1).err(), Some(libc::EEXIST));
    assert_eq!(g.setxattr(f, "user.c", b"x", 2).err(), Some(libc::ENODATA));
    g.setxattr(f, "user.a", b"111", 2).unwrap();
    assert_eq!(probe(g.getxattr(f, "user.a", 0).unwrap()), 3);
    assert_eq!(g.getxattr(f, "user.a", 3).unwrap(), b"111");
    assert_eq!(g.getxattr(f, "user.a", 2).err(), Some(libc::ERANGE));
    assert_eq!(g.getxattr(f, "user.zz", 10).err(), Some(libc::ENODATA));
    assert_eq!(g.listxattr(f, 100).unwrap(), b"user.a\0user.bb\0");
    assert_eq!(probe(g.listxattr(f, 0).unwrap()), 15);
    assert_eq!(g.listxattr(f, 5).err(), Some(libc::ERANGE));
    g.removexattr(f, "user.a").unwrap();
    assert_eq!(g.removexattr(f, "user.a").err(), Some(libc::ENODATA));
    assert_eq!(g.setxattr(f, "user.big", &vec![0u8; 65537], 0).err(), Some(libc::E2BIG));
    g.setxattr(f, "user.max", &vec![0u8; 65536], 0).unwrap();
    assert_eq!(g.getxattr(f, "user.max", 65536).unwrap().len(), 65536);
    assert_eq!(g.setxattr(f, &format!("user.{}", "n".repeat(251)), b"", 0).err(), Some(libc::ERANGE));
    assert_eq!(g.setxattr(f, "system.posix_acl_access", b"", 0).err(), Some(libc::EOPNOTSUPP));
    g.setxattr(f, "trusted.t", b"t", 0).unwrap();
    let user = g.as_user(1000, 1000);
    assert_eq!(user.setxattr(f, "user.u", b"", 0).err(), Some(libc::EACCES));
    assert_eq!(user.setxattr(f, "trusted.u", b"", 0).err(), Some(libc::EPERM));
    assert_eq!(user.getxattr(f, "trusted.t", 10).err(), Some(libc::ENODATA));
    assert_eq!(user.listxattr(f, 1000).unwrap(), b"user.bb\0user.max\0");
    assert_eq!(g.listxattr(f, 1000).unwrap(), b"trusted.t\0user.bb\0user.max\0");
    // Symlinks take no user.* attributes.
    let s = g.symlink(ROOT, "s", "f").unwrap().nodeid;
    assert_eq!(g.setxattr(s, "user.a", b"", 0).err(), Some(libc::EPERM));
    assert_eq!(g.getxattr(s, "user.a", 10).err(), Some(libc::ENODATA));
}

crate::suite!(redb, crate::common::redb; xattr_semantics);

crate::suite!(redis, crate::common::redis; xattr_semantics);

crate::suite!(cluster, crate::common::cluster; xattr_semantics);
