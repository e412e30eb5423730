//! The kv backend driven through a real dpfs-core device, as a guest would, on each store.

mod cluster;
mod common;
mod data;
mod fsck;
mod memtable;
mod persist;
mod posix;
mod redis_crash;
mod redis_server;
mod trips;
mod two_daemons;
mod xattr;
