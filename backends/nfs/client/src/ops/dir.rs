//! READDIR (RFC 8881 §18.23): a page of entries from a cookie, each with the attributes asked.

use crate::error::{Error, Result};
use crate::ops::attr::{Attrs, Bitmap};
use crate::ops::fh::MAX_NAME;
use crate::ops::state::Verifier;
use crate::xdr::{Decoder, Encoder};

/// Most entries accepted in one READDIR reply.
pub const MAX_ENTRIES: usize = 4096;

/// READDIR's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadDirArgs {
    /// Where to start: 0, or the cookie of the last entry already seen.
    pub cookie: u64,
    /// The verifier the server returned with that cookie (zeros with cookie 0).
    pub verifier: Verifier,
    /// Bytes of names and cookies the reply may carry.
    pub dircount: u32,
    /// Bytes the whole reply may carry.
    pub maxcount: u32,
    /// Attributes wanted per entry.
    pub attrs: Bitmap,
}

impl ReadDirArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u64(self.cookie).opaque_fixed(&self.verifier).u32(self.dircount).u32(self.maxcount);
        self.attrs.encode(e);
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its cookie: where the next READDIR starts to continue after it.
    pub cookie: u64,
    /// Its name, as the server sent it (the caller checks it is a valid component).
    pub name: Vec<u8>,
    /// The attributes asked for.
    pub attrs: Attrs,
}

/// READDIR's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadDirRes {
    /// The verifier to send back with the next cookie.
    pub verifier: Verifier,
    /// The entries, in order.
    pub entries: Vec<DirEntry>,
    /// Whether the last entry is the directory's last.
    pub eof: bool,
}

impl ReadDirRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let verifier = d.opaque_array()?;
        let mut entries = Vec::new();
        // dirlist4: a linked list, each entry preceded by "value follows".
        while d.bool()? {
            if entries.len() >= MAX_ENTRIES {
                return Err(Error::TooLong {
                    what: "readdir entries",
                    len: entries.len() as u64 + 1,
                    limit: MAX_ENTRIES as u64,
                });
            }
            let cookie = d.u64()?;
            let name = d.opaque("entry name", MAX_NAME)?.to_vec();
            let attrs = Attrs::decode(d)?;
            entries.push(DirEntry { cookie, name, attrs });
        }
        Ok(Self { verifier, entries, eof: d.bool()? })
    }

    /// Encodes the result (as a server would; tests and the fuzz corpus use it).
    pub fn encode(&self, e: &mut Encoder) {
        e.opaque_fixed(&self.verifier);
        for entry in &self.entries {
            e.bool(true).u64(entry.cookie).opaque(&entry.name);
            entry.attrs.encode(e);
        }
        e.bool(false).bool(self.eof);
    }
}
