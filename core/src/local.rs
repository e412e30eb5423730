//! An in-process guest for tests, benches and fuzzing: encodes requests, cuts them into
//! segments as asked, hands them to a [`Device`] and waits for the reply.

use crate::abi::{self, OutHeader};
use crate::device::Device;
use crate::operation::{encode_message, Layout, MessageHeader, Operation};
use crate::request::{owned_request, OwnedReply};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use zerocopy::{FromBytes, IntoBytes};

/// A decoded reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The out-header, `None` if nothing was written (no-reply requests).
    pub header: Option<OutHeader>,
    /// The bytes after the out-header.
    pub body: Vec<u8>,
    /// Bytes the device reported written.
    pub written: usize,
}

impl Reply {
    /// The error in the header (0 = success, negative errno otherwise; 0 if no header).
    pub fn error(&self) -> i32 {
        self.header.map(|h| h.error).unwrap_or(0)
    }

    /// Reads a reply struct from the start of the body.
    pub fn parse<T: FromBytes>(&self) -> Option<T> {
        T::read_from_prefix(&self.body).ok().map(|(v, _)| v)
    }

    fn from_owned(r: OwnedReply) -> Reply {
        let bytes = r.bytes();
        let header = OutHeader::read_from_prefix(&bytes).ok().map(|(h, _)| h);
        let body = bytes.get(std::mem::size_of::<OutHeader>()..).unwrap_or_default().to_vec();
        Reply { header, body, written: r.written }
    }
}

/// How to lay out requests and reply buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Split {
    /// As Linux's virtio-fs driver does: header, args, payload; out-header, reply body.
    Linux,
    /// Cut the message at these byte offsets (out of range cuts are ignored).
    At(Vec<usize>),
}

/// Cuts `msg` into segments according to `split` (`args_end` = where a payload starts).
pub fn cut(msg: &[u8], split: &Split, args_end: usize) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = match split {
        Split::Linux => vec![std::mem::size_of::<abi::InHeader>(), args_end],
        Split::At(v) => v.clone(),
    };
    cuts.retain(|&c| c > 0 && c < msg.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for c in cuts.into_iter().chain(std::iter::once(msg.len())) {
        out.push(msg[prev..c].to_vec());
        prev = c;
    }
    out
}

/// An in-process guest talking to one device.
pub struct LocalClient<'d> {
    device: &'d Device,
    unique: AtomicU64,
    /// Caller uid for requests.
    pub uid: u32,
    /// Caller gid for requests.
    pub gid: u32,
    /// Layout of requests.
    pub layout: Layout,
    /// How long to wait for a reply before calling the request lost.
    pub timeout: Duration,
}

impl<'d> LocalClient<'d> {
    /// A client for `device`, calling as root.
    pub fn new(device: &'d Device) -> Self {
        LocalClient {
            device,
            unique: AtomicU64::new(1),
            uid: 0,
            gid: 0,
            layout: Layout::default(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Sends INIT as a 7.45 guest offering every capability; returns the reply.
    pub fn init(&self) -> Option<abi::InitOut> {
        let arg = abi::InitIn {
            major: 7,
            minor: abi::KERNEL_MINOR_VERSION,
            max_readahead: 128 << 10,
            flags: u32::MAX,
            flags2: u32::MAX,
            unused: [0; 11],
        };
        let r = self.call(1, &Operation::Init(arg), &[], 1 << 12)?;
        if r.error() != 0 {
            return None;
        }
        r.parse()
    }

    /// Sends one request laid out as Linux does, with `reply_size` bytes of reply buffer
    /// (plus the out-header); `None` if it was never completed.
    pub fn call(&self, nodeid: u64, op: &Operation<'_>, payload: &[u8], reply_size: usize) -> Option<Reply> {
        self.call_split(nodeid, op, payload, &Split::Linux, &[16, reply_size])
    }

    /// Sends one request cut as `split`, with reply segments of the given sizes.
    pub fn call_split(
        &self,
        nodeid: u64,
        op: &Operation<'_>,
        payload: &[u8],
        split: &Split,
        reply_segs: &[usize],
    ) -> Option<Reply> {
        let h = MessageHeader {
            unique: self.unique.fetch_add(1, Ordering::Relaxed),
            nodeid,
            uid: self.uid,
            gid: self.gid,
            pid: 1,
        };
        let msg = encode_message(h, op, payload, None, self.layout);
        let args_end = msg.len() - payload.len();
        self.send_raw(cut(&msg, split, args_end), reply_segs)
    }

    /// Sends raw readable segments; returns the reply once completed.
    pub fn send_raw(&self, readable: Vec<Vec<u8>>, reply_segs: &[usize]) -> Option<Reply> {
        let (tx, rx) = mpsc::channel();
        let req = owned_request(self.device.id(), readable, reply_segs, move |r| {
            let _ = tx.send(r);
        });
        self.device.handle(req);
        rx.recv_timeout(self.timeout).ok().map(Reply::from_owned)
    }

    /// Convenience: the body of a successful reply as `T`, or the errno.
    pub fn expect_ok<T: FromBytes + IntoBytes>(&self, r: Option<Reply>) -> Result<T, i32> {
        let r = r.ok_or(-libc::ETIMEDOUT)?;
        if r.error() != 0 {
            return Err(r.error());
        }
        r.parse().ok_or(-libc::EPROTO)
    }
}
