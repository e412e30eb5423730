//! A DPU timing profile: every cost the model charges, in nanoseconds or bytes per
//! nanosecond (= GB/s). `bf2` is calibrated against DPFS-null's published figures; `bf3` is
//! derived from it (no published BF-3 virtio-fs figures exist); any other profile is a TOML
//! file with the same keys (`dpfs bench --dpu-model FILE.toml`).

use crate::Error;
use serde::{Deserialize, Serialize};

/// Host-side costs (the tenant's kernel, io_uring and fio).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// CPU to submit one request (io_uring, FUSE, virtio-fs driver, doorbell write).
    pub submit_ns: f64,
    /// Extra submit CPU per 4 KiB page (building and pinning the scatter-gather list).
    pub submit_page_ns: f64,
    /// Extra submit CPU of a WRITE.
    pub write_submit_ns: f64,
    /// Extra submit CPU per 4 KiB page of a WRITE.
    pub write_page_ns: f64,
    /// CPU to reap one completion.
    pub complete_ns: f64,
    /// Extra completion CPU per 4 KiB page.
    pub complete_page_ns: f64,
    /// CPU of one interrupt and wake-up; completions that arrive while one is pending share it.
    pub wakeup_ns: f64,
}

/// PCIe and the DPU's DMA engine.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Pcie {
    /// Doorbell (MMIO write) until the firmware has fetched the descriptors and told the Arm.
    pub doorbell_fetch_ns: f64,
    /// Used-ring update until the host's interrupt handler runs (MSI-X).
    pub interrupt_ns: f64,
    /// Latency of one host-to-DPU DMA (a non-posted read round trip).
    pub dma_read_latency_ns: f64,
    /// Latency of one DPU-to-host DMA (posted write).
    pub dma_write_latency_ns: f64,
    /// DMA engine occupancy per host-to-DPU operation (shared by every device).
    pub dma_read_op_ns: f64,
    /// DMA engine occupancy per DPU-to-host operation.
    pub dma_write_op_ns: f64,
    /// Link bandwidth, GB/s, host to DPU (shared).
    pub link_in_gbs: f64,
    /// Link bandwidth, GB/s, DPU to host (shared).
    pub link_out_gbs: f64,
    /// Bandwidth one request's transfers reach, GB/s, host to DPU (a pure delay).
    pub request_in_gbs: f64,
    /// Bandwidth one request's transfers reach, GB/s, DPU to host.
    pub request_out_gbs: f64,
}

/// The DPU's Arm cores.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dpu {
    /// One poll of one idle device by a poller thread.
    pub poll_pass_ns: f64,
    /// Poller CPU per READ (SNAP state machine, FUSE decoding, completion).
    pub read_ns: f64,
    /// Poller CPU per WRITE.
    pub write_ns: f64,
    /// Extra poller CPU per 4 KiB data descriptor of a READ.
    pub read_page_ns: f64,
    /// Extra poller CPU per 4 KiB data descriptor of a WRITE.
    pub write_page_ns: f64,
    /// The Arm factor: ns per 1000 backend instructions on one DPU core.
    pub ns_per_kinstr: f64,
    /// How much slower the DPU core runs kernel code than the x86 host it was measured on.
    pub kernel_factor: f64,
}

/// Everything the model charges.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Name shown in reports.
    pub name: String,
    /// Where the figures come from.
    pub note: String,
    /// Coefficient of variation of every serial service time (0 = fixed times).
    pub service_cv: f64,
    /// Completion latency not otherwise modelled (host kernel paths, firmware), READ.
    pub fixed_read_ns: f64,
    /// The same for WRITE.
    pub fixed_write_ns: f64,
    /// Host.
    pub host: Host,
    /// PCIe.
    pub pcie: Pcie,
    /// DPU.
    pub dpu: Dpu,
}

const BF2: &str = include_str!("../../profiles/bf2.toml");
const BF3: &str = include_str!("../../profiles/bf3.toml");

impl Profile {
    /// `bf2`, `bf3`, or a path to a TOML profile.
    pub fn load(name: &str) -> Result<Profile, Error> {
        match name {
            "bf2" => Profile::from_toml(BF2),
            "bf3" => Profile::from_toml(BF3),
            path => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("DPU model {path:?}: not bf2, bf3 or a readable file: {e}")))?;
                Profile::from_toml(&text)
            }
        }
    }

    /// Parses and checks a profile.
    pub fn from_toml(text: &str) -> Result<Profile, Error> {
        let p: Profile = toml::from_str(text).map_err(|e| Error::Config(format!("DPU profile: {e}")))?;
        let rates = [
            ("link_in_gbs", p.pcie.link_in_gbs),
            ("link_out_gbs", p.pcie.link_out_gbs),
            ("request_in_gbs", p.pcie.request_in_gbs),
            ("request_out_gbs", p.pcie.request_out_gbs),
        ];
        if let Some((k, v)) = rates.iter().find(|(_, r)| !r.is_finite() || *r <= 0.0) {
            return Err(Error::Config(format!("DPU profile: [pcie] {k} = {v}: must be > 0")));
        }
        let v = toml::Value::try_from(&p).map_err(|e| Error::Config(format!("DPU profile: {e}")))?;
        check_non_negative("", &v)?;
        Ok(p)
    }
}

/// Every number in a profile is a cost or a rate: finite and not negative.
fn check_non_negative(path: &str, v: &toml::Value) -> Result<(), Error> {
    match v {
        toml::Value::Float(f) if !f.is_finite() || *f < 0.0 => {
            Err(Error::Config(format!("DPU profile: {path} = {f}: must be a finite number >= 0")))
        }
        toml::Value::Integer(i) if *i < 0 => Err(Error::Config(format!("DPU profile: {path} = {i}: must be >= 0"))),
        toml::Value::Table(t) => t.iter().try_for_each(|(k, v)| check_non_negative(&format!("{path}.{k}"), v)),
        _ => Ok(()),
    }
}
