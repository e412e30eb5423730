//! The vhost-user frontend: connects to a device's socket and brings it up as QEMU does for
//! `vhost-user-fs-pci` — features, protocol features, queue count, memory table, then each
//! ring (num, addr, base, call, kick, enable).

use crate::error::{Error, Result};
use crate::memory::GuestMemory;
use crate::virtq::{RingFeatures, SplitQueue};
use std::path::Path;
use std::sync::Arc;
use vhost::vhost_user::message::{VhostUserConfigFlags, VhostUserHeaderFlag};
use vhost::vhost_user::{Frontend, VhostUserFrontend, VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost::VhostBackend;
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

/// Size of the part of `struct virtio_fs_config` Linux reads: tag[36] and num_request_queues.
const FS_CONFIG_SIZE: u32 = 40;
/// Length of the tag field.
const TAG_LEN: usize = 36;

/// What the guest asks of the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceOptions {
    /// Request queues wanted (the device may offer fewer; hiprio comes on top).
    pub request_queues: usize,
    /// Entries per ring (power of two).
    pub queue_size: u16,
    /// Negotiate `VIRTIO_RING_F_EVENT_IDX` if offered.
    pub event_idx: bool,
    /// Negotiate `VIRTIO_RING_F_INDIRECT_DESC` if offered (Linux then puts every multi-buffer
    /// request in an indirect table).
    pub indirect: bool,
}

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions { request_queues: 1, queue_size: 1024, event_idx: true, indirect: true }
    }
}

/// What was negotiated with the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Virtio features the device offered.
    pub offered: u64,
    /// Virtio features acknowledged (`SET_FEATURES`).
    pub features: u64,
    /// Protocol features the device offered.
    pub offered_protocol: VhostUserProtocolFeatures,
    /// Protocol features acknowledged.
    pub protocol: VhostUserProtocolFeatures,
    /// Queues the device supports (`GET_QUEUE_NUM`, or 2 without MQ).
    pub device_queues: u64,
    /// The tag from config space, if the device exposes it.
    pub tag: Option<String>,
    /// `num_request_queues` from config space, if the device exposes it.
    pub config_request_queues: Option<u32>,
    /// Request queues brought up.
    pub request_queues: usize,
    /// Ring features in use.
    pub ring: RingFeatures,
}

/// A connected, running vhost-user-fs device: the control channel and guest memory.
/// Dropping it closes the socket, which stops the device.
pub struct VhostUserDevice {
    frontend: Frontend,
    mem: Arc<GuestMemory>,
    negotiated: Negotiated,
}

impl VhostUserDevice {
    /// Connects to `socket`, negotiates, shares `mem` and starts hiprio (queue 0) plus the
    /// request queues (1..). Returns the device and its queues, hiprio first.
    pub fn connect(
        socket: &Path,
        mem: Arc<GuestMemory>,
        opts: &DeviceOptions,
    ) -> Result<(VhostUserDevice, Vec<SplitQueue>)> {
        let wanted_queues = 1 + opts.request_queues.max(1) as u64;
        let mut fe = Frontend::connect(socket, wanted_queues).map_err(Error::vhost("connect"))?;
        fe.set_owner().map_err(Error::vhost("SET_OWNER"))?;
        let offered = fe.get_features().map_err(Error::vhost("GET_FEATURES"))?;
        if offered & (1 << VIRTIO_F_VERSION_1) == 0 {
            return Err(Error::Unsupported("VIRTIO_F_VERSION_1"));
        }
        let proto_bit = VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
        let mut want = (1u64 << VIRTIO_F_VERSION_1) | proto_bit;
        if opts.event_idx {
            want |= 1 << VIRTIO_RING_F_EVENT_IDX;
        }
        if opts.indirect {
            want |= 1 << VIRTIO_RING_F_INDIRECT_DESC;
        }
        let features = offered & want;

        let mut offered_protocol = VhostUserProtocolFeatures::empty();
        let mut protocol = VhostUserProtocolFeatures::empty();
        if offered & proto_bit != 0 {
            offered_protocol = fe.get_protocol_features().map_err(Error::vhost("GET_PROTOCOL_FEATURES"))?;
            let want = VhostUserProtocolFeatures::MQ
                | VhostUserProtocolFeatures::REPLY_ACK
                | VhostUserProtocolFeatures::CONFIG;
            protocol = offered_protocol & want;
            fe.set_protocol_features(protocol).map_err(Error::vhost("SET_PROTOCOL_FEATURES"))?;
            if protocol.contains(VhostUserProtocolFeatures::REPLY_ACK) {
                // Every request that may carry an ack now asks for one, so device errors surface.
                fe.set_hdr_flags(VhostUserHeaderFlag::NEED_REPLY);
            }
        }
        let device_queues = if protocol.contains(VhostUserProtocolFeatures::MQ) {
            fe.get_queue_num().map_err(Error::vhost("GET_QUEUE_NUM"))?
        } else {
            2
        };
        let (tag, config_request_queues) =
            if protocol.contains(VhostUserProtocolFeatures::CONFIG) { read_config(&mut fe)? } else { (None, None) };
        let mut request_queues = opts.request_queues.max(1).min(device_queues.saturating_sub(1) as usize);
        if let Some(n) = config_request_queues {
            request_queues = request_queues.min(n.max(1) as usize);
        }
        if request_queues == 0 {
            return Err(Error::Unsupported("a request queue"));
        }

        fe.set_features(features).map_err(Error::vhost("SET_FEATURES"))?;
        fe.set_mem_table(&mem.regions()?).map_err(Error::vhost("SET_MEM_TABLE"))?;

        let ring = RingFeatures {
            event_idx: features & (1 << VIRTIO_RING_F_EVENT_IDX) != 0,
            indirect: features & (1 << VIRTIO_RING_F_INDIRECT_DESC) != 0,
        };
        let mut queues = Vec::with_capacity(1 + request_queues);
        for index in 0..=request_queues {
            let q = SplitQueue::new(mem.clone(), opts.queue_size, ring)?;
            fe.set_vring_num(index, q.size()).map_err(Error::vhost("SET_VRING_NUM"))?;
            fe.set_vring_addr(index, &q.config()?).map_err(Error::vhost("SET_VRING_ADDR"))?;
            fe.set_vring_base(index, 0).map_err(Error::vhost("SET_VRING_BASE"))?;
            fe.set_vring_call(index, q.call_fd()).map_err(Error::vhost("SET_VRING_CALL"))?;
            fe.set_vring_kick(index, q.kick_fd()).map_err(Error::vhost("SET_VRING_KICK"))?;
            if features & proto_bit != 0 {
                fe.set_vring_enable(index, true).map_err(Error::vhost("SET_VRING_ENABLE"))?;
            }
            queues.push(q);
        }
        let negotiated = Negotiated {
            offered,
            features,
            offered_protocol,
            protocol,
            device_queues,
            tag,
            config_request_queues,
            request_queues,
            ring,
        };
        tracing::debug!(?negotiated, "vhost-user device up");
        Ok((VhostUserDevice { frontend: fe, mem, negotiated }, queues))
    }

    /// What was negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The shared guest memory.
    pub fn memory(&self) -> &Arc<GuestMemory> {
        &self.mem
    }

    /// The vhost-user control channel, for tests that send more messages.
    pub fn frontend(&mut self) -> &mut Frontend {
        &mut self.frontend
    }
}

/// Reads the tag and request-queue count from the device's config space.
fn read_config(fe: &mut Frontend) -> Result<(Option<String>, Option<u32>)> {
    let buf = [0u8; FS_CONFIG_SIZE as usize];
    let (_, payload) = match fe.get_config(0, FS_CONFIG_SIZE, VhostUserConfigFlags::empty(), &buf) {
        Ok(r) => r,
        // A device with a shorter config space: carry on without it.
        Err(e) => {
            tracing::debug!("GET_CONFIG failed: {e}");
            return Ok((None, None));
        }
    };
    let tag_bytes = payload.get(..TAG_LEN).unwrap_or_default();
    let end = tag_bytes.iter().position(|&b| b == 0).unwrap_or(tag_bytes.len());
    let tag = String::from_utf8_lossy(&tag_bytes[..end]).into_owned();
    let nrq = payload.get(TAG_LEN..TAG_LEN + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    Ok((Some(tag).filter(|t| !t.is_empty()), nrq))
}
