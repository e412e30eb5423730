//! Parsing a whole request from its readable segments: header, checks against the chain,
//! argument area copied out, WRITE payload left in place, extensions.

// Every byte here came from the guest: indexing must be checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::abi::{self, InHeader, Opcode};
use crate::errno::Errno;
use crate::operation::{decode_args, parse_extensions, Layout, Operation};
use crate::segments::{IoSeg, SegList, SegReader};
use smallvec::SmallVec;

const IN_HDR: usize = std::mem::size_of::<InHeader>();

/// Largest argument area accepted (everything but a WRITE payload): an xattr value of
/// 64 KiB or an ioctl buffer fit, a hostile `len` does not make us allocate more.
pub const MAX_ARGS: usize = (1 << 20) + 4096;

/// Scratch space for the argument area; small requests need no allocation.
pub type ArgBuf = SmallVec<[u8; 320]>;

/// A parsed request, borrowing names from an [`ArgBuf`].
#[derive(Debug)]
pub struct Parsed<'a> {
    /// The in-header.
    pub header: InHeader,
    /// The decoded operation.
    pub op: Operation<'a>,
    /// A WRITE's payload, in place (empty for other operations).
    pub payload: SegList,
    /// Supplementary group from the extension area.
    pub supplementary_gid: Option<u32>,
}

/// Why a request could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not even an in-header: there is no `unique` to answer.
    NoHeader,
    /// Answer request `unique` (with opcode) with this error.
    Invalid {
        /// The request's header.
        header: InHeader,
        /// The error to answer.
        errno: Errno,
    },
}

/// Reads just the in-header (for callers that need the opcode before parsing).
pub fn read_header(readable: &[IoSeg]) -> Option<InHeader> {
    SegReader::new(readable, usize::MAX).read_obj().ok()
}

/// Parses a request. `len` must equal the readable bytes, names must be NUL-terminated
/// inside the message, a WRITE's `size` must equal its payload.
pub fn parse<'a>(readable: &[IoSeg], buf: &'a mut ArgBuf, layout: Layout) -> Result<Parsed<'a>, ParseError> {
    let mut rd = SegReader::new(readable, usize::MAX);
    let total = rd.remaining();
    let header: InHeader = rd.read_obj().map_err(|_| ParseError::NoHeader)?;
    let bad = |errno| ParseError::Invalid { header, errno };
    if header.len as usize != total {
        return Err(bad(Errno::EINVAL));
    }
    let body = total - IN_HDR;
    let ext_len = header.total_extlen as usize * 8;
    if ext_len > body {
        return Err(bad(Errno::EINVAL));
    }
    let opcode = Opcode::from_u32(header.opcode);
    buf.clear();
    let mut payload = SegList::new();
    let args_len;
    if opcode == Opcode::Write {
        let win = std::mem::size_of::<abi::WriteIn>();
        let data_len = body.checked_sub(win + ext_len).ok_or(bad(Errno::EINVAL))?;
        buf.resize(win + ext_len, 0);
        let (arg_area, ext_area) = buf.split_at_mut(win);
        rd.read_exact(arg_area).map_err(|_| bad(Errno::EINVAL))?;
        payload = rd.take_segs(data_len).map_err(|_| bad(Errno::EINVAL))?;
        rd.read_exact(ext_area).map_err(|_| bad(Errno::EINVAL))?;
        args_len = win;
    } else {
        if body > MAX_ARGS {
            return Err(bad(Errno::E2BIG));
        }
        buf.resize(body, 0);
        rd.read_exact(buf).map_err(|_| bad(Errno::EINVAL))?;
        args_len = body - ext_len;
    }
    let buf: &'a [u8] = buf;
    let (arg_area, ext_area) = buf.split_at_checked(args_len).ok_or(bad(Errno::EINVAL))?;
    let supplementary_gid = parse_extensions(ext_area).map_err(bad)?;
    let op = decode_args(opcode, arg_area, layout).map_err(bad)?;
    if let Operation::Write(w) = op {
        if w.size as usize != crate::segments::total_len(&payload) {
            return Err(bad(Errno::EINVAL));
        }
    }
    Ok(Parsed { header, op, payload, supplementary_gid })
}
