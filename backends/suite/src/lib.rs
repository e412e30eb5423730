//! The typed-guest suite shared by the backends that keep their own namespace (mem, kv):
//! each case drives a fresh file system through core's typed guest (a real [`Device`] and
//! the FUSE request path the HALs use) and asserts Linux's answers. A backend's `tests/`
//! instantiates the cases with [`cases!`], so every backend is held to the same rules and a
//! rule fixed once is tested everywhere.
//!
//! - [`namespace`]: bad names, `renameat2`, readdir cookies under concurrent changes.
//! - [`permissions`]: permission bits, sticky directories, set-ID bits, times.
//!
//! Cases assume a fresh file system whose root is owned by root with mode 0755, whose
//! caller is root (uid 0, gid 0) unless a case switches, and which offers POSIX semantics
//! without a host kernel's own checks (`default_permissions` done by the backend).
//!
//! [`Device`]: dpfs_core::Device

pub mod namespace;
pub mod permissions;

pub use namespace::*;
pub use permissions::*;

use dpfs_core::guest::Guest;
use dpfs_core::FileSystem;

/// `open` flags for read and write.
pub const RW: u32 = libc::O_RDWR as u32;
/// `renameat2`: fail if the new name exists.
pub const NOREPLACE: u32 = dpfs_core::posix::RENAME_NOREPLACE;
/// `renameat2`: swap the two names.
pub const EXCHANGE: u32 = dpfs_core::posix::RENAME_EXCHANGE;
/// `renameat2`: leave a whiteout (refused by every backend here).
pub const WHITEOUT: u32 = dpfs_core::posix::RENAME_WHITEOUT;

/// Inodes in use, from STATFS (`files - ffree`).
pub fn inodes<F: FileSystem>(g: &Guest<F>) -> u64 {
    let st = g.statfs().unwrap();
    st.files - st.ffree
}

/// What a case is run on: a guest, or a test fixture that holds one (and keeps its store
/// alive).
pub trait AsGuest {
    /// The backend.
    type Fs: FileSystem;
    /// The guest to drive.
    fn guest(&self) -> &Guest<Self::Fs>;
}

impl<F: FileSystem> AsGuest for Guest<F> {
    type Fs = F;
    fn guest(&self) -> &Guest<F> {
        self
    }
}

/// Instantiates suite cases as `#[test]` functions: `cases!(MAKE; case, case, ...)` where
/// `MAKE` is an expression giving `Option<impl AsGuest>` for a fresh file system (`None`
/// when the backend's store is missing and the backend's own rules allow skipping).
#[macro_export]
macro_rules! cases {
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(env) = $make {
                    $crate::$case($crate::AsGuest::guest(&env));
                }
            }
        )*
    };
}

/// Every case of the suite, for `cases!(MAKE; all)`-style use: `all_cases!(MAKE)`.
#[macro_export]
macro_rules! all_cases {
    ($make:expr) => {
        $crate::cases!($make;
            namespace_errors_match_linux, rename_flags, readdir_cookies_survive_concurrent_changes,
            sticky_directories, permissions_of_default_permissions, suid_is_cleared_by_writes_and_chown,
            times_and_utime_now);
    };
}
