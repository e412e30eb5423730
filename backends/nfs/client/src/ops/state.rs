//! Small values several ops share: stateid4, change_info4 and the write verifier.

use crate::error::Result;
use crate::xdr::{Decoder, Encoder};

/// A write or commit verifier (verifier4): a change tells the client the server restarted
/// and lost its unstable writes.
pub type Verifier = [u8; 8];

/// stateid4: names open, lock or delegation state on the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StateId {
    /// Sequence number of the state's changes.
    pub seqid: u32,
    /// The server's name for the state.
    pub other: [u8; 12],
}

impl StateId {
    /// The anonymous stateid (all zeros): I/O outside any open.
    pub const ANONYMOUS: StateId = StateId { seqid: 0, other: [0; 12] };

    /// Encodes the stateid4.
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.seqid).opaque_fixed(&self.other);
    }

    /// Decodes a stateid4.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self { seqid: d.u32()?, other: d.opaque_array()? })
    }
}

/// change_info4: a directory's change attribute before and after an operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeInfo {
    /// Whether before and after were read atomically with the change.
    pub atomic: bool,
    /// Change attribute before.
    pub before: u64,
    /// Change attribute after.
    pub after: u64,
}

impl ChangeInfo {
    /// Decodes a change_info4.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self { atomic: d.bool()?, before: d.u64()?, after: d.u64()? })
    }

    /// Encodes a change_info4 (as a server would; tests and the fuzz corpus use it).
    pub fn encode(&self, e: &mut Encoder) {
        e.bool(self.atomic).u64(self.before).u64(self.after);
    }
}
