//! Bytes → request script → segmentation → session → mem backend.
//!
//! The input is a script of raw requests (see `dpfs_core::script`): each record carries its
//! own segmentation and reply-buffer layout. The session starts initialised as a 7.45 guest
//! would leave it, so mutations reach the backend; the script may INIT/DESTROY again. After
//! the script the device is reset and every request must have completed exactly once with a
//! well-formed reply (or none): anything else aborts.
#![no_main]

use dpfs_backend_mem::{MemConfig, MemFs};
use dpfs_core::local::LocalClient;
use dpfs_core::script::replay;
use dpfs_core::{Device, DeviceId, SessionConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    // A small capacity keeps each run cheap: filling it (ENOSPC) is one fallocate away.
    let fs = MemFs::new(MemConfig { capacity_bytes: 64 << 20, max_inodes: 4096, ..MemConfig::default() });
    let dev = Device::new(DeviceId(0), Arc::new(fs), SessionConfig::default());
    if LocalClient::new(&dev).init().is_none() {
        panic!("INIT of a fresh device failed");
    }
    if let Err(v) = replay(&dev, data) {
        panic!("protocol violation: {}", v.0);
    }
});
