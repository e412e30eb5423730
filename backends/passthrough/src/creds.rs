//! Per-request credentials: the calling thread's fsuid/fsgid and groups become the guest
//! caller's for the duration of a syscall, so the host kernel does the permission checks.

use crate::sys;
use dpfs_core::fs::Context;
use dpfs_core::Errno;

/// Restores the server's credentials on drop. Not `Send`: credentials are per thread.
pub(crate) struct CredGuard {
    switched: bool,
    groups: &'static [libc::gid_t],
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Sets this thread's supplementary groups only (the raw syscall: glibc's wrapper would
/// change every thread of the process).
fn set_thread_groups(groups: &[libc::gid_t]) -> Result<(), Errno> {
    // SAFETY: the pointer and length describe a valid gid_t slice.
    sys::cvt(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(|_| ())
}

/// setfsuid/setfsgid return the previous id and cannot report errors: set, then check.
fn set_fs_ids(uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: plain syscalls on the calling thread's credentials.
    unsafe {
        libc::setfsgid(gid);
        if libc::setfsgid(gid) as u32 != gid {
            return Err(Errno::EPERM);
        }
        libc::setfsuid(uid);
        if libc::setfsuid(uid) as u32 != uid {
            libc::setfsgid(libc::getegid());
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}

/// Switches to the caller's credentials unless the caller is root:root.
///
/// `server_groups` is the process's supplementary group list, restored afterwards.
/// Note: a non-zero fsuid drops the file-system capabilities (`CAP_DAC_READ_SEARCH`
/// included), so inode descriptors must be fetched before switching.
pub(crate) fn switch(ctx: &Context, server_groups: &'static [libc::gid_t]) -> Result<CredGuard, Errno> {
    let guard = CredGuard { switched: false, groups: server_groups, _not_send: std::marker::PhantomData };
    if ctx.uid == 0 && ctx.gid == 0 {
        return Ok(guard);
    }
    let supp: Vec<libc::gid_t> = ctx.supplementary_gid.into_iter().collect();
    set_thread_groups(&supp)?;
    if let Err(e) = set_fs_ids(ctx.uid, ctx.gid) {
        let _ = set_thread_groups(server_groups);
        return Err(e);
    }
    Ok(CredGuard { switched: true, ..guard })
}

impl Drop for CredGuard {
    fn drop(&mut self) {
        if self.switched {
            // SAFETY: restoring the server's own ids on this thread.
            unsafe {
                libc::setfsuid(libc::geteuid());
                libc::setfsgid(libc::getegid());
            }
            if set_thread_groups(self.groups).is_err() {
                tracing::error!("cannot restore supplementary groups");
            }
        }
    }
}

/// The process's supplementary groups (leaked once: it lives as long as the process).
pub(crate) fn server_groups() -> &'static [libc::gid_t] {
    static GROUPS: std::sync::OnceLock<Vec<libc::gid_t>> = std::sync::OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut v = vec![0 as libc::gid_t; 256];
        // SAFETY: `v` has room for 256 gids.
        let n = unsafe { libc::getgroups(v.len() as libc::c_int, v.as_mut_ptr()) };
        v.truncate(n.max(0) as usize);
        v
    })
}
