//! A decoded FUSE request, and the pure functions that turn argument bytes into one and back.
//!
//! `decode_args` never panics: every length is checked, every name must be NUL-terminated
//! inside the message, and names of namespace operations may not contain `/`. The encoder
//! is the guest side of the same layout, used by tests, the fuzz seed generator and `sim`.

// Every byte here came from the guest: indexing must be checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::abi::{self, Opcode};
use crate::errno::Errno;
use std::marker::PhantomData;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A packed array of fixed-size items inside the message (BATCH_FORGET, REMOVEMAPPING).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ItemList<'a, T> {
    bytes: &'a [u8],
    _t: PhantomData<T>,
}

impl<'a, T: FromBytes + IntoBytes + Immutable + Copy> ItemList<'a, T> {
    fn new(bytes: &'a [u8]) -> Self {
        ItemList { bytes, _t: PhantomData }
    }
    /// Number of items.
    pub fn len(&self) -> usize {
        self.bytes.len() / std::mem::size_of::<T>()
    }
    /// True if there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The items, copied out one by one (the bytes need not be aligned).
    pub fn iter(&self) -> impl Iterator<Item = T> + 'a {
        self.bytes.chunks_exact(std::mem::size_of::<T>()).filter_map(|c| T::read_from_bytes(c).ok())
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

impl<T: FromBytes + IntoBytes + Immutable + Copy + std::fmt::Debug> std::fmt::Debug for ItemList<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A decoded request body (everything after the in-header, except a WRITE's payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Operation<'a> {
    Lookup { name: &'a [u8] },
    Forget(abi::ForgetIn),
    Getattr(abi::GetattrIn),
    Setattr(abi::SetattrIn),
    Readlink,
    Symlink { name: &'a [u8], target: &'a [u8] },
    Mknod { arg: abi::MknodIn, name: &'a [u8] },
    Mkdir { arg: abi::MkdirIn, name: &'a [u8] },
    Unlink { name: &'a [u8] },
    Rmdir { name: &'a [u8] },
    Rename { arg: abi::RenameIn, old: &'a [u8], new: &'a [u8] },
    Link { arg: abi::LinkIn, name: &'a [u8] },
    Open(abi::OpenIn),
    Read(abi::ReadIn),
    Write(abi::WriteIn),
    Statfs,
    Release(abi::ReleaseIn),
    Fsync(abi::FsyncIn),
    Setxattr { arg: abi::SetxattrIn, name: &'a [u8], value: &'a [u8] },
    Getxattr { arg: abi::GetxattrIn, name: &'a [u8] },
    Listxattr(abi::GetxattrIn),
    Removexattr { name: &'a [u8] },
    Flush(abi::FlushIn),
    Init(abi::InitIn),
    Opendir(abi::OpenIn),
    Readdir(abi::ReadIn),
    Releasedir(abi::ReleaseIn),
    Fsyncdir(abi::FsyncIn),
    Getlk(abi::LkIn),
    Setlk(abi::LkIn),
    Setlkw(abi::LkIn),
    Access(abi::AccessIn),
    Create { arg: abi::CreateIn, name: &'a [u8] },
    Interrupt(abi::InterruptIn),
    Bmap(abi::BmapIn),
    Destroy,
    Ioctl { arg: abi::IoctlIn, data: &'a [u8] },
    Poll(abi::PollIn),
    NotifyReply,
    BatchForget { items: ItemList<'a, abi::ForgetOne> },
    Fallocate(abi::FallocateIn),
    Readdirplus(abi::ReadIn),
    Rename2 { arg: abi::Rename2In, old: &'a [u8], new: &'a [u8] },
    Lseek(abi::LseekIn),
    CopyFileRange(abi::CopyFileRangeIn),
    Setupmapping(abi::SetupmappingIn),
    Removemapping { items: ItemList<'a, abi::RemovemappingOne> },
    Syncfs(abi::SyncfsIn),
    Tmpfile { arg: abi::CreateIn, name: &'a [u8] },
    Statx(abi::StatxIn),
    CopyFileRange64(abi::CopyFileRangeIn),
}

/// Session facts that change the wire layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Negotiated minor version.
    pub minor: u32,
    /// `SETXATTR_EXT` negotiated: `setxattr_in` is 16 bytes instead of 8.
    pub setxattr_ext: bool,
}

impl Default for Layout {
    fn default() -> Self {
        Layout { minor: abi::KERNEL_MINOR_VERSION, setxattr_ext: true }
    }
}

/// Longest name accepted in any request (Linux's PATH_MAX; backends apply NAME_MAX).
pub const MAX_NAME: usize = 4096;

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// Reads a struct of which the wire carries `size` bytes (zero-filling the rest).
    fn fixed_sized<T: FromBytes + IntoBytes>(&mut self, size: usize) -> Result<T, Errno> {
        let size = size.min(std::mem::size_of::<T>());
        let (head, rest) = self.b.split_at_checked(size).ok_or(Errno::EINVAL)?;
        let mut v = T::new_zeroed();
        if let Some(dst) = v.as_mut_bytes().get_mut(..size) {
            dst.copy_from_slice(head);
        }
        self.b = rest;
        Ok(v)
    }
    fn fixed<T: FromBytes + IntoBytes>(&mut self) -> Result<T, Errno> {
        self.fixed_sized(std::mem::size_of::<T>())
    }
    /// A NUL-terminated string, without the NUL.
    fn cstr(&mut self) -> Result<&'a [u8], Errno> {
        let end = self.b.iter().position(|&c| c == 0).ok_or(Errno::EINVAL)?;
        if end > MAX_NAME {
            return Err(Errno::ENAMETOOLONG);
        }
        let (s, rest) = self.b.split_at(end);
        self.b = rest.get(1..).unwrap_or_default();
        Ok(s)
    }
    /// A directory entry name: non-empty, no `/`.
    fn name(&mut self) -> Result<&'a [u8], Errno> {
        let s = self.cstr()?;
        if s.is_empty() || s.contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        Ok(s)
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Errno> {
        let (head, rest) = self.b.split_at_checked(n).ok_or(Errno::EINVAL)?;
        self.b = rest;
        Ok(head)
    }
}

/// Decodes the argument bytes of `opcode`. For WRITE, `args` holds only the `write_in`.
pub fn decode_args(opcode: Opcode, args: &[u8], layout: Layout) -> Result<Operation<'_>, Errno> {
    use Operation as O;
    let mut c = Cursor { b: args };
    let op = match opcode {
        Opcode::Lookup => O::Lookup { name: c.name()? },
        Opcode::Forget => O::Forget(c.fixed()?),
        Opcode::Getattr => O::Getattr(c.fixed()?),
        Opcode::Setattr => O::Setattr(c.fixed()?),
        Opcode::Readlink => O::Readlink,
        Opcode::Symlink => {
            let name = c.name()?;
            let target = c.cstr()?;
            if target.is_empty() {
                return Err(Errno::ENOENT);
            }
            O::Symlink { name, target }
        }
        Opcode::Mknod => {
            let arg = c.fixed()?;
            O::Mknod { arg, name: c.name()? }
        }
        Opcode::Mkdir => {
            let arg = c.fixed()?;
            O::Mkdir { arg, name: c.name()? }
        }
        Opcode::Unlink => O::Unlink { name: c.name()? },
        Opcode::Rmdir => O::Rmdir { name: c.name()? },
        Opcode::Rename => {
            let arg = c.fixed()?;
            O::Rename { arg, old: c.name()?, new: c.name()? }
        }
        Opcode::Link => {
            let arg = c.fixed()?;
            O::Link { arg, name: c.name()? }
        }
        Opcode::Open => O::Open(c.fixed()?),
        Opcode::Read => O::Read(c.fixed()?),
        Opcode::Write => O::Write(c.fixed()?),
        Opcode::Statfs => O::Statfs,
        Opcode::Release => O::Release(c.fixed()?),
        Opcode::Fsync => O::Fsync(c.fixed()?),
        Opcode::Setxattr => {
            let size = if layout.setxattr_ext { 16 } else { abi::COMPAT_SETXATTR_IN_SIZE };
            let arg: abi::SetxattrIn = c.fixed_sized(size)?;
            let name = c.cstr()?;
            if name.is_empty() {
                return Err(Errno::EINVAL);
            }
            let value = c.bytes(arg.size as usize)?;
            O::Setxattr { arg, name, value }
        }
        Opcode::Getxattr => {
            let arg = c.fixed()?;
            let name = c.cstr()?;
            if name.is_empty() {
                return Err(Errno::EINVAL);
            }
            O::Getxattr { arg, name }
        }
        Opcode::Listxattr => O::Listxattr(c.fixed()?),
        Opcode::Removexattr => {
            let name = c.cstr()?;
            if name.is_empty() {
                return Err(Errno::EINVAL);
            }
            O::Removexattr { name }
        }
        Opcode::Flush => O::Flush(c.fixed()?),
        // Kernels before 7.36 send only the first 16 bytes of init_in.
        Opcode::Init => O::Init(c.fixed_sized(16.max(args.len()))?),
        Opcode::Opendir => O::Opendir(c.fixed()?),
        Opcode::Readdir => O::Readdir(c.fixed()?),
        Opcode::Releasedir => O::Releasedir(c.fixed()?),
        Opcode::Fsyncdir => O::Fsyncdir(c.fixed()?),
        Opcode::Getlk => O::Getlk(c.fixed()?),
        Opcode::Setlk => O::Setlk(c.fixed()?),
        Opcode::Setlkw => O::Setlkw(c.fixed()?),
        Opcode::Access => O::Access(c.fixed()?),
        Opcode::Create => {
            let arg = c.fixed()?;
            O::Create { arg, name: c.name()? }
        }
        Opcode::Interrupt => O::Interrupt(c.fixed()?),
        Opcode::Bmap => O::Bmap(c.fixed()?),
        Opcode::Destroy => O::Destroy,
        Opcode::Ioctl => {
            let arg: abi::IoctlIn = c.fixed()?;
            let data = c.bytes(arg.in_size as usize)?;
            O::Ioctl { arg, data }
        }
        Opcode::Poll => O::Poll(c.fixed()?),
        Opcode::NotifyReply => O::NotifyReply,
        Opcode::BatchForget => {
            let arg: abi::BatchForgetIn = c.fixed()?;
            let n = (arg.count as usize).checked_mul(16).ok_or(Errno::EINVAL)?;
            O::BatchForget { items: ItemList::new(c.bytes(n)?) }
        }
        Opcode::Fallocate => O::Fallocate(c.fixed()?),
        Opcode::Readdirplus => O::Readdirplus(c.fixed()?),
        Opcode::Rename2 => {
            let arg = c.fixed()?;
            O::Rename2 { arg, old: c.name()?, new: c.name()? }
        }
        Opcode::Lseek => O::Lseek(c.fixed()?),
        Opcode::CopyFileRange => O::CopyFileRange(c.fixed()?),
        Opcode::Setupmapping => O::Setupmapping(c.fixed()?),
        Opcode::Removemapping => {
            let arg: abi::RemovemappingIn = c.fixed()?;
            let n = (arg.count as usize).checked_mul(16).ok_or(Errno::EINVAL)?;
            O::Removemapping { items: ItemList::new(c.bytes(n)?) }
        }
        Opcode::Syncfs => O::Syncfs(c.fixed()?),
        // The kernel names the O_TMPFILE dentry "/", so this name is not a directory entry.
        Opcode::Tmpfile => {
            let arg = c.fixed()?;
            O::Tmpfile { arg, name: c.cstr()? }
        }
        Opcode::Statx => O::Statx(c.fixed()?),
        Opcode::CopyFileRange64 => O::CopyFileRange64(c.fixed()?),
        Opcode::CuseInit | Opcode::Unknown(_) => return Err(Errno::ENOSYS),
    };
    Ok(op)
}

impl Operation<'_> {
    /// The opcode of this operation.
    pub fn opcode(&self) -> Opcode {
        use Operation as O;
        match self {
            O::Lookup { .. } => Opcode::Lookup,
            O::Forget(_) => Opcode::Forget,
            O::Getattr(_) => Opcode::Getattr,
            O::Setattr(_) => Opcode::Setattr,
            O::Readlink => Opcode::Readlink,
            O::Symlink { .. } => Opcode::Symlink,
            O::Mknod { .. } => Opcode::Mknod,
            O::Mkdir { .. } => Opcode::Mkdir,
            O::Unlink { .. } => Opcode::Unlink,
            O::Rmdir { .. } => Opcode::Rmdir,
            O::Rename { .. } => Opcode::Rename,
            O::Link { .. } => Opcode::Link,
            O::Open(_) => Opcode::Open,
            O::Read(_) => Opcode::Read,
            O::Write(_) => Opcode::Write,
            O::Statfs => Opcode::Statfs,
            O::Release(_) => Opcode::Release,
            O::Fsync(_) => Opcode::Fsync,
            O::Setxattr { .. } => Opcode::Setxattr,
            O::Getxattr { .. } => Opcode::Getxattr,
            O::Listxattr(_) => Opcode::Listxattr,
            O::Removexattr { .. } => Opcode::Removexattr,
            O::Flush(_) => Opcode::Flush,
            O::Init(_) => Opcode::Init,
            O::Opendir(_) => Opcode::Opendir,
            O::Readdir(_) => Opcode::Readdir,
            O::Releasedir(_) => Opcode::Releasedir,
            O::Fsyncdir(_) => Opcode::Fsyncdir,
            O::Getlk(_) => Opcode::Getlk,
            O::Setlk(_) => Opcode::Setlk,
            O::Setlkw(_) => Opcode::Setlkw,
            O::Access(_) => Opcode::Access,
            O::Create { .. } => Opcode::Create,
            O::Interrupt(_) => Opcode::Interrupt,
            O::Bmap(_) => Opcode::Bmap,
            O::Destroy => Opcode::Destroy,
            O::Ioctl { .. } => Opcode::Ioctl,
            O::Poll(_) => Opcode::Poll,
            O::NotifyReply => Opcode::NotifyReply,
            O::BatchForget { .. } => Opcode::BatchForget,
            O::Fallocate(_) => Opcode::Fallocate,
            O::Readdirplus(_) => Opcode::Readdirplus,
            O::Rename2 { .. } => Opcode::Rename2,
            O::Lseek(_) => Opcode::Lseek,
            O::CopyFileRange(_) => Opcode::CopyFileRange,
            O::Setupmapping(_) => Opcode::Setupmapping,
            O::Removemapping { .. } => Opcode::Removemapping,
            O::Syncfs(_) => Opcode::Syncfs,
            O::Tmpfile { .. } => Opcode::Tmpfile,
            O::Statx(_) => Opcode::Statx,
            O::CopyFileRange64(_) => Opcode::CopyFileRange64,
        }
    }

    /// Appends the argument bytes of this operation as a guest would send them.
    #[allow(clippy::indexing_slicing)] // encoder: our own data, fixed sizes
    pub fn encode_args(&self, layout: Layout, out: &mut Vec<u8>) {
        use Operation as O;
        fn s<T: IntoBytes + Immutable>(out: &mut Vec<u8>, v: &T) {
            out.extend_from_slice(v.as_bytes());
        }
        fn z(out: &mut Vec<u8>, name: &[u8]) {
            out.extend_from_slice(name);
            out.push(0);
        }
        match self {
            O::Lookup { name } | O::Unlink { name } | O::Rmdir { name } | O::Removexattr { name } => z(out, name),
            O::Forget(a) => s(out, a),
            O::Getattr(a) => s(out, a),
            O::Setattr(a) => s(out, a),
            O::Readlink | O::Statfs | O::Destroy | O::NotifyReply => {}
            O::Symlink { name, target } => {
                z(out, name);
                z(out, target)
            }
            O::Mknod { arg, name } => {
                s(out, arg);
                z(out, name)
            }
            O::Mkdir { arg, name } => {
                s(out, arg);
                z(out, name)
            }
            O::Rename { arg, old, new } => {
                s(out, arg);
                z(out, old);
                z(out, new)
            }
            O::Rename2 { arg, old, new } => {
                s(out, arg);
                z(out, old);
                z(out, new)
            }
            O::Link { arg, name } => {
                s(out, arg);
                z(out, name)
            }
            O::Open(a) | O::Opendir(a) => s(out, a),
            O::Read(a) | O::Readdir(a) | O::Readdirplus(a) => s(out, a),
            O::Write(a) => s(out, a),
            O::Release(a) | O::Releasedir(a) => s(out, a),
            O::Fsync(a) | O::Fsyncdir(a) => s(out, a),
            O::Setxattr { arg, name, value } => {
                let size = if layout.setxattr_ext { 16 } else { abi::COMPAT_SETXATTR_IN_SIZE };
                out.extend_from_slice(&arg.as_bytes()[..size]);
                z(out, name);
                out.extend_from_slice(value)
            }
            O::Getxattr { arg, name } => {
                s(out, arg);
                z(out, name)
            }
            O::Listxattr(a) => s(out, a),
            O::Flush(a) => s(out, a),
            O::Init(a) => s(out, a),
            O::Getlk(a) | O::Setlk(a) | O::Setlkw(a) => s(out, a),
            O::Access(a) => s(out, a),
            O::Create { arg, name } | O::Tmpfile { arg, name } => {
                s(out, arg);
                z(out, name)
            }
            O::Interrupt(a) => s(out, a),
            O::Bmap(a) => s(out, a),
            O::Ioctl { arg, data } => {
                s(out, arg);
                out.extend_from_slice(data)
            }
            O::Poll(a) => s(out, a),
            O::BatchForget { items } => {
                s(out, &abi::BatchForgetIn { count: items.len() as u32, dummy: 0 });
                out.extend_from_slice(items.as_bytes())
            }
            O::Fallocate(a) => s(out, a),
            O::Lseek(a) => s(out, a),
            O::CopyFileRange(a) | O::CopyFileRange64(a) => s(out, a),
            O::Setupmapping(a) => s(out, a),
            O::Removemapping { items } => {
                s(out, &abi::RemovemappingIn { count: items.len() as u32 });
                out.extend_from_slice(items.as_bytes())
            }
            O::Syncfs(a) => s(out, a),
            O::Statx(a) => s(out, a),
        }
    }
}

/// Builds a packed item list from items (for encoders).
pub fn item_bytes<T: IntoBytes + Immutable>(items: &[T]) -> Vec<u8> {
    items.iter().flat_map(|i| i.as_bytes().to_vec()).collect()
}

/// Wraps raw item bytes as an [`ItemList`] (for encoders and tests).
#[allow(clippy::indexing_slicing)] // the length is rounded down to whole items
pub fn item_list<T: FromBytes + IntoBytes + Immutable + Copy>(bytes: &[u8]) -> ItemList<'_, T> {
    ItemList::new(&bytes[..bytes.len() - bytes.len() % std::mem::size_of::<T>()])
}

/// The caller identity and target of a message to encode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageHeader {
    /// Request id.
    pub unique: u64,
    /// Target node.
    pub nodeid: u64,
    /// Caller uid.
    pub uid: u32,
    /// Caller gid.
    pub gid: u32,
    /// Caller pid.
    pub pid: u32,
}

/// Encodes a whole request: in-header, arguments, WRITE payload, then a supplementary-group
/// extension if `supp_gid` is given.
#[allow(clippy::indexing_slicing)] // encoder: `out` starts with the 40-byte header
pub fn encode_message(
    h: MessageHeader,
    op: &Operation<'_>,
    payload: &[u8],
    supp_gid: Option<u32>,
    layout: Layout,
) -> Vec<u8> {
    let mut out = vec![0u8; std::mem::size_of::<abi::InHeader>()];
    op.encode_args(layout, &mut out);
    out.extend_from_slice(payload);
    let mut extlen = 0u16;
    if let Some(g) = supp_gid {
        // ext header (8) + nr_groups (4) + one group (4) = 16 bytes, already 8-aligned.
        s_ext(&mut out, g);
        extlen = 2;
    }
    let hdr = abi::InHeader {
        len: out.len() as u32,
        opcode: op.opcode().as_u32(),
        unique: h.unique,
        nodeid: h.nodeid,
        uid: h.uid,
        gid: h.gid,
        pid: h.pid,
        total_extlen: extlen,
        padding: 0,
    };
    out[..40].copy_from_slice(hdr.as_bytes());
    out
}

fn s_ext(out: &mut Vec<u8>, gid: u32) {
    out.extend_from_slice(abi::ExtHeader { size: 16, typ: abi::EXT_GROUPS }.as_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&gid.to_le_bytes());
}

/// Finds the supplementary group in an extension area, if one is there and well-formed.
pub fn parse_extensions(mut ext: &[u8]) -> Result<Option<u32>, Errno> {
    let mut gid = None;
    while !ext.is_empty() {
        let (h, _) = abi::ExtHeader::read_from_prefix(ext).map_err(|_| Errno::EINVAL)?;
        let size = h.size as usize;
        if size < 8 || !size.is_multiple_of(8) {
            return Err(Errno::EINVAL);
        }
        let (this, rest) = ext.split_at_checked(size).ok_or(Errno::EINVAL)?;
        if h.typ == abi::EXT_GROUPS {
            let body = this.get(8..).unwrap_or_default();
            let (nr, groups) = u32::read_from_prefix(body).map_err(|_| Errno::EINVAL)?;
            if nr as usize > groups.len() / 4 {
                return Err(Errno::EINVAL);
            }
            if nr > 0 {
                gid = u32::read_from_prefix(groups).ok().map(|(g, _)| g);
            }
        }
        // Security contexts (types 0..=31) and unknown extensions are skipped.
        ext = rest;
    }
    Ok(gid)
}
