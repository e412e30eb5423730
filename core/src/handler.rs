//! The HAL-facing side of core: the [`Handler`] a HAL drives, and the [`Dispatcher`] that
//! implements it over one backend instance per device.

use crate::device::Device;
use crate::fs::FileSystem;
use crate::request::{DeviceId, Request};
use crate::session::SessionConfig;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// Errors of device management.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandlerError {
    /// The device id is already registered.
    #[error("device {0} is already registered")]
    DeviceExists(DeviceId),
    /// The backend could not be created for the device.
    #[error("no backend for device {0}: {1}")]
    Backend(DeviceId, String),
}

/// What a HAL calls. Implementations are shared by all poller threads.
pub trait Handler: Send + Sync + 'static {
    /// A device appeared. Called before any of its requests.
    fn register_device(&self, dev: DeviceId) -> Result<(), HandlerError>;
    /// A device went away. Requests still in flight complete normally.
    fn unregister_device(&self, dev: DeviceId);
    /// The driver reset the device or disconnected: drop its session state.
    fn reset_device(&self, dev: DeviceId);
    /// Handles one request; the request is always completed, now or later.
    fn handle(&self, req: Request);
}

type Factory = dyn Fn(DeviceId) -> Result<Arc<dyn FileSystem>, String> + Send + Sync;

/// Routes requests to per-device sessions, each with its own backend instance so tenants
/// never share a namespace by accident.
pub struct Dispatcher {
    factory: Box<Factory>,
    config: SessionConfig,
    devices: RwLock<HashMap<DeviceId, Arc<Device>>>,
}

impl Dispatcher {
    /// A dispatcher that creates a backend per device with `factory`.
    pub fn new(
        config: SessionConfig,
        factory: impl Fn(DeviceId) -> Result<Arc<dyn FileSystem>, String> + Send + Sync + 'static,
    ) -> Dispatcher {
        Dispatcher { factory: Box::new(factory), config, devices: RwLock::new(HashMap::new()) }
    }

    /// The device, for HALs that keep it per queue and call [`Device::handle`] directly.
    pub fn device(&self, dev: DeviceId) -> Option<Arc<Device>> {
        self.devices.read().get(&dev).cloned()
    }

    /// All registered devices.
    pub fn devices(&self) -> Vec<Arc<Device>> {
        let mut v: Vec<_> = self.devices.read().values().cloned().collect();
        v.sort_by_key(|d| d.id());
        v
    }
}

impl Handler for Dispatcher {
    fn register_device(&self, dev: DeviceId) -> Result<(), HandlerError> {
        let mut devices = self.devices.write();
        if devices.contains_key(&dev) {
            return Err(HandlerError::DeviceExists(dev));
        }
        let fs = (self.factory)(dev).map_err(|e| HandlerError::Backend(dev, e))?;
        devices.insert(dev, Arc::new(Device::new(dev, fs, self.config.clone())));
        Ok(())
    }

    fn unregister_device(&self, dev: DeviceId) {
        if let Some(d) = self.devices.write().remove(&dev) {
            d.reset();
        }
    }

    fn reset_device(&self, dev: DeviceId) {
        if let Some(d) = self.device(dev) {
            d.reset();
        }
    }

    fn handle(&self, req: Request) {
        match self.device(req.device) {
            Some(d) => d.handle(req),
            None => {
                tracing::warn!(device = %req.device, "request for an unregistered device");
                // Completing with 0 bytes returns the chain; there is no session to answer from.
                req.complete(0)
            }
        }
    }
}
