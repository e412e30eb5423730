//! File attributes: bitmap4 and the fattr4 values of the small set this client asks for
//! (type, size, fileid, mode, numlinks, owner, owner_group, time_modify).

use crate::error::{Error, Result};
use crate::xdr::{Decoder, Encoder};

/// Most words of a bitmap4 accepted from a server.
const MAX_BITMAP_WORDS: usize = 8;
/// Most bytes of an attrlist4 accepted from a server.
const MAX_ATTRLIST: usize = 64 << 10;
/// Most bytes of an owner string.
const MAX_OWNER: usize = 1024;

/// Attribute numbers (RFC 8881 §5.8) this client decodes.
pub mod num {
    /// nfs_ftype4.
    pub const TYPE: u32 = 1;
    /// Size in bytes.
    pub const SIZE: u32 = 4;
    /// File id (inode number).
    pub const FILEID: u32 = 20;
    /// Permission bits.
    pub const MODE: u32 = 33;
    /// Hard links.
    pub const NUMLINKS: u32 = 35;
    /// Owner.
    pub const OWNER: u32 = 36;
    /// Owning group.
    pub const OWNER_GROUP: u32 = 37;
    /// Modification time.
    pub const TIME_MODIFY: u32 = 53;
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

    /// The attributes this client decodes.
    pub fn basic() -> Self {
        use num::*;
        Self::of(&[TYPE, SIZE, FILEID, MODE, NUMLINKS, OWNER, OWNER_GROUP, TIME_MODIFY])
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
    fn parse(s: &str) -> Self {
        match s.parse::<u32>() {
            Ok(id) if !s.starts_with('+') => Self::Id(id),
            _ => Self::Name(s.to_owned()),
        }
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

/// The decoded attributes; each is `None` when the server did not return it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    /// File type.
    pub file_type: Option<FileType>,
    /// Size in bytes.
    pub size: Option<u64>,
    /// File id.
    pub fileid: Option<u64>,
    /// Permission bits (mode4: 12 bits).
    pub mode: Option<u32>,
    /// Hard links.
    pub numlinks: Option<u32>,
    /// Owner.
    pub owner: Option<Owner>,
    /// Owning group.
    pub owner_group: Option<Owner>,
    /// Modification time.
    pub time_modify: Option<Time>,
}

impl Attrs {
    /// Decodes an fattr4: a bitmap and the values of its attributes in ascending order. An
    /// attribute this client does not know is an error (its length cannot be skipped).
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let mask = Bitmap::decode(d)?;
        let list = d.opaque("attrlist4", MAX_ATTRLIST)?;
        let mut v = Decoder::new(list);
        let mut a = Attrs::default();
        for bit in mask.iter() {
            match bit {
                num::TYPE => a.file_type = Some(FileType::from_u32(v.u32()?)?),
                num::SIZE => a.size = Some(v.u64()?),
                num::FILEID => a.fileid = Some(v.u64()?),
                num::MODE => a.mode = Some(v.u32()?),
                num::NUMLINKS => a.numlinks = Some(v.u32()?),
                num::OWNER => a.owner = Some(Owner::parse(v.string("owner", MAX_OWNER)?)),
                num::OWNER_GROUP => a.owner_group = Some(Owner::parse(v.string("owner_group", MAX_OWNER)?)),
                num::TIME_MODIFY => {
                    let seconds = v.i64()?;
                    let nseconds = v.u32()?;
                    if nseconds >= 1_000_000_000 {
                        return Err(Error::BadValue { what: "nseconds", value: nseconds });
                    }
                    a.time_modify = Some(Time { seconds, nseconds });
                }
                value => return Err(Error::BadValue { what: "attribute", value }),
            }
        }
        v.finish()?;
        Ok(a)
    }

    /// Encodes the attributes that are `Some` as an fattr4 (what a server sends; tests use it).
    pub fn encode(&self, e: &mut Encoder) {
        let mut bits = Vec::new();
        let mut v = Encoder::new();
        if let Some(t) = self.file_type {
            bits.push(num::TYPE);
            v.u32(t as u32);
        }
        if let Some(s) = self.size {
            bits.push(num::SIZE);
            v.u64(s);
        }
        if let Some(f) = self.fileid {
            bits.push(num::FILEID);
            v.u64(f);
        }
        if let Some(m) = self.mode {
            bits.push(num::MODE);
            v.u32(m);
        }
        if let Some(n) = self.numlinks {
            bits.push(num::NUMLINKS);
            v.u32(n);
        }
        for (bit, o) in [(num::OWNER, &self.owner), (num::OWNER_GROUP, &self.owner_group)] {
            match o {
                Some(Owner::Id(id)) => v.string(&id.to_string()),
                Some(Owner::Name(n)) => v.string(n),
                None => continue,
            };
            bits.push(bit);
        }
        if let Some(t) = self.time_modify {
            bits.push(num::TIME_MODIFY);
            v.i64(t.seconds).u32(t.nseconds);
        }
        Bitmap::of(&bits).encode(e);
        e.opaque(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attrs() -> impl Strategy<Value = Attrs> {
        let owner = prop_oneof![any::<u32>().prop_map(Owner::Id), "[a-z]{1,8}@[a-z]{1,8}".prop_map(Owner::Name)];
        (
            proptest::option::of(prop_oneof![Just(FileType::Regular), Just(FileType::Directory), Just(FileType::Fifo)]),
            any::<Option<u64>>(),
            any::<Option<u64>>(),
            proptest::option::of(0u32..0o10000),
            any::<Option<u32>>(),
            proptest::option::of(owner.clone()),
            proptest::option::of(owner),
            proptest::option::of(
                (any::<i64>(), 0u32..1_000_000_000).prop_map(|(seconds, nseconds)| Time { seconds, nseconds }),
            ),
        )
            .prop_map(|(file_type, size, fileid, mode, numlinks, owner, owner_group, time_modify)| Attrs {
                file_type,
                size,
                fileid,
                mode,
                numlinks,
                owner,
                owner_group,
                time_modify,
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
        // An attribute this client cannot decode (2: fh_expire_type) is an error.
        let mut e = Encoder::new();
        Bitmap::of(&[2]).encode(&mut e);
        e.opaque(&[0, 0, 0, 0]);
        assert!(matches!(Attrs::decode(&mut Decoder::new(e.as_bytes())), Err(Error::BadValue { value: 2, .. })));
        assert_eq!(Owner::parse("1000"), Owner::Id(1000));
        assert_eq!(Owner::parse("+1"), Owner::Name("+1".into()));
    }
}
