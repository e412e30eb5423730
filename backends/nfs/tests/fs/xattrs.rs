//! RFC 8276 extended attributes: `user.*` over NFSv4.2 where the server has them; EOPNOTSUPP
//! with minor version 1, for other namespaces, and from a server without them (ganesha 4.3's
//! FSAL_VFS answers NFS4ERR_NOTSUPP).

use crate::{Case, ROOT};

fn host_has_xattr(path: &std::path::Path, name: &str) -> bool {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C strings; a size probe with no buffer.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) >= 0 }
}

/// Minor version 2.
pub fn user_xattrs_or_eopnotsupp(c: &Case) {
    let g = &c.g;
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.release(ino, fh).unwrap();
    // Only user.* is an NFS attribute.
    assert_eq!(g.setxattr(ino, "trusted.k", b"v", 0), Err(libc::EOPNOTSUPP));
    assert_eq!(g.getxattr(ino, "security.selinux", 100), Err(libc::EOPNOTSUPP));
    match g.setxattr(ino, "user.k", b"value", 0) {
        Err(libc::EOPNOTSUPP) => {
            eprintln!("the server has no RFC 8276 xattrs: EOPNOTSUPP");
            assert_eq!(g.getxattr(ino, "user.k", 100), Err(libc::EOPNOTSUPP));
            assert_eq!(g.listxattr(ino, 0), Err(libc::EOPNOTSUPP));
            assert_eq!(g.removexattr(ino, "user.k"), Err(libc::EOPNOTSUPP));
            assert!(!host_has_xattr(&c.dir.join("f"), "user.k"));
        }
        Ok(()) => {
            assert!(host_has_xattr(&c.dir.join("f"), "user.k"));
            assert_eq!(g.getxattr(ino, "user.k", 100).unwrap(), b"value");
            assert_eq!(g.getxattr(ino, "user.k", 2), Err(libc::ERANGE));
            assert_eq!(g.setxattr(ino, "user.k", b"x", libc::XATTR_CREATE as u32), Err(libc::EEXIST));
            assert_eq!(g.setxattr(ino, "user.n", b"x", libc::XATTR_REPLACE as u32), Err(libc::ENODATA));
            let list = g.listxattr(ino, 4096).unwrap();
            assert!(list.split(|&b| b == 0).any(|n| n == b"user.k"), "{list:?}");
            g.removexattr(ino, "user.k").unwrap();
            assert_eq!(g.getxattr(ino, "user.k", 100), Err(libc::ENODATA));
        }
        Err(e) => panic!("setxattr user.k: errno {e}"),
    }
}

/// Minor version 1: no xattr operations.
pub fn v41_has_no_xattrs(c: &Case) {
    let g = &c.g;
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.release(ino, fh).unwrap();
    assert_eq!(g.setxattr(ino, "user.k", b"v", 0), Err(libc::EOPNOTSUPP));
    assert_eq!(g.getxattr(ino, "user.k", 100), Err(libc::EOPNOTSUPP));
    assert_eq!(g.listxattr(ino, 0), Err(libc::EOPNOTSUPP));
    assert_eq!(g.removexattr(ino, "user.k"), Err(libc::EOPNOTSUPP));
}
