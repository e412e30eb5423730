//! Per-device session: INIT negotiation, the before-INIT gate, DESTROY and reset.

// Every byte here came from the guest: indexing must be checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::abi::{self, init};
use crate::errno::Errno;
use crate::fs::ConnInfo;
use crate::operation::Layout;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

/// Session limits and capabilities offered to every guest (TOML table `[session]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Largest WRITE payload in bytes (default 1 MiB).
    pub max_write: u32,
    /// Largest request in pages (default 256); bounds `max_write` too.
    pub max_pages: u16,
    /// Background requests the guest may queue (default 4096).
    pub max_background: u16,
    /// Congestion threshold; default three quarters of `max_background`.
    pub congestion_threshold: Option<u16>,
    /// Timestamp granularity in ns (default 1).
    pub time_gran: u32,
    /// Upper bound on the guest's readahead in bytes (default: whatever the guest asks).
    pub max_readahead: u32,
    /// Capability bits to enable on top of the defaults (`abi::init::*`).
    pub want_extra: u64,
    /// Capability bits to withhold.
    pub want_remove: u64,
    /// Collect per-opcode counters and latency histograms.
    pub metrics: bool,
}

/// Capabilities core enables when the guest offers them; the backend's `init` adds its own.
pub const DEFAULT_WANT: u64 = init::ASYNC_READ
    | init::ATOMIC_O_TRUNC
    | init::BIG_WRITES
    | init::HAS_IOCTL_DIR
    | init::DO_READDIRPLUS
    | init::READDIRPLUS_AUTO
    | init::ASYNC_DIO
    | init::PARALLEL_DIROPS
    | init::MAX_PAGES
    | init::SETXATTR_EXT
    | init::INIT_EXT;

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_write: 1 << 20,
            max_pages: 256,
            max_background: 4096,
            congestion_threshold: None,
            time_gran: 1,
            max_readahead: u32::MAX,
            want_extra: 0,
            want_remove: 0,
            metrics: false,
        }
    }
}

const AWAIT_INIT: u8 = 0;
const READY: u8 = 1;

/// Negotiated state of one device.
pub struct Session {
    config: SessionConfig,
    state: AtomicU8,
    minor: AtomicU32,
    setxattr_ext: AtomicBool,
    max_write: AtomicU32,
    /// Serialises INIT, DESTROY and reset against each other.
    transition: Mutex<()>,
}

/// Outcome of an INIT request.
pub(crate) enum InitReply {
    /// Reply with this struct truncated to this many bytes.
    Reply(abi::InitOut, usize),
    /// Refuse with an error.
    Error(Errno),
}

impl Session {
    /// A session waiting for INIT.
    pub fn new(config: SessionConfig) -> Session {
        Session {
            config,
            state: AtomicU8::new(AWAIT_INIT),
            minor: AtomicU32::new(abi::KERNEL_MINOR_VERSION),
            setxattr_ext: AtomicBool::new(false),
            max_write: AtomicU32::new(0),
            transition: Mutex::new(()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// True between a successful INIT and DESTROY/reset.
    pub fn is_ready(&self) -> bool {
        self.state.load(Ordering::Acquire) == READY
    }

    /// Wire layout facts for decoding.
    pub fn layout(&self) -> Layout {
        Layout { minor: self.minor.load(Ordering::Relaxed), setxattr_ext: self.setxattr_ext.load(Ordering::Relaxed) }
    }

    /// Negotiated largest WRITE payload.
    pub fn max_write(&self) -> u32 {
        self.max_write.load(Ordering::Relaxed)
    }

    /// Handles INIT; `backend_init` is the file system's hook.
    pub(crate) fn init(
        &self,
        arg: &abi::InitIn,
        backend_init: impl FnOnce(&mut ConnInfo) -> Result<(), Errno>,
    ) -> InitReply {
        let _g = self.transition.lock();
        if self.state.load(Ordering::Acquire) == READY {
            return InitReply::Error(Errno::EISCONN);
        }
        if arg.major < abi::KERNEL_VERSION {
            return InitReply::Error(Errno::EPROTO);
        }
        if arg.major > abi::KERNEL_VERSION {
            // Tell the guest our major; it retries with a 7.x INIT.
            let out =
                abi::InitOut { major: abi::KERNEL_VERSION, minor: abi::KERNEL_MINOR_VERSION, ..Default::default() };
            return InitReply::Reply(out, abi::COMPAT_INIT_OUT_SIZE);
        }
        if arg.minor < abi::MIN_KERNEL_MINOR_VERSION {
            return InitReply::Error(Errno::EPROTO);
        }
        let minor = arg.minor.min(abi::KERNEL_MINOR_VERSION);
        let mut capable = arg.flags as u64;
        if capable & init::INIT_EXT != 0 {
            capable |= (arg.flags2 as u64) << 32;
        }
        let c = &self.config;
        let page_cap = if capable & init::MAX_PAGES != 0 { c.max_pages.max(1) as u32 } else { 32 };
        let max_write = c.max_write.clamp(4096, page_cap * 4096);
        let mut conn = ConnInfo {
            proto_minor: minor,
            capable,
            want: ((DEFAULT_WANT | c.want_extra) & !c.want_remove) & capable,
            max_write,
            max_readahead: arg.max_readahead.min(c.max_readahead),
            max_background: c.max_background,
            congestion_threshold: c.congestion_threshold.unwrap_or((c.max_background as u32 * 3 / 4) as u16),
            time_gran: c.time_gran.clamp(1, 1_000_000_000),
        };
        if let Err(e) = backend_init(&mut conn) {
            return InitReply::Error(e);
        }
        let dropped = conn.want & !capable;
        if dropped != 0 {
            tracing::warn!(
                dropped = format_args!("{dropped:#x}"),
                "backend wants capabilities the guest does not offer"
            );
        }
        let want = conn.want & capable;
        let max_write = conn.max_write.clamp(4096, page_cap * 4096);
        let max_pages = if want & init::MAX_PAGES != 0 { max_write.div_ceil(4096) as u16 } else { 0 };
        let out = abi::InitOut {
            major: abi::KERNEL_VERSION,
            minor: abi::KERNEL_MINOR_VERSION,
            max_readahead: conn.max_readahead,
            flags: want as u32,
            max_background: conn.max_background,
            congestion_threshold: conn.congestion_threshold.min(conn.max_background),
            max_write,
            time_gran: conn.time_gran,
            max_pages,
            map_alignment: 0,
            flags2: if want & init::INIT_EXT != 0 { (want >> 32) as u32 } else { 0 },
            max_stack_depth: 0,
            request_timeout: 0,
            unused: [0; 11],
        };
        let size = if minor < 5 {
            abi::COMPAT_INIT_OUT_SIZE
        } else if minor < 23 {
            abi::COMPAT_22_INIT_OUT_SIZE
        } else {
            std::mem::size_of::<abi::InitOut>()
        };
        self.minor.store(minor, Ordering::Relaxed);
        self.setxattr_ext.store(want & init::SETXATTR_EXT != 0, Ordering::Relaxed);
        self.max_write.store(max_write, Ordering::Relaxed);
        self.state.store(READY, Ordering::Release);
        tracing::debug!(minor, want = format_args!("{want:#x}"), max_write, "session initialised");
        InitReply::Reply(out, size)
    }

    /// Ends the session (DESTROY or device reset). Returns true if it was running, in
    /// which case the caller tells the backend.
    pub(crate) fn end(&self) -> bool {
        let _g = self.transition.lock();
        self.state.swap(AWAIT_INIT, Ordering::AcqRel) == READY
    }
}
