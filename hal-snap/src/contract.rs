//! DPFS's HAL contract in types: what one DPU virtio-fs device (a SNAP controller, a DOCA
//! DevEmu device, or the software model) offers the poller loops.
//!
//! DPFS's C handler returns 0 (reply done), `EWOULDBLOCK` (completed later through
//! `dpfs_hal_async_complete`) or an error; here core's [`Request`](dpfs_core::Request)
//! carries a boxed completion that is consumed when called, so "exactly once, from any
//! thread" is a property of the type, and a dropped request answers with 0 bytes.

use crate::config::DeviceSpec;

/// One emulated virtio-fs function on the DPU.
///
/// A controller is owned by one poller thread at a time (SNAP's locking makes sharing a
/// controller between threads useless), so its methods take `&mut self`.
pub trait Controller: Send {
    /// The device this controller emulates.
    fn spec(&self) -> &DeviceSpec;

    /// One pass over the data path (`virtio_fs_ctrl_progress_all_io`): new chains are handed
    /// to core tagged with `thread`, finished ones are returned to the host. Returns the
    /// number of chains fetched plus chains returned.
    fn progress_io(&mut self, thread: u16) -> usize;

    /// One pass over the management path (`virtio_fs_ctrl_progress`): driver status,
    /// feature negotiation, resets. Costs a firmware command on real hardware: call it
    /// rarely (a few times a second is enough).
    fn progress_mgmt(&mut self);

    /// Asks the device to stop taking new requests (`virtio_fs_ctrl_suspend`). Requests in
    /// flight still complete; keep polling until [`is_suspended`](Self::is_suspended).
    fn suspend(&mut self);

    /// True once the device is suspended and no request is in flight.
    fn is_suspended(&self) -> bool;
}

/// How the reply of a request reached the host, in DPFS's terms
/// (`DPFS_HAL_COMPLETION_SUCCES` / `_ERROR`, `SNAP_FS_DEV_OP_SUCCESS` / `_IO_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionStatus {
    /// The reply (which may carry a FUSE errno) was delivered.
    Success,
    /// The request was aborted: the chain goes back with no reply.
    IoError,
}
