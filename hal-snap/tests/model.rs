//! The device model end to end: sim's host driver → model device → SNAP or DOCA flow →
//! core → the mem backend, with DMA failures and host resets mid-request.

use dpfs_backend_mem::{MemConfig, MemFs};
use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::operation::Operation as O;
use dpfs_core::{DeviceId, Dispatcher, Handler, HandlerError, Request as CoreRequest, SessionConfig};
use dpfs_hal_snap::config::DeviceSpec;
use dpfs_hal_snap::model::{Bar, DeviceProbe, HostOptions, ModelDevice, ModelHost};
use dpfs_hal_snap::{Dma, DpuFlow, Flow, PollConfig, Running, SnapHal};
use dpfs_sim::Request;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zerocopy::FromBytes;

/// Parks every request while `park` is set (a backend that answers late).
struct Parking {
    inner: Dispatcher,
    park: AtomicBool,
    parked: Mutex<Vec<CoreRequest>>,
}

impl Handler for Parking {
    fn register_device(&self, dev: DeviceId) -> Result<(), HandlerError> {
        self.inner.register_device(dev)
    }
    fn unregister_device(&self, dev: DeviceId) {
        self.inner.unregister_device(dev)
    }
    fn reset_device(&self, dev: DeviceId) {
        self.inner.reset_device(dev)
    }
    fn handle(&self, req: CoreRequest) {
        if self.park.load(Ordering::Acquire) {
            self.parked.lock().push(req);
        } else {
            self.inner.handle(req)
        }
    }
}

impl Parking {
    fn release(&self) {
        self.park.store(false, Ordering::Release);
        for r in std::mem::take(&mut *self.parked.lock()) {
            self.inner.handle(r);
        }
    }
}

struct Rig {
    host: ModelHost,
    flow: Arc<DpuFlow>,
    parking: Arc<Parking>,
    probe: DeviceProbe,
    running: Option<Running>,
}

fn rig(flow: Flow) -> Rig {
    let fs = Arc::new(MemFs::new(MemConfig::default()));
    let inner = Dispatcher::new(SessionConfig::default(), move |_| Ok(fs.clone() as Arc<dyn dpfs_core::FileSystem>));
    let parking = Arc::new(Parking { inner, park: AtomicBool::new(false), parked: Mutex::default() });
    let flow = Arc::new(DpuFlow::new(flow, Arc::new(Dma::new()), parking.clone()));
    flow.register_device(DeviceId(0)).unwrap();
    let spec =
        DeviceSpec { id: DeviceId(0), pf_id: 0, vf_id: None, tag: "dpfs-0".into(), queue_depth: 64, mock: false };
    let bar = Bar::new();
    let dev = ModelDevice::new(spec, bar.clone(), flow.clone());
    let probe = dev.probe();
    let poll = PollConfig { nthreads: 1, polling_interval: Duration::from_micros(20), mock_period: Duration::ZERO };
    let hal = SnapHal::new(vec![Box::new(dev)], poll).unwrap();
    let running = hal.start();
    let mut host = ModelHost::new(bar, HostOptions { timeout: Duration::from_secs(5), ..Default::default() }).unwrap();
    host.init().unwrap();
    Rig { host, flow, parking, probe, running: Some(running) }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

fn create(h: &mut ModelHost, name: &[u8]) -> (u64, u64) {
    let arg = abi::CreateIn { flags: libc::O_RDWR as u32, mode: 0o644, umask: 0, open_flags: 0 };
    let r = h.call(&Request::new(ROOT_ID, O::Create { arg, name })).unwrap().ok().unwrap();
    let e: abi::EntryOut = r.parse_prefix();
    let o: abi::OpenOut = abi::OpenOut::read_from_prefix(&r.body[std::mem::size_of::<abi::EntryOut>()..]).unwrap().0;
    (e.nodeid, o.fh)
}

fn write(h: &mut ModelHost, node: u64, fh: u64, off: u64, data: &[u8]) -> Result<u32, i32> {
    let arg =
        abi::WriteIn { fh, offset: off, size: data.len() as u32, flags: libc::O_RDWR as u32, ..Default::default() };
    let r = h.call(&Request::with_payload(node, O::Write(arg), data)).unwrap();
    if r.header.error != 0 {
        return Err(r.header.error);
    }
    Ok(r.parse::<abi::WriteOut>().unwrap().size)
}

fn read(h: &mut ModelHost, node: u64, fh: u64, off: u64, size: u32) -> Result<Vec<u8>, i32> {
    let arg = abi::ReadIn { fh, offset: off, size, flags: libc::O_RDWR as u32, ..Default::default() };
    let r = h.call(&Request::new(node, O::Read(arg))).unwrap();
    if r.header.error != 0 {
        return Err(r.header.error);
    }
    Ok(r.body)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn round_trip(flow: Flow) {
    let mut r = rig(flow);
    let (node, fh) = create(&mut r.host, b"f");
    let data = pattern(70_000);
    assert_eq!(write(&mut r.host, node, fh, 0, &data), Ok(70_000));
    assert_eq!(read(&mut r.host, node, fh, 0, 70_000).unwrap(), data);
    assert_eq!(read(&mut r.host, node, fh, 69_990, 100).unwrap(), data[69_990..]);
    let c = r.flow.dma().counters();
    assert!(c.read_bytes >= 70_000 && c.written_bytes >= 70_010, "{c:?}");
    assert_eq!(r.probe.in_flight(), 0);
}

#[test]
fn snap_flow_serves_the_mem_backend() {
    round_trip(Flow::Snap);
}

#[test]
fn doca_flow_serves_the_mem_backend() {
    round_trip(Flow::Doca);
}

#[test]
fn snap_dma_failure_aborts_the_request_once() {
    let mut r = rig(Flow::Snap);
    let (node, fh) = create(&mut r.host, b"f");
    let before = r.probe.counters();
    // The next DMA is the fetch of the in-header: SNAP aborts, the chain returns empty.
    r.flow.dma().fail_op(r.flow.dma().ops());
    let got = r.host.call(&Request::new(node, O::Getattr(abi::GetattrIn::default())));
    assert!(got.is_err(), "an aborted request has no reply: {got:?}");
    let after = r.probe.counters();
    assert_eq!(after.returned - before.returned, 1, "returned exactly once");
    assert_eq!(r.flow.stats().dma_failed.load(Ordering::Relaxed), 1);
    assert_eq!(r.flow.stats().handled.load(Ordering::Relaxed), before.fetched, "the backend never saw it");
    // A failure while writing the reply back aborts too, after the backend ran.
    let ops = r.flow.dma().ops();
    r.flow.dma().fail_op(ops + 2);
    assert!(r.host.call(&Request::new(node, O::Getattr(abi::GetattrIn::default()))).is_err());
    // The device and the session are fine afterwards.
    assert_eq!(write(&mut r.host, node, fh, 0, b"still here"), Ok(10));
    assert_eq!(read(&mut r.host, node, fh, 0, 10).unwrap(), b"still here");
    assert_eq!(r.probe.in_flight(), 0);
}

#[test]
fn doca_dma_failure_answers_eio() {
    let mut r = rig(Flow::Doca);
    let (node, fh) = create(&mut r.host, b"f");
    assert_eq!(write(&mut r.host, node, fh, 0, b"before"), Ok(6));
    // WRITE: op 0 = headers, op 1 = the payload task. Failing it answers EIO and the
    // backend never runs, so the file keeps its content.
    r.flow.dma().fail_op(r.flow.dma().ops() + 1);
    assert_eq!(write(&mut r.host, node, fh, 0, b"AFTER!"), Err(-libc::EIO));
    assert_eq!(read(&mut r.host, node, fh, 0, 6).unwrap(), b"before");
    // READ: op 0 = headers, op 1 = the dataout task: EIO after the backend ran.
    r.flow.dma().fail_op(r.flow.dma().ops() + 1);
    assert_eq!(read(&mut r.host, node, fh, 0, 6), Err(-libc::EIO));
    assert_eq!(r.flow.stats().dma_failed.load(Ordering::Relaxed), 2);
    assert_eq!(read(&mut r.host, node, fh, 0, 6).unwrap(), b"before");
}

fn reset_mid_request(flow: Flow) {
    let mut r = rig(flow);
    let (node, _) = create(&mut r.host, b"f");
    r.parking.park.store(true, Ordering::Release);
    let _token = r.host.submit(&Request::new(node, O::Getattr(abi::GetattrIn::default()))).unwrap();
    r.host.queue().kick().unwrap();
    while r.parking.parked.lock().is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let before = r.probe.counters();
    r.host.reset().unwrap();
    let written = r.flow.dma().counters().written_bytes;
    // The backend answers after the reset: nothing may reach host memory or the rings.
    r.parking.release();
    while r.probe.in_flight() > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    r.host.init().unwrap();
    let after = r.probe.counters();
    assert_eq!(after.resets, before.resets + 1);
    assert_eq!(after.stale, before.stale + 1, "the old request completed once, and was dropped");
    assert_eq!(r.flow.stats().stale.load(Ordering::Relaxed), 1);
    // Only the new INIT's reply was written to the host since the reset.
    let init_reply = (std::mem::size_of::<abi::OutHeader>() + std::mem::size_of::<abi::InitOut>()) as u64;
    assert_eq!(r.flow.dma().counters().written_bytes - written, init_reply);
    // The new session works; the old node id is gone with the old session's lookups.
    let (node2, fh2) = create(&mut r.host, b"g");
    assert_eq!(write(&mut r.host, node2, fh2, 0, b"x"), Ok(1));
    assert_eq!(r.probe.in_flight(), 0);
}

#[test]
fn snap_host_reset_mid_request_drops_the_late_reply() {
    reset_mid_request(Flow::Snap);
}

#[test]
fn doca_host_reset_mid_request_drops_the_late_reply() {
    reset_mid_request(Flow::Doca);
}

#[test]
fn shutdown_waits_for_requests_in_flight() {
    let mut r = rig(Flow::Snap);
    r.parking.park.store(true, Ordering::Release);
    r.host.submit(&Request::new(ROOT_ID, O::Getattr(abi::GetattrIn::default()))).unwrap();
    r.host.queue().kick().unwrap();
    while r.parking.parked.lock().is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let released = Arc::new(AtomicBool::new(false));
    let running = r.running.take().unwrap();
    let seen = released.clone();
    // What shutdown saw when it returned: it must not return before the release.
    let stopper = std::thread::spawn(move || {
        running.shutdown();
        seen.load(Ordering::Acquire)
    });
    std::thread::sleep(Duration::from_millis(20));
    released.store(true, Ordering::Release);
    r.parking.release();
    assert!(stopper.join().unwrap(), "shutdown returned with a request in flight");
    assert_eq!(r.probe.in_flight(), 0);
    assert_eq!(r.probe.counters().stale, 0);
}

#[test]
fn a_queue_larger_than_queue_depth_is_not_used() {
    let fs = Arc::new(MemFs::new(MemConfig::default()));
    let d = Dispatcher::new(SessionConfig::default(), move |_| Ok(fs.clone() as Arc<dyn dpfs_core::FileSystem>));
    d.register_device(DeviceId(0)).unwrap();
    let spec =
        DeviceSpec { id: DeviceId(0), pf_id: 0, vf_id: None, tag: "dpfs-0".into(), queue_depth: 16, mock: false };
    let bar = Bar::new();
    let dev = ModelDevice::new(spec, bar.clone(), Arc::new(d));
    let probe = dev.probe();
    let poll = PollConfig { nthreads: 1, polling_interval: Duration::from_micros(20), mock_period: Duration::ZERO };
    let running = SnapHal::new(vec![Box::new(dev)], poll).unwrap().start();
    let opts = HostOptions { queue_size: 64, timeout: Duration::from_millis(300), ..Default::default() };
    let mut host = ModelHost::new(bar, opts).unwrap();
    assert!(host.init().is_err(), "a 64-entry ring on a 16-entry device must not be served");
    assert_eq!(probe.counters().fetched, 0);
    running.shutdown();
}
