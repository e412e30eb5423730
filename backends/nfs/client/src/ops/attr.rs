//! File attributes: bitmap4 and the fattr4 values this client decodes (what FUSE needs of a
//! file, of a file system for statfs, and the lease time); an attribute outside that set is
//! an error, since its length cannot be skipped.

use crate::error::{Error, Result};
use crate::ops::fh::FileHandle;
use crate::xdr::{Decoder, Encoder};

/// Most words of a bitmap4 accepted from a server.
const MAX_BITMAP_WORDS: usize = 8;
/// Most bytes of an attrlist4 accepted from a server.
const MAX_ATTRLIST: usize = 64 << 10;
/// Most bytes of an owner string.
pub(crate) const MAX_OWNER: usize = 1024;

/// Attribute numbers (RFC 8881 §5.8) this client decodes or sets.
pub mod num {
    /// nfs_ftype4.
    pub const TYPE: u32 = 1;
    /// Change attribute.
    pub const CHANGE: u32 = 3;
    /// Size in bytes.
    pub const SIZE: u32 = 4;
    /// Lease time in seconds.
    pub const LEASE_TIME: u32 = 10;
    /// The object's file handle.
    pub const FILEHANDLE: u32 = 19;
    /// File id (inode number).
    pub const FILEID: u32 = 20;
    /// Files available to this user.
    pub const FILES_AVAIL: u32 = 21;
    /// Free files.
    pub const FILES_FREE: u32 = 22;
    /// Total files.
    pub const FILES_TOTAL: u32 = 23;
    /// Longest name.
    pub const MAXNAME: u32 = 29;
    /// Largest READ.
    pub const MAXREAD: u32 = 30;
    /// Largest WRITE.
    pub const MAXWRITE: u32 = 31;
    /// Permission bits.
    pub const MODE: u32 = 33;
    /// Hard links.
    pub const NUMLINKS: u32 = 35;
    /// Owner.
    pub const OWNER: u32 = 36;
    /// Owning group.
    pub const OWNER_GROUP: u32 = 37;
    /// Device numbers of a device node.
    pub const RAWDEV: u32 = 41;
    /// Bytes available to this user.
    pub const SPACE_AVAIL: u32 = 42;
    /// Free bytes.
    pub const SPACE_FREE: u32 = 43;
    /// Total bytes.
    pub const SPACE_TOTAL: u32 = 44;
    /// Bytes the object uses.
    pub const SPACE_USED: u32 = 45;
    /// Access time.
    pub const TIME_ACCESS: u32 = 47;
    /// Set the access time (SETATTR only).
    pub const TIME_ACCESS_SET: u32 = 48;
    /// Metadata change time.
    pub const TIME_METADATA: u32 = 52;
    /// Modification time.
    pub const TIME_MODIFY: u32 = 53;
    /// Set the modification time (SETATTR only).
    pub const TIME_MODIFY_SET: u32 = 54;
}

/// A set of attribute numbers (bitmap4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitmap(pub Vec<u32>);

impl Bitmap {
    /// The bitmap of `attrs` (each below 32 * [`MAX_BITMAP_WORDS`]; larger ones are ignored).
    pub fn of(attrs: &[u32]) -> Self {
        let mut words = Vec::new();
        for &a in attrs {
            let w = (a / 32) as usize;
            if w >= MAX_BITMAP_WORDS {
                continue;
            }
            if words.len() <= w {
                words.resize(w + 1, 0);
            }
            if let Some(word) = words.get_mut(w) {
                *word |= 1 << (a % 32);
            }
        }
        Self(words)
    }

    /// The small set of the connect-time checks: type, size, fileid, mode, links, owners, mtime.
    pub fn basic() -> Self {
        use num::*;
        Self::of(&[TYPE, SIZE, FILEID, MODE, NUMLINKS, OWNER, OWNER_GROUP, TIME_MODIFY])
    }

    /// Everything a FUSE `struct fuse_attr` is made of.
    pub fn file() -> Self {
        use num::*;
        Self::of(&[
            TYPE,
            SIZE,
            FILEID,
            MODE,
            NUMLINKS,
            OWNER,
            OWNER_GROUP,
            RAWDEV,
            SPACE_USED,
            TIME_ACCESS,
            TIME_METADATA,
            TIME_MODIFY,
        ])
    }

    /// [`file`](Self::file) and the object's file handle (READDIR entries for readdirplus).
    pub fn file_and_handle() -> Self {
        let mut b = Self::file();
        if let Some(w) = b.0.get_mut(0) {
            *w |= 1 << num::FILEHANDLE;
        }
        b
    }

    /// What statfs needs of the file system.
    pub fn fs() -> Self {
        use num::*;
        Self::of(&[FILES_AVAIL, FILES_FREE, FILES_TOTAL, MAXNAME, SPACE_AVAIL, SPACE_FREE, SPACE_TOTAL])
    }

    /// Whether attribute `a` is in the set.
    pub fn contains(&self, a: u32) -> bool {
        self.0.get((a / 32) as usize).is_some_and(|w| w & (1 << (a % 32)) != 0)
    }

    /// The attribute numbers in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0
            .iter()
            .enumerate()
            .flat_map(|(w, &bits)| (0..32).filter(move |b| bits & (1 << b) != 0).map(move |b| w as u32 * 32 + b))
    }

    /// Encodes the bitmap4.
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.0.len() as u32);
        for w in &self.0 {
            e.u32(*w);
        }
    }

    /// Decodes a bitmap4.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        d.u32_array("bitmap4", MAX_BITMAP_WORDS).map(Self)
    }
}

/// nfs_ftype4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FileType {
    Regular = 1,
    Directory = 2,
    Block = 3,
    Char = 4,
    Symlink = 5,
    Socket = 6,
    Fifo = 7,
    AttrDir = 8,
    NamedAttr = 9,
}

impl FileType {
    fn from_u32(value: u32) -> Result<Self> {
        use FileType::*;
        Ok(match value {
            1 => Regular,
            2 => Directory,
            3 => Block,
            4 => Char,
            5 => Symlink,
            6 => Socket,
            7 => Fifo,
            8 => AttrDir,
            9 => NamedAttr,
            value => return Err(Error::BadValue { what: "nfs_ftype4", value }),
        })
    }
}

/// An owner or group: numeric (`"1000"`) or a `name@domain` this crate does not map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A numeric id.
    Id(u32),
    /// A name the server sent.
    Name(String),
}

impl Owner {
    pub(crate) fn parse(s: &str) -> Self {
        match s.parse::<u32>() {
            Ok(id) if !s.starts_with('+') => Self::Id(id),
            _ => Self::Name(s.to_owned()),
        }
    }

    pub(crate) fn encode(&self, e: &mut Encoder) {
        match self {
            Owner::Id(id) => e.string(&id.to_string()),
            Owner::Name(n) => e.string(n),
        };
    }
}

/// nfstime4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Nanoseconds (below 10^9).
    pub nseconds: u32,
}

impl Time {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let seconds = d.i64()?;
        let nseconds = d.u32()?;
        if nseconds >= 1_000_000_000 {
            return Err(Error::BadValue { what: "nseconds", value: nseconds });
        }
        Ok(Time { seconds, nseconds })
    }

    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.i64(self.seconds).u32(self.nseconds);
    }
}

/// The decoded attributes; each is `None` when the server did not return it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// File type.
    pub file_type: Option<FileType>,
    /// Change attribute.
    pub change: Option<u64>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// Lease time (seconds).
    pub lease_time: Option<u32>,
    /// The object's file handle.
    pub filehandle: Option<FileHandle>,
    /// File id.
    pub fileid: Option<u64>,
    /// Files available to the caller.
    pub files_avail: Option<u64>,
    /// Free files.
    pub files_free: Option<u64>,
    /// Total files.
    pub files_total: Option<u64>,
    /// Longest name.
    pub maxname: Option<u32>,
    /// Largest READ.
    pub maxread: Option<u64>,
    /// Largest WRITE.
    pub maxwrite: Option<u64>,
    /// Permission bits (mode4: 12 bits).
    pub mode: Option<u32>,
    /// Hard links.
    pub numlinks: Option<u32>,
    /// Owner.
    pub owner: Option<Owner>,
    /// Owning group.
    pub owner_group: Option<Owner>,
    /// Device numbers (major, minor).
    pub rawdev: Option<(u32, u32)>,
    /// Bytes available to the caller.
    pub space_avail: Option<u64>,
    /// Free bytes.
    pub space_free: Option<u64>,
    /// Total bytes.
    pub space_total: Option<u64>,
    /// Bytes used by the object.
    pub space_used: Option<u64>,
    /// Access time.
    pub time_access: Option<Time>,
    /// Metadata change time.
    pub time_metadata: Option<Time>,
    /// Modification time.
    pub time_modify: Option<Time>,
}

impl Attrs {
    /// Decodes an fattr4: a bitmap and the values of its attributes in ascending order. An
    /// attribute this client does not know is an error (its length cannot be skipped).
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        use num::*;
        let mask = Bitmap::decode(d)?;
        let list = d.opaque("attrlist4", MAX_ATTRLIST)?;
        let mut v = Decoder::new(list);
        let mut a = Attrs::default();
        for bit in mask.iter() {
            match bit {
                TYPE => a.file_type = Some(FileType::from_u32(v.u32()?)?),
                CHANGE => a.change = Some(v.u64()?),
                SIZE => a.size = Some(v.u64()?),
                LEASE_TIME => a.lease_time = Some(v.u32()?),
                FILEHANDLE => a.filehandle = Some(FileHandle::decode(&mut v)?),
                FILEID => a.fileid = Some(v.u64()?),
                FILES_AVAIL => a.files_avail = Some(v.u64()?),
                FILES_FREE => a.files_free = Some(v.u64()?),
                FILES_TOTAL => a.files_total = Some(v.u64()?),
                MAXNAME => a.maxname = Some(v.u32()?),
                MAXREAD => a.maxread = Some(v.u64()?),
                MAXWRITE => a.maxwrite = Some(v.u64()?),
                MODE => a.mode = Some(v.u32()?),
                NUMLINKS => a.numlinks = Some(v.u32()?),
                OWNER => a.owner = Some(Owner::parse(v.string("owner", MAX_OWNER)?)),
                OWNER_GROUP => a.owner_group = Some(Owner::parse(v.string("owner_group", MAX_OWNER)?)),
                RAWDEV => a.rawdev = Some((v.u32()?, v.u32()?)),
                SPACE_AVAIL => a.space_avail = Some(v.u64()?),
                SPACE_FREE => a.space_free = Some(v.u64()?),
                SPACE_TOTAL => a.space_total = Some(v.u64()?),
                SPACE_USED => a.space_used = Some(v.u64()?),
                TIME_ACCESS => a.time_access = Some(Time::decode(&mut v)?),
                TIME_METADATA => a.time_metadata = Some(Time::decode(&mut v)?),
                TIME_MODIFY => a.time_modify = Some(Time::decode(&mut v)?),
                value => return Err(Error::BadValue { what: "attribute", value }),
            }
        }
        v.finish()?;
        Ok(a)
    }

    /// Encodes the attributes that are `Some` as an fattr4 (what a server sends; tests and
    /// the fuzz corpus use it).
    pub fn encode(&self, e: &mut Encoder) {
        use num::*;
        let mut bits = Vec::new();
        let mut v = Encoder::new();
        macro_rules! put {
            ($bit:expr, $val:expr, |$e:ident, $x:ident| $body:expr) => {
                if let Some($x) = &$val {
                    bits.push($bit);
                    let $e = &mut v;
                    $body;
                }
            };
        }
        put!(TYPE, self.file_type, |e, t| e.u32(*t as u32));
        put!(CHANGE, self.change, |e, x| e.u64(*x));
        put!(SIZE, self.size, |e, x| e.u64(*x));
        put!(LEASE_TIME, self.lease_time, |e, x| e.u32(*x));
        put!(FILEHANDLE, self.filehandle, |e, x| x.encode(e));
        put!(FILEID, self.fileid, |e, x| e.u64(*x));
        put!(FILES_AVAIL, self.files_avail, |e, x| e.u64(*x));
        put!(FILES_FREE, self.files_free, |e, x| e.u64(*x));
        put!(FILES_TOTAL, self.files_total, |e, x| e.u64(*x));
        put!(MAXNAME, self.maxname, |e, x| e.u32(*x));
        put!(MAXREAD, self.maxread, |e, x| e.u64(*x));
        put!(MAXWRITE, self.maxwrite, |e, x| e.u64(*x));
        put!(MODE, self.mode, |e, x| e.u32(*x));
        put!(NUMLINKS, self.numlinks, |e, x| e.u32(*x));
        put!(OWNER, self.owner, |e, x| x.encode(e));
        put!(OWNER_GROUP, self.owner_group, |e, x| x.encode(e));
        put!(RAWDEV, self.rawdev, |e, x| e.u32(x.0).u32(x.1));
        put!(SPACE_AVAIL, self.space_avail, |e, x| e.u64(*x));
        put!(SPACE_FREE, self.space_free, |e, x| e.u64(*x));
        put!(SPACE_TOTAL, self.space_total, |e, x| e.u64(*x));
        put!(SPACE_USED, self.space_used, |e, x| e.u64(*x));
        put!(TIME_ACCESS, self.time_access, |e, x| x.encode(e));
        put!(TIME_METADATA, self.time_metadata, |e, x| x.encode(e));
        put!(TIME_MODIFY, self.time_modify, |e, x| x.encode(e));
        Bitmap::of(&bits).encode(e);
        e.opaque(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn time() -> impl Strategy<Value = Option<Time>> {
        proptest::option::of(
            (any::<i64>(), 0u32..1_000_000_000).prop_map(|(seconds, nseconds)| Time { seconds, nseconds }),
        )
    }

    fn attrs() -> impl Strategy<Value = Attrs> {
        let owner = prop_oneof![any::<u32>().prop_map(Owner::Id), "[a-z]{1,8}@[a-z]{1,8}".prop_map(Owner::Name)];
        let fh = proptest::collection::vec(any::<u8>(), 0..=128).prop_map(|b| FileHandle::new(&b).unwrap());
        (
            (
                proptest::option::of(prop_oneof![
                    Just(FileType::Regular),
                    Just(FileType::Directory),
                    Just(FileType::Fifo)
                ]),
                any::<Option<u64>>(),
                any::<Option<u64>>(),
                any::<Option<u32>>(),
                proptest::option::of(fh),
                any::<Option<u64>>(),
                any::<Option<(u64, u64, u64)>>(),
                any::<Option<u32>>(),
            ),
            (
                any::<Option<(u64, u64)>>(),
                proptest::option::of(0u32..0o10000),
                any::<Option<u32>>(),
                proptest::option::of(owner.clone()),
                proptest::option::of(owner),
                any::<Option<(u32, u32)>>(),
                any::<Option<(u64, u64, u64)>>(),
                any::<Option<u64>>(),
            ),
            (time(), time(), time()),
        )
            .prop_map(|(a, b, c)| Attrs {
                file_type: a.0,
                change: a.1,
                size: a.2,
                lease_time: a.3,
                filehandle: a.4,
                fileid: a.5,
                files_avail: a.6.map(|x| x.0),
                files_free: a.6.map(|x| x.1),
                files_total: a.6.map(|x| x.2),
                maxname: a.7,
                maxread: b.0.map(|x| x.0),
                maxwrite: b.0.map(|x| x.1),
                mode: b.1,
                numlinks: b.2,
                owner: b.3,
                owner_group: b.4,
                rawdev: b.5,
                space_avail: b.6.map(|x| x.0),
                space_free: b.6.map(|x| x.1),
                space_total: b.6.map(|x| x.2),
                space_used: b.7,
                time_access: c.0,
                time_metadata: c.1,
                time_modify: c.2,
            })
    }

    proptest! {
        #[test]
        fn fattr4_round_trips(a in attrs()) {
            let mut e = Encoder::new();
            a.encode(&mut e);
            let bytes = e.into_bytes();
            let mut d = Decoder::new(&bytes);
            prop_assert_eq!(Attrs::decode(&mut d).unwrap(), a);
            prop_assert!(d.finish().is_ok());
            for cut in 0..bytes.len() {
                let mut d = Decoder::new(bytes.get(..cut).unwrap());
                prop_assert!(Attrs::decode(&mut d).is_err());
            }
        }

        #[test]
        fn garbage_fattr4_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Attrs::decode(&mut Decoder::new(&bytes));
        }
    }

    #[test]
    fn bitmap_words_and_unknown_attributes() {
        let b = Bitmap::basic();
        assert_eq!(b.0, vec![(1 << 1) | (1 << 4) | (1 << 20), (1 << 1) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 21)]);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![1, 4, 20, 33, 35, 36, 37, 53]);
        assert!(Bitmap::file_and_handle().contains(num::FILEHANDLE) && !Bitmap::file().contains(num::FILEHANDLE));
        assert_eq!(Bitmap::fs().iter().collect::<Vec<_>>(), vec![21, 22, 23, 29, 42, 43, 44]);
        // An attribute this client cannot decode (2: fh_expire_type) is an error.
        let mut e = Encoder::new();
        Bitmap::of(&[2]).encode(&mut e);
        e.opaque(&[0, 0, 0, 0]);
        assert!(matches!(Attrs::decode(&mut Decoder::new(e.as_bytes())), Err(Error::BadValue { value: 2, .. })));
        assert_eq!(Owner::parse("1000"), Owner::Id(1000));
        assert_eq!(Owner::parse("+1"), Owner::Name("+1".into()));
    }
}
