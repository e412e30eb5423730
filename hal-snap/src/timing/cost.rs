//! What the backend costs on the DPU: instructions per operation (from
//! `benches/baselines/instructions.toml`, callgrind counts of dpfs's own request path) times
//! the profile's Arm nanoseconds per instruction, plus kernel time where a backend makes
//! system calls (which callgrind does not count: an assumption, stated in the profile).

use serde::Serialize;

/// The request path's instructions for 4 KiB and 128 KiB reads and writes; other sizes are
/// interpolated linearly.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendCost {
    /// Name shown in reports.
    pub name: String,
    /// Instructions of a 4 KiB READ / 128 KiB READ.
    pub read: (u64, u64),
    /// Instructions of a 4 KiB WRITE / 128 KiB WRITE.
    pub write: (u64, u64),
    /// Kernel time per operation (system calls), ns at x86 speed; 0 for in-memory backends.
    pub kernel_ns: u64,
    /// Kernel time per KiB moved (page-cache copies), ns at x86 speed.
    pub kernel_ns_per_kib: u64,
}

/// DPFS-null as calibrated: its FUSE layer and backend are part of the profile's per-request
/// cost, so nothing is added.
pub fn dpfs_c_null() -> BackendCost {
    BackendCost { name: "DPFS-null (C)".into(), read: (0, 0), write: (0, 0), kernel_ns: 0, kernel_ns_per_kib: 0 }
}

/// dpfs's backends, from the committed instruction-count baseline (cases `null/*`,
/// `mem/*`, `passthrough/*`); passthrough's 128 KiB figures are not gated, so its copy cost
/// is charged as kernel time per KiB.
pub fn dpfs_backend(name: &str) -> Option<BackendCost> {
    let b = |read, write, kernel_ns, kernel_ns_per_kib| BackendCost {
        name: format!("dpfs {name}"),
        read,
        write,
        kernel_ns,
        kernel_ns_per_kib,
    };
    match name {
        "null" => Some(b((1262, 1262), (1599, 1599), 0, 0)),
        "mem" => Some(b((2258, 19320), (2870, 21564), 0, 0)),
        // pread/pwrite on a page-cache hit: ~1 µs of syscall and ~0.08 µs/KiB of copy on a
        // 2.4 GHz Xeon (assumption; callgrind does not see the kernel).
        "passthrough" => Some(b((1962, 1962), (2303, 2303), 1000, 80)),
        _ => None,
    }
}

impl BackendCost {
    /// Instructions of one request of `bs` bytes.
    pub fn instructions(&self, write: bool, bs: u64) -> f64 {
        let (a, b) = if write { self.write } else { self.read };
        let t = (bs as f64 - 4096.0) / (131072.0 - 4096.0);
        a as f64 + (b as f64 - a as f64) * t.max(0.0)
    }

    /// Kernel ns (x86) of one request of `bs` bytes.
    pub fn kernel(&self, bs: u64) -> f64 {
        self.kernel_ns as f64 + self.kernel_ns_per_kib as f64 * bs as f64 / 1024.0
    }
}
