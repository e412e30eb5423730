//! The kv backend: a POSIX file system kept in a key-value store — redb embedded in the
//! daemon, or Redis — so that a volume survives the daemon and several daemons can serve
//! one volume.
//!
//! # Map
//! - [`store`]: the [`Store`] trait (multi-get, family scans, compare-and-set commits,
//!   sync) and its stores ([`store::redb`]).
//! - [`schema`]: the keys and records of a volume (the table is there), and why chunk
//!   data may live outside the commits' hash slot.
//! - `tx`: one optimistic attempt (read set, write set, commit); `fs` runs attempts
//!   again on conflict.
//! - Operations, one domain per file: `namei` (lookup and the create/remove family),
//!   `rename`, `attr` (getattr, setattr, access, readlink, statfs), `data` (read, write,
//!   truncate, fallocate), `open` (open, create, release, fsync, orphans), `readdir`,
//!   `xattr`; `perm` holds the permission rules, `volume` the format and node-id ranges.
//! - [`fsck`]: checks a volume and repairs it.
//!
//! # Execution
//! Operations are async code over the store, and the backend owns a multi-thread tokio
//! runtime. On Redis every FUSE request becomes a task that answers its reply token, so a
//! HAL poller thread never waits for the network. On redb (a local file, no network) the
//! request starts on the calling poller thread inside the runtime's context (polled once:
//! a redb read costs less than the two thread hops of a task) and becomes a task only if
//! it has to wait: for a lock, or (`--kv-durability immediate`) for its durable commit,
//! which redb's committer thread applies, batched with the commits of the requests the
//! poller took meanwhile. In `fsync` mode (the default) a commit is checked and applied in
//! memory and reaches redb later in a flush with many others (`store::redb`'s memtable),
//! so the request answers on the poller at once. Every store call has a
//! deadline (`op_timeout`): a store that stops answering turns into EIO, never a hung
//! virtqueue.
//!
//! # Consistency
//! Each operation is one transaction: it reads what it needs, then commits its writes
//! together with the values it read; the store applies them only if those values are
//! unchanged (redb: against the memtable and the file, under one lock, or in `immediate`
//! mode inside one write transaction shared by the commits queued meanwhile, each checked
//! on its own — group commit; Redis: one Lua script). A conflict runs
//! the operation again (up to 64 times, with a growing pause). Operations of this daemon
//! that change the same directory or file first take an in-process lock (striped by node
//! id), so conflicts only come from other daemons (on redb a create or unlink lets go of
//! it once its commit is queued, see Limits). Node ids are handed out in ranges of
//! [`volume::INO_BATCH`] reserved through the superblock, never reused. A commit whose
//! answer does not arrive within the deadline answers EIO although the store may have
//! applied it (the guest sees an error for an operation that happened, as on NFS).
//!
//! # Limits
//! - A volume's metadata lives in one Redis hash slot (one node of a cluster); its data
//!   chunks spread over the nodes, 1 MiB of a file per slot (data keys are written once
//!   under fresh generations and then referenced by an atomic metadata commit, see
//!   [`schema`]). Metadata throughput is one node's.
//! - `dpfs fsck` reads every key of the volume (on a cluster: SCAN on every master), so it
//!   wants the volume at rest.
//! - statfs capacity and inode limits are reported, not enforced.
//! - POSIX and BSD locks are not offered: the guest kernel keeps them locally.
//! - Not implemented (ENOSYS, the guest kernel falls back or refuses): STATX, LSEEK
//!   (SEEK_DATA/SEEK_HOLE), COPY_FILE_RANGE, TMPFILE. FORGET is a no-op: an inode lives
//!   while it has a name or an open handle here, not while the guest holds a lookup.
//! - redb, `fsync` mode (the default): commits live in memory (a memtable, see
//!   [`store::redb`]) until a background flush writes a few thousand keys at once; the
//!   flusher's once-a-second sync and every FSYNC write the rest with a durable commit,
//!   which holds redb's single writer during its fsync. A crash loses what was not
//!   synced: about a second at most, fsynced work never.
//! - redb, `immediate` mode: commits are batched (group commit). Create (MKNOD, MKDIR,
//!   SYMLINK, CREATE) and UNLINK let go of the directory lock once their commit is queued
//!   (readers see queued writes), so one directory's storm fills batches; LINK, RMDIR,
//!   RENAME, SETATTR and writes still hold their lock until their commit is applied.
//!   A reader may see a queued write whose commit then fails (only on a disk error).
//!   On redb, scans (readdir) see every commit that returned (a scan flushes first).
//!
//! # Open files without names
//! An inode whose last name goes while this daemon has it open gets an orphan key and is
//! kept until the last release; then its chunks, xattrs and record are deleted. A daemon
//! that starts reclaims every orphan it finds (the daemon that had them open is gone).
//! Several daemons on one volume must therefore not restart while another holds such a
//! file open (documented limit).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attr;
pub mod config;
mod data;
pub mod error;
mod fs;
pub mod fsck;
mod namei;
mod open;
mod readdir;
mod rename;
pub mod schema;
pub mod store;
mod tx;
pub mod volume;
mod xattr;

pub use config::{KvConfig, KvDurability, StoreUrl};
/// Permission rules shared with the other backends that keep their own inodes.
use dpfs_core::posix as perm;
pub use error::StoreError;
pub use fs::{network_runtime, runtime, KvFs};
pub use store::Store;

/// Longest name of a directory entry.
pub const NAME_MAX: usize = 255;
/// Longest symlink target.
pub const SYMLINK_MAX: usize = 4095;
