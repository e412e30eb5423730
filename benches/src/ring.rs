//! The vhost-user HAL's path — descriptor chain → request → core → used ring — on an
//! in-memory virtqueue, with sim's split-virtqueue driver on the guest side: no socket, no
//! poller thread, so every instruction of both sides can be counted.

use dpfs_core::local::LocalClient;
use dpfs_core::{DeviceId, Dispatcher, FileSystem, Handler, SessionConfig};
use dpfs_hal_vhost_user::backend::DeviceShared;
use dpfs_hal_vhost_user::{DeviceConfig, DeviceStats, FsBackend};
use dpfs_sim::memory::GuestMemory;
use dpfs_sim::queue::SlotConfig;
use dpfs_sim::virtq::{RingFeatures, SplitQueue};
use dpfs_sim::{FsQueue, Reply, Request, Token};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;

type Vring = VringRwLock<GuestMemoryAtomic<GuestMemoryMmap>>;

/// Ring entries of the request queue.
const QUEUE_SIZE: u16 = 64;

/// One device with one request queue: sim's driver on one side, the HAL on the other.
pub struct Ring {
    queue: FsQueue,
    backend: FsBackend,
    /// hiprio, then the request queue (the order the HAL's poller thread sees them in).
    vrings: [Vring; 2],
    done: Vec<Token>,
    _dispatcher: Arc<Dispatcher>,
}

impl Ring {
    /// A ring over `fs`, its FUSE session initialised, EVENT_IDX and indirect descriptors
    /// negotiated as Linux does.
    pub fn new(fs: Arc<dyn FileSystem>) -> Ring {
        let id = DeviceId(0);
        let mem = Arc::new(GuestMemory::new(4 << 20).expect("guest memory"));
        let features = RingFeatures { event_idx: true, indirect: true };
        let slots = SlotConfig { depth: 4, max_payload: 128 << 10, max_reply: 128 << 10 };
        let hiprio = SplitQueue::new(mem.clone(), QUEUE_SIZE, features).expect("hiprio");
        let vq = SplitQueue::new(mem.clone(), QUEUE_SIZE, features).expect("request queue");
        let queue = FsQueue::new(1, vq, mem.clone(), slots, Arc::new(AtomicU64::new(1))).expect("queue");

        let atomic = GuestMemoryAtomic::new(mem.mmap().clone());
        let ring = |q: &SplitQueue| {
            let v = Vring::new(atomic.clone(), QUEUE_SIZE).expect("vring");
            let [desc, avail, used] = q.ring_addresses();
            v.set_queue_info(desc.0, avail.0, used.0).expect("ring addresses");
            v.set_queue_size(QUEUE_SIZE);
            v.set_queue_event_idx(true);
            v.set_queue_ready(true);
            v.set_enabled(true);
            v
        };
        let vrings = [ring(&hiprio), ring(queue.virtqueue())];

        let dispatcher = Arc::new(Dispatcher::new(SessionConfig::default(), move |_| Ok(fs.clone())));
        dispatcher.register_device(id).expect("register");
        let dev = dispatcher.device(id).expect("device");
        assert!(LocalClient::new(&dev).init().is_some(), "INIT failed");
        let config = DeviceConfig::new(id, "bench");
        let stats = Arc::new(DeviceStats::new(config.num_queues()));
        let shared = Arc::new(DeviceShared { config, handler: dispatcher.clone(), stats });
        let backend = FsBackend::new(shared, atomic);
        backend.set_event_idx(true);
        Ring { queue, backend, vrings, done: Vec::new(), _dispatcher: dispatcher }
    }

    /// Driver side: lays `req` out in a free slot and makes its chain available.
    pub fn submit(&mut self, req: &Request<'_>) -> Token {
        self.queue.submit(req).expect("submit")
    }

    /// Device side: what the HAL's poller thread does on a kick of the request queue.
    pub fn process(&self) {
        self.backend.handle_event(1, EventSet::IN, &self.vrings, 0).expect("handle_event");
    }

    /// Driver side: collects the completion and copies the reply out.
    pub fn complete(&mut self) -> Reply {
        self.done.clear();
        let n = self.queue.poll(&mut self.done).expect("poll");
        assert_eq!(n, 1, "one completion expected");
        self.queue.take(self.done[0]).expect("take")
    }

    /// Submit, process, complete: a whole round trip.
    pub fn round_trip(&mut self, req: &Request<'_>) -> Reply {
        self.submit(req);
        self.process();
        self.complete()
    }
}
