//! Request and reply buffers owned by a request until it completes, and the completion
//! that writes the reply to the descriptor the request was read from.

use crate::dev::FuseDev;
use dpfs_core::Completion;
use parking_lot::Mutex;
use std::sync::Arc;

/// Fixed-size heap buffers, recycled. A buffer is owned by exactly one request (or one
/// reader) at a time; the pool keeps at most `max_free` idle ones.
pub(crate) struct BufPool {
    size: usize,
    max_free: usize,
    free: Mutex<Vec<Box<[u8]>>>,
}

impl BufPool {
    pub(crate) fn new(size: usize, max_free: usize) -> Arc<BufPool> {
        Arc::new(BufPool { size, max_free, free: Mutex::new(Vec::new()) })
    }

    /// A buffer of `size` bytes (contents unspecified).
    pub(crate) fn get(&self) -> Box<[u8]> {
        // The zeroed allocation is lazily backed by the kernel: untouched pages cost nothing.
        self.free.lock().pop().unwrap_or_else(|| vec![0u8; self.size].into_boxed_slice())
    }

    pub(crate) fn put(&self, buf: Box<[u8]>) {
        let mut free = self.free.lock();
        if free.len() < self.max_free && buf.len() == self.size {
            free.push(buf);
        }
    }
}

/// Completion of one request: owns both buffers until the reply has been written.
pub(crate) struct FuseCompletion {
    pub(crate) dev: Arc<FuseDev>,
    pub(crate) pool: Arc<BufPool>,
    pub(crate) request: Box<[u8]>,
    pub(crate) reply: Box<[u8]>,
}

impl Completion for FuseCompletion {
    fn complete(self: Box<Self>, written: usize) {
        let FuseCompletion { dev, pool, request, reply } = *self;
        // 0 bytes: a request that takes no reply (FORGET, BATCH_FORGET, INTERRUPT).
        if let Some(bytes) = reply.get(..written).filter(|b| !b.is_empty()) {
            match dev.write_reply(bytes) {
                Ok(()) => {}
                // The request was interrupted and the kernel no longer waits for it.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    tracing::debug!("reply to an interrupted request dropped")
                }
                // The connection is gone (unmounted or aborted).
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
                Err(e) => tracing::warn!(error = %e, len = bytes.len(), "cannot write a FUSE reply"),
            }
        }
        pool.put(request);
        pool.put(reply);
    }
}
