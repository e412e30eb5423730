//! Decoding replies: the out-header's errno, reply structs, directory entries.

use crate::error::{Error, Result};
use dpfs_core::abi::{self, OutHeader};
use dpfs_core::Errno;
use std::mem::size_of;
use zerocopy::{FromBytes, IntoBytes};

/// A completed request's reply: its out-header and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The out-header (zeroed for requests without a reply).
    pub header: OutHeader,
    /// The bytes after the out-header.
    pub body: Vec<u8>,
}

impl Reply {
    /// `Err(Error::Errno)` if the device answered with an error, else the reply.
    pub fn ok(self) -> Result<Reply> {
        if self.header.error < 0 {
            Err(Error::Errno(Errno(-self.header.error)))
        } else {
            Ok(self)
        }
    }

    /// Reads reply struct `T` from the start of the body; the body must hold all of it.
    pub fn parse<T: FromBytes>(&self) -> Result<T> {
        T::read_from_prefix(&self.body)
            .map(|(v, _)| v)
            .map_err(|_| Error::Protocol(format!("reply of {} bytes, expected {}", self.body.len(), size_of::<T>())))
    }

    /// Reads `T` from the body, zero-filling what a shorter (older-protocol) reply omits.
    pub fn parse_prefix<T: FromBytes + IntoBytes>(&self) -> T {
        let mut v = T::new_zeroed();
        let n = self.body.len().min(size_of::<T>());
        v.as_mut_bytes()[..n].copy_from_slice(&self.body[..n]);
        v
    }
}

/// One `fuse_dirent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// Offset to pass to continue after this entry.
    pub off: u64,
    /// `DT_*` type.
    pub typ: u32,
    /// Name.
    pub name: Vec<u8>,
}

/// One `fuse_direntplus`: an entry and its lookup result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntryPlus {
    /// The lookup result (nodeid 0 for `.`/`..` entries the server does not look up).
    pub entry: abi::EntryOut,
    /// The directory entry.
    pub dirent: DirEntry,
}

/// Decodes a READDIR reply body.
pub fn parse_dirents(mut body: &[u8]) -> Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (d, rest) = dirent(body)?;
        out.push(d);
        body = rest;
    }
    Ok(out)
}

/// Decodes a READDIRPLUS reply body.
pub fn parse_direntplus(mut body: &[u8]) -> Result<Vec<DirEntryPlus>> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (entry, rest) =
            abi::EntryOut::read_from_prefix(body).map_err(|_| Error::Protocol("truncated direntplus".into()))?;
        let (dirent, rest) = dirent(rest)?;
        out.push(DirEntryPlus { entry, dirent });
        body = rest;
    }
    Ok(out)
}

fn dirent(body: &[u8]) -> Result<(DirEntry, &[u8])> {
    let (d, _) = abi::Dirent::read_from_prefix(body).map_err(|_| Error::Protocol("truncated dirent".into()))?;
    let name_end = abi::DIRENT_NAME_OFFSET + d.namelen as usize;
    let name = body
        .get(abi::DIRENT_NAME_OFFSET..name_end)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::Protocol(format!("dirent name of {} bytes overruns the reply", d.namelen)))?;
    let next = abi::dirent_align(name_end).min(body.len());
    Ok((DirEntry { ino: d.ino, off: d.off, typ: d.typ, name: name.to_vec() }, &body[next..]))
}

/// Splits a LISTXATTR value into names.
pub fn parse_xattr_names(body: &[u8]) -> Vec<Vec<u8>> {
    body.split(|&b| b == 0).filter(|n| !n.is_empty()).map(<[u8]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(ino: u64, off: u64, name: &[u8], out: &mut Vec<u8>) {
        let d = abi::Dirent { ino, off, namelen: name.len() as u32, typ: 8 };
        out.extend_from_slice(d.as_bytes());
        out.extend_from_slice(name);
        out.resize(abi::dirent_align(out.len()), 0);
    }

    #[test]
    fn dirents_round_trip() {
        let mut b = Vec::new();
        encode(5, 1, b"a", &mut b);
        encode(6, 2, b"longer-name", &mut b);
        let v = parse_dirents(&b).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].name, b"longer-name");
        assert_eq!(v[1].off, 2);
        assert!(parse_dirents(&b[..40]).is_err());
    }

    #[test]
    fn errors_surface_as_errno() {
        let r = Reply { header: OutHeader { len: 16, error: -2, unique: 1 }, body: vec![] };
        assert_eq!(r.ok().unwrap_err().errno(), Some(Errno::ENOENT));
        assert_eq!(parse_xattr_names(b"user.a\0user.b\0"), vec![b"user.a".to_vec(), b"user.b".to_vec()]);
    }
}
