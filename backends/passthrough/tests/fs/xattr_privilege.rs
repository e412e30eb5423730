//! Extended attributes and the caller's privilege: what a uid-1000 and a uid-0 guest may do
//! in each namespace, checked through the guest path and on the host files themselves.

use crate::common::{Guest, ROOT};
use dpfs_backend_passthrough::XattrPolicy;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A `vfs_cap_data` (revision 2) granting `CAP_SYS_ADMIN` permitted and effective.
fn cap_sys_admin_blob() -> Vec<u8> {
    let magic: u32 = 0x0200_0000 | 1; // VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
    let permitted_lo: u32 = 1 << 21; // CAP_SYS_ADMIN
    [magic, permitted_lo, 0, 0, 0].iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// An access ACL with a named-user entry (so it is stored, not folded into the mode).
fn acl_blob() -> Vec<u8> {
    let mut b = 2u32.to_le_bytes().to_vec(); // POSIX_ACL_XATTR_VERSION
    for (tag, perm, id) in
        [(1u16, 6u16, u32::MAX), (2, 4, 2000), (4, 4, u32::MAX), (0x10, 4, u32::MAX), (0x20, 4, u32::MAX)]
    {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&perm.to_le_bytes());
        b.extend_from_slice(&id.to_le_bytes());
    }
    b
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// `lgetxattr(2)` on the host file: the value or the errno.
fn host_get(p: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (p, n) = (cpath(p), CString::new(name).unwrap());
    let mut buf = vec![0u8; 65536];
    // SAFETY: NUL-terminated strings and a buffer valid for its length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// `lsetxattr(2)` on the host file, as the test process (root).
fn host_set(p: &Path, name: &str, value: &[u8]) {
    let (p, n) = (cpath(p), CString::new(name).unwrap());
    // SAFETY: NUL-terminated strings and a value valid for its length.
    let r = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(r, 0, "host setxattr {name}: {}", std::io::Error::last_os_error());
}

/// Names in the host file's `llistxattr(2)`.
fn host_names(p: &Path) -> Vec<String> {
    let p = cpath(p);
    let mut buf = vec![0u8; 65536];
    // SAFETY: a NUL-terminated path and a buffer valid for its length.
    let r = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(r >= 0, "host listxattr: {}", std::io::Error::last_os_error());
    buf.truncate(r as usize);
    names(&buf)
}

fn names(list: &[u8]) -> Vec<String> {
    list.split(|&b| b == 0).filter(|n| !n.is_empty()).map(|n| String::from_utf8_lossy(n).into_owned()).collect()
}

/// A guest over `policy` with a root-owned 0644 file `root` and a uid-1000 0644 file `mine`
/// (their node ids).
fn setup(policy: XattrPolicy) -> (Guest, u64, u64) {
    let g = Guest::with(|c| c.xattr_policy = policy);
    let (root_file, _) = g.mkfile(ROOT, "root").unwrap();
    let (mine, _) = g.mkfile(ROOT, "mine").unwrap();
    std::os::unix::fs::chown(g.host("mine"), Some(1000), Some(1000)).unwrap();
    (g, root_file, mine)
}

const POLICIES: [XattrPolicy; 3] = [XattrPolicy::Map, XattrPolicy::Refuse, XattrPolicy::Passthrough];

#[test]
fn non_root_cannot_set_or_remove_privileged_names_whatever_the_policy() {
    for policy in POLICIES {
        let (g, root_file, mine) = setup(policy);
        let user = g.as_user(1000, 1000);
        for (ino, file) in [(mine, "mine"), (root_file, "root")] {
            let cap = cap_sys_admin_blob();
            assert_eq!(user.setxattr(ino, "security.capability", &cap, 0), Err(libc::EPERM), "{policy:?} {file}");
            assert_eq!(user.setxattr(ino, "trusted.t", b"1", 0), Err(libc::EPERM), "{policy:?} {file}");
            assert_eq!(user.setxattr(ino, "security.selinux", b"x", 0), Err(libc::EPERM), "{policy:?} {file}");
            assert_eq!(user.removexattr(ino, "trusted.t"), Err(libc::EPERM), "{policy:?} {file}");
            assert_eq!(user.removexattr(ino, "security.capability"), Err(libc::EPERM), "{policy:?} {file}");
            // Nothing was planted on the host, under any name.
            let on_host = host_names(&g.host(file));
            assert!(on_host.is_empty(), "{policy:?} {file}: {on_host:?}");
            assert_eq!(host_get(&g.host(file), "security.capability"), Err(libc::ENODATA));
        }
    }
}

#[test]
fn non_root_cannot_read_or_remove_host_trusted_names() {
    // Passthrough policy: the host's own trusted.* would be visible to a root guest, so
    // only the caller's privilege keeps it from uid 1000.
    let (g, root_file, _) = setup(XattrPolicy::Passthrough);
    host_set(&g.host("root"), "trusted.secret", b"s");
    let user = g.as_user(1000, 1000);
    assert_eq!(user.getxattr(root_file, "trusted.secret", 100), Err(libc::ENODATA));
    assert_eq!(user.removexattr(root_file, "trusted.secret"), Err(libc::EPERM));
    assert_eq!(names(&user.listxattr(root_file, 1024).unwrap()), Vec::<String>::new());
    assert_eq!(host_get(&g.host("root"), "trusted.secret"), Ok(b"s".to_vec()));
    // Root sees and removes it.
    assert_eq!(names(&g.listxattr(root_file, 1024).unwrap()), ["trusted.secret"]);
    assert_eq!(g.getxattr(root_file, "trusted.secret", 100), Ok(b"s".to_vec()));
    g.removexattr(root_file, "trusted.secret").unwrap();
    assert_eq!(host_get(&g.host("root"), "trusted.secret"), Err(libc::ENODATA));
}

#[test]
fn root_guest_trusted_and_capabilities_are_mapped_by_default() {
    let (g, root_file, _) = setup(XattrPolicy::default());
    let host = g.host("root");
    host_set(&host, "trusted.host_own", b"h");
    let cap = cap_sys_admin_blob();
    g.setxattr(root_file, "trusted.foo", b"bar", 0).unwrap();
    g.setxattr(root_file, "security.capability", &cap, 0).unwrap();
    // The guest sees its own attributes under its own names...
    assert_eq!(g.getxattr(root_file, "trusted.foo", 100), Ok(b"bar".to_vec()));
    assert_eq!(g.getxattr(root_file, "security.capability", 100), Ok(cap.clone()));
    let mut listed = names(&g.listxattr(root_file, 1024).unwrap());
    listed.sort();
    assert_eq!(listed, ["security.capability", "trusted.foo"]);
    // ...the host file carries neither as such, only the private names.
    assert_eq!(host_get(&host, "trusted.foo"), Err(libc::ENODATA));
    assert_eq!(host_get(&host, "security.capability"), Err(libc::ENODATA));
    assert_eq!(host_get(&host, "trusted.dpfs.trusted.foo"), Ok(b"bar".to_vec()));
    assert_eq!(host_get(&host, "trusted.dpfs.security.capability"), Ok(cap.clone()));
    // The host's own trusted.* is not the guest's.
    assert_eq!(g.getxattr(root_file, "trusted.host_own", 100), Err(libc::ENODATA));
    // A non-root guest still reads file capabilities, never trusted.*.
    let user = g.as_user(1000, 1000);
    assert_eq!(user.getxattr(root_file, "security.capability", 100), Ok(cap));
    assert_eq!(user.getxattr(root_file, "trusted.foo", 100), Err(libc::ENODATA));
    assert_eq!(names(&user.listxattr(root_file, 1024).unwrap()), ["security.capability"]);
    g.removexattr(root_file, "trusted.foo").unwrap();
    assert_eq!(host_get(&host, "trusted.dpfs.trusted.foo"), Err(libc::ENODATA));
    g.removexattr(root_file, "security.capability").unwrap();
    assert_eq!(host_get(&host, "trusted.dpfs.security.capability"), Err(libc::ENODATA));
    assert_eq!(g.getxattr(root_file, "security.capability", 100), Err(libc::ENODATA));
}

#[test]
fn the_private_prefix_cannot_be_reached_or_forged() {
    let (g, root_file, mine) = setup(XattrPolicy::Map);
    let cap = cap_sys_admin_blob();
    // A root guest naming the private form of trusted.foo lands one level deeper.
    g.setxattr(root_file, "trusted.foo", b"real", 0).unwrap();
    g.setxattr(root_file, "trusted.dpfs.trusted.foo", b"other", 0).unwrap();
    assert_eq!(g.getxattr(root_file, "trusted.foo", 100), Ok(b"real".to_vec()));
    assert_eq!(host_get(&g.host("root"), "trusted.dpfs.trusted.dpfs.trusted.foo"), Ok(b"other".to_vec()));
    let mut listed = names(&g.listxattr(root_file, 1024).unwrap());
    listed.sort();
    assert_eq!(listed, ["trusted.dpfs.trusted.foo", "trusted.foo"]);
    // uid 1000 cannot name it at all.
    let user = g.as_user(1000, 1000);
    assert_eq!(user.setxattr(mine, "trusted.dpfs.security.capability", &cap, 0), Err(libc::EPERM));
    // A user.* attribute that looks like a private one is only a user attribute: neither a
    // guest user nor a host user owning the file can forge a capability with it.
    user.setxattr(mine, "user.dpfs.security.capability", &cap, 0).unwrap();
    host_set(&g.host("mine"), "user.dpfs.trusted.foo", b"forged");
    assert_eq!(g.getxattr(mine, "security.capability", 100), Err(libc::ENODATA));
    assert_eq!(g.getxattr(mine, "trusted.foo", 100), Err(libc::ENODATA));
    let mut listed = names(&g.listxattr(mine, 1024).unwrap());
    listed.sort();
    assert_eq!(listed, ["user.dpfs.security.capability", "user.dpfs.trusted.foo"]);
    // Host attributes under the prefix that the mapping does not make are hidden.
    host_set(&g.host("mine"), "trusted.dpfs.stray", b"s");
    assert_eq!(names(&g.listxattr(mine, 1024).unwrap()).len(), 2);
}

#[test]
fn refuse_and_passthrough_policies_for_root() {
    let (g, root_file, _) = setup(XattrPolicy::Refuse);
    assert_eq!(g.setxattr(root_file, "trusted.foo", b"1", 0), Err(libc::EOPNOTSUPP));
    assert_eq!(g.setxattr(root_file, "security.capability", &cap_sys_admin_blob(), 0), Err(libc::EOPNOTSUPP));
    assert_eq!(g.getxattr(root_file, "trusted.foo", 10), Err(libc::EOPNOTSUPP));
    host_set(&g.host("root"), "trusted.host_own", b"h");
    assert_eq!(names(&g.listxattr(root_file, 1024).unwrap()), Vec::<String>::new());
    g.setxattr(root_file, "user.a", b"1", 0).unwrap();
    assert_eq!(host_names(&g.host("root")).len(), 2);

    let (g, root_file, _) = setup(XattrPolicy::Passthrough);
    g.setxattr(root_file, "trusted.foo", b"1", 0).unwrap();
    assert_eq!(host_get(&g.host("root"), "trusted.foo"), Ok(b"1".to_vec()));
}

#[test]
fn user_namespace_keeps_permission_rules() {
    let (g, root_file, mine) = setup(XattrPolicy::Map);
    let user = g.as_user(1000, 1000);
    assert_eq!(user.setxattr(root_file, "user.a", b"1", 0), Err(libc::EACCES));
    user.setxattr(mine, "user.a", b"1", 0).unwrap();
    assert_eq!(user.getxattr(mine, "user.a", 10), Ok(b"1".to_vec()));
    assert_eq!(names(&user.listxattr(mine, 1024).unwrap()), ["user.a"]);
    g.setxattr(root_file, "user.r", b"r", 0).unwrap();
    assert_eq!(user.getxattr(root_file, "user.r", 10), Ok(b"r".to_vec()));
    assert_eq!(user.removexattr(root_file, "user.r"), Err(libc::EACCES));
    user.removexattr(mine, "user.a").unwrap();
    assert_eq!(host_get(&g.host("mine"), "user.a"), Err(libc::ENODATA));
    // A size probe of a filtered list answers the filtered length.
    host_set(&g.host("mine"), "trusted.hidden", b"h");
    g.setxattr(mine, "user.b", b"2", 0).unwrap();
    let probe = user.listxattr(mine, 0).unwrap();
    assert_eq!(u32::from_ne_bytes(probe[..4].try_into().unwrap()), 7);
    assert_eq!(user.listxattr(mine, 3), Err(libc::ERANGE));
}

#[test]
fn acls_are_for_the_owner_and_root() {
    let (g, root_file, mine) = setup(XattrPolicy::Map);
    let user = g.as_user(1000, 1000);
    let acl = acl_blob();
    assert_eq!(user.setxattr(root_file, "system.posix_acl_access", &acl, 0), Err(libc::EPERM));
    assert_eq!(host_get(&g.host("root"), "system.posix_acl_access"), Err(libc::ENODATA));
    user.setxattr(mine, "system.posix_acl_access", &acl, 0).unwrap();
    assert!(host_get(&g.host("mine"), "system.posix_acl_access").is_ok());
    g.setxattr(root_file, "system.posix_acl_access", &acl, 0).unwrap();
    assert!(user.getxattr(root_file, "system.posix_acl_access", 1024).is_ok());
    assert!(names(&user.listxattr(root_file, 1024).unwrap()).contains(&"system.posix_acl_access".to_string()));
    assert_eq!(user.removexattr(root_file, "system.posix_acl_access"), Err(libc::EPERM));
    user.removexattr(mine, "system.posix_acl_access").unwrap();
    g.removexattr(root_file, "system.posix_acl_access").unwrap();
    assert_eq!(host_get(&g.host("root"), "system.posix_acl_access"), Err(libc::ENODATA));
}
