//! The registers of the emulated PCI function that host and DPU share: device status,
//! per-queue ring addresses and the interrupt (the call eventfd of the host's queue).

use dpfs_sim::memory::GuestMemory;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use vmm_sys_util::eventfd::EventFd;

/// `VIRTIO_CONFIG_S_DRIVER_OK`.
pub const DRIVER_OK: u8 = 4;

/// One queue as the driver programmed it.
pub struct QueueRegs {
    /// Entries.
    pub size: u16,
    /// Descriptor table, available ring, used ring (host addresses).
    pub rings: [u64; 3],
    /// Raised after the device puts chains on the used ring (MSI-X in hardware).
    pub interrupt: EventFd,
}

/// The shared registers.
#[derive(Default)]
pub struct Bar {
    status: AtomicU8,
    reset_requested: AtomicBool,
    reset_done: AtomicBool,
    setup: Mutex<Option<(Arc<GuestMemory>, Vec<QueueRegs>)>>,
}

impl Bar {
    /// A function with no driver bound.
    pub fn new() -> Arc<Bar> {
        Arc::new(Bar::default())
    }

    /// Device status as the driver last wrote it.
    pub fn status(&self) -> u8 {
        self.status.load(Ordering::Acquire)
    }

    /// Driver: program memory and queues, then set DRIVER_OK.
    pub fn driver_ok(&self, mem: Arc<GuestMemory>, queues: Vec<QueueRegs>) {
        *self.setup.lock() = Some((mem, queues));
        self.reset_done.store(false, Ordering::Release);
        self.status.store(DRIVER_OK, Ordering::Release);
    }

    /// Driver: write 0 to the status register (reset). The device acknowledges through
    /// [`reset_done`](Self::reset_done).
    pub fn write_reset(&self) {
        self.reset_done.store(false, Ordering::Release);
        self.status.store(0, Ordering::Release);
        self.reset_requested.store(true, Ordering::Release);
    }

    /// True once the device finished the reset the driver asked for.
    pub fn reset_done(&self) -> bool {
        self.reset_done.load(Ordering::Acquire)
    }

    /// Device: the programmed memory and queues, taken when the device goes live.
    pub(crate) fn take_setup(&self) -> Option<(Arc<GuestMemory>, Vec<QueueRegs>)> {
        self.setup.lock().take()
    }

    /// Device: takes a pending reset request.
    pub(crate) fn take_reset_request(&self) -> bool {
        self.reset_requested.swap(false, Ordering::AcqRel)
    }

    /// Device: the reset is complete.
    pub(crate) fn ack_reset(&self) {
        self.reset_done.store(true, Ordering::Release);
    }
}
