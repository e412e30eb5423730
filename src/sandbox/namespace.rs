//! Entering the namespaces and pivoting into the served directory (or chroot-ing).

use anyhow::Context as _;
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn c(p: &Path) -> anyhow::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).context("path with a NUL byte")
}

fn check(r: libc::c_int, what: &str) -> anyhow::Result<()> {
    if r != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| what.to_string());
    }
    Ok(())
}

fn mount(
    src: &str,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> anyhow::Result<()> {
    let (s, t) = (CString::new(src)?, c(target)?);
    let f = fstype.map(CString::new).transpose()?;
    let d = data.map(CString::new).transpose()?;
    // SAFETY: NUL-terminated strings (or null) that outlive the call.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            f.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            d.as_ref().map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    check(r, &format!("mount {src} on {}", target.display()))
}

/// Opens `/proc/self/fd` for the passthrough backend (it reopens inodes through it).
fn keep_proc_self_fd() -> anyhow::Result<()> {
    // SAFETY: NUL-terminated path; a fresh descriptor.
    let fd = unsafe { libc::open(c"/proc/self/fd".as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("open /proc/self/fd");
    }
    // SAFETY: fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = dpfs_backend_passthrough::set_proc_self_fd(fd);
    Ok(())
}

/// New mount, ipc, uts (and net) namespaces; a private `/proc` of the daemon's pid
/// namespace opened as `/proc/self/fd`; then `root` (or an empty read-only tmpfs) becomes
/// `/` and the old root is detached, so no other host path is reachable.
pub fn enter(root: Option<&Path>, new_net: bool) -> anyhow::Result<()> {
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
    if new_net {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: unshare with namespace flags; the process has one thread.
    check(unsafe { libc::unshare(flags) }, "unshare(mount, ipc, uts, net namespaces)")?;
    // Nothing we mount from here on propagates back to the host.
    mount("none", Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    mount("proc", Path::new("/proc"), Some("proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)?;
    keep_proc_self_fd()?;
    let new_root = match root {
        Some(dir) => {
            mount(&dir.to_string_lossy(), dir, None, libc::MS_BIND | libc::MS_REC, None)?;
            dir.to_path_buf()
        }
        None => {
            let dir = Path::new("/tmp");
            let dir = if dir.is_dir() { dir } else { Path::new("/mnt") };
            mount(
                "dpfs-root",
                dir,
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some("size=16k,nr_inodes=8,mode=0755"),
            )?;
            dir.to_path_buf()
        }
    };
    let r = c(&new_root)?;
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::chdir(r.as_ptr()) }, "chdir to the new root")?;
    // pivot_root(".", "."): the old root ends up stacked on the new one; detach it.
    // SAFETY: NUL-terminated paths.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) } as libc::c_int, "pivot_root")?;
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) }, "detach the old root")?;
    // SAFETY: NUL-terminated path.
    check(unsafe { libc::chdir(c"/".as_ptr()) }, "chdir /")?;
    // SAFETY: sethostname with a valid buffer (our own uts namespace).
    unsafe { libc::sethostname(c"dpfs".as_ptr(), 4) };
    Ok(())
}

/// `chroot(root)` without namespaces (`--sandbox chroot`). Weaker: the host's pid, net and
/// mount views stay, and `/proc/self/fd` is the host's `/proc`.
pub fn chroot(root: Option<&Path>) -> anyhow::Result<()> {
    keep_proc_self_fd()?;
    let Some(root) = root else {
        tracing::info!("--sandbox chroot: no directory to serve; staying at /");
        return Ok(());
    };
    let r = c(root)?;
    // SAFETY: NUL-terminated paths.
    unsafe {
        check(libc::chdir(r.as_ptr()), "chdir to the shared directory")?;
        check(libc::chroot(c".".as_ptr()), "chroot")?;
        check(libc::chdir(c"/".as_ptr()), "chdir /")?;
    }
    Ok(())
}
