//! A virtio-fs queue: FUSE requests in request slots over a [`SplitQueue`], pipelined —
//! [`FsQueue::submit`] returns a [`Token`], [`FsQueue::poll`]/[`FsQueue::wait`] report the
//! tokens the device completed, [`FsQueue::status`]/[`FsQueue::take`] read the reply.
//!
//! Each slot owns fixed guest buffers: the message (in-header and arguments end on a page
//! boundary, so the WRITE payload that follows is page-aligned) and the reply (out-header just
//! before a page boundary, reply body page-aligned), as Linux's page-backed requests are.

use crate::error::{Error, Result};
use crate::layout::{readable_cuts, writable_cuts, Segmentation, IN_HEADER, OUT_HEADER};
use crate::memory::{GuestMemory, PAGE_SIZE};
use crate::reply::Reply;
use crate::request::Request;
use crate::virtq::{wait_fds, Buffer, QueueCounters, RawDesc, SplitQueue};
use dpfs_core::abi::{InHeader, OutHeader};
use dpfs_core::operation::Layout;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vm_memory::{Address, GuestAddress};
use zerocopy::{FromBytes, IntoBytes};

/// Room for the in-header and arguments of one request (two names of PATH_MAX fit).
pub const MSG_ROOM: usize = 3 * PAGE_SIZE;
/// Room for the out-header (and nothing else) before the page-aligned reply body.
const REPLY_HEAD_ROOM: usize = PAGE_SIZE;

/// Identifies a request in flight on one [`FsQueue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token(u16);

impl Token {
    /// The slot number (0..depth).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Sizes of a queue's request slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotConfig {
    /// Requests that can be in flight at once.
    pub depth: usize,
    /// Largest WRITE payload.
    pub max_payload: usize,
    /// Largest reply body (READ data, READDIR buffer, xattr value).
    pub max_reply: usize,
}

impl SlotConfig {
    /// Guest memory one slot takes.
    pub fn slot_bytes(&self) -> usize {
        MSG_ROOM + round_page(self.max_payload) + REPLY_HEAD_ROOM + round_page(self.max_reply)
    }
}

/// Who is calling: copied into each in-header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// pid.
    pub pid: u32,
}

/// A completed request's status: what the out-header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// 0 or a negative errno.
    pub error: i32,
    /// Reply body bytes after the out-header.
    pub body_len: usize,
}

/// The guest buffers of a request slot, for building raw chains (fault injection only, see
/// [`FsQueue::submit_raw`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawArea {
    /// Start of the message area (room for header, arguments and payload).
    pub msg: GuestAddress,
    /// Bytes of message area.
    pub msg_len: usize,
    /// Start of the reply area: the out-header goes here, the body right after it.
    pub reply: GuestAddress,
    /// Bytes of reply area (out-header included).
    pub reply_len: usize,
}

/// How the device returned a raw chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawCompletion {
    /// The length the device put on the used ring.
    pub used_len: u32,
    /// The out-header at the start of the reply area, if the device reported at least its
    /// size (not checked against the request).
    pub header: Option<OutHeader>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    InFlight { unique: u64, noreply: bool, reply_len: usize },
    Done { unique: u64, noreply: bool, reply_len: usize, used: u32 },
}

struct Slot {
    /// Start of the payload area; the message ends here.
    payload: GuestAddress,
    /// Start of the reply body; the out-header sits just before it.
    reply: GuestAddress,
    state: SlotState,
}

/// One virtio-fs queue (hiprio or a request queue) and its request slots.
pub struct FsQueue {
    index: usize,
    vq: SplitQueue,
    mem: Arc<GuestMemory>,
    cfg: SlotConfig,
    slots: Vec<Slot>,
    free: Vec<u16>,
    slot_of_head: Vec<u16>,
    segmentation: Segmentation,
    layout: Layout,
    caller: Caller,
    unique: Arc<AtomicU64>,
    busy_poll: bool,
    completed: u64,
    msg: Vec<u8>,
    cuts: Vec<(usize, usize)>,
    readable: Vec<Buffer>,
    writable: Vec<Buffer>,
}

impl FsQueue {
    /// Wraps virtqueue `index` and allocates its slots in `mem`; `unique` is shared by all
    /// queues of a device so request ids never repeat.
    pub fn new(
        index: usize,
        vq: SplitQueue,
        mem: Arc<GuestMemory>,
        cfg: SlotConfig,
        unique: Arc<AtomicU64>,
    ) -> Result<FsQueue> {
        let depth = cfg.depth.clamp(1, vq.size() as usize);
        // Every reply struct must fit, even on queues that move no data.
        let cfg = SlotConfig { depth, max_reply: cfg.max_reply.max(PAGE_SIZE), ..cfg };
        let mut slots = Vec::with_capacity(depth);
        for _ in 0..depth {
            let base = mem.alloc(cfg.slot_bytes(), PAGE_SIZE)?;
            let payload = base.unchecked_add(MSG_ROOM as u64);
            let reply = payload.unchecked_add((round_page(cfg.max_payload) + REPLY_HEAD_ROOM) as u64);
            slots.push(Slot { payload, reply, state: SlotState::Free });
        }
        let size = vq.size() as usize;
        Ok(FsQueue {
            index,
            vq,
            mem,
            cfg,
            slots,
            free: (0..depth as u16).rev().collect(),
            slot_of_head: vec![u16::MAX; size],
            segmentation: Segmentation::Linux,
            layout: Layout::default(),
            caller: Caller::default(),
            unique,
            busy_poll: false,
            completed: 0,
            msg: Vec::with_capacity(MSG_ROOM),
            cuts: Vec::new(),
            readable: Vec::new(),
            writable: Vec::new(),
        })
    }

    /// The virtqueue index (0 = hiprio).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Slot sizes.
    pub fn slot_config(&self) -> SlotConfig {
        self.cfg
    }

    /// Requests in flight or completed but not yet taken.
    pub fn outstanding(&self) -> usize {
        self.cfg.depth - self.free.len()
    }

    /// Requests completed since creation.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// The virtqueue under this queue (ring addresses for an in-process device model).
    pub fn virtqueue(&self) -> &SplitQueue {
        &self.vq
    }

    /// Virtqueue counters (kicks, sleeps…).
    pub fn counters(&self) -> QueueCounters {
        self.vq.counters()
    }

    /// Sets how later requests are cut into descriptors.
    pub fn set_segmentation(&mut self, s: Segmentation) {
        self.segmentation = s;
    }

    /// Sets the FUSE wire layout (after INIT).
    pub fn set_layout(&mut self, l: Layout) {
        self.layout = l;
    }

    /// Sets the caller identity of later requests.
    pub fn set_caller(&mut self, c: Caller) {
        self.caller = c;
    }

    /// Busy-polls the used ring instead of sleeping on the call eventfd (the device is asked
    /// not to signal).
    pub fn set_busy_poll(&mut self, on: bool) -> Result<()> {
        self.busy_poll = on;
        if on {
            self.vq.disable_call()
        } else {
            self.vq.enable_call().map(|_| ())
        }
    }

    /// The call eventfd, for callers waiting on several queues at once.
    pub fn call_fd(&self) -> i32 {
        self.vq.call_fd().as_raw_fd()
    }

    /// Places `req` in a free slot and makes it available to the device. The device is
    /// notified at the next [`kick`](Self::kick), [`poll`](Self::poll) or [`wait`](Self::wait),
    /// so several submissions share one notification.
    pub fn submit(&mut self, req: &Request<'_>) -> Result<Token> {
        let noreply = req.is_noreply();
        let reply_len = if noreply { 0 } else { req.reply_len };
        if req.payload.len() > self.cfg.max_payload {
            return Err(Error::TooLarge { what: "payload", need: req.payload.len(), room: self.cfg.max_payload });
        }
        if reply_len > self.cfg.max_reply {
            return Err(Error::TooLarge { what: "reply", need: reply_len, room: self.cfg.max_reply });
        }
        self.msg.clear();
        self.msg.resize(IN_HEADER, 0);
        req.op.encode_args(self.layout, &mut self.msg);
        let args_len = self.msg.len() - IN_HEADER;
        if self.msg.len() > MSG_ROOM {
            return Err(Error::TooLarge { what: "arguments", need: self.msg.len(), room: MSG_ROOM });
        }
        let slot_no = self.free.pop().ok_or(Error::QueueFull)?;
        let unique = self.unique.fetch_add(2, Ordering::Relaxed);
        let hdr = InHeader {
            len: (self.msg.len() + req.payload.len()) as u32,
            opcode: req.op.opcode().as_u32(),
            unique,
            nodeid: req.nodeid,
            uid: self.caller.uid,
            gid: self.caller.gid,
            pid: self.caller.pid,
            total_extlen: 0,
            padding: 0,
        };
        self.msg[..IN_HEADER].copy_from_slice(hdr.as_bytes());
        let slot = &self.slots[slot_no as usize];
        let msg_start = slot.payload.unchecked_sub(self.msg.len() as u64);
        let out_header = slot.reply.unchecked_sub(OUT_HEADER as u64);
        let written = self.mem.write(msg_start, &self.msg).and_then(|()| self.mem.write(slot.payload, req.payload));
        if let Err(e) = written {
            self.free.push(slot_no);
            return Err(e);
        }
        self.cuts.clear();
        readable_cuts(&self.segmentation, args_len, req.payload.len(), &mut self.cuts);
        self.readable.clear();
        self.readable.extend(
            self.cuts.iter().map(|&(off, len)| Buffer { addr: msg_start.unchecked_add(off as u64), len: len as u32 }),
        );
        self.cuts.clear();
        self.writable.clear();
        if !noreply {
            writable_cuts(&self.segmentation, reply_len, req.paged_reply(), &mut self.cuts);
            self.writable.extend(
                self.cuts
                    .iter()
                    .map(|&(off, len)| Buffer { addr: out_header.unchecked_add(off as u64), len: len as u32 }),
            );
        }
        let head = match self.vq.add(&self.readable, &self.writable) {
            Ok(h) => h,
            Err(e) => {
                self.free.push(slot_no);
                return Err(e);
            }
        };
        self.slot_of_head[head as usize] = slot_no;
        self.slots[slot_no as usize].state = SlotState::InFlight { unique, noreply, reply_len };
        Ok(Token(slot_no))
    }

    /// **For fault injection only**: claims a request slot, zeroes its reply area's
    /// out-header, lets `build` write whatever bytes it wants into guest memory and return
    /// arbitrary descriptors (usually pointing into the slot's [`RawArea`]), and makes them
    /// available as one chain with [`SplitQueue::add_raw_chain`]. Complete it with
    /// [`poll`](Self::poll)/[`wait`](Self::wait) and read it with
    /// [`take_raw`](Self::take_raw). The normal path is [`submit`](Self::submit).
    pub fn submit_raw(&mut self, build: impl FnOnce(&GuestMemory, &RawArea) -> Result<Vec<RawDesc>>) -> Result<Token> {
        let slot_no = self.free.pop().ok_or(Error::QueueFull)?;
        let slot = &self.slots[slot_no as usize];
        let area = RawArea {
            msg: slot.payload.unchecked_sub(MSG_ROOM as u64),
            msg_len: MSG_ROOM + round_page(self.cfg.max_payload),
            reply: slot.reply.unchecked_sub(OUT_HEADER as u64),
            reply_len: OUT_HEADER + self.cfg.max_reply,
        };
        let head = self
            .mem
            .write(area.reply, &[0u8; OUT_HEADER])
            .and_then(|()| build(&self.mem, &area))
            .and_then(|descs| self.vq.add_raw_chain(&descs));
        let head = match head {
            Ok(h) => h,
            Err(e) => {
                self.free.push(slot_no);
                return Err(e);
            }
        };
        self.slot_of_head[head as usize] = slot_no;
        self.slots[slot_no as usize].state =
            SlotState::InFlight { unique: 0, noreply: false, reply_len: self.cfg.max_reply };
        Ok(Token(slot_no))
    }

    /// **For fault injection only**: see [`SplitQueue::publish_raw_head`].
    pub fn publish_raw_head(&mut self, head: u16) -> Result<()> {
        self.vq.publish_raw_head(head)
    }

    /// **For fault injection only**: see [`SplitQueue::advance_avail_idx_raw`].
    pub fn advance_avail_idx_raw(&mut self, by: u16) -> Result<()> {
        self.vq.advance_avail_idx_raw(by)
    }

    /// The used length and out-header of completed raw request `t`; frees its slot.
    pub fn take_raw(&mut self, t: Token) -> Result<RawCompletion> {
        let (_, _, _, used) = self.done_slot(t)?;
        let header = if used as usize >= OUT_HEADER {
            let mut raw = [0u8; OUT_HEADER];
            let at = self.slots[t.index()].reply.unchecked_sub(OUT_HEADER as u64);
            self.mem.read(at, &mut raw).ok().and_then(|()| OutHeader::read_from_bytes(&raw).ok())
        } else {
            None
        };
        self.release(t);
        Ok(RawCompletion { used_len: used, header })
    }

    /// Notifies the device of submitted requests (if it wants to be notified).
    pub fn kick(&mut self) -> Result<()> {
        self.vq.kick().map(|_| ())
    }

    /// Kicks, then collects every completion the device has posted into `done`, without
    /// blocking. Returns how many were added.
    pub fn poll(&mut self, done: &mut Vec<Token>) -> Result<usize> {
        self.vq.kick()?;
        let mut n = 0;
        while let Some(u) = self.vq.pop_used()? {
            let slot_no = std::mem::replace(&mut self.slot_of_head[u.head as usize], u16::MAX);
            let slot = self
                .slots
                .get_mut(slot_no as usize)
                .ok_or_else(|| Error::Protocol(format!("used head {} has no request", u.head)))?;
            let SlotState::InFlight { unique, noreply, reply_len } = slot.state else {
                return Err(Error::Protocol(format!("slot {slot_no} completed twice")));
            };
            slot.state = SlotState::Done { unique, noreply, reply_len, used: u.len };
            self.completed += 1;
            done.push(Token(slot_no));
            n += 1;
        }
        Ok(n)
    }

    /// Like [`poll`](Self::poll), but blocks until at least one completion arrives or
    /// `timeout` passes ([`Error::Timeout`]).
    pub fn wait(&mut self, done: &mut Vec<Token>, timeout: Option<Duration>) -> Result<usize> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            let n = self.poll(done)?;
            if n > 0 {
                return Ok(n);
            }
            if self.vq.in_flight() == 0 {
                return Err(Error::Protocol("waiting with no request in flight".into()));
            }
            let left = match deadline {
                Some(d) => Some(d.checked_duration_since(std::time::Instant::now()).ok_or(Error::Timeout)?),
                None => None,
            };
            if self.busy_poll {
                std::hint::spin_loop();
                continue;
            }
            if self.vq.enable_call()? {
                continue;
            }
            self.vq.wait_call(left)?;
        }
    }

    /// Prepares to sleep on [`call_fd`](Self::call_fd) (for multi-queue waits): returns true
    /// if completions are already pending.
    pub fn arm(&mut self) -> Result<bool> {
        self.vq.kick()?;
        self.vq.enable_call()
    }

    /// The status of completed request `t`; frees its slot. FORGET-like requests report 0.
    pub fn status(&mut self, t: Token) -> Result<Status> {
        let (unique, noreply, reply_len, used) = self.done_slot(t)?;
        let r = if noreply {
            Ok(Status { error: 0, body_len: 0 })
        } else {
            self.read_out_header(t, unique, reply_len, used)
                .map(|h| Status { error: h.error, body_len: h.len as usize - OUT_HEADER })
        };
        self.release(t);
        r
    }

    /// The full reply of completed request `t` (body copied out); frees its slot.
    pub fn take(&mut self, t: Token) -> Result<Reply> {
        let (unique, noreply, reply_len, used) = self.done_slot(t)?;
        let r = if noreply {
            Ok(Reply { header: OutHeader { len: 0, error: 0, unique }, body: Vec::new() })
        } else {
            self.read_out_header(t, unique, reply_len, used).and_then(|header| {
                let mut body = vec![0u8; header.len as usize - OUT_HEADER];
                self.mem.read(self.slots[t.index()].reply, &mut body).map(|()| Reply { header, body })
            })
        };
        self.release(t);
        r
    }

    /// Copies the reply body of completed request `t` into `buf` (for READ data) without
    /// freeing the slot; returns the bytes copied.
    pub fn read_body(&self, t: Token, buf: &mut [u8]) -> Result<usize> {
        let slot = self.slots.get(t.index()).ok_or(Error::BadToken(t.0 as u32))?;
        let SlotState::Done { used, .. } = slot.state else { return Err(Error::BadToken(t.0 as u32)) };
        let n = (used as usize).saturating_sub(OUT_HEADER).min(buf.len());
        self.mem.read(slot.reply, &mut buf[..n])?;
        Ok(n)
    }

    fn done_slot(&self, t: Token) -> Result<(u64, bool, usize, u32)> {
        match self.slots.get(t.index()).map(|s| s.state) {
            Some(SlotState::Done { unique, noreply, reply_len, used }) => Ok((unique, noreply, reply_len, used)),
            _ => Err(Error::BadToken(t.0 as u32)),
        }
    }

    fn release(&mut self, t: Token) {
        self.slots[t.index()].state = SlotState::Free;
        self.free.push(t.0);
    }

    fn read_out_header(&self, t: Token, unique: u64, reply_len: usize, used: u32) -> Result<OutHeader> {
        let slot = &self.slots[t.index()];
        let mut raw = [0u8; OUT_HEADER];
        self.mem.read(slot.reply.unchecked_sub(OUT_HEADER as u64), &mut raw)?;
        let h = OutHeader::read_from_bytes(&raw).map_err(|_| Error::Protocol("out header".into()))?;
        let bad = |what: String| Err(Error::Protocol(format!("queue {} unique {unique}: {what}", self.index)));
        if h.unique != unique {
            return bad(format!("reply carries unique {}", h.unique));
        }
        if (h.len as usize) < OUT_HEADER || h.len as usize > OUT_HEADER + reply_len {
            return bad(format!("out_header.len {} outside [16, {}]", h.len, OUT_HEADER + reply_len));
        }
        if h.len != used {
            return bad(format!("out_header.len {} but used length {used}", h.len));
        }
        if h.error > 0 || h.error < -4095 || (h.error != 0 && h.len as usize != OUT_HEADER) {
            return bad(format!("error {} with length {}", h.error, h.len));
        }
        Ok(h)
    }
}

/// Blocks until one of `queues` has completions (or `timeout` passes), polling them all into
/// `done` as `(position in queues, token)`. Returns how many were collected.
pub fn wait_any(
    queues: &mut [&mut FsQueue],
    done: &mut Vec<(usize, Token)>,
    timeout: Option<Duration>,
) -> Result<usize> {
    let mut scratch = Vec::new();
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let mut n = 0;
        for (i, q) in queues.iter_mut().enumerate() {
            scratch.clear();
            n += q.poll(&mut scratch)?;
            done.extend(scratch.iter().map(|&t| (i, t)));
        }
        if n > 0 {
            return Ok(n);
        }
        let busy = queues.iter().all(|q| q.busy_poll);
        if busy {
            std::hint::spin_loop();
        } else {
            let mut pending = false;
            for q in queues.iter_mut() {
                pending |= q.arm()?;
            }
            if !pending {
                let left = match deadline {
                    Some(d) => Some(d.checked_duration_since(std::time::Instant::now()).ok_or(Error::Timeout)?),
                    None => None,
                };
                let fds: Vec<i32> = queues.iter().map(|q| q.call_fd()).collect();
                wait_fds(&fds, left)?;
            }
        }
        if deadline.is_some_and(|d| std::time::Instant::now() > d) {
            return Err(Error::Timeout);
        }
    }
}

fn round_page(n: usize) -> usize {
    n.div_ceil(PAGE_SIZE) * PAGE_SIZE
}
