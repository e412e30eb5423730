//! The DPU side of the model: a [`Controller`] that fetches chains from the host's rings
//! (the firmware's descriptor fetch), hands them to a handler, and returns completions
//! through a completion ring that any thread may push to and the poller drains (SNAP's
//! SPSC ring for asynchronous completion).

use super::bar::{Bar, QueueRegs, DRIVER_OK};
use crate::config::DeviceSpec;
use crate::contract::Controller;
use dpfs_core::{Handler, Request};
use dpfs_hal_vhost_user::chain::parse_chain;
use dpfs_sim::memory::GuestMemory;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestAddress;

/// What the device did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceCounters {
    /// Chains fetched from the available rings.
    pub fetched: u64,
    /// Chains put on the used rings.
    pub returned: u64,
    /// Completions that arrived after a reset and were dropped (their chains belong to a
    /// driver session that no longer exists).
    pub stale: u64,
    /// Resets performed.
    pub resets: u64,
    /// Interrupts raised.
    pub interrupts: u64,
}

/// A view of a device's counters that stays valid after the device moved into a HAL.
#[derive(Clone, Default)]
pub struct DeviceProbe {
    counters: Arc<Mutex<DeviceCounters>>,
    in_flight: Arc<AtomicUsize>,
}

impl DeviceProbe {
    /// Counters so far.
    pub fn counters(&self) -> DeviceCounters {
        *self.counters.lock()
    }

    /// Requests handed to the handler and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }
}

struct Done {
    generation: u64,
    queue: u16,
    head: u16,
    written: u32,
}

struct Live {
    mem: Arc<GuestMemory>,
    queues: Vec<(Queue, QueueRegs)>,
}

/// One emulated virtio-fs function.
pub struct ModelDevice {
    spec: DeviceSpec,
    bar: Arc<Bar>,
    handler: Arc<dyn Handler>,
    live: Option<Live>,
    generation: u64,
    done: Arc<Mutex<Vec<Done>>>,
    in_flight: Arc<AtomicUsize>,
    suspended: bool,
    counters: DeviceCounters,
    probe: DeviceProbe,
}

impl ModelDevice {
    /// A device behind `bar` whose requests go to `handler` (registered by the caller).
    pub fn new(spec: DeviceSpec, bar: Arc<Bar>, handler: Arc<dyn Handler>) -> ModelDevice {
        ModelDevice {
            spec,
            bar,
            handler,
            live: None,
            generation: 0,
            done: Arc::default(),
            in_flight: Arc::default(),
            suspended: false,
            counters: DeviceCounters::default(),
            probe: DeviceProbe::default(),
        }
        .with_probe()
    }

    fn with_probe(mut self) -> Self {
        self.probe.in_flight = self.in_flight.clone();
        self
    }

    /// A probe of this device's counters.
    pub fn probe(&self) -> DeviceProbe {
        self.probe.clone()
    }

    fn publish(&self) {
        *self.probe.counters.lock() = self.counters;
    }

    /// Requests handed to the handler and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    fn go_live(&mut self) {
        let Some((mem, regs)) = self.bar.take_setup() else { return };
        let mut queues = Vec::with_capacity(regs.len());
        for r in regs {
            if r.size > self.spec.queue_depth {
                tracing::warn!(device = %self.spec.id, size = r.size, max = self.spec.queue_depth,
                    "driver programmed a queue larger than the device offers; ignored");
                continue;
            }
            let Ok(mut q) = Queue::new(r.size) else { continue };
            let [d, a, u] = r.rings;
            q.set_size(r.size);
            q.try_set_desc_table_address(GuestAddress(d)).ok();
            q.try_set_avail_ring_address(GuestAddress(a)).ok();
            q.try_set_used_ring_address(GuestAddress(u)).ok();
            q.set_ready(true);
            if !q.is_valid(mem.mmap()) {
                tracing::warn!(device = %self.spec.id, "driver programmed an invalid queue; ignored");
                continue;
            }
            queues.push((q, r));
        }
        self.live = Some(Live { mem, queues });
    }

    fn reset(&mut self) {
        self.live = None;
        self.generation += 1;
        self.counters.resets += 1;
        self.handler.reset_device(self.spec.id);
    }

    fn drain_completions(&mut self) -> usize {
        let done = std::mem::take(&mut *self.done.lock());
        let n = done.len();
        let mut signal = vec![false; self.live.as_ref().map_or(0, |l| l.queues.len())];
        for d in done {
            let live = self.live.as_mut().filter(|_| d.generation == self.generation);
            let Some(live) = live else {
                self.counters.stale += 1;
                continue;
            };
            let Some((q, _)) = live.queues.get_mut(d.queue as usize) else { continue };
            if q.add_used(live.mem.mmap(), d.head, d.written).is_ok() {
                self.counters.returned += 1;
                if let Some(s) = signal.get_mut(d.queue as usize) {
                    *s = true;
                }
            }
        }
        // Counters first: whoever the interrupt wakes sees them up to date.
        let raised = signal.iter().filter(|s| **s).count() as u64;
        self.counters.interrupts += raised;
        self.publish();
        if let Some(live) = &self.live {
            for ((_, regs), s) in live.queues.iter().zip(signal) {
                if s {
                    let _ = regs.interrupt.write(1);
                }
            }
        }
        n
    }

    fn fetch(&mut self, thread: u16) -> usize {
        let Some(live) = self.live.as_mut() else { return 0 };
        let mut n = 0;
        for (qi, (q, _)) in live.queues.iter_mut().enumerate() {
            while let Some(chain) = q.pop_descriptor_chain(live.mem.mmap()) {
                n += 1;
                let head = chain.head_index();
                let parsed = parse_chain(live.mem.mmap(), chain);
                let (done, generation, mem) = (self.done.clone(), self.generation, live.mem.clone());
                let in_flight = self.in_flight.clone();
                in_flight.fetch_add(1, Ordering::AcqRel);
                let completion = move |written: usize| {
                    drop(mem);
                    let written = u32::try_from(written).unwrap_or(u32::MAX);
                    done.lock().push(Done { generation, queue: qi as u16, head, written });
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                };
                if parsed.error.is_some() {
                    // The firmware could not fetch the chain: answer without the backend.
                    let written = parsed.answer_error(libc::EIO);
                    completion(written);
                    continue;
                }
                let req = Request::new(
                    self.spec.id,
                    qi as u16,
                    thread,
                    parsed.readable,
                    parsed.writable,
                    Box::new(completion),
                );
                self.handler.handle(req);
            }
        }
        self.counters.fetched += n as u64;
        if n > 0 {
            self.publish();
        }
        n
    }
}

impl Controller for ModelDevice {
    fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    fn progress_io(&mut self, thread: u16) -> usize {
        let fetched = if self.suspended { 0 } else { self.fetch(thread) };
        fetched + self.drain_completions()
    }

    fn progress_mgmt(&mut self) {
        if self.bar.take_reset_request() {
            // A setup programmed before the reset is void as well.
            drop(self.bar.take_setup());
            self.reset();
            self.publish();
            self.bar.ack_reset();
        } else if self.bar.status() & DRIVER_OK != 0 && self.live.is_none() && !self.suspended {
            self.go_live();
        }
    }

    fn suspend(&mut self) {
        self.suspended = true;
    }

    fn is_suspended(&self) -> bool {
        self.suspended && self.in_flight() == 0 && self.done.lock().is_empty()
    }
}
