//! One forwarded device on the gateway: its core `Device` (FUSE session + backend
//! instance), and the reply cache that makes every sequence number run at most once.
//!
//! A slot is `Running` from the first time its request arrives until the backend answers,
//! then `Done` with the reply until the forwarder acknowledges it. A resent request finds
//! its slot: `Running` waits for the answer (sent to whichever connection is current when
//! it comes), `Done` replays the reply. Requests below the acknowledgement are never run,
//! nor are requests still buffered on a connection that a newer one replaced (a
//! forwarder never resends an acknowledged request on the connection in use).

use bytes::Bytes;
use dpfs_core::Device;
use dpfs_remote_wire::WINDOW;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A reply on its way to the connection's writer.
pub(crate) type ReplyTx = mpsc::UnboundedSender<(u64, Bytes)>;

enum Slot {
    Running,
    Done(Bytes),
}

struct State {
    slots: BTreeMap<u64, Slot>,
    ack: u64,
    writer: Option<(u64, ReplyTx)>,
    closed: bool,
    /// Since when no connection serves the session (`None` while one does).
    detached_since: Option<Instant>,
}

/// What to do with an arriving request.
pub(crate) enum Admit {
    /// New: run it.
    Run,
    /// Already running: its reply will follow.
    Wait,
    /// Already answered: this is the reply.
    Replay(Bytes),
    /// Acknowledged or abandoned already: drop it.
    Stale,
}

/// A forwarded device's session.
pub(crate) struct Session {
    /// Session id (random, so a restarted gateway never resumes by accident).
    pub id: u64,
    /// The core device.
    pub device: Arc<Device>,
    state: Mutex<State>,
}

impl Session {
    pub(crate) fn new(id: u64, device: Arc<Device>) -> Session {
        let state =
            State { slots: BTreeMap::new(), ack: 0, writer: None, closed: false, detached_since: Some(Instant::now()) };
        Session { id, device, state: Mutex::new(state) }
    }

    /// Makes `conn` the connection replies go to (replacing an older one).
    pub(crate) fn attach(&self, conn: u64, tx: ReplyTx) {
        let mut st = self.state.lock();
        if !st.closed {
            st.writer = Some((conn, tx));
            st.detached_since = None;
        }
    }

    /// Whether `conn` is the connection in use (frames still buffered on an older one
    /// are ignored: the forwarder resends what they carried on the new one).
    pub(crate) fn is_current(&self, conn: u64) -> bool {
        self.state.lock().writer.as_ref().is_some_and(|(c, _)| *c == conn)
    }

    /// `conn` went away.
    pub(crate) fn detach(&self, conn: u64) {
        let mut st = self.state.lock();
        if st.writer.as_ref().is_some_and(|(c, _)| *c == conn) {
            st.writer = None;
            st.detached_since = Some(Instant::now());
        }
    }

    /// Whether no connection has served the session for `idle` (its forwarder is gone).
    pub(crate) fn idle(&self, now: Instant, idle: Duration) -> bool {
        self.state.lock().detached_since.is_some_and(|t| now.saturating_duration_since(t) >= idle)
    }

    /// The session was replaced (the forwarder started over): stop replying, end the
    /// FUSE session.
    pub(crate) fn close(&self) {
        {
            let mut st = self.state.lock();
            st.closed = true;
            st.writer = None;
            st.slots.clear();
        }
        self.device.reset();
    }

    /// Drops the replies the forwarder no longer needs: all below `below`, and `seqs`.
    pub(crate) fn acknowledge(&self, below: u64, seqs: impl Iterator<Item = u64>) {
        let mut st = self.state.lock();
        trim(&mut st, below);
        for s in seqs {
            if let Some(Slot::Done(_)) = st.slots.get(&s) {
                st.slots.remove(&s);
            }
        }
    }

    /// Decides what to do with request `seq`; `Err` if the session already holds
    /// [`WINDOW`] slots (a broken forwarder: the connection is dropped).
    pub(crate) fn admit(&self, seq: u64, ack: u64) -> Result<Admit, &'static str> {
        let mut st = self.state.lock();
        trim(&mut st, ack);
        if seq < st.ack {
            return Ok(Admit::Stale);
        }
        if st.slots.len() as u64 >= WINDOW && !st.slots.contains_key(&seq) {
            return Err("more requests unacknowledged than the window allows");
        }
        Ok(match st.slots.get(&seq) {
            Some(Slot::Running) => Admit::Wait,
            Some(Slot::Done(b)) => Admit::Replay(b.clone()),
            None => {
                st.slots.insert(seq, Slot::Running);
                Admit::Run
            }
        })
    }

    /// The backend answered `seq`: keep the reply and send it to the current connection.
    pub(crate) fn complete(&self, seq: u64, reply: Bytes) {
        let mut st = self.state.lock();
        if st.closed || seq < st.ack {
            return;
        }
        st.slots.insert(seq, Slot::Done(reply.clone()));
        if let Some((_, tx)) = &st.writer {
            let _ = tx.send((seq, reply));
        }
    }
}

fn trim(st: &mut State, below: u64) {
    if below > st.ack {
        st.ack = below;
        st.slots = st.slots.split_off(&below);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_core::{DeviceId, SessionConfig};

    fn session() -> Session {
        let fs = Arc::new(dpfs_backend_null::NullFs::new());
        Session::new(7, Arc::new(Device::new(DeviceId(0), fs, SessionConfig::default())))
    }

    #[test]
    fn each_sequence_number_runs_once_and_replays_until_acknowledged() {
        let s = session();
        let (tx, mut rx) = mpsc::unbounded_channel();
        s.attach(1, tx);
        assert!(matches!(s.admit(1, 1), Ok(Admit::Run)));
        assert!(matches!(s.admit(1, 1), Ok(Admit::Wait)), "a resend while it runs waits");
        s.complete(1, Bytes::from_static(b"r1"));
        assert_eq!(rx.try_recv().unwrap(), (1, Bytes::from_static(b"r1")));
        assert!(matches!(s.admit(1, 1), Ok(Admit::Replay(b)) if b == "r1"));
        assert!(matches!(s.admit(2, 1), Ok(Admit::Run)));
        assert!(matches!(s.admit(3, 1), Ok(Admit::Run)));
        s.complete(3, Bytes::from_static(b"r3"));
        // 3 acknowledged by number while 2 still runs: 3 is forgotten, 2 is not.
        s.acknowledge(1, [3].into_iter());
        assert_eq!(s.state.lock().slots.len(), 2);
        // Everything below 3 acknowledged: 1 and 2 are stale now, never run again.
        s.acknowledge(3, std::iter::empty());
        assert!(matches!(s.admit(1, 3), Ok(Admit::Stale)));
        assert!(matches!(s.admit(2, 3), Ok(Admit::Stale)));
        // A completion of an abandoned request is not kept.
        s.complete(2, Bytes::from_static(b"late"));
        assert!(s.state.lock().slots.is_empty());
    }

    #[test]
    fn only_the_newest_connection_counts_and_a_closed_session_keeps_nothing() {
        let s = session();
        let (tx1, _rx1) = mpsc::unbounded_channel();
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        s.attach(1, tx1);
        s.attach(2, tx2);
        assert!(!s.is_current(1) && s.is_current(2));
        s.detach(1);
        assert!(s.is_current(2), "an old connection going away does not detach the new one");
        assert!(matches!(s.admit(1, 1), Ok(Admit::Run)));
        s.complete(1, Bytes::new());
        assert_eq!(rx2.try_recv().unwrap().0, 1);
        assert!(!s.idle(Instant::now() + Duration::from_secs(3600), Duration::from_secs(60)), "attached");
        s.detach(2);
        let later = Instant::now() + Duration::from_secs(61);
        assert!(s.idle(later, Duration::from_secs(60)) && !s.idle(Instant::now(), Duration::from_secs(60)));
        let (tx3, _rx3) = mpsc::unbounded_channel();
        s.attach(3, tx3);
        assert!(!s.idle(later, Duration::from_secs(60)), "a reconnect makes it live again");
        s.close();
        assert!(!s.is_current(3));
        s.complete(2, Bytes::new());
        assert!(s.state.lock().slots.is_empty());
    }

    #[test]
    fn the_window_bounds_the_slots() {
        let s = session();
        for seq in 1..=WINDOW {
            assert!(matches!(s.admit(seq, 1), Ok(Admit::Run)));
        }
        assert!(s.admit(WINDOW + 1, 1).is_err());
        assert!(matches!(s.admit(WINDOW, 1), Ok(Admit::Wait)), "known slots still answer");
        s.acknowledge(2, std::iter::empty());
        assert!(matches!(s.admit(WINDOW + 1, 2), Ok(Admit::Run)));
    }
}
