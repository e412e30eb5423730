//! Capacity accounting: bytes, inodes and handles reserved against the configured limits.

use dpfs_core::Errno;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what is in use, each bounded by its limit. Reservations are atomic, so a
/// request either gets all it asked for or fails without side effects.
#[derive(Debug)]
pub(crate) struct Space {
    cap_bytes: u64,
    max_inodes: u64,
    max_handles: u64,
    bytes: AtomicU64,
    inodes: AtomicU64,
    handles: AtomicU64,
}

fn reserve(counter: &AtomicU64, limit: u64, n: u64, err: Errno) -> Result<(), Errno> {
    if n == 0 {
        return Ok(());
    }
    counter
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| u.checked_add(n).filter(|&t| t <= limit))
        .map(|_| ())
        .map_err(|_| err)
}

fn release(counter: &AtomicU64, n: u64) {
    if n != 0 {
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| Some(u.saturating_sub(n)));
    }
}

impl Space {
    pub(crate) fn new(cap_bytes: u64, max_inodes: u64, max_handles: u64) -> Space {
        Space {
            cap_bytes,
            max_inodes,
            max_handles,
            bytes: AtomicU64::new(0),
            inodes: AtomicU64::new(0),
            handles: AtomicU64::new(0),
        }
    }

    /// Reserves `n` bytes or fails with ENOSPC.
    pub(crate) fn reserve_bytes(&self, n: u64) -> Result<(), Errno> {
        reserve(&self.bytes, self.cap_bytes, n, Errno::ENOSPC)
    }
    pub(crate) fn release_bytes(&self, n: u64) {
        release(&self.bytes, n)
    }
    /// Reserves one inode or fails with ENOSPC.
    pub(crate) fn reserve_inode(&self) -> Result<(), Errno> {
        reserve(&self.inodes, self.max_inodes, 1, Errno::ENOSPC)
    }
    pub(crate) fn release_inode(&self) {
        release(&self.inodes, 1)
    }
    /// Reserves one open handle or fails with ENFILE.
    pub(crate) fn reserve_handle(&self) -> Result<(), Errno> {
        reserve(&self.handles, self.max_handles, 1, Errno::ENFILE)
    }
    pub(crate) fn release_handle(&self) {
        release(&self.handles, 1)
    }

    pub(crate) fn cap_bytes(&self) -> u64 {
        self.cap_bytes
    }
    pub(crate) fn max_inodes(&self) -> u64 {
        self.max_inodes
    }
    pub(crate) fn used_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }
    pub(crate) fn used_inodes(&self) -> u64 {
        self.inodes.load(Ordering::Acquire)
    }
    pub(crate) fn used_handles(&self) -> u64 {
        self.handles.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_released() {
        let s = Space::new(100, 2, 1);
        assert!(s.reserve_bytes(60).is_ok());
        assert_eq!(s.reserve_bytes(41), Err(Errno::ENOSPC));
        assert!(s.reserve_bytes(40).is_ok());
        s.release_bytes(100);
        assert_eq!(s.used_bytes(), 0);
        assert_eq!(s.reserve_bytes(u64::MAX), Err(Errno::ENOSPC));
        assert!(s.reserve_inode().is_ok() && s.reserve_inode().is_ok());
        assert_eq!(s.reserve_inode(), Err(Errno::ENOSPC));
        assert!(s.reserve_handle().is_ok());
        assert_eq!(s.reserve_handle(), Err(Errno::ENFILE));
        s.release_handle();
        s.release_handle();
        assert_eq!(s.used_handles(), 0);
    }
}
