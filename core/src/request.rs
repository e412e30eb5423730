//! What a HAL hands to core: one FUSE message in segments, and how to give it back.

use crate::segments::{IoSeg, SegList};
use std::fmt;

/// Identifies one virtio-fs device (a DPU PF/VF, or one vhost-user socket) within a HAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DeviceId(pub u32);

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dev{}", self.0)
    }
}

/// What the HAL does once the reply to a request has been written.
///
/// `complete` is called exactly once per request, from whichever thread produced the reply
/// (a poller, an io_uring completion thread, a network callback). After it returns core no
/// longer touches the request's memory, so the HAL may put the chain on the used ring.
pub trait Completion: Send {
    /// `written` is the number of bytes written to the writable segments: the reply's
    /// length, or 0 for requests that take no reply (FORGET, BATCH_FORGET, INTERRUPT) and
    /// for requests whose writable segments could not even hold an out-header.
    fn complete(self: Box<Self>, written: usize);
}

impl<F: FnOnce(usize) + Send> Completion for F {
    fn complete(self: Box<Self>, written: usize) {
        (*self)(written)
    }
}

/// One request: the device it came from, where it was polled, its segments and its
/// completion. Dropping a `Request` without handing it to core completes it with 0 bytes.
pub struct Request {
    /// Device the request arrived on.
    pub device: DeviceId,
    /// Virtqueue index (0 = hiprio, 1.. = request queues).
    pub queue: u16,
    /// Index of the HAL thread that polled it (for per-thread backend resources).
    pub thread: u16,
    pub(crate) readable: SegList,
    pub(crate) writable: SegList,
    pub(crate) completion: Option<Box<dyn Completion>>,
}

impl Request {
    /// Builds a request from its segments.
    ///
    /// The segments' memory must stay valid until `completion` has been called (see
    /// [`IoSeg::new`]); a HAL keeps its memory mapping alive inside the completion.
    pub fn new(
        device: DeviceId,
        queue: u16,
        thread: u16,
        readable: SegList,
        writable: SegList,
        completion: Box<dyn Completion>,
    ) -> Request {
        Request { device, queue, thread, readable, writable, completion: Some(completion) }
    }

    /// The device-readable segments.
    pub fn readable(&self) -> &[IoSeg] {
        &self.readable
    }

    /// The device-writable segments.
    pub fn writable(&self) -> &[IoSeg] {
        &self.writable
    }

    /// Completes the request now with `written` bytes.
    pub fn complete(mut self, written: usize) {
        if let Some(c) = self.completion.take() {
            c.complete(written);
        }
    }

    pub(crate) fn into_parts(mut self) -> (SegList, SegList, Box<dyn Completion>) {
        let c = self.completion.take().unwrap_or_else(|| Box::new(|_: usize| {}));
        (std::mem::take(&mut self.readable), std::mem::take(&mut self.writable), c)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if let Some(c) = self.completion.take() {
            c.complete(0);
        }
    }
}

/// A finished request built by [`owned_request`]: the reply buffers and the bytes written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedReply {
    /// The writable buffers, in order, after the reply was written.
    pub writable: Vec<Vec<u8>>,
    /// Bytes written, as reported to the completion.
    pub written: usize,
}

impl OwnedReply {
    /// The first `written` bytes of the reply, concatenated.
    pub fn bytes(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self.writable.concat();
        v.truncate(self.written);
        v
    }
}

/// Builds a request over heap buffers that the request owns (tests, fuzzing, benches, the
/// software device model). `readable` is the message cut into segments; `writable` gives the
/// sizes of the reply segments. `done` receives the reply once the request completes.
pub fn owned_request(
    device: DeviceId,
    readable: Vec<Vec<u8>>,
    writable: &[usize],
    done: impl FnOnce(OwnedReply) + Send + 'static,
) -> Request {
    let mut readable: Vec<Box<[u8]>> = readable.into_iter().map(Vec::into_boxed_slice).collect();
    let mut writable: Vec<Box<[u8]>> = writable.iter().map(|&n| vec![0u8; n].into_boxed_slice()).collect();
    // SAFETY: the boxes are moved into the completion below, which keeps their heap memory
    // (whose address does not change when a Box moves) alive until the request completes.
    let rsegs: SegList = readable.iter_mut().map(|b| unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) }).collect();
    // SAFETY: as above.
    let wsegs: SegList = writable.iter_mut().map(|b| unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) }).collect();
    let completion = move |written: usize| {
        drop(readable);
        done(OwnedReply { writable: writable.into_iter().map(Vec::from).collect(), written });
    };
    Request::new(device, 1, 0, rsegs, wsegs, Box::new(completion))
}
