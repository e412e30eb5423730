//! Requests prepared once and fired many times, so a bench measures decode → dispatch →
//! backend → encode → completion and nothing else.

use dpfs_core::local::LocalClient;
use dpfs_core::operation::{encode_message, Layout, MessageHeader, Operation};
use dpfs_core::segments::{IoSeg, SegList};
use dpfs_core::{Completion, Device, DeviceId, FileSystem, Request, SessionConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes completed by all bench requests (keeps the completion from being optimised out).
pub static COMPLETED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// A completion shaped like a HAL's: a descriptor head and a pointer to queue state.
struct HalLikeCompletion {
    head: u16,
    sink: &'static AtomicUsize,
}

impl Completion for HalLikeCompletion {
    fn complete(self: Box<Self>, written: usize) {
        self.sink.fetch_add(written + (self.head as usize & 1), Ordering::Relaxed);
    }
}

/// A request whose message and reply buffers are allocated once.
pub struct Prepared {
    header: Vec<u8>,
    args: Vec<u8>,
    payload: Vec<u8>,
    out_header: Vec<u8>,
    out_body: Vec<u8>,
}

impl Prepared {
    /// Encodes `op` laid out as Linux does: header | args | payload, and a reply buffer of
    /// `reply_size` bytes after the out-header.
    pub fn new(nodeid: u64, op: &Operation<'_>, payload: &[u8], reply_size: usize) -> Prepared {
        let h = MessageHeader { unique: 1, nodeid, uid: 0, gid: 0, pid: 1 };
        let msg = encode_message(h, op, payload, None, Layout::default());
        let args_end = msg.len() - payload.len();
        Prepared {
            header: msg[..40].to_vec(),
            args: msg[40..args_end].to_vec(),
            payload: payload.to_vec(),
            out_header: vec![0; 16],
            out_body: vec![0; reply_size],
        }
    }

    /// Hands the request to `dev` (which replies inline for the null backend).
    pub fn fire(&mut self, dev: &Device) {
        let mut readable = SegList::new();
        let mut writable = SegList::new();
        for b in [&mut self.header, &mut self.args, &mut self.payload] {
            if !b.is_empty() {
                // SAFETY: the buffers live in `self`, which outlives the request: the null
                // backend completes inline, before `fire` returns.
                readable.push(unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) });
            }
        }
        for b in [&mut self.out_header, &mut self.out_body] {
            // SAFETY: as above.
            writable.push(unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) });
        }
        let done = Box::new(HalLikeCompletion { head: 3, sink: &COMPLETED_BYTES });
        dev.handle(Request::new(DeviceId(0), 1, 0, readable, writable, done));
    }

    /// The out-header's error field after the last `fire`.
    pub fn last_error(&self) -> i32 {
        i32::from_le_bytes([self.out_header[4], self.out_header[5], self.out_header[6], self.out_header[7]])
    }
}

/// An initialised device over `fs`.
pub fn device(fs: Arc<dyn FileSystem>) -> Device {
    let dev = Device::new(DeviceId(0), fs, SessionConfig::default());
    assert!(LocalClient::new(&dev).init().is_some(), "INIT failed");
    dev
}

/// A prepared request and the device it goes to, warmed up by one run so that one-time
/// work (lazy tables, first allocations) is not counted: what an instruction-count case
/// measures.
pub struct Case {
    /// The device.
    pub dev: Device,
    /// The request.
    pub req: Prepared,
}

impl Case {
    /// Fires `req` at `dev` once and checks that it succeeded.
    pub fn warmed(dev: Device, mut req: Prepared) -> Case {
        req.fire(&dev);
        assert_eq!(req.last_error(), 0, "warm-up request failed");
        Case { dev, req }
    }

    /// Fires the request once; returns its error (0 on success).
    pub fn run(&mut self) -> i32 {
        self.req.fire(&self.dev);
        self.req.last_error()
    }
}
