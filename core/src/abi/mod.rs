//! The FUSE wire protocol, version 7.45: opcodes, flag bits and the fixed structs.
//!
//! Only plain data lives here. Every struct is `#[repr(C)]`, has no implicit padding and
//! derives the zerocopy traits, so it is read from and written to guest memory by value.

mod flags;
mod opcode;
mod structs;

pub use flags::*;
pub use opcode::{Opcode, OPCODE_SLOTS};
pub use structs::*;

/// Major protocol version spoken by dpfs.
pub const KERNEL_VERSION: u32 = 7;
/// Highest minor protocol version dpfs implements.
pub const KERNEL_MINOR_VERSION: u32 = 45;
/// Oldest minor version dpfs negotiates with (compat reply sizes are honoured above it).
pub const MIN_KERNEL_MINOR_VERSION: u32 = 9;
/// The nodeid of the root directory.
pub const ROOT_ID: u64 = 1;

/// `init_out` size for peers older than 7.5.
pub const COMPAT_INIT_OUT_SIZE: usize = 8;
/// `init_out` size for peers older than 7.23.
pub const COMPAT_22_INIT_OUT_SIZE: usize = 24;
/// `entry_out` size for peers older than 7.9.
pub const COMPAT_ENTRY_OUT_SIZE: usize = 120;
/// `attr_out` size for peers older than 7.9.
pub const COMPAT_ATTR_OUT_SIZE: usize = 96;
/// `statfs_out` size for peers older than 7.4.
pub const COMPAT_STATFS_SIZE: usize = 48;
/// `write_in` size for peers older than 7.9.
pub const COMPAT_WRITE_IN_SIZE: usize = 24;
/// `mknod_in` size for peers older than 7.12.
pub const COMPAT_MKNOD_IN_SIZE: usize = 8;
/// `setxattr_in` size unless `SETXATTR_EXT` was negotiated.
pub const COMPAT_SETXATTR_IN_SIZE: usize = 8;

/// Offset of the name in a `fuse_dirent`.
pub const DIRENT_NAME_OFFSET: usize = 24;
/// Offset of the name in a `fuse_direntplus`.
pub const DIRENTPLUS_NAME_OFFSET: usize = 152;

/// Rounds a dirent length up to the 8-byte alignment the protocol requires.
pub const fn dirent_align(len: usize) -> usize {
    (len + 7) & !7
}

/// Extension type carrying supplementary groups (`fuse_ext_header.type`).
pub const EXT_GROUPS: u32 = 32;
/// Highest extension type used for security contexts.
pub const MAX_NR_SECCTX: u32 = 31;
