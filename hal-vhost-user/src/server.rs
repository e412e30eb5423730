//! Listening sockets and the accept loop of each device.
//!
//! Each device owns one listening socket and one thread that accepts a frontend, runs a
//! `VhostUserDaemon` for it until it disconnects, resets the device's session and goes
//! back to accepting: a guest that reboots (or a QEMU that restarts) finds the daemon
//! still there. A [`ShutdownTrigger`] stops accepting, closes live connections, lets
//! requests in flight finish and makes [`Server::wait`] return.

use crate::backend::{DeviceShared, FsBackend};
use crate::config::DeviceConfig;
use crate::stats::DeviceStats;
use crate::Error;
use dpfs_core::{DeviceId, Handler};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use vhost::vhost_user::Listener;
use vhost_user_backend::{ShutdownHandle, VhostUserDaemon};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

/// How long a disconnect or shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// Where a device listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketSpec {
    /// Bind a Unix socket at this path (a stale socket file is replaced, a live one is not).
    Path(PathBuf),
    /// Use this already listening socket (inherited from a service manager or a parent).
    Fd(RawFd),
}

impl std::fmt::Display for SocketSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SocketSpec::Path(p) => write!(f, "{}", p.display()),
            SocketSpec::Fd(fd) => write!(f, "fd {fd}"),
        }
    }
}

/// Binds a listening socket at `path`.
///
/// An existing socket file is probed first: if a daemon accepts on it the bind fails with
/// [`Error::SocketInUse`]; if nobody does (a daemon died without cleaning up) it is
/// removed. Anything that is not a socket is left alone ([`Error::NotASocket`]).
pub fn bind_socket(path: &Path) -> Result<UnixListener, Error> {
    let listen_err = |source| Error::Listen { path: path.to_owned(), source };
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => return Err(Error::NotASocket(path.to_owned())),
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(Error::SocketInUse(path.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing stale socket");
                std::fs::remove_file(path).map_err(listen_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(listen_err(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(listen_err(e)),
    }
    UnixListener::bind(path).map_err(listen_err)
}

/// A socket file we created, removed when the server ends if it is still ours.
struct OwnedPath {
    path: PathBuf,
    ino: (u64, u64),
}

impl OwnedPath {
    fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if (m.dev(), m.ino()) == self.ino => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot remove socket");
                }
            }
            _ => tracing::debug!(path = %self.path.display(), "socket file replaced or gone; left alone"),
        }
    }
}

struct ShutdownState {
    requested: AtomicBool,
    event: EventFd,
    listeners: Mutex<Vec<Arc<UnixListener>>>,
    /// The live connection of each device.
    connections: Mutex<HashMap<DeviceId, ShutdownHandle>>,
}

/// Stops a [`Server`]; cheap to clone, callable from any thread (e.g. a signal thread).
#[derive(Clone)]
pub struct ShutdownTrigger(Arc<ShutdownState>);

impl ShutdownTrigger {
    /// Stops accepting and closes every frontend connection. Idempotent.
    pub fn trigger(&self) {
        let s = &self.0;
        if s.requested.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = s.event.write(1);
        for l in s.listeners.lock().iter() {
            // SAFETY: shutdown(2) on a socket we keep open (the Arc holds the fd) only
            // changes its state; a thread blocked in accept() on it wakes with an error.
            unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
        }
        for c in s.connections.lock().values() {
            c.shutdown();
        }
    }

    /// Whether shutdown was requested.
    pub fn is_triggered(&self) -> bool {
        self.0.requested.load(Ordering::Acquire)
    }
}

/// A running set of devices, one accept thread each.
pub struct Server {
    handler: Arc<dyn Handler>,
    devices: Vec<Arc<DeviceShared>>,
    threads: Vec<JoinHandle<()>>,
    owned_paths: Vec<OwnedPath>,
    shutdown: ShutdownTrigger,
}

impl Server {
    /// Binds every socket, registers every device with `handler` and starts accepting.
    /// Nothing is left bound or registered if any step fails.
    pub fn start(handler: Arc<dyn Handler>, devices: Vec<(DeviceConfig, SocketSpec)>) -> Result<Server, Error> {
        for (cfg, _) in &devices {
            cfg.validate()?;
        }
        let shutdown = ShutdownTrigger(Arc::new(ShutdownState {
            requested: AtomicBool::new(false),
            event: EventFd::new(libc::EFD_CLOEXEC)?,
            listeners: Mutex::new(Vec::new()),
            connections: Mutex::new(HashMap::new()),
        }));
        let mut server = Server {
            handler: handler.clone(),
            devices: Vec::new(),
            threads: Vec::new(),
            owned_paths: Vec::new(),
            shutdown,
        };
        let mut bound = Vec::new();
        for (cfg, spec) in devices {
            let listener = match &spec {
                SocketSpec::Path(p) => {
                    let l = bind_socket(p)?;
                    let m = std::fs::symlink_metadata(p)?;
                    server.owned_paths.push(OwnedPath { path: p.clone(), ino: (m.dev(), m.ino()) });
                    l
                }
                SocketSpec::Fd(fd) => listener_from_fd(*fd)?,
            };
            handler.register_device(cfg.id)?;
            let stats = Arc::new(DeviceStats::new(cfg.num_queues()));
            server.devices.push(Arc::new(DeviceShared { config: cfg, handler: handler.clone(), stats }));
            bound.push(Arc::new(listener));
        }
        for (dev, listener) in server.devices.clone().into_iter().zip(bound) {
            server.shutdown.0.listeners.lock().push(listener.clone());
            let trigger = server.shutdown.clone();
            let name = format!("dpfs-vu-{}", dev.config.id.0);
            let t = std::thread::Builder::new().name(name).spawn(move || accept_loop(dev, listener, trigger))?;
            server.threads.push(t);
        }
        Ok(server)
    }

    /// A handle that stops the server.
    pub fn shutdown_trigger(&self) -> ShutdownTrigger {
        self.shutdown.clone()
    }

    /// Each device's configuration and counters.
    pub fn devices(&self) -> Vec<(DeviceConfig, Arc<DeviceStats>)> {
        self.devices.iter().map(|d| (d.config.clone(), d.stats.clone())).collect()
    }

    /// Waits until shutdown has been triggered and every device has stopped; unregisters
    /// the devices and removes the socket files this server created.
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a device thread panicked");
            }
        }
        self.cleanup();
    }

    fn cleanup(&mut self) {
        for d in self.devices.drain(..) {
            self.handler.unregister_device(d.config.id);
        }
        for p in self.owned_paths.drain(..) {
            p.remove();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown.trigger();
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
        self.cleanup();
    }
}

fn listener_from_fd(fd: RawFd) -> Result<UnixListener, Error> {
    let path = PathBuf::from(format!("fd {fd}"));
    // SAFETY: fcntl(F_GETFD) only queries the descriptor; it fails with EBADF if not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(Error::Listen { path, source: io::Error::last_os_error() });
    }
    // SAFETY: the user handed this descriptor to us (--fd) and nothing else in the process
    // owns it; from here on the listener owns and closes it.
    let l = unsafe { UnixListener::from_raw_fd(fd) };
    // A socket that is not listening (or not a Unix socket) fails here, not at accept time.
    l.local_addr().map_err(|source| Error::Listen { path, source })?;
    Ok(l)
}

/// Waits until `listener` has a connection (true) or shutdown was requested (false).
fn wait_connection(listener: RawFd, stop: RawFd) -> io::Result<bool> {
    loop {
        let mut fds = [
            libc::pollfd { fd: listener, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: stop, events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: `fds` is a valid array of two pollfd structs for the whole call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if fds[1].revents != 0 {
            return Ok(false);
        }
        if fds[0].revents & libc::POLLIN != 0 {
            return Ok(true);
        }
        if fds[0].revents != 0 {
            return Err(io::Error::other("listening socket failed"));
        }
    }
}

fn accept_loop(dev: Arc<DeviceShared>, listener: Arc<UnixListener>, shutdown: ShutdownTrigger) {
    dpfs_core::thread_role::enter(dpfs_core::ThreadRole::VhostUserAccept);
    let id = dev.config.id;
    loop {
        if shutdown.is_triggered() {
            break;
        }
        match wait_connection(listener.as_raw_fd(), shutdown.0.event.as_raw_fd()) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                tracing::error!(device = %id, error = %e, "cannot wait for a frontend");
                break;
            }
        }
        if shutdown.is_triggered() {
            break;
        }
        if let Err(e) = serve_connection(&dev, &listener, &shutdown) {
            tracing::warn!(device = %id, error = %e, "frontend connection failed");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    tracing::debug!(device = %id, "device stopped accepting");
}

/// Accepts one frontend and serves it until it disconnects or shutdown is requested.
fn serve_connection(dev: &Arc<DeviceShared>, listener: &UnixListener, shutdown: &ShutdownTrigger) -> Result<(), Error> {
    let id = dev.config.id;
    let daemon_err = |msg: String| Error::Daemon { device: id, msg };
    let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
    let backend = Arc::new(FsBackend::new(dev.clone(), mem.clone()));
    let mut daemon =
        VhostUserDaemon::new(format!("dpfs-vu-{}-conn", id.0), backend, mem).map_err(|e| daemon_err(e.to_string()))?;
    let mut l = Listener::from(listener.try_clone()?);
    daemon.start(&mut l).map_err(|e| daemon_err(e.to_string()))?;
    drop(l);
    dev.stats.connected();
    tracing::info!(device = %id, tag = %dev.config.tag, "frontend connected");
    let handle = daemon.shutdown_handle();
    if let Some(h) = &handle {
        shutdown.0.connections.lock().insert(id, h.clone());
        if shutdown.is_triggered() {
            h.shutdown();
        }
    }
    let result = daemon.wait();
    shutdown.0.connections.lock().remove(&id);
    // Stop the pollers (dropping the daemon joins them), let requests in flight finish,
    // then forget the session so the next frontend starts with INIT.
    drop(daemon);
    if !dev.stats.drain(None, DRAIN) {
        tracing::warn!(device = %id, in_flight = dev.stats.in_flight(), "requests still in flight after disconnect");
    }
    dev.stats.bump_all();
    dev.handler.reset_device(id);
    match result {
        Ok(()) => tracing::info!(device = %id, "frontend disconnected"),
        Err(e) => tracing::info!(device = %id, reason = %e, "frontend connection ended"),
    }
    Ok(())
}
