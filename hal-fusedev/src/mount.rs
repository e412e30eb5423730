//! Mounting a `fuse.dpfs` file system on a `/dev/fuse` descriptor, and unmounting it.

use crate::dev::FuseDev;
use crate::Error;
use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How the file system is mounted.
#[derive(Clone, Debug)]
pub struct MountOptions {
    /// Where to mount (an existing directory).
    pub mountpoint: PathBuf,
    /// Reader threads (at least 1).
    pub threads: usize,
    /// Let the kernel check permissions from the attributes (`default_permissions`).
    pub default_permissions: bool,
    /// Let users other than the mounting one use the mount (`allow_other`).
    pub allow_other: bool,
    /// Source shown in `/proc/mounts` (default "dpfs").
    pub source: String,
    /// File system subtype: the type is `fuse.<subtype>` (default "dpfs").
    pub subtype: String,
}

impl MountOptions {
    /// Defaults for `mountpoint`: one thread, `default_permissions,allow_other`.
    pub fn new(mountpoint: impl Into<PathBuf>) -> MountOptions {
        MountOptions {
            mountpoint: mountpoint.into(),
            threads: 1,
            default_permissions: true,
            allow_other: true,
            source: "dpfs".into(),
            subtype: "dpfs".into(),
        }
    }

    /// The `data` string of `mount(2)` for descriptor `fd`.
    pub fn data(&self, fd: i32) -> String {
        // SAFETY: getuid/getgid cannot fail and have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let mut s = format!("fd={fd},rootmode=40000,user_id={uid},group_id={gid}");
        if self.default_permissions {
            s.push_str(",default_permissions");
        }
        if self.allow_other {
            s.push_str(",allow_other");
        }
        s
    }
}

fn cstr(p: &Path) -> Result<CString, Error> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::MountPoint(p.into(), "contains a NUL byte".into()))
}

/// Mounts the connection of `dev` on `opts.mountpoint`.
pub fn mount(dev: &FuseDev, opts: &MountOptions) -> Result<(), Error> {
    let path = &opts.mountpoint;
    if !path.is_dir() {
        return Err(Error::MountPoint(path.clone(), "not a directory".into()));
    }
    let target = cstr(path)?;
    let bad = |what: &str| Error::MountPoint(path.clone(), format!("{what} contains a NUL byte"));
    let source = CString::new(opts.source.as_bytes()).map_err(|_| bad("source"))?;
    let fstype = CString::new(format!("fuse.{}", opts.subtype)).map_err(|_| bad("subtype"))?;
    let data = CString::new(opts.data(dev.as_raw_fd())).map_err(|_| bad("options"))?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    // SAFETY: every pointer is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), fstype.as_ptr(), flags, data.as_ptr().cast()) };
    if r != 0 {
        return Err(Error::Mount { path: path.clone(), source: io::Error::last_os_error() });
    }
    Ok(())
}

/// Lazily unmounts `path` (`umount2(MNT_DETACH)`): the mount disappears from the namespace
/// now, and the connection ends (readers see ENODEV) once nothing uses it any more.
pub fn unmount(path: &Path) -> io::Result<()> {
    let target = cstr(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    // SAFETY: `target` is a NUL-terminated string that outlives the call.
    let r = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Where fusectl lives.
const FUSECTL: &str = "/sys/fs/fuse/connections";

/// Aborts FUSE connection `conn` through fusectl (`/sys/fs/fuse/connections/N/abort`):
/// every pending and future request fails with ENOTCONN and readers see ENODEV. Mounts
/// fusectl first if it is not mounted.
pub fn abort_connection(conn: u64) -> io::Result<()> {
    let dir = Path::new(FUSECTL).join(conn.to_string());
    if !dir.exists() {
        // SAFETY: every pointer is a NUL-terminated literal; a null data pointer is allowed.
        let r = unsafe {
            libc::mount(
                c"fusectl".as_ptr(),
                c"/sys/fs/fuse/connections".as_ptr(),
                c"fusectl".as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) {
                return Err(e);
            }
        }
    }
    std::fs::write(dir.join("abort"), b"1")
}
