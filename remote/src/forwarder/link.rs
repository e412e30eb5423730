//! One forwarded device's requests in flight: sequence numbers, the requests kept for
//! resending, replies written straight into the guest's writable segments, deadlines.
//!
//! A request and its frame are inserted and queued for the writer under one lock, so the
//! writer's queue is in sequence order and a resend after a reconnect knows exactly which
//! queued entries it already covered.

use super::direct::{Direct, Sent};
use bytes::Bytes;
use dpfs_core::abi::{Opcode, OutHeader};
use dpfs_core::parse::read_header;
use dpfs_core::segments::{gather, total_len, SegWriter};
use dpfs_core::Request;
use dpfs_remote_wire::message::request_header;
use dpfs_remote_wire::{MAX_REPLY, MAX_REQUEST, WINDOW};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use zerocopy::IntoBytes;

/// A request (or device reset) queued for the connection's writer.
pub(crate) struct Outgoing {
    /// Sequence number.
    pub seq: u64,
    /// The request bytes; `None` for a device reset.
    pub body: Option<Bytes>,
    /// Writable capacity announced to the gateway.
    pub capacity: u32,
}

struct Pending {
    /// `None` for a device reset (nothing to answer).
    req: Option<Request>,
    body: Option<Bytes>,
    capacity: u32,
    unique: u64,
    noreply: bool,
    due: Instant,
}

struct State {
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
    /// Replies received since the last acknowledgement went out.
    acks: Vec<u64>,
}

/// One device's link state, shared by the poller threads (submit) and the tokio tasks
/// (replies, resends, deadlines).
pub(crate) struct Link {
    /// The device's identity on the gateway.
    pub identity: String,
    deadline: Duration,
    state: Mutex<State>,
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Writing requests straight from the poller threads.
    pub direct: Direct,
}

impl Link {
    pub(crate) fn new(identity: String, deadline: Duration) -> (Link, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Mutex::new(State { next_seq: 1, pending: BTreeMap::new(), acks: Vec::new() });
        (Link { identity, deadline, state, tx, direct: Direct::default() }, rx)
    }

    /// Sends a request to the gateway: written at once if no other request is in flight
    /// and nobody else is writing (one non-blocking `writev`), else queued for the network
    /// thread. Never blocks on the network; oversized requests are answered here.
    ///
    /// With requests in flight the network thread is awake for their replies anyway, and
    /// writes everything queued meanwhile in one system call: at depth a write (and the
    /// gateway's wake-up and read) per request would cost more than the hand-over.
    pub(crate) fn submit(&self, req: Request) {
        // The in-header says how to answer locally (deadline, oversize); a request without
        // one still goes to the gateway, whose core answers it as a local device would.
        let (unique, noreply) =
            read_header(req.readable()).map_or((0, false), |h| (h.unique, Opcode::from_u32(h.opcode).is_noreply()));
        if total_len(req.readable()) > MAX_REQUEST {
            return answer_error(req, unique, noreply, libc::E2BIG);
        }
        let body = Bytes::from(gather(req.readable()));
        let capacity = total_len(req.writable()).min(MAX_REPLY) as u32;
        let mut st = self.state.lock();
        if st.pending.len() as u64 >= WINDOW {
            drop(st);
            tracing::warn!(identity = %self.identity, "{WINDOW} requests unanswered: failing new ones with EIO");
            return answer_error(req, unique, noreply, libc::EIO);
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        let due = Instant::now() + self.deadline;
        let in_flight = !st.pending.is_empty();
        let p = Pending { req: Some(req), body: Some(body.clone()), capacity, unique, noreply, due };
        st.pending.insert(seq, p);
        let ack = st.pending.first_key_value().map_or(seq, |(&s, _)| s);
        drop(st);
        let sent = if in_flight {
            self.direct.count_queued();
            Sent::Queue
        } else {
            self.direct.try_send(&request_header(seq, ack, capacity, body.len()), &body)
        };
        tracing::trace!(seq, ack, queued = matches!(sent, Sent::Queue), len = body.len(), "request");
        if let Sent::Queue = sent {
            // The receiver lives as long as the link's task; if it is gone the deadline
            // answers.
            let _ = self.tx.send(Outgoing { seq, body: Some(body), capacity });
        }
    }

    /// Queues a device reset (the gateway ends the device's FUSE session).
    pub(crate) fn reset(&self) {
        let mut st = self.state.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let p = Pending {
            req: None,
            body: None,
            capacity: 0,
            unique: 0,
            noreply: true,
            due: Instant::now() + self.deadline,
        };
        st.pending.insert(seq, p);
        self.direct.count_queued();
        let _ = self.tx.send(Outgoing { seq, body: None, capacity: 0 });
    }

    /// The gateway's reply to `seq`: written into the request's writable segments, then
    /// the request completes. Replies to requests no longer pending (answered at their
    /// deadline, or a replay) are dropped.
    pub(crate) fn on_reply(&self, seq: u64, body: &[u8]) {
        let p = {
            let mut st = self.state.lock();
            st.acks.push(seq);
            st.pending.remove(&seq)
        };
        let Some(p) = p else {
            tracing::debug!(seq, "reply for a request no longer pending; dropped");
            return;
        };
        let Some(req) = p.req else { return };
        tracing::trace!(seq, len = body.len(), capacity = p.capacity, "reply");
        if body.len() > p.capacity as usize {
            tracing::warn!(seq, len = body.len(), capacity = p.capacity, "reply larger than the guest's buffers");
            return answer_error(req, p.unique, p.noreply, libc::EIO);
        }
        if SegWriter::new(req.writable()).write_at(0, body).is_err() {
            return answer_error(req, p.unique, p.noreply, libc::EIO);
        }
        req.complete(body.len());
    }

    /// Keeps the entries of `batch` that still wait for their reply (one lock for the
    /// batch).
    pub(crate) fn retain_pending(&self, batch: &mut Vec<Outgoing>) {
        let st = self.state.lock();
        batch.retain(|o| st.pending.contains_key(&o.seq));
    }

    /// Lowest sequence number still waiting (or the next one): everything below it is
    /// done with, so the gateway may drop those replies.
    pub(crate) fn ack_below(&self) -> u64 {
        let st = self.state.lock();
        st.pending.first_key_value().map_or(st.next_seq, |(&s, _)| s)
    }

    /// Replies received and not yet acknowledged (taken: the caller sends them), with the
    /// low-water mark; `None` if there is nothing new to say since `sent_below`.
    pub(crate) fn take_acks(&self, sent_below: u64) -> Option<(u64, Vec<u64>)> {
        let mut st = self.state.lock();
        let below = st.pending.first_key_value().map_or(st.next_seq, |(&s, _)| s);
        if below <= sent_below && st.acks.is_empty() {
            return None;
        }
        let mut acks = std::mem::take(&mut st.acks);
        // Those under the low-water mark are covered by it.
        acks.retain(|&s| s >= below);
        Some((below, acks))
    }

    /// Replies received since the last acknowledgement.
    pub(crate) fn unacked(&self) -> usize {
        self.state.lock().acks.len()
    }

    /// Everything pending, in order, for a resend; and the first sequence number not
    /// covered (queued entries below it were included).
    pub(crate) fn resend_list(&self) -> (Vec<Outgoing>, u64) {
        let st = self.state.lock();
        let list =
            st.pending.iter().map(|(&seq, p)| Outgoing { seq, body: p.body.clone(), capacity: p.capacity }).collect();
        (list, st.next_seq)
    }

    /// Answers every request past its deadline with EIO; returns how many.
    pub(crate) fn expire(&self, now: Instant) -> usize {
        let mut expired = Vec::new();
        {
            let mut st = self.state.lock();
            // Deadlines grow with sequence numbers (both are taken under the lock).
            while let Some(entry) = st.pending.first_entry() {
                if entry.get().due > now {
                    break;
                }
                expired.push(entry.remove());
            }
        }
        let n = expired.len();
        for p in expired {
            fail(p, libc::EIO);
        }
        n
    }

    /// Answers every pending request with `errno`; returns how many.
    pub(crate) fn fail_all(&self, errno: i32) -> usize {
        let all = std::mem::take(&mut self.state.lock().pending);
        let n = all.len();
        for p in all.into_values() {
            fail(p, errno);
        }
        n
    }
}

fn fail(p: Pending, errno: i32) {
    if let Some(req) = p.req {
        answer_error(req, p.unique, p.noreply, errno);
    }
}

/// Completes `req` with a FUSE error (or nothing, for requests that take no reply).
pub(crate) fn answer_error(req: Request, unique: u64, noreply: bool, errno: i32) {
    if noreply {
        return req.complete(0);
    }
    let h = OutHeader { len: 16, error: -errno, unique };
    match SegWriter::new(req.writable()).write_at(0, h.as_bytes()) {
        Ok(()) => req.complete(16),
        Err(_) => req.complete(0),
    }
}
