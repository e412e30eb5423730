//! Names in directories: CREATE (non-regular objects), REMOVE, RENAME, LINK and READLINK
//! (RFC 8881 §18.4, 18.9, 18.24–18.26).

use crate::error::Result;
use crate::ops::attr::Bitmap;
use crate::ops::newattr::NewAttrs;
use crate::ops::state::ChangeInfo;
use crate::xdr::{Decoder, Encoder};

/// Most bytes of a symlink target accepted from a server.
pub const MAX_LINK: usize = 4096;

/// What CREATE makes (createtype4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateKind {
    /// A directory.
    Dir,
    /// A symbolic link to this target.
    Symlink(Vec<u8>),
    /// A FIFO.
    Fifo,
    /// A socket.
    Socket,
    /// A block device (major, minor).
    Block(u32, u32),
    /// A character device (major, minor).
    Char(u32, u32),
}

/// CREATE's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateArgs {
    /// What to make.
    pub kind: CreateKind,
    /// Its name in the current directory.
    pub name: Vec<u8>,
    /// Its initial attributes.
    pub attrs: NewAttrs,
}

impl CreateArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        match &self.kind {
            CreateKind::Symlink(target) => e.u32(5).opaque(target),
            CreateKind::Block(ma, mi) => e.u32(3).u32(*ma).u32(*mi),
            CreateKind::Char(ma, mi) => e.u32(4).u32(*ma).u32(*mi),
            CreateKind::Socket => e.u32(6),
            CreateKind::Fifo => e.u32(7),
            CreateKind::Dir => e.u32(2),
        };
        e.opaque(&self.name);
        self.attrs.encode(e);
    }
}

/// CREATE's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRes {
    /// The directory's change info.
    pub cinfo: ChangeInfo,
    /// The attributes the server set.
    pub attrset: Bitmap,
}

impl CreateRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self { cinfo: ChangeInfo::decode(d)?, attrset: Bitmap::decode(d)? })
    }
}
