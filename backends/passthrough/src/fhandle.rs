//! File handles: `name_to_handle_at` / `open_by_handle_at`, so the inode table need not
//! keep a descriptor per inode.

use crate::sys;
use dpfs_core::Errno;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const MAX_HANDLE: usize = 128;

/// `struct file_handle` with room for the largest handle.
#[repr(C)]
#[derive(Clone)]
struct RawHandle {
    handle_bytes: u32,
    handle_type: i32,
    f_handle: [u8; MAX_HANDLE],
}

/// An opaque kernel file handle and the mount it belongs to.
#[derive(Clone)]
pub(crate) struct FileHandle {
    raw: RawHandle,
    /// Mount id reported with the handle.
    pub mount_id: i32,
}

impl PartialEq for FileHandle {
    fn eq(&self, o: &FileHandle) -> bool {
        self.mount_id == o.mount_id && self.raw.handle_type == o.raw.handle_type && self.bytes() == o.bytes()
    }
}

impl FileHandle {
    fn bytes(&self) -> &[u8] {
        self.raw.f_handle.get(..self.raw.handle_bytes as usize).unwrap_or_default()
    }

    /// The handle of the inode `fd` refers to (`AT_EMPTY_PATH`: works on `O_PATH` fds).
    pub(crate) fn of(fd: BorrowedFd<'_>) -> Result<FileHandle, Errno> {
        let mut raw = RawHandle { handle_bytes: MAX_HANDLE as u32, handle_type: 0, f_handle: [0; MAX_HANDLE] };
        let mut mount_id: libc::c_int = 0;
        // SAFETY: `raw` is a file_handle with `handle_bytes` bytes of room after the header;
        // `mount_id` is a valid out-pointer; EMPTY is NUL-terminated.
        sys::cvt(unsafe {
            libc::name_to_handle_at(
                fd.as_raw_fd(),
                sys::EMPTY.as_ptr(),
                (&mut raw as *mut RawHandle).cast::<libc::file_handle>(),
                &mut mount_id,
                libc::AT_EMPTY_PATH,
            )
        })?;
        if raw.handle_bytes as usize > MAX_HANDLE {
            return Err(Errno::EOVERFLOW);
        }
        Ok(FileHandle { raw, mount_id })
    }

    /// Opens the inode as `O_PATH` (needs `CAP_DAC_READ_SEARCH`: call with root credentials).
    pub(crate) fn open(&self, mount_fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
        let mut raw = self.raw.clone();
        // SAFETY: `raw` is a valid file_handle obtained from name_to_handle_at.
        let r = unsafe {
            libc::open_by_handle_at(
                mount_fd.as_raw_fd(),
                (&mut raw as *mut RawHandle).cast::<libc::file_handle>(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        sys::owned(r as libc::c_long)
    }
}
