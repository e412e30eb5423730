//! Open files and directories: handle numbers are keys into a bounded table.

use dpfs_core::Errno;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An open file or directory.
pub(crate) struct Handle {
    /// Node id it was opened on (checked against every request's node id).
    pub ino: u64,
    /// The open descriptor.
    pub fd: Arc<OwnedFd>,
    /// Serializes seek + getdents on directories.
    pub dir_lock: Mutex<()>,
    /// The descriptor does direct I/O (`O_DIRECT`, asked by the guest or forced by dpfs).
    pub o_direct: bool,
    /// Writes reach stable storage before returning (`O_SYNC`/`O_DSYNC`).
    pub sync_writes: bool,
    /// Set when dpfs forced `O_DIRECT` on this file (directio_mode 2).
    pub direct: Option<ForcedDirect>,
}

/// A file on which dpfs forced `O_DIRECT`, and its buffered twin for the I/O that the file
/// system's direct-I/O alignment refuses.
pub(crate) struct ForcedDirect {
    mem_align: usize,
    offset_align: u64,
    buffered: Mutex<Option<Arc<OwnedFd>>>,
}

impl ForcedDirect {
    /// Turns `O_DIRECT` on for `fd`; `None` if the file system does not do direct I/O.
    pub(crate) fn enable(fd: BorrowedFd<'_>) -> Option<ForcedDirect> {
        let raw = fd.as_raw_fd();
        // SAFETY: plain fcntl calls on a descriptor we own.
        let on = unsafe {
            let fl = libc::fcntl(raw, libc::F_GETFL);
            fl >= 0 && libc::fcntl(raw, libc::F_SETFL, fl | libc::O_DIRECT) == 0
        };
        if !on {
            return None;
        }
        // SAFETY: all-zero is a valid statx, which statx fills; EMPTY_PATH names `raw`.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor, NUL-terminated empty path and out-pointer.
        let r = unsafe { libc::statx(raw, c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_DIOALIGN, &mut st) };
        let known = r == 0 && st.stx_mask & libc::STATX_DIOALIGN != 0 && st.stx_dio_mem_align > 0;
        // Unknown alignment: assume the strictest common one, a 4 KiB page.
        let (mem, off) = if known { (st.stx_dio_mem_align, st.stx_dio_offset_align.max(1)) } else { (4096, 4096) };
        Some(ForcedDirect { mem_align: mem as usize, offset_align: u64::from(off), buffered: Mutex::new(None) })
    }

    /// Whether direct I/O accepts a transfer at `offset` over `iov`.
    pub(crate) fn allows(&self, offset: u64, iov: impl IntoIterator<Item = libc::iovec>) -> bool {
        let mut len = 0u64;
        for v in iov {
            if !(v.iov_base as usize).is_multiple_of(self.mem_align) || !v.iov_len.is_multiple_of(self.mem_align) {
                return false;
            }
            len += v.iov_len as u64;
        }
        offset.is_multiple_of(self.offset_align) && len.is_multiple_of(self.offset_align)
    }

    /// The buffered descriptor, opened by `open` on first use.
    pub(crate) fn buffered(&self, open: impl FnOnce() -> Result<OwnedFd, Errno>) -> Result<Arc<OwnedFd>, Errno> {
        let mut b = self.buffered.lock();
        if let Some(fd) = b.as_ref() {
            return Ok(fd.clone());
        }
        let fd = Arc::new(open()?);
        *b = Some(fd.clone());
        Ok(fd)
    }
}

/// Bounded table of open handles.
pub(crate) struct HandleTable {
    map: Mutex<HashMap<u64, Arc<Handle>>>,
    next: AtomicU64,
    max: usize,
}

impl HandleTable {
    /// A table of at most `max` handles.
    pub(crate) fn new(max: usize) -> HandleTable {
        HandleTable { map: Mutex::new(HashMap::new()), next: AtomicU64::new(1), max: max.max(1) }
    }

    /// Registers an open descriptor of node `ino`; EMFILE if the table is full.
    pub(crate) fn insert(&self, ino: u64, fd: OwnedFd) -> Result<u64, Errno> {
        self.insert_file(ino, fd, 0, None)
    }

    /// As `insert`, for a regular file opened with host `flags` (on which dpfs may have
    /// forced `O_DIRECT` since).
    pub(crate) fn insert_file(
        &self,
        ino: u64,
        fd: OwnedFd,
        flags: i32,
        direct: Option<ForcedDirect>,
    ) -> Result<u64, Errno> {
        let mut m = self.map.lock();
        if m.len() >= self.max {
            return Err(Errno::EMFILE);
        }
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        m.insert(
            fh,
            Arc::new(Handle {
                ino,
                fd: Arc::new(fd),
                dir_lock: Mutex::new(()),
                o_direct: flags & libc::O_DIRECT != 0 || direct.is_some(),
                sync_writes: flags & (libc::O_SYNC | libc::O_DSYNC) != 0,
                direct,
            }),
        );
        Ok(fh)
    }

    /// Handle `fh`, which must belong to node `ino` (EBADF otherwise).
    pub(crate) fn get(&self, fh: u64, ino: u64) -> Result<Arc<Handle>, Errno> {
        match self.map.lock().get(&fh) {
            Some(h) if h.ino == ino => Ok(h.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    /// Removes handle `fh` of node `ino`.
    pub(crate) fn remove(&self, fh: u64, ino: u64) -> Result<Arc<Handle>, Errno> {
        let mut m = self.map.lock();
        match m.get(&fh) {
            Some(h) if h.ino == ino => m.remove(&fh).ok_or(Errno::EBADF),
            _ => Err(Errno::EBADF),
        }
    }

    /// Closes everything (DESTROY).
    pub(crate) fn clear(&self) {
        self.map.lock().clear();
    }

    /// Open handles now.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iov(base: usize, len: usize) -> libc::iovec {
        libc::iovec { iov_base: base as *mut libc::c_void, iov_len: len }
    }

    #[test]
    fn direct_io_alignment_rules() {
        let d = ForcedDirect { mem_align: 512, offset_align: 4096, buffered: Mutex::new(None) };
        assert!(d.allows(0, [iov(0x10000, 4096)]));
        assert!(d.allows(8192, [iov(0x10000, 2048), iov(0x20200, 2048)]));
        assert!(!d.allows(100, [iov(0x10000, 4096)]), "offset");
        assert!(!d.allows(0, [iov(0x10010, 4096)]), "buffer address");
        assert!(!d.allows(0, [iov(0x10000, 4000)]), "length");
        assert!(!d.allows(0, [iov(0x10000, 512)]), "total not a multiple of the offset alignment");
    }
}
