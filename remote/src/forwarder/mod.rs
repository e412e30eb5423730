//! The DPU side: a core [`Handler`] that forwards every request of every device to the
//! gateway, unparsed past the in-header, and writes the replies straight into the guest's
//! writable segments. Each device has its own connection and gateway session; all run on
//! one tokio thread (`dpfs-remote`), so poller threads only queue and never wait on the
//! network.

mod conn;
mod direct;
mod link;

use crate::RemoteError;
use dpfs_core::{DeviceId, Handler, HandlerError, Request};
use dpfs_remote_wire::Key;
use link::Link;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How the forwarder reaches its gateway.
#[derive(Clone, Debug)]
pub struct ForwarderConfig {
    /// The gateway's addresses (tried in order).
    pub addrs: Vec<SocketAddr>,
    /// The pre-shared key.
    pub key: Key,
    /// This forwarder's name; device `n` is `<name>/<n>` on the gateway.
    pub name: String,
    /// Longest a request may wait for its reply before it is answered EIO.
    pub deadline: Duration,
    /// Longest a connection attempt (TCP and handshake) may take.
    pub connect_timeout: Duration,
}

impl ForwarderConfig {
    /// A configuration with the default deadline (30 s) and connect timeout (5 s).
    pub fn new(addrs: Vec<SocketAddr>, key: Key, name: String) -> ForwarderConfig {
        ForwarderConfig { addrs, key, name, deadline: Duration::from_secs(30), connect_timeout: Duration::from_secs(5) }
    }

    fn identity(&self, dev: DeviceId) -> String {
        format!("{}/{}", self.name, dev.0)
    }
}

struct Device {
    link: Arc<Link>,
    tasks: [JoinHandle<()>; 2],
}

/// The forwarding [`Handler`].
pub struct Forwarder {
    cfg: Arc<ForwarderConfig>,
    rt: tokio::runtime::Handle,
    devices: RwLock<HashMap<DeviceId, Device>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Forwarder {
    /// Starts the forwarder's network thread. Devices connect when they are registered.
    pub fn start(cfg: ForwarderConfig) -> std::io::Result<Forwarder> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new().name("dpfs-remote".into()).spawn(move || {
            let _ = rt.block_on(stopped);
        })?;
        Ok(Forwarder { cfg: Arc::new(cfg), rt: handle, devices: RwLock::new(HashMap::new()), _stop: stop })
    }
}

impl Handler for Forwarder {
    fn register_device(&self, dev: DeviceId) -> Result<(), HandlerError> {
        let mut devices = self.devices.write();
        if devices.contains_key(&dev) {
            return Err(HandlerError::DeviceExists(dev));
        }
        let (link, rx) = Link::new(self.cfg.identity(dev), self.cfg.deadline);
        let link = Arc::new(link);
        let tasks = [
            self.rt.spawn(conn::run(link.clone(), self.cfg.clone(), rx)),
            self.rt.spawn(conn::sweep(link.clone(), self.cfg.deadline)),
        ];
        devices.insert(dev, Device { link, tasks });
        Ok(())
    }

    fn unregister_device(&self, dev: DeviceId) {
        if let Some(d) = self.devices.write().remove(&dev) {
            for t in &d.tasks {
                t.abort();
            }
            d.link.fail_all(libc::EIO);
        }
    }

    fn reset_device(&self, dev: DeviceId) {
        if let Some(d) = self.devices.read().get(&dev) {
            d.link.reset();
        }
    }

    fn handle(&self, req: Request) {
        let link = self.devices.read().get(&req.device).map(|d| d.link.clone());
        match link {
            Some(l) => l.submit(req),
            None => {
                tracing::warn!(device = %req.device, "request for an unregistered device");
                req.complete(0)
            }
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for (_, d) in self.devices.get_mut().drain() {
            for t in &d.tasks {
                t.abort();
            }
            d.link.fail_all(libc::EIO);
        }
    }
}

/// Start-up check: connects to the gateway and proves the key, without opening a session.
/// Runs on a throwaway runtime on the calling thread (no thread is left behind, so the
/// caller may fork or unshare afterwards).
pub fn probe(cfg: &ForwarderConfig) -> Result<(), RemoteError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async { conn::connect(cfg, &format!("{}/probe", cfg.name), 0, true).await.map(|_| ()) })
}
