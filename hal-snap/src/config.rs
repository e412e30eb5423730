//! DPFS's configuration keys for the DPU HAL: `[dpfs] queue_depth` and `[snap_hal]
//! pf_ids, mock_pf_ids, emulation_manager (or DPFS's emu_manager), tag, nthreads,
//! polling_interval_usec`, checked as DPFS checks them (and a little more).

use crate::Error;
use dpfs_core::DeviceId;
use serde::Deserialize;

/// Queue depth of mock devices (DPFS creates them with 4 entries).
pub const MOCK_QUEUE_DEPTH: u16 = 4;

/// The `[dpfs]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DpfsSection {
    /// Virtqueue entries per queue; a power of two (SNAP fails with error 121 otherwise).
    #[serde(default = "default_depth")]
    pub queue_depth: u16,
}

fn default_depth() -> u16 {
    64
}

/// The `[snap_hal]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SnapHalSection {
    /// Physical functions served at full speed; the index is the device id.
    #[serde(default)]
    pub pf_ids: Vec<u16>,
    /// PFs created only so a host driver can bind them; polled once a second. Their device
    /// ids follow those of `pf_ids`.
    #[serde(default)]
    pub mock_pf_ids: Vec<u16>,
    /// RDMA device that manages the emulation (`mlx5_0`).
    #[serde(alias = "emu_manager", default = "default_manager")]
    pub emulation_manager: String,
    /// Tag prefix; device `n` is tagged `"<tag>-<n>"`.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Poller threads; each owns a contiguous block of the devices.
    #[serde(default = "default_threads")]
    pub nthreads: u16,
    /// 0 = busy polling (management polled once per 10 000 passes); otherwise the sleep
    /// between passes, after which both the I/O and the management path are polled.
    #[serde(default)]
    pub polling_interval_usec: u64,
}

fn default_manager() -> String {
    "mlx5_0".into()
}
fn default_tag() -> String {
    "dpfs".into()
}
fn default_threads() -> u16 {
    1
}

/// The parts of a DPFS configuration file the DPU HAL reads (other tables are ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapHalConfig {
    /// `[dpfs]`.
    pub dpfs: DpfsSection,
    /// `[snap_hal]`.
    pub hal: SnapHalSection,
}

/// One virtio-fs device to create on the DPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The id core sees (index in `pf_ids`, mock devices after them).
    pub id: DeviceId,
    /// PCI physical function.
    pub pf_id: u16,
    /// Virtual function, or `None` for the PF itself (DPFS: `vf_id = -1`).
    pub vf_id: Option<u16>,
    /// Tag the host mounts (`"<tag>-<id>"`).
    pub tag: String,
    /// Entries per virtqueue.
    pub queue_depth: u16,
    /// Polled once a second only.
    pub mock: bool,
}

/// Longest tag virtio-fs allows (36 bytes, no NUL needed).
pub const MAX_TAG: usize = 36;

impl SnapHalConfig {
    /// Parses a DPFS TOML file's text; unknown tables (backend sections) are ignored.
    pub fn from_toml(text: &str) -> Result<SnapHalConfig, Error> {
        #[derive(Deserialize)]
        struct File {
            dpfs: Option<DpfsSection>,
            snap_hal: Option<SnapHalSection>,
        }
        let f: File = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        let dpfs = f.dpfs.unwrap_or(DpfsSection { queue_depth: default_depth() });
        let hal = f.snap_hal.ok_or_else(|| Error::Config("missing [snap_hal] table".into()))?;
        let cfg = SnapHalConfig { dpfs, hal };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the rules DPFS states: depth a power of two, at least one PF, PFs not repeated
    /// and not both real and mock, `1 <= nthreads <= pf_ids.len()`, tags that fit.
    pub fn validate(&self) -> Result<(), Error> {
        let d = self.dpfs.queue_depth;
        if d == 0 || !d.is_power_of_two() {
            return Err(Error::Config(format!("[dpfs] queue_depth = {d}: must be a power of two >= 1")));
        }
        if self.hal.pf_ids.is_empty() {
            return Err(Error::Config("[snap_hal] pf_ids is empty: no device to serve".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for pf in self.hal.pf_ids.iter().chain(&self.hal.mock_pf_ids) {
            if !seen.insert(*pf) {
                return Err(Error::Config(format!(
                    "[snap_hal] PF {pf} is listed twice (pf_ids and mock_pf_ids must not overlap)"
                )));
            }
        }
        let n = self.hal.nthreads as usize;
        if n == 0 || n > self.hal.pf_ids.len() {
            return Err(Error::Config(format!(
                "[snap_hal] nthreads = {n}: must be between 1 and the number of pf_ids ({})",
                self.hal.pf_ids.len()
            )));
        }
        if self.hal.emulation_manager.is_empty() {
            return Err(Error::Config("[snap_hal] emulation_manager is empty".into()));
        }
        let longest = format!("{}-{}", self.hal.tag, seen.len().saturating_sub(1));
        if self.hal.tag.is_empty() || longest.len() > MAX_TAG {
            return Err(Error::Config(format!(
                "[snap_hal] tag {:?}: device tags must be 1..={MAX_TAG} bytes",
                self.hal.tag
            )));
        }
        Ok(())
    }

    /// The devices to create: `pf_ids` in order, then the mock PFs.
    pub fn devices(&self) -> Vec<DeviceSpec> {
        let real = self.hal.pf_ids.iter().map(|&pf| (pf, false));
        let mock = self.hal.mock_pf_ids.iter().map(|&pf| (pf, true));
        real.chain(mock)
            .enumerate()
            .map(|(i, (pf_id, mock))| DeviceSpec {
                id: DeviceId(i as u32),
                pf_id,
                vf_id: None,
                tag: format!("{}-{i}", self.hal.tag),
                queue_depth: if mock { MOCK_QUEUE_DEPTH } else { self.dpfs.queue_depth },
                mock,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DPFS_EXAMPLE: &str = r#"
[dpfs]
queue_depth = 64
[snap_hal]
polling_interval_usec = 0
pf_ids = [0, 1]
mock_pf_ids = [3]
emu_manager = "mlx5_0"
tag = "dpfs"
nthreads = 2
[nfs]
server = "10.0.0.1"
"#;

    #[test]
    fn reads_dpfs_keys_and_ignores_backend_tables() {
        let c = SnapHalConfig::from_toml(DPFS_EXAMPLE).unwrap();
        assert_eq!(c.hal.emulation_manager, "mlx5_0");
        let d = c.devices();
        assert_eq!(d.len(), 3);
        assert_eq!((d[0].tag.as_str(), d[0].pf_id, d[0].mock), ("dpfs-0", 0, false));
        assert_eq!((d[2].id, d[2].pf_id, d[2].mock, d[2].queue_depth), (DeviceId(2), 3, true, 4));
        assert_eq!(d[1].queue_depth, 64);
    }

    fn err(text: &str) -> String {
        SnapHalConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn rejects_what_dpfs_rejects() {
        assert!(err("[dpfs]\nqueue_depth = 48\n[snap_hal]\npf_ids=[0]").contains("power of two"));
        assert!(err("[snap_hal]\npf_ids=[]").contains("pf_ids is empty"));
        assert!(err("[snap_hal]\npf_ids=[0,1]\nmock_pf_ids=[1]").contains("listed twice"));
        assert!(err("[snap_hal]\npf_ids=[0]\nnthreads=2").contains("nthreads = 2"));
        assert!(err("[snap_hal]\npf_ids=[0]\nnthreads=0").contains("nthreads = 0"));
        assert!(err("[snap_hal]\npf_ids=[0]\ntag=\"\"").contains("tag"));
        assert!(err("[snap_hal]\npf_ids=[0]\ntag=\"0123456789012345678901234567890123456\"").contains("tag"));
        assert!(err("[dpfs]\nqueue_depth=1").contains("missing [snap_hal]"));
        assert!(err("[snap_hal]\npf_ids=[0]\nbogus=1").contains("bogus"));
    }
}
