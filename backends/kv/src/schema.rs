//! The volume's keys and records: how a file system is laid out in a key-value store.
//!
//! | key | value | what |
//! |---|---|---|
//! | `S` | [`Super`] | format version, chunk size, next unallocated node id |
//! | `N` `inodes` / `N` `bytes` | i64 counter | inodes in use, bytes allocated (statfs) |
//! | `I` ino | [`Inode`] | attributes; a symlink's target; a small file's bytes (inline) |
//! | `D` parent name | [`Dirent`] | name → inode (LOOKUP) |
//! | `C` parent cookie | [`Dirent`] | the same entry by its readdir cookie (READDIR: a family scan) |
//! | `X` ino name | bytes | one extended attribute |
//! | `B` ino chunk | [`ChunkRef`] | chunk `chunk` of a file exists: which data key holds it |
//! | `E` ino chunk gen | bytes | data: one [`CHUNK`]-byte piece of a file; shorter values end in zeros |
//! | `O` 0 ino | empty | an inode without names that is still open somewhere (orphan) |
//!
//! # Data keys and metadata keys
//! Every key but `E` is *metadata*: commits are atomic over metadata (one redb write
//! transaction; one Lua script in the volume's hash slot on Redis). A data key `E` is
//! written once and never changed: a write of a chunk stores its new bytes under a fresh
//! generation `gen` ([`fresh_gen`]), then the commit that moves the chunk's `B` reference
//! to that generation (checked against the reference the attempt read, with the inode)
//! makes it part of the file. The old generation is deleted after that commit; a truncate,
//! punch or reclaim deletes the references in its commit and the data keys after it.
//! Generation 0 ([`ZERO_GEN`]) is a chunk that exists but holds only zeros (fallocate):
//! it has no data key.
//!
//! On Redis this lets data keys live outside the volume's slot (each group of
//! [`CHUNK_GROUP`] chunks of a file in its own hash slot, see [`crate::store::redis`]),
//! so a cluster spreads one volume's data over its nodes while its metadata stays
//! atomic. Crash consistency follows from the order: data first, then the reference.
//! - A crash (or a failed commit) after the data and before the commit leaves a data key
//!   no reference names: *leaked*, never read; `dpfs fsck` lists and deletes it (a failed
//!   commit deletes its own at once).
//! - A crash after the commit and before the old data is deleted leaves the old
//!   generation leaked the same way; the file already names the new one.
//! - A reference whose data key is missing cannot come from a crash; a reader that finds
//!   one reads the references again: if they moved, a writer replaced the chunk
//!   meanwhile (the read runs again), else the volume is corrupt (EIO, fsck drops the
//!   reference so the chunk reads as a hole).
//!
//! A commit that conflicts never made its data reachable, and an inode's `B` references
//! change only in commits that also rewrite (and check) its inode, so two daemons
//! writing one chunk never lose an update: the second commit fails its checks and runs
//! again on the first one's data.
//!
//! On redb every key is in one file, so the data keys of an attempt ride in its commit
//! (the same schema, no leaks at all).
//!
//! Node ids and cookies are big-endian, so a family's keys sort numerically. A directory
//! hands out cookies from a counter in its inode that only grows, so a READDIR offset keeps
//! naming the same place while entries come and go. Every record decodes with checks: a
//! record that does not decode is a corrupt volume and answers EIO, never a panic.

use crate::error::StoreError;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Bytes per data chunk.
pub const CHUNK: u64 = 64 << 10;
/// Largest file kept inline in its inode record (one round trip reads it).
pub const INLINE_MAX: u64 = 4096;
/// Largest file size.
pub const MAX_FILE: u64 = 1 << 50;
/// Format version in the superblock (2: chunk references `B` and data keys `E`; a
/// version-1 volume is refused with a clear error, not read).
pub const VERSION: u32 = 2;
/// Chunks of a file that share one Redis hash slot (1 MiB): a read of up to a group
/// costs one round trip, and a larger file spreads over the cluster's nodes.
pub const CHUNK_GROUP: u64 = 16;
/// The generation of a chunk that holds only zeros and has no data key.
pub const ZERO_GEN: u64 = 0;

/// Key tags.
const SUPER: u8 = b'S';
const COUNT: u8 = b'N';
const INODE: u8 = b'I';
const DENTRY: u8 = b'D';
const COOKIE: u8 = b'C';
const XATTR: u8 = b'X';
const BLOCK: u8 = b'B';
/// Tag of data keys (the Redis store routes them by it).
pub const DATA: u8 = b'E';
/// Length of a data key: tag, node id, chunk index, generation.
pub const DATA_KEY_LEN: usize = 25;
const ORPHAN: u8 = b'O';

fn family(tag: u8, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    k.push(tag);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The superblock key.
pub fn super_key() -> Vec<u8> {
    vec![SUPER]
}
/// The inode counter.
pub fn inodes_key() -> Vec<u8> {
    [&[COUNT][..], b"inodes"].concat()
}
/// The allocated-bytes counter.
pub fn bytes_key() -> Vec<u8> {
    [&[COUNT][..], b"bytes"].concat()
}
/// Inode `ino`.
pub fn inode_key(ino: u64) -> Vec<u8> {
    family(INODE, ino)
}
/// Entry `name` of directory `parent`.
pub fn dentry_key(parent: u64, name: &[u8]) -> Vec<u8> {
    let mut k = family(DENTRY, parent);
    k.extend_from_slice(name);
    k
}
/// The family of `parent`'s entries by cookie.
pub fn cookie_family(parent: u64) -> Vec<u8> {
    family(COOKIE, parent)
}
/// Entry with `cookie` of directory `parent`.
pub fn cookie_key(parent: u64, cookie: u64) -> Vec<u8> {
    let mut k = family(COOKIE, parent);
    k.extend_from_slice(&cookie.to_be_bytes());
    k
}
/// The family of `ino`'s extended attributes.
pub fn xattr_family(ino: u64) -> Vec<u8> {
    family(XATTR, ino)
}
/// Extended attribute `name` of `ino`.
pub fn xattr_key(ino: u64, name: &[u8]) -> Vec<u8> {
    let mut k = family(XATTR, ino);
    k.extend_from_slice(name);
    k
}
/// The family of `ino`'s data chunks.
pub fn chunk_family(ino: u64) -> Vec<u8> {
    family(BLOCK, ino)
}
/// Data chunk `idx` of `ino`.
pub fn chunk_key(ino: u64, idx: u64) -> Vec<u8> {
    let mut k = family(BLOCK, ino);
    k.extend_from_slice(&idx.to_be_bytes());
    k
}
/// Data key of generation `gen` of chunk `idx` of `ino`.
pub fn data_key(ino: u64, idx: u64, gen: u64) -> Vec<u8> {
    let mut k = family(DATA, ino);
    k.extend_from_slice(&idx.to_be_bytes());
    k.extend_from_slice(&gen.to_be_bytes());
    k
}

/// The node id and chunk index of a data key.
pub fn data_key_parts(key: &[u8]) -> Option<(u64, u64, u64)> {
    if key.len() != DATA_KEY_LEN || key.first() != Some(&DATA) {
        return None;
    }
    let n = |a: usize| key.get(a..a + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    Some((n(1)?, n(9)?, n(17)?))
}

/// A chunk reference's value.
pub fn chunk_ref(gen: u64) -> Vec<u8> {
    gen.to_be_bytes().to_vec()
}

/// The generation a chunk reference names.
pub fn ref_gen(key: &[u8], v: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(v).map(u64::from_be_bytes).map_err(|_| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        why: "bad chunk reference".into(),
    })
}

/// A generation no other write of any daemon uses for the same chunk: a random
/// per-process start, then a counter through a bijective mix (never [`ZERO_GEN`]).
pub fn fresh_gen() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        h.finish()
    });
    loop {
        // splitmix64: a bijection, so distinct counters give distinct generations.
        let mut z = seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z != ZERO_GEN {
            return z;
        }
    }
}

/// The orphan list's family.
pub fn orphan_family() -> Vec<u8> {
    family(ORPHAN, 0)
}
/// Orphan `ino`.
pub fn orphan_key(ino: u64) -> Vec<u8> {
    let mut k = family(ORPHAN, 0);
    k.extend_from_slice(&ino.to_be_bytes());
    k
}

/// The big-endian u64 that follows a family prefix in `key` (a cookie, chunk or orphan).
pub fn suffix_u64(key: &[u8]) -> Option<u64> {
    let b = key.get(9..17)?;
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// What a key is, for fsck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// Superblock or a counter.
    Meta,
    /// `I`: inode.
    Inode(u64),
    /// `D`: entry of a directory, by name.
    Dentry(u64, Vec<u8>),
    /// `C`: entry of a directory, by cookie.
    Cookie(u64, u64),
    /// `X`: xattr of an inode.
    Xattr(u64),
    /// `B`: chunk reference of an inode.
    Chunk(u64, u64),
    /// `E`: data of a chunk: node id, chunk index, generation.
    Data(u64, u64, u64),
    /// `O`: orphan.
    Orphan(u64),
    /// Anything else.
    Unknown,
}

/// Classifies `key`.
pub fn kind(key: &[u8]) -> KeyKind {
    let id = || key.get(1..9).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    let rest = key.get(9..).unwrap_or(&[]);
    match (key.first(), id()) {
        (Some(&SUPER), _) | (Some(&COUNT), _) => KeyKind::Meta,
        (Some(&INODE), Some(i)) if rest.is_empty() => KeyKind::Inode(i),
        (Some(&DENTRY), Some(p)) => KeyKind::Dentry(p, rest.to_vec()),
        (Some(&COOKIE), Some(p)) => suffix_u64(key).map_or(KeyKind::Unknown, |c| KeyKind::Cookie(p, c)),
        (Some(&XATTR), Some(i)) => KeyKind::Xattr(i),
        (Some(&BLOCK), Some(i)) => suffix_u64(key).map_or(KeyKind::Unknown, |c| KeyKind::Chunk(i, c)),
        (Some(&DATA), _) => data_key_parts(key).map_or(KeyKind::Unknown, |(i, c, g)| KeyKind::Data(i, c, g)),
        (Some(&ORPHAN), Some(0)) => suffix_u64(key).map_or(KeyKind::Unknown, KeyKind::Orphan),
        _ => KeyKind::Unknown,
    }
}

/// The superblock.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Super {
    /// Format version.
    pub version: u32,
    /// Chunk size the volume was made with.
    pub chunk: u64,
    /// First node id no daemon has reserved yet.
    pub next_ino: u64,
}

/// A timestamp (seconds, nanoseconds).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ts {
    /// Seconds since the epoch.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

impl Ts {
    /// The current time.
    pub fn now() -> Ts {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Ts { sec: d.as_secs() as i64, nsec: d.subsec_nanos() },
            Err(_) => Ts::default(),
        }
    }
}

/// An inode record.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Inode {
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Names (directories: 2 + subdirectories).
    pub nlink: u32,
    /// Device number (character and block devices).
    pub rdev: u32,
    /// Size in bytes (files).
    pub size: u64,
    /// Access time.
    pub atime: Ts,
    /// Modification time.
    pub mtime: Ts,
    /// Change time.
    pub ctime: Ts,
    /// Directories: the parent (`..`); others: the directory it was created in.
    pub parent: u64,
    /// Directories: number of entries.
    pub entries: u64,
    /// Directories: the next readdir cookie to hand out.
    pub next_cookie: u64,
    /// Files: data chunks that exist (`B` references).
    pub chunks: u64,
    /// Files: chunks may exist past the end (fallocate with KEEP_SIZE).
    pub prealloc: bool,
    /// Extended attributes.
    pub xattrs: u32,
    /// Length of the NUL-separated xattr name list.
    pub xattr_list: u32,
    /// Symlinks: the target.
    pub target: Vec<u8>,
    /// Small files: the whole content (`size` bytes). `None`: the data is in chunks.
    pub inline: Option<Vec<u8>>,
}

impl Inode {
    /// True for a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    /// True for a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
    /// What the permission rules of `dpfs_core::posix` look at.
    pub fn owner(&self) -> dpfs_core::posix::Owner {
        dpfs_core::posix::Owner { mode: self.mode, uid: self.uid, gid: self.gid }
    }
    /// A removed directory.
    pub fn is_dead_dir(&self) -> bool {
        self.is_dir() && self.nlink == 0
    }
    /// Bytes this inode occupies in the counters (whole 4 KiB pages inline, whole chunks).
    pub fn alloc_bytes(&self) -> u64 {
        match &self.inline {
            Some(d) => (d.len() as u64).div_ceil(4096) * 4096,
            None => self.chunks * CHUNK,
        }
    }
    /// Clears setuid, and setgid if group-executable (as a write or chown does).
    pub fn kill_suid(&mut self) {
        self.mode &= !libc::S_ISUID;
        if self.mode & (libc::S_ISGID | libc::S_IXGRP) == (libc::S_ISGID | libc::S_IXGRP) {
            self.mode &= !libc::S_ISGID;
        }
    }
}

/// A directory entry (under its name and under its cookie).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Dirent {
    /// The inode.
    pub ino: u64,
    /// `DT_*` type.
    pub typ: u32,
    /// Its readdir cookie.
    pub cookie: u64,
    /// The name.
    pub name: Vec<u8>,
}

/// Encodes a record.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing these plain structs into a Vec cannot fail.
    postcard::to_allocvec(v).unwrap_or_default()
}

/// Decodes a record read under `key`; a bad record is [`StoreError::Corrupt`].
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes)
        .map_err(|e| StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), why: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_an_error() {
        let i = Inode { mode: libc::S_IFREG | 0o644, size: 3, inline: Some(b"abc".to_vec()), ..Default::default() };
        let k = inode_key(7);
        assert_eq!(decode::<Inode>(&k, &encode(&i)).ok(), Some(i));
        assert!(decode::<Inode>(&k, &[0xff; 3]).is_err());
        assert!(decode::<Dirent>(&k, &[]).is_err());
        let e = Dirent { ino: 9, typ: 8, cookie: 3, name: b"n".to_vec() };
        assert_eq!(decode::<Dirent>(&k, &encode(&e)).ok(), Some(e));
    }

    #[test]
    fn keys_classify() {
        assert_eq!(kind(&inode_key(5)), KeyKind::Inode(5));
        assert_eq!(kind(&dentry_key(1, b"a")), KeyKind::Dentry(1, b"a".to_vec()));
        assert_eq!(kind(&cookie_key(1, 4)), KeyKind::Cookie(1, 4));
        assert_eq!(kind(&chunk_key(3, 2)), KeyKind::Chunk(3, 2));
        assert_eq!(kind(&data_key(3, 2, 9)), KeyKind::Data(3, 2, 9));
        assert_eq!(kind(&data_key(3, 2, 9)[..24]), KeyKind::Unknown);
        assert_eq!(kind(&orphan_key(8)), KeyKind::Orphan(8));
        assert_eq!(kind(&xattr_key(8, b"user.a")), KeyKind::Xattr(8));
        assert_eq!(kind(&super_key()), KeyKind::Meta);
        assert_eq!(kind(b"I"), KeyKind::Unknown);
        assert_eq!(kind(b""), KeyKind::Unknown);
        assert!(cookie_key(1, 2) < cookie_key(1, 256));
    }
}
