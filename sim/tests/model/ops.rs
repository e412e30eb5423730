//! The operations a case is made of, their strategies, and what an operation observably did.

use proptest::prelude::*;

/// Names a case works with: a few, so operations collide often.
pub const NAMES: [&[u8]; 4] = [b"a", b"b", b"d0", b"d1"];
/// Parent directories, as paths below the case directory.
pub const PARENTS: [&[&[u8]]; 3] = [&[], &[b"d0"], &[b"d0", b"d1"]];
pub const XNAMES: [&[u8]; 2] = [b"user.x", b"user.y"];
pub const SLOTS: usize = 2;
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
pub const XATTR_CREATE: u32 = 1;
pub const XATTR_REPLACE: u32 = 2;

/// A path: parent index into [`PARENTS`], name index into [`NAMES`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct P(pub usize, pub usize);

impl std::fmt::Debug for P {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in PARENTS[self.0] {
            write!(f, "{}/", String::from_utf8_lossy(c))?;
        }
        write!(f, "{}", String::from_utf8_lossy(NAMES[self.1]))
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    /// CREATE with O_EXCL into handle `slot` (closing what it held).
    Create {
        p: P,
        slot: usize,
    },
    /// LOOKUP + OPEN O_RDWR (optionally O_TRUNC) into handle `slot`.
    Open {
        p: P,
        slot: usize,
        trunc: bool,
    },
    Write {
        slot: usize,
        off: u64,
        len: usize,
        byte: u8,
    },
    Read {
        slot: usize,
        off: u64,
        len: u32,
    },
    Close {
        slot: usize,
    },
    /// SETATTR size.
    Truncate {
        p: P,
        size: u64,
    },
    Mkdir {
        p: P,
    },
    Rmdir {
        p: P,
    },
    Unlink {
        p: P,
    },
    Symlink {
        p: P,
        target: u8,
    },
    Link {
        from: P,
        to: P,
    },
    Rename {
        from: P,
        to: P,
        flags: u32,
    },
    Getattr {
        p: P,
    },
    Readdir {
        parent: usize,
    },
    Setxattr {
        p: P,
        name: usize,
        value: u8,
        flags: u32,
    },
    Getxattr {
        p: P,
        name: usize,
    },
    Removexattr {
        p: P,
        name: usize,
    },
    /// GETATTR through an open handle (the file may be unlinked).
    Fstat {
        slot: usize,
    },
    /// SETATTR size through an open handle.
    Ftruncate {
        slot: usize,
        size: u64,
    },
}

fn path() -> impl Strategy<Value = P> {
    (0..PARENTS.len(), 0..NAMES.len()).prop_map(|(a, b)| P(a, b))
}

fn offset() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0..10_000u64, Just(4095), Just(4096), Just(65_535), Just(65_536), 60_000..70_000u64]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (path(), 0..SLOTS).prop_map(|(p, slot)| Op::Create { p, slot }),
        3 => (path(), 0..SLOTS, any::<bool>()).prop_map(|(p, slot, trunc)| Op::Open { p, slot, trunc }),
        4 => (0..SLOTS, offset(), prop_oneof![0..300usize, 4000..6000usize], any::<u8>())
            .prop_map(|(slot, off, len, byte)| Op::Write { slot, off, len, byte }),
        3 => (0..SLOTS, offset(), 0..9000u32).prop_map(|(slot, off, len)| Op::Read { slot, off, len }),
        1 => (0..SLOTS).prop_map(|slot| Op::Close { slot }),
        2 => (path(), offset()).prop_map(|(p, size)| Op::Truncate { p, size }),
        3 => path().prop_map(|p| Op::Mkdir { p }),
        2 => path().prop_map(|p| Op::Rmdir { p }),
        2 => path().prop_map(|p| Op::Unlink { p }),
        1 => (path(), any::<u8>()).prop_map(|(p, target)| Op::Symlink { p, target }),
        2 => (path(), path()).prop_map(|(from, to)| Op::Link { from, to }),
        4 => (path(), path(), prop_oneof![Just(0), Just(RENAME_NOREPLACE), Just(RENAME_EXCHANGE)])
            .prop_map(|(from, to, flags)| Op::Rename { from, to, flags }),
        3 => path().prop_map(|p| Op::Getattr { p }),
        2 => (0..PARENTS.len()).prop_map(|parent| Op::Readdir { parent }),
        2 => (path(), 0..XNAMES.len(), any::<u8>(), prop_oneof![Just(0), Just(XATTR_CREATE), Just(XATTR_REPLACE)])
            .prop_map(|(p, name, value, flags)| Op::Setxattr { p, name, value, flags }),
        2 => (path(), 0..XNAMES.len()).prop_map(|(p, name)| Op::Getxattr { p, name }),
        1 => (path(), 0..XNAMES.len()).prop_map(|(p, name)| Op::Removexattr { p, name }),
        2 => (0..SLOTS).prop_map(|slot| Op::Fstat { slot }),
        1 => (0..SLOTS, offset()).prop_map(|(slot, size)| Op::Ftruncate { slot, size }),
    ]
}

pub fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..=max)
}

/// What an operation observably did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The operation was not sent (its handle slot is empty).
    Skipped,
    Err(i32),
    Done,
    Written(u32),
    Data(Vec<u8>),
    Attr {
        kind: Kind,
        size: u64,
        nlink: u32,
        target: Option<Vec<u8>>,
    },
    Names(Vec<(Vec<u8>, Kind)>),
    Xattr(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

pub fn symlink_target(t: u8) -> Vec<u8> {
    format!("target-{t}").into_bytes()
}

pub fn xattr_value(v: u8) -> Vec<u8> {
    vec![v; 1 + v as usize % 7]
}
