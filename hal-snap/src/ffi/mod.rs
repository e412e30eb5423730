//! Bindings to the vendor device-emulation APIs, behind cargo features, and their adapters
//! onto [`Controller`](crate::Controller).
//!
//! Declarations are written by hand from the names and signatures restated in the project's
//! research note (no vendor header or library is part of this repository). `build.rs` links
//! the libraries only when `SNAP_LIB_DIR` / `DOCA_LIB_DIR` point at an SDK; without one the
//! adapters compile (CI type-checks them) and their constructors report that the SDK is
//! missing instead of calling into it.
//!
//! Before linking against a real SDK, check the `#[repr(C)]` layouts here against its
//! headers: the note records the fields DPFS sets, not their order.

#[cfg(feature = "ffi-doca")]
pub mod doca;
#[cfg(feature = "ffi-snap")]
pub mod snap;

use dpfs_core::segments::{IoSeg, SegList};

/// Most iovecs one request may carry (a 1 MiB request in pages plus headers).
pub const MAX_IOVS: usize = 512;

/// Turns a C iovec array into segments, refusing negative or oversized counts.
///
/// # Safety
/// `iov` must point to `cnt` valid iovecs whose buffers stay valid until the request built
/// from the segments completes.
pub unsafe fn segs_from_iovecs(iov: *const libc::iovec, cnt: libc::c_int) -> Option<SegList> {
    let n = usize::try_from(cnt).ok().filter(|n| *n <= MAX_IOVS)?;
    if n == 0 {
        return Some(SegList::new());
    }
    if iov.is_null() {
        return None;
    }
    // SAFETY: the caller promises `cnt` valid iovecs at `iov`; `n == cnt` and is bounded.
    let v = unsafe { std::slice::from_raw_parts(iov, n) };
    // SAFETY: each buffer stays valid until completion (the caller's promise).
    Some(v.iter().map(|i| unsafe { IoSeg::new(i.iov_base.cast(), i.iov_len) }).collect())
}
