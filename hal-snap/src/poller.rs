//! The poller threads: devices partitioned over `nthreads` threads (framework-owned loops,
//! DPFS's `dpfs_hal_loop`), or polled by the backend itself through
//! [`SnapHal::poll_io`]/[`SnapHal::poll_mgmt`]; mock devices polled once a second; shutdown
//! that suspends every device and waits until all of them report suspended.

use crate::config::DeviceSpec;
use crate::contract::Controller;
use crate::Error;
use dpfs_core::DeviceId;
use parking_lot::Mutex;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Busy-polling passes between two management polls (DPFS: 10 000).
pub const MGMT_EVERY: u64 = 10_000;

/// Splits `ndev` devices into `nthreads` contiguous blocks; thread 0 also takes the
/// remainder (as DPFS does). Empty blocks only when `nthreads > ndev`.
pub fn partition(ndev: usize, nthreads: usize) -> Vec<Range<usize>> {
    let t = nthreads.max(1);
    let per = ndev / t;
    let first = per + ndev % t;
    let mut out = Vec::with_capacity(t);
    let mut start = 0;
    for i in 0..t {
        let n = if i == 0 { first } else { per };
        out.push(start..start + n);
        start += n;
    }
    out
}

type Slot = Arc<Mutex<Box<dyn Controller>>>;

/// Poll timing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollConfig {
    /// Poller threads.
    pub nthreads: usize,
    /// 0 = busy polling; else the sleep between passes (both paths polled after it).
    pub polling_interval: Duration,
    /// Period of the mock-device thread (DPFS: one second).
    pub mock_period: Duration,
}

/// The DPU HAL: its devices and how they are polled.
pub struct SnapHal {
    devices: Vec<Slot>,
    poll: PollConfig,
}

impl SnapHal {
    /// Wraps controllers (device ids must be their index, as `SnapHalConfig::devices`
    /// numbers them).
    pub fn new(controllers: Vec<Box<dyn Controller>>, poll: PollConfig) -> Result<SnapHal, Error> {
        for (i, c) in controllers.iter().enumerate() {
            if c.spec().id != DeviceId(i as u32) {
                return Err(Error::Config(format!("device {} is at index {i}", c.spec().id)));
            }
        }
        let real = controllers.iter().filter(|c| !c.spec().mock).count();
        if poll.nthreads == 0 || poll.nthreads > real.max(1) {
            return Err(Error::Config(format!("nthreads {} for {real} devices", poll.nthreads)));
        }
        Ok(SnapHal { devices: controllers.into_iter().map(|c| Arc::new(Mutex::new(c))).collect(), poll })
    }

    /// Number of poller threads (`dpfs_hal_nthreads`).
    pub fn nthreads(&self) -> usize {
        self.poll.nthreads
    }

    /// The devices, in id order.
    pub fn specs(&self) -> Vec<DeviceSpec> {
        self.devices.iter().map(|d| d.lock().spec().clone()).collect()
    }

    /// One data-path pass over `dev` from a backend-owned loop (`dpfs_hal_poll_io`);
    /// requests are tagged with thread `thread`.
    pub fn poll_io(&self, dev: DeviceId, thread: u16) -> Result<usize, Error> {
        Ok(self.slot(dev)?.lock().progress_io(thread))
    }

    /// One management pass over `dev` (`dpfs_hal_poll_mmio`): call it a few times a second.
    pub fn poll_mgmt(&self, dev: DeviceId) -> Result<(), Error> {
        self.slot(dev)?.lock().progress_mgmt();
        Ok(())
    }

    fn slot(&self, dev: DeviceId) -> Result<&Slot, Error> {
        self.devices.get(dev.0 as usize).ok_or(Error::NoDevice(dev))
    }

    /// Starts the framework-owned loops: `nthreads` pollers over the real devices, plus a
    /// mock thread if there are mock devices.
    pub fn start(&self) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let all: Arc<Vec<Slot>> = Arc::new(self.devices.clone());
        let real: Vec<Slot> = self.devices.iter().filter(|d| !d.lock().spec().mock).cloned().collect();
        let mock: Vec<Slot> = self.devices.iter().filter(|d| d.lock().spec().mock).cloned().collect();
        let mut threads = Vec::new();
        for (t, range) in partition(real.len(), self.poll.nthreads).into_iter().enumerate() {
            let mine: Vec<Slot> = real.get(range).map(<[Slot]>::to_vec).unwrap_or_default();
            let (stop, all, interval) = (stop.clone(), all.clone(), self.poll.polling_interval);
            threads.push(std::thread::spawn(move || poll_loop(t as u16, &mine, &all, &stop, interval)));
        }
        if !mock.is_empty() {
            let (stop, all, period) = (stop.clone(), all.clone(), self.poll.mock_period);
            let t = self.poll.nthreads as u16;
            threads.push(std::thread::spawn(move || poll_loop(t, &mock, &all, &stop, period)));
        }
        Running { stop, threads }
    }
}

/// Poller threads that are running.
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl Running {
    /// Suspends every device and waits until all are suspended and every thread exited
    /// (what DPFS does on SIGINT/SIGTERM). Returns the passes made by all threads.
    pub fn shutdown(self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
    }
}

/// One poller: I/O every pass, management every [`MGMT_EVERY`] passes when busy polling,
/// else sleep then both. After `stop`, suspend own devices once and keep polling until
/// every device of the HAL is suspended.
fn poll_loop(thread: u16, mine: &[Slot], all: &[Slot], stop: &AtomicBool, interval: Duration) -> u64 {
    let mut passes = 0u64;
    let mut suspending = false;
    loop {
        if !suspending && stop.load(Ordering::Acquire) {
            for d in mine {
                d.lock().suspend();
            }
            suspending = true;
        }
        if interval.is_zero() {
            for d in mine {
                d.lock().progress_io(thread);
            }
            if passes.is_multiple_of(MGMT_EVERY) {
                mine.iter().for_each(|d| d.lock().progress_mgmt());
            }
        } else {
            std::thread::sleep(interval);
            for d in mine {
                let mut d = d.lock();
                d.progress_io(thread);
                d.progress_mgmt();
            }
        }
        passes += 1;
        if suspending && all.iter().all(|d| d.try_lock().is_none_or(|d| d.is_suspended())) {
            // A device another thread holds right now is checked on the next pass.
            if all.iter().all(|d| d.lock().is_suspended()) {
                return passes;
            }
        }
        if interval.is_zero() && passes.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn partition_is_contiguous_and_thread_zero_takes_the_rest() {
        assert_eq!(partition(8, 3), vec![0..4, 4..6, 6..8]);
        assert_eq!(partition(4, 4), vec![0..1, 1..2, 2..3, 3..4]);
        assert_eq!(partition(5, 1), vec![0..5]);
        for n in 0..20 {
            for t in 1..6 {
                let p = partition(n, t);
                assert_eq!(p.len(), t);
                assert_eq!(p.iter().map(|r| r.len()).sum::<usize>(), n);
                assert!(p.windows(2).all(|w| w[0].end == w[1].start));
            }
        }
    }

    /// A device that needs `drain` more I/O passes after suspend before it is quiet.
    struct Fake {
        spec: DeviceSpec,
        io: Arc<AtomicUsize>,
        mgmt: Arc<AtomicUsize>,
        threads: Arc<Mutex<Vec<u16>>>,
        suspended: bool,
        drain: usize,
    }

    impl Controller for Fake {
        fn spec(&self) -> &DeviceSpec {
            &self.spec
        }
        fn progress_io(&mut self, thread: u16) -> usize {
            self.io.fetch_add(1, Ordering::Relaxed);
            let mut t = self.threads.lock();
            if !t.contains(&thread) {
                t.push(thread);
            }
            if self.suspended && self.drain > 0 {
                self.drain -= 1;
            }
            0
        }
        fn progress_mgmt(&mut self) {
            self.mgmt.fetch_add(1, Ordering::Relaxed);
        }
        fn suspend(&mut self) {
            self.suspended = true;
        }
        fn is_suspended(&self) -> bool {
            self.suspended && self.drain == 0
        }
    }

    type Fakes = (Vec<Box<dyn Controller>>, Vec<Arc<AtomicUsize>>, Vec<Arc<Mutex<Vec<u16>>>>);

    fn fakes(n: usize, mock: &[usize]) -> Fakes {
        let mut v: Vec<Box<dyn Controller>> = Vec::new();
        let mut io = Vec::new();
        let mut th = Vec::new();
        for i in 0..n {
            let spec = DeviceSpec {
                id: DeviceId(i as u32),
                pf_id: i as u16,
                vf_id: None,
                tag: format!("t-{i}"),
                queue_depth: 64,
                mock: mock.contains(&i),
            };
            let (a, t) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
            io.push(a.clone());
            th.push(t.clone());
            v.push(Box::new(Fake { spec, io: a, mgmt: Arc::default(), threads: t, suspended: false, drain: 100 }));
        }
        (v, io, th)
    }

    #[test]
    fn each_device_is_polled_by_its_own_thread_and_shutdown_drains() {
        let (c, io, threads) = fakes(5, &[4]);
        let poll = PollConfig { nthreads: 2, polling_interval: Duration::ZERO, mock_period: Duration::from_millis(1) };
        let hal = SnapHal::new(c, poll).unwrap();
        let running = hal.start();
        while io.iter().any(|n| n.load(Ordering::Relaxed) < 200) {
            std::thread::yield_now();
        }
        running.shutdown();
        // 4 real devices over 2 threads: [0,1] on thread 0, [2,3] on thread 1; mock on 2.
        let owners: Vec<Vec<u16>> = threads.iter().map(|t| t.lock().clone()).collect();
        assert_eq!(owners, vec![vec![0], vec![0], vec![1], vec![1], vec![2]]);
        assert!(hal.specs().iter().all(|s| s.id.0 < 5));
        for d in 0..5 {
            assert!(hal.devices[d].lock().is_suspended(), "device {d} not drained");
        }
    }

    #[test]
    fn backend_owned_polling_and_bad_ids() {
        let (c, io, _) = fakes(2, &[]);
        let hal =
            SnapHal::new(c, PollConfig { nthreads: 1, polling_interval: Duration::ZERO, mock_period: Duration::ZERO })
                .unwrap();
        hal.poll_io(DeviceId(1), 0).unwrap();
        hal.poll_mgmt(DeviceId(1)).unwrap();
        assert_eq!(io[1].load(Ordering::Relaxed), 1);
        assert_eq!(io[0].load(Ordering::Relaxed), 0);
        assert!(matches!(hal.poll_io(DeviceId(2), 0), Err(Error::NoDevice(DeviceId(2)))));
        let (c, _, _) = fakes(2, &[]);
        let bad = PollConfig { nthreads: 3, polling_interval: Duration::ZERO, mock_period: Duration::ZERO };
        assert!(SnapHal::new(c, bad).is_err());
    }
}
