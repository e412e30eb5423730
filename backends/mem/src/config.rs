//! Configuration of a mem file system: capacity limits, cache timeouts and the root's owner.

use std::time::Duration;

/// Limits and defaults of one [`MemFs`](crate::MemFs) instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemConfig {
    /// Bytes of file data, xattrs, symlink targets and entry names the file system may hold
    /// (default 1 GiB). Data is charged in whole 4 KiB chunks.
    pub capacity_bytes: u64,
    /// Most inodes that may exist at once, the root included (default 1 Mi).
    pub max_inodes: u64,
    /// Most open file and directory handles at once (default 1 Mi); more answer ENFILE.
    pub max_handles: u64,
    /// How long the guest may cache name → inode mappings (default 1 s).
    pub entry_timeout: Duration,
    /// How long the guest may cache attributes (default 1 s).
    pub attr_timeout: Duration,
    /// Permission bits of the root directory (default 0o755).
    pub root_mode: u32,
    /// Owner of the root directory (default 0).
    pub root_uid: u32,
    /// Group of the root directory (default 0).
    pub root_gid: u32,
}

impl Default for MemConfig {
    fn default() -> Self {
        MemConfig {
            capacity_bytes: 1 << 30,
            max_inodes: 1 << 20,
            max_handles: 1 << 20,
            entry_timeout: Duration::from_secs(1),
            attr_timeout: Duration::from_secs(1),
            root_mode: 0o755,
            root_uid: 0,
            root_gid: 0,
        }
    }
}
