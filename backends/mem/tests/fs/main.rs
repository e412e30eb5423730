//! The mem backend driven through a real dpfs-core device, as a guest would.

mod common;
mod locks_xattr;
mod model;
mod posix;
mod threads;
mod xattr_privilege;

/// `renameat2` flags.
mod posix_flags {
    pub const NOREPLACE: u32 = 1;
    pub const EXCHANGE: u32 = 2;
    pub const WHITEOUT: u32 = 4;
}
