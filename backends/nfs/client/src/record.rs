//! TCP record marking (RFC 5531 §11): each RPC message is a record of fragments, each behind
//! a 4-byte header holding its length and, in the top bit, whether it is the last one.

use crate::error::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt};

const LAST_FRAGMENT: u32 = 0x8000_0000;
/// The largest fragment the header can describe.
pub const MAX_FRAGMENT: usize = 0x7fff_ffff;

/// Appends `payload` to `out` as one record of fragments of at most `max_fragment` bytes.
pub fn encode_record(payload: &[u8], max_fragment: usize, out: &mut Vec<u8>) {
    let max = max_fragment.clamp(1, MAX_FRAGMENT);
    let mut chunks = payload.chunks(max).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&LAST_FRAGMENT.to_be_bytes());
        return;
    }
    while let Some(chunk) = chunks.next() {
        let last = if chunks.peek().is_none() { LAST_FRAGMENT } else { 0 };
        // chunk.len() <= MAX_FRAGMENT, so it fits in 31 bits.
        out.extend_from_slice(&(last | chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
}

/// The bytes of a record header for a single-fragment record of `len` bytes, which a writer
/// sends before the payload; `None` when `len` needs more than one fragment.
pub fn single_fragment_header(len: usize) -> Option<[u8; 4]> {
    (len <= MAX_FRAGMENT).then(|| (LAST_FRAGMENT | len as u32).to_be_bytes())
}

/// Reads one record, reassembling its fragments; a record longer than `max_record` bytes is an
/// error before its bytes are read or allocated. `Ok(None)` is a clean end of stream between
/// records.
pub async fn read_record<R: AsyncRead + Unpin>(r: &mut R, max_record: usize) -> Result<Option<Vec<u8>>> {
    read_record_into(r, max_record, Vec::new()).await
}

/// [`read_record`] into `record` (cleared first): a caller that keeps large buffers spares
/// the allocator, and the kernel the page faults, of a fresh megabyte per READ reply.
pub async fn read_record_into<R: AsyncRead + Unpin>(
    r: &mut R,
    max_record: usize,
    mut record: Vec<u8>,
) -> Result<Option<Vec<u8>>> {
    record.clear();
    let mut first = true;
    loop {
        let mut header = [0u8; 4];
        let (head, tail) = header.split_at_mut(1);
        // End of stream is clean only before a record's first byte; inside one it is an error.
        if r.read(head).await? == 0 {
            if first {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        r.read_exact(tail).await?;
        first = false;
        let word = u32::from_be_bytes(header);
        let len = (word & !LAST_FRAGMENT) as usize;
        let total = record.len().saturating_add(len);
        if total > max_record {
            return Err(Error::RecordTooLarge { len: total as u64, limit: max_record });
        }
        // One allocation for the whole fragment (a 1 MiB READ reply grown by doubling was
        // copied over and over): what a lying header can make us reserve is bounded by
        // `max_record`, checked above, and freed when the stream then ends short.
        record.reserve(len);
        let got = (&mut *r).take(len as u64).read_to_end(&mut record).await?;
        if got != len {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        if word & LAST_FRAGMENT != 0 {
            return Ok(Some(record));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    proptest! {
        #[test]
        fn fragments_reassemble(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..5),
                                frag in 1usize..40) {
            let mut wire = Vec::new();
            for p in &payloads {
                encode_record(p, frag, &mut wire);
            }
            let mut r = &wire[..];
            for p in &payloads {
                prop_assert_eq!(block_on(read_record(&mut r, 1000)).unwrap(), Some(p.clone()));
            }
            prop_assert_eq!(block_on(read_record(&mut r, 1000)).unwrap(), None);
        }

        #[test]
        fn truncated_records_are_errors(payload in proptest::collection::vec(any::<u8>(), 1..100), frag in 1usize..40,
                                        cut in any::<prop::sample::Index>()) {
            let mut wire = Vec::new();
            encode_record(&payload, frag, &mut wire);
            let cut = cut.index(wire.len() - 1) + 1; // at least one byte, never all
            let mut r = &wire[..cut];
            prop_assert!(block_on(read_record(&mut r, 1000)).is_err());
        }
    }

    #[test]
    fn oversized_records_are_refused_before_reading() {
        // Two fragments whose sum exceeds the limit; the second claims 2 GiB.
        let mut wire = Vec::new();
        wire.extend_from_slice(&8u32.to_be_bytes());
        wire.extend_from_slice(&[0; 8]);
        wire.extend_from_slice(&(LAST_FRAGMENT | 0x7fff_ffff).to_be_bytes());
        let mut r = &wire[..];
        assert!(matches!(block_on(read_record(&mut r, 1 << 20)), Err(Error::RecordTooLarge { .. })));
        assert_eq!(single_fragment_header(5), Some([0x80, 0, 0, 5]));
    }
}
