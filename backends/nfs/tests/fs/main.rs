//! The nfs backend driven through a real dpfs-core device (core's typed guest), against a
//! private nfs-ganesha on loopback: one server for the binary, one export subdirectory and
//! one backend instance per case, every case run and every failure reported.

#[path = "../../client/tests/support/mod.rs"]
mod support;

mod data;
mod locks;
mod namespace;
mod owners;
mod v42;
mod xattrs;

use dpfs_backend_nfs::{NfsConfig, NfsFs};
use dpfs_core::guest;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The tests' guest over an nfs backend.
pub type Guest = guest::Guest<NfsFs>;
pub use guest::ROOT;

/// One case's world: its guest and the host directory behind its export root.
pub struct Case {
    /// The guest.
    pub g: Guest,
    /// The host directory the case's root is.
    pub dir: PathBuf,
}

/// A fresh directory `name` (mode 0777) in the export, served by a new backend instance
/// configured by `tweak`.
fn case(server: &support::Ganesha, name: &str, tweak: Tweak) -> Case {
    let dir = server.export_dir.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut cfg = NfsConfig::new(support::ADDR.parse().unwrap(), format!("{}/{name}", support::EXPORT));
    cfg.deadline = Duration::from_secs(20);
    cfg.entry_timeout = Duration::ZERO;
    cfg.attr_timeout = Duration::ZERO;
    tweak(&mut cfg);
    let fs = Arc::new(NfsFs::connect(cfg).unwrap());
    let (g, _init) = Guest::new(fs).expect("INIT");
    Case { g, dir }
}

type CaseFn = fn(&Case);
type Tweak = fn(&mut NfsConfig);

fn defaults(_: &mut NfsConfig) {}

/// NFSv4.2 (`--nfs-minor 2`).
fn minor2(c: &mut NfsConfig) {
    c.minor = 2;
}

/// READs and WRITEs of 64 KiB: a guest request spans several.
fn small_io(c: &mut NfsConfig) {
    c.max_io = 64 << 10;
}

const CASES: &[(&str, CaseFn, Tweak)] = &[
    ("file_write_read_and_attrs", data::file_write_read_and_attrs, defaults),
    ("large_io_in_several_rpcs", data::large_io_in_several_rpcs, small_io),
    ("setattr_size_mode_times", data::setattr_size_mode_times, defaults),
    ("open_existing_and_share_state", data::open_existing_and_share_state, defaults),
    ("links_rename_and_readdir", namespace::links_rename_and_readdir, defaults),
    ("special_files", namespace::special_files, defaults),
    ("forget_frees_nodes", namespace::forget_frees_nodes, defaults),
    ("callers_identity_reaches_the_server", owners::callers_identity_reaches_the_server, defaults),
    ("statfs_and_access", owners::statfs_and_access, defaults),
    ("posix_locks", locks::posix_locks, defaults),
    ("posix_locks_belong_to_the_owner_not_the_open", locks::locks_belong_to_the_owner, defaults),
    ("v42_seek_data_and_hole", v42::seek_data_and_hole, minor2),
    ("v42_fallocate_allocate_and_punch", v42::fallocate_allocate_and_punch, minor2),
    ("v42_copy_file_range_on_the_server", v42::copy_file_range_on_the_server, minor2),
    ("v41_has_no_v42_ops", v42::v41_has_no_v42_ops, defaults),
    ("v42_user_xattrs_or_eopnotsupp", xattrs::user_xattrs_or_eopnotsupp, minor2),
    ("v41_has_no_xattrs", xattrs::v41_has_no_xattrs, defaults),
    // The shared backend suite, where NFS semantics allow: not `rename_flags` (NFSv4 has no
    // RENAME_EXCHANGE: EINVAL), not `readdir_cookies_survive_concurrent_changes` (the server
    // orders entries; names added behind the cursor may be missed, as POSIX allows), not
    // `permissions_of_default_permissions` (a case's root is 0777 so callers can create).
    ("suite_namespace_errors_match_linux", |c| dpfs_backend_suite::namespace_errors_match_linux(&c.g), defaults),
    ("suite_sticky_directories", |c| dpfs_backend_suite::sticky_directories(&c.g), defaults),
    ("suite_suid", |c| dpfs_backend_suite::suid_is_cleared_by_writes_and_chown(&c.g), defaults),
    ("suite_times", |c| dpfs_backend_suite::times_and_utime_now(&c.g), defaults),
];

#[test]
fn nfs_backend_suite() {
    let Some(server) = support::Ganesha::start() else { return };
    let only = std::env::var("DPFS_NFS_CASE").ok();
    let mut failed = Vec::new();
    for (name, f, tweak) in CASES {
        if only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let c = case(&server, name, *tweak);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&c)));
        drop(c);
        match r {
            Ok(()) => eprintln!("case {name} ... ok"),
            Err(_) => {
                eprintln!("case {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}
