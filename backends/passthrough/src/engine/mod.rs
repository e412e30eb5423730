//! I/O engines: how READ and WRITE payloads move between host files and request memory.
//!
//! An engine takes the reply token and answers it now (sync) or when the I/O completes
//! (io_uring, Linux AIO): on the submitting thread if it completed during submission,
//! otherwise on the engine's completion thread. The descriptor is shared (`Arc`) so it
//! stays open until the I/O completes even if the guest releases the handle meanwhile.

mod aio;
mod pending;
mod per_thread;
mod sync;
mod uring;

pub use aio::AioEngine;
pub use sync::SyncEngine;
pub use uring::UringEngine;

use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// A data-path engine.
pub trait Engine: Send + Sync + 'static {
    /// Reads up to `reply.capacity()` bytes at `offset` straight into the reply's
    /// segments, then commits the count (or answers the error). `buffered`: `fd` goes
    /// through the page cache (no `O_DIRECT`), so a cache hit may be served at once.
    fn read_into(&self, fd: Arc<OwnedFd>, buffered: bool, offset: u64, reply: ReplyData);
    /// Writes `data` at `offset` straight from the request's segments, then answers
    /// with the count (or the error). `buffered` as for `read_into`.
    fn write_from(&self, fd: Arc<OwnedFd>, buffered: bool, offset: u64, data: WriteData, reply: ReplyWrite);
    /// A short name for logs.
    fn name(&self) -> &'static str;
}
