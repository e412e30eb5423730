//! The mem backend driven through a real dpfs-core device, as a guest would.

mod common;
mod locks_xattr;
mod model;
mod posix;
mod threads;
mod xattr_privilege;
