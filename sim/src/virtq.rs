//! The driver side of a split virtqueue (virtio 1.2 §2.7): descriptor table, available and
//! used rings in guest memory, free-descriptor management, indirect descriptors, EVENT_IDX
//! notification suppression, and the kick/call eventfds.
//!
//! One [`SplitQueue`] is owned by one thread; nothing here locks.

use crate::error::{Error, Result};
use crate::memory::GuestMemory;
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Duration;
use vhost::VringConfigData;
use virtio_bindings::virtio_ring::{
    VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE, VRING_USED_F_NO_NOTIFY,
};
use vm_memory::{Address, GuestAddress};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

const DESC_SIZE: usize = 16;
const USED_ELEM_SIZE: usize = 8;

/// A buffer in guest memory: one descriptor's worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buffer {
    /// Guest address.
    pub addr: GuestAddress,
    /// Length in bytes.
    pub len: u32,
}

/// Ring features the driver and device agreed on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingFeatures {
    /// `VIRTIO_RING_F_EVENT_IDX`: `used_event`/`avail_event` instead of the flags.
    pub event_idx: bool,
    /// `VIRTIO_RING_F_INDIRECT_DESC`: chains of more than one buffer go in an indirect table.
    pub indirect: bool,
}

/// A used-ring entry: the head of a completed chain and the bytes the device wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Used {
    /// Head descriptor index returned by [`SplitQueue::add`].
    pub head: u16,
    /// Bytes written into the chain's device-writable buffers, as reported by the device.
    pub len: u32,
}

/// Counters of one queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Chains made available.
    pub added: u64,
    /// Chains the device returned.
    pub used: u64,
    /// Kick eventfd writes.
    pub kicks: u64,
    /// Publishes that needed no kick (suppressed by the device).
    pub kicks_suppressed: u64,
    /// Times the driver slept on the call eventfd.
    pub sleeps: u64,
}

/// A descriptor exactly as it is written to the descriptor table: **for fault injection
/// only** (see [`SplitQueue::add_raw_chain`]). Nothing about it is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawDesc {
    /// Guest address of the buffer (may lie outside guest memory).
    pub addr: u64,
    /// Length in bytes (may run past the end of guest memory, or be 0).
    pub len: u32,
    /// `VRING_DESC_F_*` flags, written verbatim (the caller sets `NEXT` itself).
    pub flags: u16,
    /// Next descriptor: an index into the slice given to `add_raw_chain` (rewritten to the
    /// table slot that descriptor landed in) when below the slice's length, else written
    /// verbatim (a next index past the table, say).
    pub next: u16,
}

/// Driver state of one split virtqueue.
pub struct SplitQueue {
    mem: Arc<GuestMemory>,
    size: u16,
    desc: GuestAddress,
    avail: GuestAddress,
    used: GuestAddress,
    features: RingFeatures,
    /// Free descriptor indexes (a stack: recently freed ones are reused first, as warm).
    free: Vec<u16>,
    /// Per head: the descriptor indexes of its chain in the table (just the head if indirect).
    chains: Vec<Vec<u16>>,
    /// Per head: its indirect table, allocated on first use, and its capacity in descriptors.
    indirect: Vec<Option<(GuestAddress, u16)>>,
    avail_idx: u16,
    kicked_idx: u16,
    last_used: u16,
    kick: EventFd,
    call: EventFd,
    counters: QueueCounters,
    desc_scratch: Vec<u8>,
}

impl SplitQueue {
    /// Allocates the rings of a queue of `size` entries (a power of two ≤ 32768) in `mem`.
    pub fn new(mem: Arc<GuestMemory>, size: u16, features: RingFeatures) -> Result<SplitQueue> {
        if size == 0 || !size.is_power_of_two() || size > 32768 {
            return Err(Error::Memory(format!("bad queue size {size}")));
        }
        let n = size as usize;
        let desc = mem.alloc(DESC_SIZE * n, 16)?;
        let avail = mem.alloc(6 + 2 * n, 2)?;
        let used = mem.alloc(6 + USED_ELEM_SIZE * n, 4)?;
        Ok(SplitQueue {
            mem,
            size,
            desc,
            avail,
            used,
            features,
            free: (0..size).rev().collect(),
            chains: vec![Vec::new(); n],
            indirect: vec![None; n],
            avail_idx: 0,
            kicked_idx: 0,
            last_used: 0,
            kick: EventFd::new(EFD_NONBLOCK)?,
            call: EventFd::new(EFD_NONBLOCK)?,
            counters: QueueCounters::default(),
            desc_scratch: Vec::new(),
        })
    }

    /// Number of entries.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// The eventfd the driver writes to notify the device (`SET_VRING_KICK`).
    pub fn kick_fd(&self) -> &EventFd {
        &self.kick
    }

    /// The eventfd the device writes to notify the driver (`SET_VRING_CALL`).
    pub fn call_fd(&self) -> &EventFd {
        &self.call
    }

    /// Guest addresses of the descriptor table, available ring and used ring (what a device
    /// model in this process is given).
    pub fn ring_addresses(&self) -> [GuestAddress; 3] {
        [self.desc, self.avail, self.used]
    }

    /// Ring addresses for `SET_VRING_ADDR`, in this process's address space.
    pub fn config(&self) -> Result<VringConfigData> {
        Ok(VringConfigData {
            queue_max_size: self.size,
            queue_size: self.size,
            flags: 0,
            desc_table_addr: self.mem.host_address(self.desc)?,
            used_ring_addr: self.mem.host_address(self.used)?,
            avail_ring_addr: self.mem.host_address(self.avail)?,
            log_addr: None,
        })
    }

    /// Free descriptors left in the table.
    pub fn free_descriptors(&self) -> usize {
        self.free.len()
    }

    /// Chains made available and not yet returned.
    pub fn in_flight(&self) -> u16 {
        self.avail_idx.wrapping_sub(self.last_used)
    }

    /// Counters since creation.
    pub fn counters(&self) -> QueueCounters {
        self.counters
    }

    /// Makes a chain of `readable` then `writable` buffers available and returns its head.
    /// The device sees it at once if it polls; call [`kick`](Self::kick) to notify it.
    pub fn add(&mut self, readable: &[Buffer], writable: &[Buffer]) -> Result<u16> {
        let total = readable.len() + writable.len();
        if total == 0 || total > self.size as usize {
            return Err(Error::Protocol(format!("chain of {total} buffers on a queue of {}", self.size)));
        }
        let use_indirect = self.features.indirect && total > 1;
        let need = if use_indirect { 1 } else { total };
        if self.free.len() < need {
            return Err(Error::QueueFull);
        }
        let mut ids = Vec::with_capacity(need);
        for _ in 0..need {
            ids.extend(self.free.pop());
        }
        let head = ids[0];
        let bufs = readable.iter().map(|b| (b, 0)).chain(writable.iter().map(|b| (b, VRING_DESC_F_WRITE as u16)));
        let written = if use_indirect {
            let (table, _) = self.indirect_table(head, total)?;
            self.desc_scratch.clear();
            for (i, (b, flags)) in bufs.enumerate() {
                let next = if i + 1 < total { (i + 1) as u16 } else { 0 };
                let flags = flags | if i + 1 < total { VRING_DESC_F_NEXT as u16 } else { 0 };
                push_desc(&mut self.desc_scratch, b.addr.raw_value(), b.len, flags, next);
            }
            self.mem.write(table, &self.desc_scratch).and_then(|()| {
                let mut d = Vec::with_capacity(DESC_SIZE);
                let len = (total * DESC_SIZE) as u32;
                push_desc(&mut d, table.raw_value(), len, VRING_DESC_F_INDIRECT as u16, 0);
                self.mem.write(self.desc_addr(head), &d)
            })
        } else {
            let mut r = Ok(());
            for (i, (b, flags)) in bufs.enumerate() {
                let next = ids.get(i + 1).copied();
                let flags = flags | if next.is_some() { VRING_DESC_F_NEXT as u16 } else { 0 };
                self.desc_scratch.clear();
                push_desc(&mut self.desc_scratch, b.addr.raw_value(), b.len, flags, next.unwrap_or(0));
                r = r.and_then(|()| self.mem.write(self.desc_addr(ids[i]), &self.desc_scratch));
            }
            r
        };
        if let Err(e) = written {
            self.free.extend(ids.iter().rev());
            return Err(e);
        }
        self.chains[head as usize] = ids;
        // Publish: the ring entry, then (after a release fence) the new index.
        let slot = self.avail_idx % self.size;
        self.mem.store(at(self.avail, 4 + 2 * slot as u64), head, Ordering::Relaxed)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::Release);
        self.mem.store(at(self.avail, 2), self.avail_idx, Ordering::Release)?;
        self.counters.added += 1;
        Ok(head)
    }

    /// **For fault injection only**: writes `descs` into free slots of the descriptor table
    /// as given (flags, lengths and addresses unchecked; `next` mapped as [`RawDesc`] says),
    /// makes the first one available as a chain head and returns it. The descriptors stay
    /// reserved until the device returns that head on the used ring, so a malformed chain
    /// the device never returns leaks them. Use [`add`](Self::add) for real requests.
    pub fn add_raw_chain(&mut self, descs: &[RawDesc]) -> Result<u16> {
        let n = descs.len();
        if n == 0 || n > self.size as usize {
            return Err(Error::Protocol(format!("raw chain of {n} descriptors on a queue of {}", self.size)));
        }
        if self.free.len() < n {
            return Err(Error::QueueFull);
        }
        let ids: Vec<u16> = (0..n).filter_map(|_| self.free.pop()).collect();
        let mut r = Ok(());
        for (d, &id) in descs.iter().zip(&ids) {
            let next = ids.get(d.next as usize).copied().unwrap_or(d.next);
            self.desc_scratch.clear();
            push_desc(&mut self.desc_scratch, d.addr, d.len, d.flags, next);
            r = r.and_then(|()| self.mem.write(self.desc_addr(id), &self.desc_scratch));
        }
        if let Err(e) = r {
            self.free.extend(ids.iter().rev());
            return Err(e);
        }
        let head = ids[0];
        self.chains[head as usize] = ids;
        let slot = self.avail_idx % self.size;
        self.mem.store(at(self.avail, 4 + 2 * slot as u64), head, Ordering::Relaxed)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::Release);
        self.mem.store(at(self.avail, 2), self.avail_idx, Ordering::Release)?;
        self.counters.added += 1;
        Ok(head)
    }

    /// **For fault injection only**: publishes `head` in the next available-ring slot as a
    /// chain head, whatever the descriptor table holds there (an index past the table, a
    /// head already in flight…). Nothing is reserved for it; if the device returns it,
    /// [`pop_used`](Self::pop_used) reports a protocol error.
    pub fn publish_raw_head(&mut self, head: u16) -> Result<()> {
        let slot = self.avail_idx % self.size;
        self.mem.store(at(self.avail, 4 + 2 * slot as u64), head, Ordering::Relaxed)?;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::Release);
        self.mem.store(at(self.avail, 2), self.avail_idx, Ordering::Release)
    }

    /// **For fault injection only**: moves the published available index `by` entries ahead
    /// without writing ring entries (more than the ring holds makes the index one a driver
    /// cannot have written). The queue is unusable afterwards until the device is reset.
    pub fn advance_avail_idx_raw(&mut self, by: u16) -> Result<()> {
        self.avail_idx = self.avail_idx.wrapping_add(by);
        fence(Ordering::Release);
        self.mem.store(at(self.avail, 2), self.avail_idx, Ordering::Release)
    }

    /// Notifies the device of chains added since the last kick, unless it asked not to be
    /// (EVENT_IDX `avail_event`, or `VRING_USED_F_NO_NOTIFY`). Returns whether it kicked.
    pub fn kick(&mut self) -> Result<bool> {
        if self.avail_idx == self.kicked_idx {
            return Ok(false);
        }
        // The index store must be visible before we read the device's suppression state.
        fence(Ordering::SeqCst);
        let notify = if self.features.event_idx {
            let avail_event: u16 = self.mem.load(self.avail_event_addr(), Ordering::Acquire)?;
            need_event(avail_event, self.avail_idx, self.kicked_idx)
        } else {
            let flags: u16 = self.mem.load(self.used, Ordering::Acquire)?;
            flags & VRING_USED_F_NO_NOTIFY as u16 == 0
        };
        self.kicked_idx = self.avail_idx;
        if notify {
            self.kick.write(1)?;
            self.counters.kicks += 1;
        } else {
            self.counters.kicks_suppressed += 1;
        }
        Ok(notify)
    }

    /// Takes the next completed chain off the used ring and frees its descriptors.
    pub fn pop_used(&mut self) -> Result<Option<Used>> {
        let used_idx: u16 = self.mem.load(at(self.used, 2), Ordering::Acquire)?;
        if used_idx == self.last_used {
            return Ok(None);
        }
        if used_idx.wrapping_sub(self.last_used) > self.in_flight() {
            return Err(Error::Protocol(format!("used idx {used_idx} ahead of avail idx {}", self.avail_idx)));
        }
        let slot = (self.last_used % self.size) as u64;
        let mut elem = [0u8; USED_ELEM_SIZE];
        self.mem.read(self.used.unchecked_add(4 + slot * USED_ELEM_SIZE as u64), &mut elem)?;
        let id = u32::from_le_bytes([elem[0], elem[1], elem[2], elem[3]]);
        let len = u32::from_le_bytes([elem[4], elem[5], elem[6], elem[7]]);
        let chain = self.chains.get_mut(id as usize).map(std::mem::take).unwrap_or_default();
        if chain.is_empty() {
            return Err(Error::Protocol(format!(
                "device returned descriptor {id}, which is not a chain head in flight"
            )));
        }
        self.free.extend(chain.iter().rev());
        self.last_used = self.last_used.wrapping_add(1);
        self.counters.used += 1;
        Ok(Some(Used { head: id as u16, len }))
    }

    /// Asks the device to signal the call eventfd on the next completion (EVENT_IDX
    /// `used_event`, or clearing `VRING_AVAIL_F_NO_INTERRUPT`). Returns true if completions
    /// are already pending, in which case the caller must not sleep.
    pub fn enable_call(&mut self) -> Result<bool> {
        if self.features.event_idx {
            self.mem.store(self.used_event_addr(), self.last_used, Ordering::Release)?;
        } else {
            self.mem.store(self.avail, 0u16, Ordering::Release)?;
        }
        fence(Ordering::SeqCst);
        let used_idx: u16 = self.mem.load(at(self.used, 2), Ordering::Acquire)?;
        Ok(used_idx != self.last_used)
    }

    /// Asks the device not to signal completions (the driver polls).
    pub fn disable_call(&mut self) -> Result<()> {
        if self.features.event_idx {
            // An event index half the ring away is not reached before we rearm.
            let far = self.last_used.wrapping_sub(1);
            self.mem.store(self.used_event_addr(), far, Ordering::Release)
        } else {
            self.mem.store(self.avail, VRING_AVAIL_F_NO_INTERRUPT as u16, Ordering::Release)
        }
    }

    /// Sleeps on the call eventfd until the device signals or `timeout` passes; returns
    /// whether it was signalled. Call [`enable_call`](Self::enable_call) first.
    pub fn wait_call(&mut self, timeout: Option<Duration>) -> Result<bool> {
        self.counters.sleeps += 1;
        wait_fds(&[self.call.as_raw_fd()], timeout).map(|ready| !ready.is_empty())
    }

    fn desc_addr(&self, i: u16) -> GuestAddress {
        self.desc.unchecked_add(i as u64 * DESC_SIZE as u64)
    }

    fn avail_event_addr(&self) -> GuestAddress {
        at(self.used, 4 + (USED_ELEM_SIZE * self.size as usize) as u64)
    }

    fn used_event_addr(&self) -> GuestAddress {
        self.avail.unchecked_add(4 + 2 * self.size as u64)
    }

    /// The indirect table of `head`, grown to hold at least `n` descriptors.
    fn indirect_table(&mut self, head: u16, n: usize) -> Result<(GuestAddress, u16)> {
        let slot = &mut self.indirect[head as usize];
        match *slot {
            Some((addr, cap)) if cap as usize >= n => Ok((addr, cap)),
            _ => {
                // Round up so a table is rarely reallocated (the old one is leaked: the bump
                // allocator never frees, and growth is bounded by the queue size).
                let cap = n.next_power_of_two().clamp(8, self.size as usize);
                let addr = self.mem.alloc(cap * DESC_SIZE, 16)?;
                *slot = Some((addr, cap as u16));
                Ok((addr, cap as u16))
            }
        }
    }
}

/// The EVENT_IDX test (virtio 1.2 §2.7.10): has `event` been passed moving from `old` to `new`?
pub fn need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

fn at(base: GuestAddress, offset: u64) -> GuestAddress {
    base.unchecked_add(offset)
}

fn push_desc(out: &mut Vec<u8>, addr: u64, len: u32, flags: u16, next: u16) {
    out.extend_from_slice(&addr.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&next.to_le_bytes());
}

/// Waits until one of the eventfds `fds` is readable (or `timeout` passes), drains the ready
/// ones and returns their positions in `fds`.
pub fn wait_fds(fds: &[i32], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let ms = timeout.map(|t| t.as_millis().min(i32::MAX as u128) as i32).unwrap_or(-1);
    loop {
        // SAFETY: `pfds` is a valid, exclusively borrowed array of `pfds.len()` pollfd structs
        // for the duration of the call.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        break;
    }
    let mut ready = Vec::new();
    for (i, p) in pfds.iter().enumerate() {
        if p.revents & libc::POLLIN != 0 {
            let mut v = 0u64;
            // SAFETY: reads 8 bytes into `v`, which is a valid, writable u64; `p.fd` is an
            // eventfd the caller keeps open.
            let _ = unsafe { libc::read(p.fd, (&mut v as *mut u64).cast(), 8) };
            ready.push(i);
        }
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::PAGE_SIZE;

    #[test]
    fn need_event_matches_the_spec() {
        assert!(need_event(0, 1, 0));
        assert!(!need_event(1, 1, 0));
        assert!(need_event(5, 10, 3));
        assert!(!need_event(10, 10, 3));
        assert!(need_event(0xffff, 0, 0xfffe));
    }

    fn queue(features: RingFeatures) -> SplitQueue {
        let mem = Arc::new(GuestMemory::new(64 * PAGE_SIZE).unwrap());
        SplitQueue::new(mem, 8, features).unwrap()
    }

    /// Plays the device: completes the next available chain with `len`.
    fn device_complete(q: &SplitQueue, nth: u16, len: u32) {
        let head: u16 = q.mem.load(at(q.avail, 4 + 2 * (nth % q.size) as u64), Ordering::Acquire).unwrap();
        let mut e = Vec::new();
        e.extend_from_slice(&(head as u32).to_le_bytes());
        e.extend_from_slice(&len.to_le_bytes());
        q.mem.write(at(q.used, 4 + USED_ELEM_SIZE as u64 * (nth % q.size) as u64), &e).unwrap();
        q.mem.store(at(q.used, 2), nth.wrapping_add(1), Ordering::Release).unwrap();
    }

    #[test]
    fn direct_chains_use_and_free_descriptors() {
        let mut q = queue(RingFeatures::default());
        let b = Buffer { addr: GuestAddress(crate::memory::GUEST_BASE + 0x8000), len: 16 };
        let h = q.add(&[b, b], &[b]).unwrap();
        assert_eq!(q.free_descriptors(), 5);
        let raw: [u8; 16] = q.mem.read_obj(q.desc_addr(h)).unwrap();
        assert_eq!(u16::from_le_bytes([raw[12], raw[13]]), VRING_DESC_F_NEXT as u16);
        assert!(q.kick().unwrap());
        assert!(!q.kick().unwrap(), "nothing new to kick");
        assert!(q.add(&[b; 6], &[]).is_err(), "only 5 descriptors left");
        device_complete(&q, 0, 7);
        assert_eq!(q.pop_used().unwrap(), Some(Used { head: h, len: 7 }));
        assert_eq!(q.pop_used().unwrap(), None);
        assert_eq!(q.free_descriptors(), 8);
    }

    #[test]
    fn indirect_chains_take_one_descriptor() {
        let mut q = queue(RingFeatures { event_idx: true, indirect: true });
        let b = Buffer { addr: GuestAddress(crate::memory::GUEST_BASE + 0x8000), len: 16 };
        for _ in 0..8 {
            q.add(&[b, b, b], &[b, b]).unwrap();
        }
        assert_eq!(q.free_descriptors(), 0);
        assert!(matches!(q.add(&[b], &[]), Err(Error::QueueFull)));
        // EVENT_IDX: avail_event is 0, so the first publish of 8 chains needs a kick.
        assert!(q.kick().unwrap());
        device_complete(&q, 0, 0);
        assert!(q.enable_call().unwrap());
        assert!(q.pop_used().unwrap().is_some());
        assert!(!q.enable_call().unwrap());
    }
}
