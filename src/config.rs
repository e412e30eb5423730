//! The TOML configuration file: DPFS's `conf_example.toml` tables and keys, plus our own
//! `[session]` table. Unknown tables and keys are errors that name the key.

// Tables for HALs and backends this binary does not run yet are parsed (so DPFS files keep
// working and typos are caught) but not read.
#![allow(dead_code)]

use anyhow::Context as _;
use dpfs_backend_passthrough::XattrPolicy;
use dpfs_core::SessionConfig;
use serde::Deserialize;
use std::path::Path;

/// The whole file. Every table is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[dpfs]`: settings shared by every HAL.
    pub dpfs: Option<DpfsTable>,
    /// `[snap_hal]`: the BlueField SNAP HAL (tag and threads also apply to vhost-user).
    pub snap_hal: Option<SnapHalTable>,
    /// `[rvfs_hal]`: the remote gateway HAL.
    pub rvfs_hal: Option<RvfsHalTable>,
    /// `[nfs]`: the NFS backend.
    pub nfs: Option<NfsTable>,
    /// `[rvfs]`: the remote gateway.
    pub rvfs: Option<RvfsTable>,
    /// `[kv]`: the key-value backend.
    pub kv: Option<KvTable>,
    /// `[local_mirror]`: the passthrough (local mirror) backend.
    pub local_mirror: Option<LocalMirrorTable>,
    /// `[session]`: FUSE session limits and capabilities.
    pub session: Option<SessionConfig>,
}

/// `[dpfs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpfsTable {
    /// Virtqueue depth; a power of two.
    pub queue_depth: Option<u32>,
}

/// `[snap_hal]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapHalTable {
    /// Microseconds between polls (0 = poll continuously).
    pub polling_interval_usec: Option<u64>,
    /// Physical functions to emulate devices on.
    pub pf_ids: Option<Vec<u32>>,
    /// PFs polled only once a second.
    pub mock_pf_ids: Option<Vec<u32>>,
    /// Emulation manager (RDMA device name).
    pub emu_manager: Option<String>,
    /// Tag; devices get "<tag>-<index>".
    pub tag: Option<String>,
    /// Poller threads.
    pub nthreads: Option<u16>,
    /// Request queues per device.
    pub virtio_request_queues: Option<u16>,
}

/// `[rvfs_hal]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RvfsHalTable {
    /// Microseconds between polls.
    pub polling_interval_usec: Option<u64>,
    /// Request queues (read by nothing in DPFS either).
    pub virtio_request_queues: Option<u16>,
}

/// `[nfs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NfsTable {
    /// NFS server address.
    pub server: Option<String>,
    /// Export path.
    pub export: Option<String>,
    /// Busy-poll the completion queue.
    pub cq_polling: Option<bool>,
}

/// `[rvfs]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RvfsTable {
    /// Gateway (host side) address.
    pub remote_uri: Option<String>,
    /// DPU side address.
    pub dpu_uri: Option<String>,
    /// Separate network and HAL polling threads.
    pub two_threads: Option<bool>,
    /// NUMA node of the NIC.
    pub nic_numa_node: Option<u32>,
    /// dpfs's own key: the pre-shared key file of the gateway link (as `--key-file`).
    pub key_file: Option<String>,
}

/// `[kv]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvTable {
    /// DPFS's RAMCloud coordinator locator: not supported (the kv backend names the new keys).
    pub ramcloud_coordinator: Option<String>,
    /// The store: `redb:///path/fs.redb`, `redis://HOST:PORT` or `redis+cluster://H:P,...`.
    pub url: Option<String>,
    /// The volume's name in the store.
    pub volume: Option<String>,
    /// redb: `fsync` (default) or `immediate` (see `--kv-durability`).
    pub durability: Option<String>,
}

/// `[local_mirror]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalMirrorTable {
    /// Directory to mirror.
    pub dir: Option<String>,
    /// Entry/attribute timeout in seconds (integer or float; 0 disables caching).
    pub metadata_timeout: Option<f64>,
    /// Direct I/O mode (DPFS `fuser_directio_mode`).
    pub directio_mode: Option<u32>,
    /// Busy-poll io_uring completions.
    pub uring_cq_polling: Option<bool>,
    /// Completion polling threads.
    pub uring_cq_polling_nthreads: Option<u32>,
    /// dpfs's own key: where a root guest's `trusted.*`/`security.*` xattrs go on host
    /// files, `"map"` (default), `"refuse"` or `"passthrough"`.
    pub xattr_policy: Option<String>,
}

impl LocalMirrorTable {
    /// The `xattr_policy` key, parsed; `None` when absent.
    pub fn xattr_policy(&self) -> anyhow::Result<Option<XattrPolicy>> {
        self.xattr_policy
            .as_deref()
            .map(|s| s.parse::<XattrPolicy>().map_err(|e| anyhow::anyhow!("[local_mirror] xattr_policy: {e}")))
            .transpose()
    }
}

impl FileConfig {
    /// Parses `text`; errors name the offending key.
    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        let cfg: FileConfig = toml::from_str(text)?;
        cfg.check()?;
        Ok(cfg)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        FileConfig::parse(&text).with_context(|| format!("invalid configuration file {}", path.display()))
    }

    fn check(&self) -> anyhow::Result<()> {
        if let Some(q) = self.dpfs.as_ref().and_then(|d| d.queue_depth) {
            anyhow::ensure!(
                q.is_power_of_two() && q <= 32768,
                "[dpfs] queue_depth = {q}: must be a power of two from 1 to 32768"
            );
        }
        if let Some(s) = &self.snap_hal {
            if let Some(n) = s.nthreads {
                anyhow::ensure!(n >= 1, "[snap_hal] nthreads = {n}: must be at least 1");
            }
            if let (Some(pf), Some(mock)) = (&s.pf_ids, &s.mock_pf_ids) {
                if let Some(both) = pf.iter().find(|p| mock.contains(p)) {
                    anyhow::bail!("[snap_hal] PF {both} is in both pf_ids and mock_pf_ids");
                }
            }
        }
        if let Some(t) = self.local_mirror.as_ref().and_then(|l| l.metadata_timeout) {
            anyhow::ensure!(t.is_finite() && t >= 0.0, "[local_mirror] metadata_timeout = {t}: must be >= 0");
        }
        if let Some(l) = &self.local_mirror {
            l.xattr_policy()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DPFS's conf_example.toml, verbatim apart from comments.
    const DPFS_EXAMPLE: &str = r#"
[dpfs]
queue_depth = 512
[snap_hal]
polling_interval_usec = 0
pf_ids = [ 0 ]
mock_pf_ids = [ ]
emu_manager = "mlx5_0"
tag = "dpfs"
nthreads = 1
#virtio_request_queues = 1
[rvfs_hal]
polling_interval_usec = 0
[nfs]
server = "10.100.0.1"
export = "/mnt/shared"
cq_polling = false
[rvfs]
remote_uri = "10.100.0.1:31850"
dpu_uri = "10.100.0.115:31850"
two_threads = true
nic_numa_node = 0
[kv]
ramcloud_coordinator = "PLACEHOLDER"
[local_mirror]
dir = "/mnt/nfs_flex01"
metadata_timeout = 86400.0 # 24 hours
directio_mode = 2
uring_cq_polling = false
uring_cq_polling_nthreads = 1
"#;

    #[test]
    fn dpfs_example_parses() {
        let c = FileConfig::parse(DPFS_EXAMPLE).unwrap();
        assert_eq!(c.dpfs.unwrap().queue_depth, Some(512));
        assert_eq!(c.snap_hal.unwrap().tag.as_deref(), Some("dpfs"));
        assert_eq!(c.local_mirror.unwrap().metadata_timeout, Some(86400.0));
    }

    #[test]
    fn integer_timeout_and_session_table() {
        let c = FileConfig::parse("[local_mirror]\nmetadata_timeout = 5\n[session]\nmetrics = true\n").unwrap();
        assert_eq!(c.local_mirror.unwrap().metadata_timeout, Some(5.0));
        assert!(c.session.unwrap().metrics);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = FileConfig::parse("[snap_hal]\nnthread = 2\n").unwrap_err().to_string();
        assert!(e.contains("nthread"), "{e}");
        let e = FileConfig::parse("[bogus]\n").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = FileConfig::parse("[session]\nmax_writes = 1\n").unwrap_err().to_string();
        assert!(e.contains("max_writes"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = FileConfig::parse("[dpfs]\nqueue_depth = 100\n").unwrap_err().to_string();
        assert!(e.contains("queue_depth"), "{e}");
        let e = FileConfig::parse("[snap_hal]\npf_ids=[1]\nmock_pf_ids=[1]\n").unwrap_err().to_string();
        assert!(e.contains("mock_pf_ids"), "{e}");
        let e = FileConfig::parse("[local_mirror]\nxattr_policy = \"mapped\"\n").unwrap_err().to_string();
        assert!(e.contains("xattr_policy") && e.contains("mapped") && e.contains("refuse"), "{e}");
        let e = FileConfig::parse("[local_mirror]\nxattr_policy = 1\n").unwrap_err().to_string();
        assert!(e.contains("xattr_policy"), "{e}");
    }

    #[test]
    fn xattr_policy_key() {
        let c = FileConfig::parse("[local_mirror]\nxattr_policy = \"refuse\"\n").unwrap();
        assert_eq!(c.local_mirror.unwrap().xattr_policy().unwrap(), Some(XattrPolicy::Refuse));
        let c = FileConfig::parse("[local_mirror]\ndir = \"/srv\"\n").unwrap();
        assert_eq!(c.local_mirror.unwrap().xattr_policy().unwrap(), None);
    }
}
