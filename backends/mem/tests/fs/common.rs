//! The tests' guest: core's typed guest over a `MemFs`, plus mem-specific constructors.
#![allow(dead_code)]

use dpfs_backend_mem::{MemConfig, MemFs};
use dpfs_core::abi;
pub use dpfs_core::guest::{body, ROOT};
use std::sync::Arc;

/// A guest talking to a fresh mem file system.
pub type Guest = dpfs_core::guest::Guest<MemFs>;

/// Mem-specific constructors of [`Guest`].
pub trait MemGuest: Sized {
    /// A guest of a fresh `MemFs` with `cfg`; POSIX locks must be negotiated.
    fn new_mem(cfg: MemConfig) -> Self;
    /// A guest of a fresh `MemFs` with the default configuration.
    fn default_fs() -> Self {
        Self::new_mem(MemConfig::default())
    }
}

impl MemGuest for Guest {
    fn new_mem(cfg: MemConfig) -> Guest {
        let (g, init) = Guest::new(Arc::new(MemFs::new(cfg))).expect("INIT");
        assert_ne!(init.flags as u64 & abi::init::POSIX_LOCKS, 0);
        g
    }
}
