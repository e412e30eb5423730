//! One forwarded device on the gateway: its core `Device` (FUSE session + backend
//! instance), and the reply cache that makes every sequence number run at most once.
//!
//! A slot is `Running` from the first time its request arrives until the backend answers,
//! then `Done` with the reply until the forwarder acknowledges it. A resent request finds
//! its slot: `Running` waits for the answer (sent to whichever connection is current when
//! it comes), `Done` replays the reply. Requests below the acknowledgement are never run.

use bytes::Bytes;
use dpfs_core::Device;
use dpfs_remote_wire::WINDOW;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
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
        let state = State { slots: BTreeMap::new(), ack: 0, writer: None, closed: false };
        Session { id, device, state: Mutex::new(state) }
    }

    /// Makes `conn` the connection replies go to (replacing an older one).
    pub(crate) fn attach(&self, conn: u64, tx: ReplyTx) {
        let mut st = self.state.lock();
        if !st.closed {
            st.writer = Some((conn, tx));
        }
    }

    /// `conn` went away.
    pub(crate) fn detach(&self, conn: u64) {
        let mut st = self.state.lock();
        if st.writer.as_ref().is_some_and(|(c, _)| *c == conn) {
            st.writer = None;
        }
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

    /// Drops the replies the forwarder no longer needs.
    pub(crate) fn acknowledge(&self, below: u64) {
        let mut st = self.state.lock();
        trim(&mut st, below);
    }

    /// Decides what to do with request `seq`; `Err` if it lies outside the window (a
    /// broken forwarder: the connection is dropped).
    pub(crate) fn admit(&self, seq: u64, ack: u64) -> Result<Admit, &'static str> {
        let mut st = self.state.lock();
        trim(&mut st, ack);
        if seq < st.ack {
            return Ok(Admit::Stale);
        }
        if seq - st.ack >= WINDOW || st.slots.len() as u64 >= WINDOW {
            return Err("request outside the sequence window");
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
