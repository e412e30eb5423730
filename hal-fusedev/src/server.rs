//! The reader threads of one mount and its orderly stop.
//!
//! Each thread reads one request at a time from its own descriptor (a clone of the
//! connection's, when the kernel allows it), hands it to the core [`Handler`] and reads the
//! next; the reply is written by whichever thread completes the request.

use crate::completion::{BufPool, FuseCompletion};
use crate::dev::{FuseDev, MIN_READ_BUFFER};
use crate::mount::{self, MountOptions};
use crate::Error;
use dpfs_core::segments::{IoSeg, SegList};
use dpfs_core::{DeviceId, Handler, Request, SessionConfig};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Room for the in-header and the WRITE/READ arguments on top of the data.
const HEADER_ROOM: usize = 4096;

/// Unmounts a [`FuseMount`] from another thread (a signal handler thread, a test): the
/// readers see the connection end and [`FuseMount::wait`] returns.
#[derive(Clone, Debug)]
pub struct Unmounter {
    path: PathBuf,
    /// Set once the mount is gone (we unmounted it, or the connection ended).
    gone: Arc<AtomicBool>,
    /// fusectl connection number, when it could be found.
    conn: Option<u64>,
}

impl Unmounter {
    /// Detaches the mount (`umount2(MNT_DETACH)`); a no-op if it is already gone.
    pub fn unmount(&self) -> io::Result<()> {
        if self.gone.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match mount::unmount(&self.path) {
            // Already unmounted by someone else (umount, fusermount -u).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => Ok(()),
            r => r,
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Aborts the FUSE connection (fusectl): requests in flight and later ones fail with
    /// ENOTCONN, and the readers stop. For a mount that stays busy after unmounting.
    pub fn abort(&self) -> io::Result<()> {
        match self.conn {
            Some(conn) => mount::abort_connection(conn),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "FUSE connection number unknown")),
        }
    }
}

/// A mounted file system and its reader threads.
pub struct FuseMount {
    unmounter: Unmounter,
    handler: Arc<dyn Handler>,
    device: DeviceId,
    threads: Vec<JoinHandle<()>>,
    exited: mpsc::Receiver<()>,
    running: usize,
}

impl FuseMount {
    /// Registers `device` with `handler`, mounts a new FUSE connection on
    /// `opts.mountpoint` and starts `opts.threads` readers. `session` must be the
    /// configuration the handler's sessions negotiate with: it sizes the buffers.
    pub fn mount(
        handler: Arc<dyn Handler>,
        device: DeviceId,
        session: &SessionConfig,
        opts: MountOptions,
    ) -> Result<FuseMount, Error> {
        handler.register_device(device)?;
        let prepared = match PreparedMount::mount(&opts) {
            Ok(p) => p,
            Err(e) => {
                handler.unregister_device(device);
                return Err(e);
            }
        };
        prepared.start_registered(handler, device, session, opts.threads)
    }

    /// Registers `device` with `handler` and starts `threads` readers on a connection
    /// mounted earlier (a daemon that confines itself in between: see [`PreparedMount`]).
    pub fn start(
        prepared: PreparedMount,
        handler: Arc<dyn Handler>,
        device: DeviceId,
        session: &SessionConfig,
        threads: usize,
    ) -> Result<FuseMount, Error> {
        if let Err(e) = handler.register_device(device) {
            let _ = prepared.unmounter.unmount();
            return Err(e.into());
        }
        prepared.start_registered(handler, device, session, threads)
    }
}

/// A FUSE connection mounted on the host whose readers have not started yet: the device
/// is opened and mounted while the process can still see the host, then the process may
/// confine itself (new namespaces, pivot_root) before [`FuseMount::start`].
pub struct PreparedMount {
    dev: FuseDev,
    unmounter: Unmounter,
}

impl PreparedMount {
    /// Opens `/dev/fuse` and mounts a new connection on `opts.mountpoint`.
    pub fn mount(opts: &MountOptions) -> Result<PreparedMount, Error> {
        let mut opts = opts.clone();
        opts.mountpoint =
            opts.mountpoint.canonicalize().map_err(|e| Error::MountPoint(opts.mountpoint.clone(), e.to_string()))?;
        let dev = FuseDev::open().map_err(Error::OpenDevice)?;
        mount::mount(&dev, &opts)?;
        let conn = connection_of(&opts.mountpoint);
        let unmounter = Unmounter { path: opts.mountpoint.clone(), gone: Arc::new(AtomicBool::new(false)), conn };
        Ok(PreparedMount { dev, unmounter })
    }

    /// A handle that unmounts (from the host's mount namespace) or aborts the connection.
    pub fn unmounter(&self) -> Unmounter {
        self.unmounter.clone()
    }

    fn start_registered(
        self,
        handler: Arc<dyn Handler>,
        device: DeviceId,
        session: &SessionConfig,
        threads: usize,
    ) -> Result<FuseMount, Error> {
        let PreparedMount { dev, unmounter } = self;
        let gone = unmounter.gone.clone();
        let conn = unmounter.conn;
        let mountpoint = unmounter.path.clone();
        let (tx, exited) = mpsc::channel();
        let mut fm = FuseMount { unmounter, handler: handler.clone(), device, threads: Vec::new(), exited, running: 0 };
        // The session clamps max_write to max_pages; READ replies are up to max_pages pages.
        let payload = (session.max_write as usize).max(session.max_pages as usize * 4096).max(4096);
        let threads = threads.clamp(1, u16::MAX as usize);
        let pool = BufPool::new((payload + HEADER_ROOM).max(MIN_READ_BUFFER), threads * 4);
        let dev = Arc::new(dev);
        for i in 0..threads {
            let tdev = if i == 0 {
                dev.clone()
            } else {
                match dev.try_clone_dev() {
                    Ok(d) => Arc::new(d),
                    Err(e) => {
                        tracing::debug!(error = %e, "FUSE_DEV_IOC_CLONE failed; threads share one descriptor");
                        dev.clone()
                    }
                }
            };
            let reader = Reader {
                index: i as u16,
                dev: tdev,
                pool: pool.clone(),
                handler: handler.clone(),
                device,
                gone: gone.clone(),
                _exit: ExitGuard(tx.clone()),
            };
            match std::thread::Builder::new().name(format!("dpfs-fuse-{i}")).spawn(move || reader.run()) {
                Ok(h) => {
                    fm.threads.push(h);
                    fm.running += 1;
                }
                Err(e) => {
                    // Unmount and stop the threads already started (if any).
                    if let Err(stop) = fm.stop(Duration::from_secs(5)) {
                        tracing::warn!(error = %stop, "cannot stop after a failed start");
                    }
                    return Err(Error::Thread(e));
                }
            }
        }
        tracing::debug!(mountpoint = %mountpoint.display(), threads, conn = ?conn, "mounted");
        Ok(fm)
    }
}

impl FuseMount {
    /// A handle that unmounts from another thread.
    pub fn unmounter(&self) -> Unmounter {
        self.unmounter.clone()
    }

    /// The mount point (canonical).
    pub fn mountpoint(&self) -> &Path {
        self.unmounter.path()
    }

    /// Blocks until the file system is unmounted (by [`Unmounter::unmount`], `umount`,
    /// `fusermount -u`) and every reader has stopped.
    pub fn wait(mut self) {
        while self.running > 0 {
            if self.exited.recv().is_err() {
                break;
            }
            self.running -= 1;
        }
        self.finish();
    }

    /// Unmounts and waits up to `timeout` for the readers to stop; if they do not (the
    /// mount is still in use), aborts the connection and waits `timeout` again.
    pub fn unmount(mut self, timeout: Duration) -> Result<(), Error> {
        self.stop(timeout)
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), Error> {
        if let Err(e) = self.unmounter.unmount() {
            tracing::warn!(error = %e, mountpoint = %self.mountpoint().display(), "cannot unmount");
        }
        if !self.wait_for(timeout) {
            tracing::warn!("mount still busy after unmounting; aborting the FUSE connection");
            if let Err(e) = self.unmounter.abort() {
                tracing::warn!(error = %e, "cannot abort the FUSE connection");
            }
            if !self.wait_for(timeout) {
                // The threads are detached; they end with the process.
                self.threads.clear();
                return Err(Error::StopTimeout(timeout * 2));
            }
        }
        self.finish();
        Ok(())
    }

    /// Waits for every reader until `timeout`; true if they all stopped.
    fn wait_for(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.exited.recv_timeout(left) {
                Ok(()) => self.running -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => return false,
                Err(mpsc::RecvTimeoutError::Disconnected) => self.running = 0,
            }
        }
        true
    }

    /// Joins the stopped readers and drops the device's session.
    fn finish(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.handler.unregister_device(self.device);
        self.running = 0;
    }
}

impl Drop for FuseMount {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            if let Err(e) = self.stop(Duration::from_secs(5)) {
                tracing::warn!(error = %e, "FUSE mount did not stop cleanly");
            }
        }
    }
}

/// Sends on drop, so the owner learns that a reader ended even if it panicked.
struct ExitGuard(mpsc::Sender<()>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

struct Reader {
    index: u16,
    dev: Arc<FuseDev>,
    pool: Arc<BufPool>,
    handler: Arc<dyn Handler>,
    device: DeviceId,
    gone: Arc<AtomicBool>,
    _exit: ExitGuard,
}

impl Reader {
    fn run(self) {
        dpfs_core::thread_role::enter(dpfs_core::ThreadRole::FuseReader);
        let mut buf = self.pool.get();
        loop {
            let n = match self.dev.read(&mut buf) {
                Ok(0) => {
                    tracing::warn!("empty read from /dev/fuse; stopping");
                    break;
                }
                Ok(n) => n,
                Err(e) => match e.raw_os_error() {
                    // Interrupted, or the request we were about to read was interrupted.
                    Some(libc::EINTR | libc::EAGAIN | libc::ENOENT) => continue,
                    // Unmounted or aborted: the connection is over.
                    Some(libc::ENODEV) => break,
                    _ => {
                        tracing::error!(error = %e, "cannot read from /dev/fuse; stopping this reader");
                        break;
                    }
                },
            };
            let mut request = std::mem::replace(&mut buf, self.pool.get());
            let mut reply = self.pool.get();
            // SAFETY: both boxes move into the completion below, which keeps their heap
            // memory (not moved by moving the Box) alive until the request completes.
            let r: SegList = std::iter::once(unsafe { IoSeg::new(request.as_mut_ptr(), n) }).collect();
            // SAFETY: as above.
            let w: SegList = std::iter::once(unsafe { IoSeg::new(reply.as_mut_ptr(), reply.len()) }).collect();
            let completion = FuseCompletion { dev: self.dev.clone(), pool: self.pool.clone(), request, reply };
            self.handler.handle(Request::new(self.device, 1, self.index, r, w, Box::new(completion)));
        }
        self.gone.store(true, Ordering::Release);
        self.pool.put(buf);
    }
}

/// The fusectl connection number of the FUSE mount on `path`, from `/proc/self/mountinfo`
/// (field 3 is `major:minor` of the super block, field 5 the mount point).
fn connection_of(path: &Path) -> Option<u64> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_str()?;
    // The last matching line is the topmost mount on that path.
    info.lines()
        .rev()
        .find_map(|line| {
            let mut f = line.split(' ');
            let devno = f.nth(2)?;
            let _root = f.next()?;
            let point = unescape(f.next()?);
            (point == want).then_some(devno)
        })
        .and_then(|devno| {
            let (major, minor) = devno.split_once(':')?;
            let (major, minor): (u64, u64) = (major.parse().ok()?, minor.parse().ok()?);
            Some((major << 20) | minor)
        })
}

/// Undoes mountinfo's octal escapes (`\040` for a space and so on).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let oct = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(&[x, y, z]) if c == b'\\' => {
                out.push((x - b'0').wrapping_mul(64).wrapping_add((y - b'0') * 8).wrapping_add(z - b'0'));
                i += 4;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape(r"/x\134y"), r"/x\y");
        assert_eq!(unescape(r"/short\04"), r"/short\04");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
