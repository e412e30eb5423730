//! The FUSE client: a vhost-user-fs device brought up with guest memory and queues, the
//! INIT handshake, and blocking calls. Typed operations are in `ops.rs`; pipelined use goes
//! through [`Client::queue`] and [`FsQueue`] directly.

use crate::error::{Error, Result};
use crate::frontend::{DeviceOptions, Negotiated, VhostUserDevice};
use crate::layout::Segmentation;
use crate::memory::{GuestMemory, PAGE_SIZE};
use crate::queue::{Caller, FsQueue, SlotConfig, Token};
use crate::reply::Reply;
use crate::request::Request;
use dpfs_core::abi::{self, init};
use dpfs_core::operation::{Layout, Operation};
use parking_lot::{Mutex, MutexGuard};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// INIT flags Linux 6.12+ offers a virtio-fs server (no DAX, no security labels).
pub const LINUX_INIT_FLAGS: u64 = init::ASYNC_READ
    | init::POSIX_LOCKS
    | init::ATOMIC_O_TRUNC
    | init::EXPORT_SUPPORT
    | init::BIG_WRITES
    | init::DONT_MASK
    | init::SPLICE_WRITE
    | init::SPLICE_MOVE
    | init::SPLICE_READ
    | init::FLOCK_LOCKS
    | init::HAS_IOCTL_DIR
    | init::AUTO_INVAL_DATA
    | init::DO_READDIRPLUS
    | init::READDIRPLUS_AUTO
    | init::ASYNC_DIO
    | init::WRITEBACK_CACHE
    | init::NO_OPEN_SUPPORT
    | init::PARALLEL_DIROPS
    | init::HANDLE_KILLPRIV
    | init::POSIX_ACL
    | init::ABORT_ERROR
    | init::MAX_PAGES
    | init::CACHE_SYMLINKS
    | init::NO_OPENDIR_SUPPORT
    | init::EXPLICIT_INVAL_DATA
    | init::SUBMOUNTS
    | init::HANDLE_KILLPRIV_V2
    | init::SETXATTR_EXT
    | init::INIT_EXT
    | init::CREATE_SUPP_GROUP
    | init::HAS_EXPIRE_ONLY
    | init::DIRECT_IO_ALLOW_MMAP
    | init::NO_EXPORT_SUPPORT
    | init::HAS_RESEND
    | init::ALLOW_IDMAP;

/// How to bring the device up and lay requests out.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Queue negotiation.
    pub device: DeviceOptions,
    /// Requests in flight per request queue.
    pub depth: usize,
    /// Largest WRITE payload per request.
    pub max_payload: usize,
    /// Largest reply body per request (READ size, READDIR buffer).
    pub max_reply: usize,
    /// How requests are cut into descriptors.
    pub segmentation: Segmentation,
    /// Caller identity.
    pub caller: Caller,
    /// How long a blocking call waits for its reply.
    pub timeout: Duration,
    /// INIT flags offered (bits 32.. go in `flags2`).
    pub init_flags: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            device: DeviceOptions::default(),
            depth: 16,
            max_payload: 128 << 10,
            max_reply: 128 << 10,
            segmentation: Segmentation::Linux,
            caller: Caller { uid: 0, gid: 0, pid: 1 },
            timeout: Duration::from_secs(10),
            init_flags: LINUX_INIT_FLAGS,
        }
    }
}

/// A connected, initialised virtio-fs client.
pub struct Client {
    device: VhostUserDevice,
    hiprio: Mutex<FsQueue>,
    queues: Vec<Mutex<FsQueue>>,
    init: abi::InitOut,
    layout: Layout,
    next_queue: AtomicUsize,
    timeout: Duration,
}

impl Client {
    /// Connects to the vhost-user-fs socket, brings up hiprio and the request queues, and
    /// sends INIT (7.45 with INIT_EXT, as Linux does).
    pub fn connect(socket: &Path, opts: &ClientOptions) -> Result<Client> {
        let nq = opts.device.request_queues.max(1);
        let req_slots = SlotConfig { depth: opts.depth, max_payload: opts.max_payload, max_reply: opts.max_reply };
        let hi_slots = SlotConfig { depth: 16, max_payload: 0, max_reply: 0 };
        let ring = 26 * opts.device.queue_size as usize + 3 * PAGE_SIZE;
        // Indirect tables: at most one per head in use, each at most a queue's worth (doubled
        // for growth).
        let indirect = 2 * opts.depth.min(opts.device.queue_size as usize) * 16 * opts.device.queue_size as usize;
        let size = (1 + nq) * (ring + indirect)
            + nq * opts.depth * req_slots.slot_bytes()
            + hi_slots.depth * SlotConfig { max_reply: PAGE_SIZE, ..hi_slots }.slot_bytes()
            + (1 << 20);
        let mem = Arc::new(GuestMemory::new(size)?);
        let (device, vqs) = VhostUserDevice::connect(socket, mem.clone(), &opts.device)?;
        let unique = Arc::new(AtomicU64::new(2));
        let mut fsqs = Vec::with_capacity(vqs.len());
        for (i, vq) in vqs.into_iter().enumerate() {
            let slots = if i == 0 { hi_slots } else { req_slots };
            let mut q = FsQueue::new(i, vq, mem.clone(), slots, unique.clone())?;
            q.set_segmentation(opts.segmentation.clone());
            q.set_caller(opts.caller);
            fsqs.push(Mutex::new(q));
        }
        let mut it = fsqs.into_iter();
        let hiprio = it.next().ok_or(Error::Unsupported("hiprio queue"))?;
        let queues: Vec<_> = it.collect();
        let mut client = Client {
            device,
            hiprio,
            queues,
            init: abi::InitOut::default(),
            layout: Layout::default(),
            next_queue: AtomicUsize::new(0),
            timeout: opts.timeout,
        };
        client.handshake(opts.init_flags)?;
        Ok(client)
    }

    fn handshake(&mut self, flags: u64) -> Result<()> {
        let arg = abi::InitIn {
            major: abi::KERNEL_VERSION,
            minor: abi::KERNEL_MINOR_VERSION,
            max_readahead: 128 << 10,
            flags: flags as u32,
            flags2: (flags >> 32) as u32,
            unused: [0; 11],
        };
        let reply = self.call(&Request::new(0, Operation::Init(arg)))?.ok()?;
        let out: abi::InitOut = reply.parse_prefix();
        if out.major != abi::KERNEL_VERSION {
            return Err(Error::Protocol(format!("device speaks FUSE {}.{}", out.major, out.minor)));
        }
        let negotiated = self.init_flags_of(&out);
        self.layout = Layout {
            minor: out.minor.min(abi::KERNEL_MINOR_VERSION),
            setxattr_ext: negotiated & init::SETXATTR_EXT != 0,
        };
        self.init = out;
        for q in std::iter::once(&self.hiprio).chain(&self.queues) {
            q.lock().set_layout(self.layout);
        }
        Ok(())
    }

    fn init_flags_of(&self, out: &abi::InitOut) -> u64 {
        let mut f = out.flags as u64;
        if f & init::INIT_EXT != 0 {
            f |= (out.flags2 as u64) << 32;
        }
        f
    }

    /// The INIT reply.
    pub fn init_out(&self) -> &abi::InitOut {
        &self.init
    }

    /// INIT flags the device accepted (both words).
    pub fn init_flags(&self) -> u64 {
        self.init_flags_of(&self.init)
    }

    /// The FUSE wire layout in use.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Largest WRITE the device accepts (`max_write`).
    pub fn max_write(&self) -> usize {
        self.init.max_write as usize
    }

    /// What the vhost-user negotiation settled on.
    pub fn negotiated(&self) -> &Negotiated {
        self.device.negotiated()
    }

    /// Number of request queues.
    pub fn request_queues(&self) -> usize {
        self.queues.len()
    }

    /// Request queue `i` (0-based: virtqueue `i + 1`), for pipelined submission.
    pub fn queue(&self, i: usize) -> MutexGuard<'_, FsQueue> {
        self.queues[i % self.queues.len()].lock()
    }

    /// The hiprio queue (virtqueue 0: FORGET, BATCH_FORGET).
    pub fn hiprio(&self) -> MutexGuard<'_, FsQueue> {
        self.hiprio.lock()
    }

    /// Sends `req` on the next request queue (round robin), or on hiprio for FORGETs, and
    /// waits for its reply. The reply may carry an error: see [`Reply::ok`].
    pub fn call(&self, req: &Request<'_>) -> Result<Reply> {
        if req.is_noreply() {
            return call_on(&mut self.hiprio(), req, self.timeout);
        }
        let i = self.next_queue.fetch_add(1, Ordering::Relaxed);
        call_on(&mut self.queue(i), req, self.timeout)
    }

    /// Sends `req` on request queue `i` and waits for its reply.
    pub fn call_queue(&self, i: usize, req: &Request<'_>) -> Result<Reply> {
        call_on(&mut self.queue(i), req, self.timeout)
    }
}

/// Submits `req` on `q` and waits for that request's completion.
pub fn call_on(q: &mut FsQueue, req: &Request<'_>, timeout: Duration) -> Result<Reply> {
    let token = q.submit(req)?;
    let mut done: Vec<Token> = Vec::new();
    while !done.contains(&token) {
        q.wait(&mut done, Some(timeout))?;
    }
    q.take(token)
}
