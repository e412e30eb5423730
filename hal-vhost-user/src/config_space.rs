//! The virtio-fs device configuration space (virtio 1.2 §5.11.4).

use crate::config::{DeviceConfig, MAX_TAG_LEN};

/// Size of `struct virtio_fs_config`: `tag[36]`, `num_request_queues` (le32),
/// `notify_buf_size` (le32).
pub const CONFIG_SPACE_SIZE: usize = MAX_TAG_LEN + 4 + 4;

/// The configuration space of `dev`: its tag (NUL-padded), its request queue count, and a
/// notification buffer size of 0 (no notification queue).
pub fn config_space(dev: &DeviceConfig) -> [u8; CONFIG_SPACE_SIZE] {
    let mut b = [0u8; CONFIG_SPACE_SIZE];
    let tag = dev.tag.as_bytes();
    let n = tag.len().min(MAX_TAG_LEN);
    b[..n].copy_from_slice(&tag[..n]);
    b[MAX_TAG_LEN..MAX_TAG_LEN + 4].copy_from_slice(&u32::from(dev.request_queues).to_le_bytes());
    b
}

/// The bytes `[offset, offset + size)` of the configuration space; empty if the range is
/// not inside it (the frontend's request is not trusted).
pub fn read_config(dev: &DeviceConfig, offset: u32, size: u32) -> Vec<u8> {
    let space = config_space(dev);
    let start = offset as usize;
    let Some(end) = start.checked_add(size as usize) else { return Vec::new() };
    space.get(start..end).map(<[u8]>::to_vec).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_core::DeviceId;

    #[test]
    fn layout_and_bounds() {
        let mut d = DeviceConfig::new(DeviceId(0), "myfs");
        d.request_queues = 4;
        let all = read_config(&d, 0, CONFIG_SPACE_SIZE as u32);
        assert_eq!(&all[..5], b"myfs\0");
        assert_eq!(&all[36..40], &4u32.to_le_bytes());
        assert_eq!(&all[40..44], &[0; 4]);
        assert_eq!(read_config(&d, 36, 4), 4u32.to_le_bytes().to_vec());
        assert!(read_config(&d, 40, 8).is_empty());
        assert!(read_config(&d, u32::MAX, u32::MAX).is_empty());
    }
}
