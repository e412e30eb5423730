//! `dpfs list-emulation-managers`: which RDMA devices of this DPU can emulate virtio-fs
//! (and virtio-blk, virtio-net, NVMe) functions, their physical functions and queue limits.
//!
//! - [`prm`]: the DevX command boxes and their pure decoders;
//! - [`verbs`]: libibverbs and libmlx5 loaded at run time (no build-time dependency);
//! - this module: the discovery logic over the [`Rdma`] trait (so every failure path is
//!   tested with a fake), and the report.

pub mod prm;
pub mod verbs;

use prm::{DecodeError, EmulatedFunction, EmulationCaps, EmulationType, GeneralCaps, HCA_CAP_OUT};
use serde::Serialize;

/// Why the device list could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NoRdma {
    /// libibverbs is not installed.
    LibraryMissing {
        /// The loader's message.
        detail: String,
    },
    /// The kernel has no RDMA support (ibv_get_device_list failed).
    NoKernelSupport {
        /// errno.
        errno: i32,
    },
    /// RDMA works but there is no device.
    NoDevices,
}

impl std::fmt::Display for NoRdma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoRdma::LibraryMissing { detail } => write!(f, "no RDMA here: libibverbs is not installed ({detail})"),
            NoRdma::NoKernelSupport { errno } => write!(
                f,
                "no RDMA here: the kernel offers no RDMA devices (ibv_get_device_list: {})",
                std::io::Error::from_raw_os_error(*errno)
            ),
            NoRdma::NoDevices => write!(f, "no RDMA devices: not a BlueField (or its driver is not loaded)"),
        }
    }
}

/// An open device that runs DevX general commands.
pub trait Devx {
    /// Runs one command; `Err(errno)` if the call itself failed.
    fn cmd(&self, inbox: &[u8], out: &mut [u8]) -> Result<(), i32>;
}

/// The verbs entry points discovery needs.
pub trait Rdma {
    /// Device names.
    fn devices(&self) -> Result<Vec<String>, NoRdma>;
    /// True if the mlx5 provider drives the device.
    fn is_mlx5(&self, name: &str) -> bool;
    /// Opens the device with DevX.
    fn open(&self, name: &str) -> Result<Box<dyn Devx + '_>, i32>;
}

/// What one device is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum DeviceStatus {
    /// Not an mlx5 device: DevX does not apply.
    NotMlx5,
    /// Could not be opened with DevX.
    OpenFailed {
        /// errno.
        errno: i32,
        /// Explanation.
        hint: String,
    },
    /// A command failed or its answer was malformed.
    QueryFailed {
        /// Which command.
        query: String,
        /// What went wrong.
        error: String,
    },
    /// Manages no emulation type.
    NotAManager,
    /// An emulation manager.
    Manager {
        /// General capabilities.
        caps: GeneralCaps,
        /// Per managed type.
        emulations: Vec<Emulation>,
    },
}

/// One managed emulation type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Emulation {
    /// The type.
    #[serde(rename = "type")]
    pub kind: EmulationType,
    /// Queue limits (virtio types), or why they are unknown.
    pub limits: Result<EmulationCaps, String>,
    /// Its physical functions, or why they are unknown.
    pub functions: Result<Vec<EmulatedFunction>, String>,
}

/// One RDMA device.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Device {
    /// `mlx5_0`…
    pub name: String,
    /// What it is.
    pub status: DeviceStatus,
}

/// The whole answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Discovery {
    /// Set when there is nothing to look at.
    pub no_rdma: Option<NoRdma>,
    /// Devices looked at.
    pub devices: Vec<Device>,
}

fn query(devx: &dyn Devx, inbox: &[u8], out_len: usize) -> Result<Vec<u8>, String> {
    let mut out = vec![0u8; out_len];
    devx.cmd(inbox, &mut out).map_err(|e| format!("DevX command failed: {}", std::io::Error::from_raw_os_error(e)))?;
    Ok(out)
}

fn describe(devx: &dyn Devx) -> DeviceStatus {
    let out = match query(devx, &prm::query_hca_cap_in(0), HCA_CAP_OUT) {
        Ok(o) => o,
        Err(error) => return DeviceStatus::QueryFailed { query: "QUERY_HCA_CAP general".into(), error },
    };
    let caps = match prm::decode_general_caps(&out) {
        Ok(c) => c,
        Err(e) => return DeviceStatus::QueryFailed { query: "QUERY_HCA_CAP general".into(), error: e.to_string() },
    };
    if caps.manages.is_empty() {
        return DeviceStatus::NotAManager;
    }
    let emulations = caps
        .manages
        .iter()
        .map(|&kind| {
            let limits = if kind == EmulationType::Nvme {
                Err("NVMe limits are not decoded".to_string())
            } else {
                query(devx, &prm::query_hca_cap_in(kind.cap_op_mod()), HCA_CAP_OUT)
                    .and_then(|o| prm::decode_emulation_caps(&o).map_err(|e: DecodeError| e.to_string()))
            };
            let room = limits.as_ref().map_or(64, |l| usize::from(l.max_emulated_devices).max(1));
            let functions = query(devx, &prm::query_functions_in(kind.functions_op_mod(), 0), 16 + 8 * room)
                .and_then(|o| prm::decode_functions(&o).map_err(|e| e.to_string()));
            Emulation { kind, limits, functions }
        })
        .collect();
    DeviceStatus::Manager { caps, emulations }
}

/// Looks at every RDMA device.
pub fn discover(rdma: &dyn Rdma) -> Discovery {
    let names = match rdma.devices() {
        Ok(n) if n.is_empty() => return Discovery { no_rdma: Some(NoRdma::NoDevices), devices: vec![] },
        Ok(n) => n,
        Err(e) => return Discovery { no_rdma: Some(e), devices: vec![] },
    };
    let devices = names
        .into_iter()
        .map(|name| {
            let status = if !rdma.is_mlx5(&name) {
                DeviceStatus::NotMlx5
            } else {
                match rdma.open(&name) {
                    Ok(devx) => describe(devx.as_ref()),
                    Err(errno) => DeviceStatus::OpenFailed {
                        errno,
                        hint: if errno == libc::EPERM || errno == libc::EACCES {
                            "DevX needs privileges: run as root".into()
                        } else {
                            std::io::Error::from_raw_os_error(errno).to_string()
                        },
                    },
                }
            };
            Device { name, status }
        })
        .collect();
    Discovery { no_rdma: None, devices }
}

impl std::fmt::Display for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(n) = &self.no_rdma {
            return writeln!(f, "{n}");
        }
        for d in &self.devices {
            match &d.status {
                DeviceStatus::NotMlx5 => writeln!(f, "{}: not an mlx5 device", d.name)?,
                DeviceStatus::OpenFailed { hint, .. } => writeln!(f, "{}: cannot open with DevX: {hint}", d.name)?,
                DeviceStatus::QueryFailed { query, error } => writeln!(f, "{}: {query}: {error}", d.name)?,
                DeviceStatus::NotAManager => writeln!(f, "{}: not an emulation manager", d.name)?,
                DeviceStatus::Manager { caps, emulations } => {
                    writeln!(
                        f,
                        "{}: emulation manager{}",
                        d.name,
                        if caps.hotplug_manager { " (hot-plug capable)" } else { "" }
                    )?;
                    for e in emulations {
                        match &e.limits {
                            Ok(l) => writeln!(
                                f,
                                "  {}: up to {} PFs, {} virtqueues each",
                                e.kind.name(),
                                l.max_emulated_devices,
                                l.max_num_virtio_queues
                            )?,
                            Err(why) => writeln!(f, "  {}: limits unknown ({why})", e.kind.name())?,
                        }
                        match &e.functions {
                            Ok(fs) if fs.is_empty() => writeln!(f, "    no PFs configured in firmware")?,
                            Ok(fs) => {
                                for pf in fs {
                                    let vfs = pf.max_num_vfs.map_or("unknown".to_string(), |n| n.to_string());
                                    writeln!(f, "    PF {} vhca {} max_num_vfs {vfs}", pf.pci, pf.vhca_id)?;
                                }
                            }
                            Err(why) => writeln!(f, "    PFs unknown ({why})")?,
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
