//! A FUSE request as the simulated guest submits it, and the reply buffer it needs.

use dpfs_core::abi::{self, Opcode};
use dpfs_core::operation::Operation;
use std::mem::size_of;

/// One FUSE request: target node, decoded operation, WRITE payload, and reply room.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `fuse_in_header.nodeid`.
    pub nodeid: u64,
    /// The operation and its arguments (names, setxattr values… are encoded with it).
    pub op: Operation<'a>,
    /// WRITE payload, sent after the arguments in its own pages.
    pub payload: &'a [u8],
    /// Bytes of reply buffer after the out-header.
    pub reply_len: usize,
}

impl<'a> Request<'a> {
    /// A request with the reply room Linux would give `op` (see [`reply_len_for`]).
    pub fn new(nodeid: u64, op: Operation<'a>) -> Self {
        Request { nodeid, op, payload: &[], reply_len: reply_len_for(&op) }
    }

    /// A WRITE-like request carrying `payload`.
    pub fn with_payload(nodeid: u64, op: Operation<'a>, payload: &'a [u8]) -> Self {
        Request { nodeid, op, payload, reply_len: reply_len_for(&op) }
    }

    /// True if the device sends no reply (FORGET, BATCH_FORGET): no writable buffers.
    pub fn is_noreply(&self) -> bool {
        self.op.opcode().is_noreply()
    }

    /// True if Linux passes the reply body as pages rather than one argument buffer.
    pub fn paged_reply(&self) -> bool {
        matches!(self.op.opcode(), Opcode::Read | Opcode::Readdir | Opcode::Readdirplus | Opcode::Readlink)
    }
}

/// The reply room Linux gives an operation: the reply struct, or the size asked for.
pub fn reply_len_for(op: &Operation<'_>) -> usize {
    use Operation as O;
    match op {
        O::Lookup { .. } | O::Mknod { .. } | O::Mkdir { .. } | O::Symlink { .. } | O::Link { .. } => {
            size_of::<abi::EntryOut>()
        }
        O::Getattr(_) | O::Setattr(_) => size_of::<abi::AttrOut>(),
        O::Create { .. } | O::Tmpfile { .. } => size_of::<abi::EntryOut>() + size_of::<abi::OpenOut>(),
        O::Open(_) | O::Opendir(_) => size_of::<abi::OpenOut>(),
        O::Read(a) | O::Readdir(a) | O::Readdirplus(a) => a.size as usize,
        O::Write(_) => size_of::<abi::WriteOut>(),
        O::Statfs => size_of::<abi::StatfsOut>(),
        O::Getxattr { arg, .. } | O::Listxattr(arg) => {
            if arg.size == 0 {
                size_of::<abi::GetxattrOut>()
            } else {
                arg.size as usize
            }
        }
        O::Readlink => 4096,
        O::Init(_) => size_of::<abi::InitOut>(),
        O::Getlk(_) => size_of::<abi::LkOut>(),
        O::Bmap(_) => size_of::<abi::BmapOut>(),
        O::Ioctl { arg, .. } => size_of::<abi::IoctlOut>() + arg.out_size as usize,
        O::Poll(_) => size_of::<abi::PollOut>(),
        O::Lseek(_) => size_of::<abi::LseekOut>(),
        O::CopyFileRange(_) | O::CopyFileRange64(_) => size_of::<abi::CopyFileRangeOut>(),
        O::Statx(_) => size_of::<abi::StatxOut>(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_room_follows_the_op() {
        assert_eq!(Request::new(1, Operation::Lookup { name: b"x" }).reply_len, 128);
        assert_eq!(Request::new(1, Operation::Statfs).reply_len, 80);
        let read = abi::ReadIn { size: 8192, ..Default::default() };
        let r = Request::new(1, Operation::Read(read));
        assert_eq!(r.reply_len, 8192);
        assert!(r.paged_reply());
        let f = Request::new(1, Operation::Forget(abi::ForgetIn { nlookup: 1 }));
        assert!(f.is_noreply());
        assert_eq!(f.reply_len, 0);
    }
}
