//! Who the server sees: each caller's uid and gid through AUTH_SYS, owners set by number,
//! permissions enforced by the server; statfs and access.

use crate::{Case, ROOT};
use dpfs_core::abi;
use std::os::unix::fs::MetadataExt;

pub fn callers_identity_reaches_the_server(c: &Case) {
    let user = c.g.as_user(4321, 4322);
    let (f, fh) = user.mkfile(ROOT, "mine").unwrap();
    user.release(f, fh).unwrap();
    let host = std::fs::metadata(c.dir.join("mine")).unwrap();
    assert_eq!((host.uid(), host.gid()), (4321, 4322));
    let a = user.getattr(f).unwrap();
    assert_eq!((a.uid, a.gid), (4321, 4322));
    // Root gives a file away by number.
    let set = abi::SetattrIn { valid: abi::fattr::UID | abi::fattr::GID, uid: 1234, gid: 1235, ..Default::default() };
    let a = c.g.setattr(f, set).unwrap();
    assert_eq!((a.uid, a.gid), (1234, 1235));
    assert_eq!(std::fs::metadata(c.dir.join("mine")).unwrap().uid(), 1234);
    // The server enforces permissions for the caller: 4321 no longer owns the 0644 file.
    assert_eq!(user.open(f, libc::O_WRONLY as u32).err(), Some(libc::EACCES));
    assert_eq!(user.chmod(f, 0o777).err(), Some(libc::EPERM));
    // A private directory of root's.
    let d = c.g.mkdir(ROOT, "private", 0o700).unwrap().nodeid;
    assert_eq!(user.lookup(d, "x").err(), Some(libc::EACCES));
    assert_eq!(user.mkdir(d, "x", 0o755).err(), Some(libc::EACCES));
}

pub fn statfs_and_access(c: &Case) {
    let g = &c.g;
    let st = g.statfs().unwrap();
    let host = nix_statvfs(&c.dir);
    assert!(st.blocks > 0 && st.bsize == 4096 && st.namelen == 255, "{st:?}");
    assert!(st.blocks * 4096 >= host / 2, "statfs blocks {} against the host's {host} bytes", st.blocks);
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.release(f, fh).unwrap();
    g.chmod(f, 0o640).unwrap();
    let user = g.as_user(4321, 4321);
    assert_eq!(user.access(f, libc::R_OK as u32).err(), Some(libc::EACCES));
    assert_eq!(user.access(ROOT, libc::X_OK as u32), Ok(()));
    assert_eq!(g.access(f, (libc::R_OK | libc::W_OK) as u32), Ok(()));
    assert_eq!(g.access(f, libc::F_OK as u32), Ok(()));
}

/// Total bytes of the file system holding `dir`.
fn nix_statvfs(dir: &std::path::Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: all-zero is a valid statvfs, filled by statvfs from a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_blocks * st.f_frsize
}
