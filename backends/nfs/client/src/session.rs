//! The session's fore-channel slot table: a request waits asynchronously (a semaphore, not a
//! sleep loop) for a free slot, and each slot's sequence id advances once the server has seen
//! the request.

use crate::error::{Error, Result};
use crate::ops::{SequenceArgs, SessionId};
use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The sequence id of the last request the server saw on this slot (0 after CREATE_SESSION).
    seq: u32,
    busy: bool,
}

/// The slots of one session's fore channel.
#[derive(Debug)]
pub struct SlotTable {
    free: Semaphore,
    slots: Mutex<Vec<Slot>>,
}

impl SlotTable {
    /// A table of `n` slots (at least one).
    pub fn new(n: usize) -> Self {
        let n = n.max(1);
        Self { free: Semaphore::new(n), slots: Mutex::new(vec![Slot::default(); n]) }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    /// Whether the table has no slots (never: it has at least one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence id of the last request the server saw on slot `id`.
    pub fn last_seq(&self, id: u32) -> Option<u32> {
        self.slots.lock().get(id as usize).map(|s| s.seq)
    }

    /// Waits for a free slot and takes the lowest one. Fails only once [`close`](Self::close)d.
    pub async fn acquire(&self) -> Result<SlotGuard<'_>> {
        let permit = self.free.acquire().await.map_err(|_| Error::ConnectionClosed)?;
        let mut slots = self.slots.lock();
        // The permit guarantees a free slot exists.
        let (id, slot) = slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| !s.busy)
            .ok_or(Error::Protocol("slot table out of sync with its semaphore"))?;
        slot.busy = true;
        let seq = slot.seq.wrapping_add(1);
        let highest = slots.iter().rposition(|s| s.busy).unwrap_or(id);
        Ok(SlotGuard { table: self, _permit: permit, id: id as u32, seq, highest: highest as u32, seen: false })
    }

    /// Fails every waiting and future [`acquire`](Self::acquire).
    pub fn close(&self) {
        self.free.close();
    }

    /// Whether [`close`](Self::close) was called (the session ended).
    pub fn is_closed(&self) -> bool {
        self.free.is_closed()
    }
}

/// A slot held for one request; released when dropped.
#[derive(Debug)]
pub struct SlotGuard<'a> {
    table: &'a SlotTable,
    _permit: SemaphorePermit<'a>,
    id: u32,
    seq: u32,
    highest: u32,
    seen: bool,
}

impl SlotGuard<'_> {
    /// The slot's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The sequence id this request carries.
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// The SEQUENCE arguments for this slot in `session`.
    pub fn sequence_args(&self, session: SessionId) -> SequenceArgs {
        SequenceArgs { session, sequenceid: self.seq, slotid: self.id, highest_slotid: self.highest, cachethis: false }
    }

    /// Records that the server processed this request's SEQUENCE: the slot's sequence id
    /// advances when the guard is released.
    pub fn seen(&mut self) {
        self.seen = true;
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut slots = self.table.slots.lock();
        if let Some(slot) = slots.get_mut(self.id as usize) {
            slot.busy = false;
            if self.seen {
                slot.seq = self.seq;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sequence_ids_advance_only_when_seen() {
        let t = SlotTable::new(2);
        let mut a = t.acquire().await.unwrap();
        assert_eq!((a.id(), a.seq()), (0, 1));
        a.seen();
        drop(a);
        let b = t.acquire().await.unwrap();
        assert_eq!((b.id(), b.seq()), (0, 2));
        drop(b); // not seen: the next request reuses sequence id 2
        let c = t.acquire().await.unwrap();
        let d = t.acquire().await.unwrap();
        assert_eq!((c.id(), c.seq(), d.id(), d.seq()), (0, 2, 1, 1));
        assert_eq!(d.sequence_args([0; 16]).highest_slotid, 1);
    }

    #[tokio::test]
    async fn a_request_waits_for_a_free_slot() {
        let t = std::sync::Arc::new(SlotTable::new(1));
        let held = t.acquire().await.unwrap();
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.acquire().await.map(|g| g.id()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(held);
        assert_eq!(waiter.await.unwrap().unwrap(), 0);
        t.close();
        assert!(t.acquire().await.is_err());
    }
}
