//! The host side of the model: what the tenant's kernel does, played by sim's split-virtqueue
//! driver and FUSE queues over a memory region standing for host RAM. It programs the
//! function's registers, sends requests, and can reset the device mid-request.

use super::bar::{Bar, QueueRegs};
use crate::Error;
use dpfs_core::abi::{self, InitOut};
use dpfs_core::operation::{Layout, Operation};
use dpfs_sim::memory::{GuestMemory, PAGE_SIZE};
use dpfs_sim::queue::{FsQueue, SlotConfig};
use dpfs_sim::virtq::{RingFeatures, SplitQueue};
use dpfs_sim::{Reply, Request, Token};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the host driver sets the device up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostOptions {
    /// Entries per ring (the device's `queue_depth`).
    pub queue_size: u16,
    /// Requests in flight on the request queue.
    pub depth: usize,
    /// Largest WRITE payload.
    pub max_payload: usize,
    /// Largest reply body.
    pub max_reply: usize,
    /// Driver setups (the first and those after resets) the memory has room for.
    pub setups: usize,
    /// How long a blocking call waits.
    pub timeout: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            queue_size: 64,
            depth: 16,
            max_payload: 128 << 10,
            max_reply: 128 << 10,
            setups: 4,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The host driver of one emulated function: hiprio and one request queue, as DPFS's
/// devices have.
pub struct ModelHost {
    bar: Arc<Bar>,
    mem: Arc<GuestMemory>,
    opts: HostOptions,
    unique: Arc<AtomicU64>,
    hiprio: FsQueue,
    queue: FsQueue,
    layout: Layout,
}

impl ModelHost {
    /// Allocates host memory, programs the queues into `bar` and sets DRIVER_OK. The device
    /// goes live on its next management poll.
    pub fn new(bar: Arc<Bar>, opts: HostOptions) -> Result<ModelHost, Error> {
        let req = SlotConfig { depth: opts.depth, max_payload: opts.max_payload, max_reply: opts.max_reply };
        let hi = SlotConfig { depth: 4, max_payload: 0, max_reply: PAGE_SIZE };
        let ring = 26 * opts.queue_size as usize + 3 * PAGE_SIZE;
        let indirect = 2 * 16 * opts.queue_size as usize * opts.queue_size as usize;
        let per_setup = 2 * (ring + indirect) + opts.depth * req.slot_bytes() + 4 * hi.slot_bytes();
        let mem = Arc::new(GuestMemory::new(opts.setups.max(1) * per_setup + (1 << 20))?);
        let unique = Arc::new(AtomicU64::new(2));
        let (hiprio, queue) = setup(&bar, &mem, &opts, &unique)?;
        Ok(ModelHost { bar, mem, opts, unique, hiprio, queue, layout: Layout::default() })
    }

    /// Host memory.
    pub fn memory(&self) -> &Arc<GuestMemory> {
        &self.mem
    }

    /// The request queue, for pipelined submission.
    pub fn queue(&mut self) -> &mut FsQueue {
        &mut self.queue
    }

    /// The hiprio queue.
    pub fn hiprio(&mut self) -> &mut FsQueue {
        &mut self.hiprio
    }

    /// Sends INIT (7.45) and applies the negotiated wire layout.
    pub fn init(&mut self) -> Result<InitOut, Error> {
        let arg = abi::InitIn {
            major: abi::KERNEL_VERSION,
            minor: abi::KERNEL_MINOR_VERSION,
            max_readahead: 128 << 10,
            flags: dpfs_sim::client::LINUX_INIT_FLAGS as u32,
            flags2: (dpfs_sim::client::LINUX_INIT_FLAGS >> 32) as u32,
            unused: [0; 11],
        };
        let reply = self.call(&Request::new(0, Operation::Init(arg)))?.ok()?;
        let out: InitOut = reply.parse_prefix();
        self.layout = Layout { minor: out.minor.min(abi::KERNEL_MINOR_VERSION), ..Layout::default() };
        self.queue.set_layout(self.layout);
        self.hiprio.set_layout(self.layout);
        Ok(out)
    }

    /// Submits `req` (hiprio for requests without reply) and waits for its reply; the
    /// device must be polled meanwhile (by the HAL's pollers).
    pub fn call(&mut self, req: &Request<'_>) -> Result<Reply, Error> {
        let q = if req.is_noreply() { &mut self.hiprio } else { &mut self.queue };
        Ok(dpfs_sim::client::call_on(q, req, self.opts.timeout)?)
    }

    /// Submits without waiting.
    pub fn submit(&mut self, req: &Request<'_>) -> Result<Token, Error> {
        Ok(self.queue.submit(req)?)
    }

    /// Resets the device (status 0), waits until it acknowledges, then sets it up again
    /// with fresh rings and slots: requests in flight are abandoned, as a rebooting or
    /// crashing host driver abandons them. INIT must be sent again.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.bar.write_reset();
        let start = Instant::now();
        while !self.bar.reset_done() {
            if start.elapsed() > self.opts.timeout {
                return Err(Error::Host(dpfs_sim::Error::Timeout));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let (hiprio, queue) = setup(&self.bar, &self.mem, &self.opts, &self.unique)?;
        self.hiprio = hiprio;
        self.queue = queue;
        Ok(())
    }
}

fn setup(
    bar: &Bar,
    mem: &Arc<GuestMemory>,
    opts: &HostOptions,
    unique: &Arc<AtomicU64>,
) -> Result<(FsQueue, FsQueue), Error> {
    let features = RingFeatures { event_idx: false, indirect: true };
    let mut regs = Vec::new();
    let mut fsqs = Vec::new();
    for i in 0..2 {
        let vq = SplitQueue::new(mem.clone(), opts.queue_size, features)?;
        let interrupt = vq.call_fd().try_clone().map_err(dpfs_sim::Error::Io)?;
        let rings = vq.ring_addresses().map(|a| a.0);
        regs.push(QueueRegs { size: opts.queue_size, rings, interrupt });
        let slots = if i == 0 {
            SlotConfig { depth: 4, max_payload: 0, max_reply: PAGE_SIZE }
        } else {
            SlotConfig { depth: opts.depth, max_payload: opts.max_payload, max_reply: opts.max_reply }
        };
        fsqs.push(FsQueue::new(i, vq, mem.clone(), slots, unique.clone())?);
    }
    bar.driver_ok(mem.clone(), regs);
    let queue = fsqs.pop().ok_or(Error::Config("no request queue".into()))?;
    let hiprio = fsqs.pop().ok_or(Error::Config("no hiprio queue".into()))?;
    Ok((hiprio, queue))
}
