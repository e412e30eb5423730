//! The DevX commands `list-emulation-managers` sends, and pure decoders of their output
//! boxes (layouts from the public PRM field list: big-endian dwords, bit positions counted
//! from the least significant bit of each dword). Every length is checked before use.

// Output boxes come from firmware: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use serde::Serialize;

/// QUERY_HCA_CAP.
pub const QUERY_HCA_CAP: u16 = 0x100;
/// QUERY_EMULATED_FUNCTIONS_INFO.
pub const QUERY_EMULATED_FUNCTIONS_INFO: u16 = 0xb03;
/// Bytes before the capability area of a QUERY_HCA_CAP output.
pub const CAP_OFFSET: usize = 16;
/// Size of a QUERY_HCA_CAP output box (header + the 4 KiB capability union).
pub const HCA_CAP_OUT: usize = CAP_OFFSET + 0x1000;
/// Most emulated functions decoded from one answer.
pub const MAX_FUNCTIONS: usize = 1024;

/// An emulation type a device may manage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmulationType {
    /// virtio-fs.
    VirtioFs,
    /// virtio-blk.
    VirtioBlk,
    /// virtio-net.
    VirtioNet,
    /// NVMe.
    Nvme,
}

impl EmulationType {
    /// All, in the order they are printed.
    pub const ALL: [EmulationType; 4] =
        [EmulationType::VirtioFs, EmulationType::VirtioBlk, EmulationType::VirtioNet, EmulationType::Nvme];

    /// (capability byte, bit) of the "may manage this emulation" flag.
    fn manager_bit(self) -> (usize, u32) {
        match self {
            EmulationType::VirtioFs => (0x4c, 24),
            EmulationType::VirtioBlk => (0x18, 5),
            EmulationType::VirtioNet => (0x18, 6),
            EmulationType::Nvme => (0x1c, 10),
        }
    }

    /// Bit of the emulation object in `general_obj_types`.
    fn object_bit(self) -> u32 {
        match self {
            EmulationType::VirtioFs => 0x3d,
            EmulationType::VirtioBlk => 0x16,
            EmulationType::VirtioNet => 0x15,
            EmulationType::Nvme => 0x06,
        }
    }

    /// QUERY_HCA_CAP op_mod of this type's emulation capabilities.
    pub fn cap_op_mod(self) -> u16 {
        match self {
            EmulationType::VirtioFs => 0x23 << 1,
            EmulationType::VirtioBlk => 0x17 << 1,
            EmulationType::VirtioNet => 0x16 << 1,
            EmulationType::Nvme => 0x10 << 1,
        }
    }

    /// QUERY_EMULATED_FUNCTIONS_INFO op_mod of this type's physical functions.
    pub fn functions_op_mod(self) -> u16 {
        match self {
            EmulationType::VirtioFs => 0x5,
            EmulationType::VirtioBlk => 0x2,
            EmulationType::VirtioNet => 0x1,
            EmulationType::Nvme => 0x0,
        }
    }

    /// Name as printed.
    pub fn name(self) -> &'static str {
        match self {
            EmulationType::VirtioFs => "virtio-fs",
            EmulationType::VirtioBlk => "virtio-blk",
            EmulationType::VirtioNet => "virtio-net",
            EmulationType::Nvme => "nvme",
        }
    }
}

/// Why an output box could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The box is shorter than the field read.
    #[error("output box of {len} bytes is too short (need {need})")]
    Short {
        /// Its length.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Firmware answered with an error.
    #[error("firmware status {status:#x}, syndrome {syndrome:#x}")]
    Status {
        /// The status byte.
        status: u8,
        /// The syndrome.
        syndrome: u32,
    },
    /// More functions reported than the box or the limit holds.
    #[error("{count} emulated functions reported, room for {room}")]
    TooMany {
        /// Reported.
        count: usize,
        /// Room.
        room: usize,
    },
}

fn be32(b: &[u8], at: usize) -> Result<u32, DecodeError> {
    let s: [u8; 4] =
        b.get(at..at + 4).and_then(|s| s.try_into().ok()).ok_or(DecodeError::Short { len: b.len(), need: at + 4 })?;
    Ok(u32::from_be_bytes(s))
}

/// Checks the status and syndrome every output box starts with.
pub fn check_status(out: &[u8]) -> Result<(), DecodeError> {
    let status = *out.first().ok_or(DecodeError::Short { len: 0, need: 8 })?;
    let syndrome = be32(out, 4)?;
    if status != 0 {
        return Err(DecodeError::Status { status, syndrome });
    }
    Ok(())
}

/// The QUERY_HCA_CAP input box for `op_mod` (current values).
pub fn query_hca_cap_in(op_mod: u16) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&QUERY_HCA_CAP.to_be_bytes());
    b[6..8].copy_from_slice(&op_mod.to_be_bytes());
    b
}

/// The QUERY_EMULATED_FUNCTIONS_INFO input box.
pub fn query_functions_in(op_mod: u16, pf_vhca_id: u16) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..2].copy_from_slice(&QUERY_EMULATED_FUNCTIONS_INFO.to_be_bytes());
    b[6..8].copy_from_slice(&op_mod.to_be_bytes());
    b[14..16].copy_from_slice(&pf_vhca_id.to_be_bytes());
    b
}

/// What the general capabilities say about emulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GeneralCaps {
    /// Emulation types this function may manage (capability flag and object type both set).
    pub manages: Vec<EmulationType>,
    /// virtio-fs resources live on the manager (else a VHCA tunnel is needed).
    pub resources_on_manager: bool,
    /// May hot-plug functions.
    pub hotplug_manager: bool,
    /// BlueField-3 generic PCI emulation.
    pub generic_emulation_manager: bool,
}

fn cap_bit(out: &[u8], byte: usize, bit: u32) -> Result<bool, DecodeError> {
    Ok(be32(out, CAP_OFFSET + byte)? >> bit & 1 == 1)
}

/// Decodes a general-device QUERY_HCA_CAP output box.
pub fn decode_general_caps(out: &[u8]) -> Result<GeneralCaps, DecodeError> {
    check_status(out)?;
    let objs = (u64::from(be32(out, CAP_OFFSET + 0x80)?) << 32) | u64::from(be32(out, CAP_OFFSET + 0x84)?);
    let mut manages = Vec::new();
    for t in EmulationType::ALL {
        let (byte, bit) = t.manager_bit();
        if cap_bit(out, byte, bit)? && objs >> t.object_bit() & 1 == 1 {
            manages.push(t);
        }
    }
    Ok(GeneralCaps {
        manages,
        resources_on_manager: cap_bit(out, 0x0c, 31)?,
        hotplug_manager: cap_bit(out, 0x1c, 11)? && objs >> 0x14 & 1 == 1,
        generic_emulation_manager: cap_bit(out, 0xb4, 14)?,
    })
}

/// Queue limits of one emulation type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EmulationCaps {
    /// Emulated devices (PFs) the manager offers.
    pub max_emulated_devices: u8,
    /// Virtqueues per emulated device.
    pub max_num_virtio_queues: u32,
}

/// Decodes a virtio emulation QUERY_HCA_CAP output box.
pub fn decode_emulation_caps(out: &[u8]) -> Result<EmulationCaps, DecodeError> {
    check_status(out)?;
    let d = be32(out, CAP_OFFSET + 0x10)?;
    Ok(EmulationCaps { max_emulated_devices: (d >> 24) as u8, max_num_virtio_queues: d & 0x00ff_ffff })
}

/// One emulated physical function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmulatedFunction {
    /// PCI address on the host, `bus:device.function`.
    pub pci: String,
    /// Its vHCA id.
    pub vhca_id: u16,
    /// Hot-plugged rather than static.
    pub hotplug: bool,
    /// VFs it may have (`None` when firmware does not say); what SNAP prints as `num_vfs`
    /// is only set once the host enabled SR-IOV.
    pub max_num_vfs: Option<u16>,
    /// VFs exist now.
    pub vf_exist: bool,
}

/// Formats a 16-bit BDF as `bb:dd.f`.
pub fn bdf(v: u16) -> String {
    format!("{:02x}:{:02x}.{:x}", v >> 8, (v >> 3) & 0x1f, v & 7)
}

/// Decodes a QUERY_EMULATED_FUNCTIONS_INFO output box.
pub fn decode_functions(out: &[u8]) -> Result<Vec<EmulatedFunction>, DecodeError> {
    check_status(out)?;
    let count = (be32(out, 12)? & 0xffff) as usize;
    let room = (out.len().saturating_sub(16) / 8).min(MAX_FUNCTIONS);
    if count > room {
        return Err(DecodeError::TooMany { count, room });
    }
    (0..count)
        .map(|i| {
            let at = 16 + 8 * i;
            let (d0, d1) = (be32(out, at)?, be32(out, at + 4)?);
            let valid = d1 >> 30 & 1 == 1;
            Ok(EmulatedFunction {
                pci: bdf((d0 >> 16) as u16),
                vhca_id: d0 as u16,
                hotplug: d1 >> 31 == 1,
                max_num_vfs: valid.then_some(d1 as u16),
                vf_exist: d1 >> 29 & 1 == 1,
            })
        })
        .collect()
}

/// Builders of synthetic output boxes (tests of this crate and of the command).
pub mod synth {
    use super::*;

    fn set_bit(out: &mut [u8], at: usize, bit: u32) {
        if let Ok(v) = be32(out, at) {
            if let Some(s) = out.get_mut(at..at + 4) {
                s.copy_from_slice(&(v | 1 << bit).to_be_bytes());
            }
        }
    }

    /// A general-caps box managing `types` (flag and object bit set).
    pub fn general_caps(types: &[EmulationType]) -> Vec<u8> {
        let mut out = vec![0u8; HCA_CAP_OUT];
        for t in types {
            let (byte, bit) = t.manager_bit();
            set_bit(&mut out, CAP_OFFSET + byte, bit);
            let o = t.object_bit();
            let (at, bit) = if o >= 32 { (0x80, o - 32) } else { (0x84, o) };
            set_bit(&mut out, CAP_OFFSET + at, bit);
        }
        out
    }

    /// A virtio emulation caps box.
    pub fn emulation_caps(devices: u8, queues: u32) -> Vec<u8> {
        let mut out = vec![0u8; HCA_CAP_OUT];
        let d = (u32::from(devices) << 24) | (queues & 0x00ff_ffff);
        if let Some(s) = out.get_mut(CAP_OFFSET + 0x10..CAP_OFFSET + 0x14) {
            s.copy_from_slice(&d.to_be_bytes());
        }
        out
    }

    /// A functions box: (bdf, vhca_id, max_num_vfs).
    pub fn functions(list: &[(u16, u16, Option<u16>)]) -> Vec<u8> {
        let mut out = vec![0u8; 16 + 8 * list.len()];
        if let Some(s) = out.get_mut(14..16) {
            s.copy_from_slice(&(list.len() as u16).to_be_bytes());
        }
        for (i, (b, v, vfs)) in list.iter().enumerate() {
            let d0 = (u32::from(*b) << 16) | u32::from(*v);
            let d1 = vfs.map_or(0, |n| 1 << 30 | u32::from(n));
            let entry = [d0.to_be_bytes(), d1.to_be_bytes()].concat();
            if let Some(s) = out.get_mut(16 + 8 * i..24 + 8 * i) {
                s.copy_from_slice(&entry);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_boxes_follow_the_layout() {
        assert_eq!(query_hca_cap_in(0x46)[..8], [0x01, 0x00, 0, 0, 0, 0, 0x00, 0x46]);
        let q = query_functions_in(5, 0x1234);
        assert_eq!((q[0], q[1], q[7], q[14], q[15]), (0x0b, 0x03, 5, 0x12, 0x34));
        assert_eq!(EmulationType::VirtioFs.cap_op_mod(), 0x46);
    }

    #[test]
    fn general_caps_need_both_the_flag_and_the_object() {
        let out = synth::general_caps(&[EmulationType::VirtioFs, EmulationType::Nvme]);
        let c = decode_general_caps(&out).unwrap();
        assert_eq!(c.manages, vec![EmulationType::VirtioFs, EmulationType::Nvme]);
        assert!(!c.hotplug_manager && !c.resources_on_manager);
        // The flag without the object type is not a manager.
        let mut flag_only = vec![0u8; HCA_CAP_OUT];
        flag_only[CAP_OFFSET + 0x4c] = 0x01; // bit 24 of the dword at 0x4c
        assert_eq!(decode_general_caps(&flag_only).unwrap().manages, vec![]);
    }

    #[test]
    fn emulation_caps_and_functions_decode() {
        let c = decode_emulation_caps(&synth::emulation_caps(4, 1024)).unwrap();
        assert_eq!(c, EmulationCaps { max_emulated_devices: 4, max_num_virtio_queues: 1024 });
        let f = decode_functions(&synth::functions(&[(0x0a00 | 1 << 3 | 2, 7, Some(127)), (0x0b00, 8, None)])).unwrap();
        assert_eq!(f[0].pci, "0a:01.2");
        assert_eq!((f[0].vhca_id, f[0].max_num_vfs), (7, Some(127)));
        assert_eq!((f[1].pci.as_str(), f[1].max_num_vfs), ("0b:00.0", None));
    }

    #[test]
    fn every_failure_is_an_error_not_a_panic() {
        assert!(matches!(decode_general_caps(&[]), Err(DecodeError::Short { .. })));
        assert!(matches!(decode_general_caps(&[0u8; 100]), Err(DecodeError::Short { .. })));
        let mut bad = synth::emulation_caps(1, 1);
        bad[0] = 0x5;
        bad[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(decode_emulation_caps(&bad), Err(DecodeError::Status { status: 5, syndrome: 0xdead_beef }));
        let mut lying = synth::functions(&[(1, 1, None)]);
        lying[14..16].copy_from_slice(&3u16.to_be_bytes());
        assert_eq!(decode_functions(&lying), Err(DecodeError::TooMany { count: 3, room: 1 }));
        assert!(decode_functions(&[0u8; 15]).is_err());
        assert_eq!(decode_functions(&[0u8; 16]).unwrap(), vec![]);
    }

    proptest::proptest! {
        /// Firmware answers are untrusted: any bytes decode to a value or an error.
        #[test]
        fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4200)) {
            let _ = decode_general_caps(&bytes);
            let _ = decode_emulation_caps(&bytes);
            if let Ok(f) = decode_functions(&bytes) {
                proptest::prop_assert!(f.len() <= MAX_FUNCTIONS && 16 + 8 * f.len() <= bytes.len());
            }
        }
    }
}
