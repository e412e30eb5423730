//! The link's socket as the poller threads see it. A request is written straight from the
//! poller that queued it, with one non-blocking `writev`, whenever nobody else is writing:
//! no hand-over to the network thread (and no wake-up of it) on the request path. The
//! network thread writes only what the pollers could not: batches queued while someone was
//! writing, a frame the socket took only part of, resends, acknowledgements.
//!
//! One writer at a time (`writing`), so frames never interleave; and once anything is
//! queued, later requests queue behind it until the network thread has written it, so
//! frames leave in the order they were submitted (a device reset must not overtake the
//! INIT that follows it).

use parking_lot::Mutex;
use std::io::{IoSlice, Write};
use std::net::TcpStream;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// A duplicate of the connected socket (non-blocking), while connected.
    sock: Option<Arc<TcpStream>>,
    /// Someone (a poller, or the network thread) is writing.
    writing: bool,
    /// The rest of a frame the socket took only part of; written before anything else.
    partial: Option<Vec<u8>>,
    /// The network thread waits for the writer's turn.
    waiting: bool,
    /// Frames queued for the network thread and not yet taken by it.
    queued: usize,
    /// Bumped at every disconnect: a poller still writing to the old socket must not end
    /// the turn of whoever writes to the new one.
    generation: u64,
}

/// Who may write to the connection, and how pollers write directly.
#[derive(Default)]
pub(crate) struct Direct {
    state: Mutex<State>,
    notify: Notify,
}

/// What became of a direct write attempt.
pub(crate) enum Sent {
    /// Written whole, or its remainder handed to the network thread.
    Done,
    /// Not attempted (someone is writing, something is queued, or not connected): queue
    /// it (it is counted as queued already).
    Queue,
}

impl Direct {
    /// A connection is up (after its resend): pollers may write to `sock`.
    pub(crate) fn connect(&self, sock: TcpStream) {
        let mut st = self.state.lock();
        st.sock = Some(Arc::new(sock));
        st.partial = None;
    }

    /// The connection is gone: everything goes through the queue until the next one.
    pub(crate) fn disconnect(&self) {
        let mut st = self.state.lock();
        st.sock = None;
        st.partial = None;
        st.writing = false;
        st.waiting = false;
        st.generation += 1;
    }

    /// A poller's attempt to write one frame (`head` then `body`) now.
    pub(crate) fn try_send(&self, head: &[u8], body: &[u8]) -> Sent {
        let (sock, generation) = {
            let mut st = self.state.lock();
            match &st.sock {
                Some(s) if !st.writing && st.partial.is_none() && st.queued == 0 => {
                    let s = s.clone();
                    st.writing = true;
                    (s, st.generation)
                }
                _ => {
                    st.queued += 1;
                    return Sent::Queue;
                }
            }
        };
        let total = head.len() + body.len();
        let n = match (&*sock).write_vectored(&[IoSlice::new(head), IoSlice::new(body)]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                // The network thread will meet the same error and reconnect.
                let wake = {
                    let mut st = self.state.lock();
                    st.queued += 1;
                    st.generation == generation && {
                        st.writing = false;
                        std::mem::take(&mut st.waiting)
                    }
                };
                if wake {
                    self.notify.notify_one();
                }
                return Sent::Queue;
            }
        };
        if n >= total {
            self.release_if(generation);
            return Sent::Done;
        }
        let mut rest = Vec::with_capacity(total - n);
        rest.extend_from_slice(head.get(n..).unwrap_or_default());
        rest.extend_from_slice(body.get(n.saturating_sub(head.len())..).unwrap_or_default());
        {
            let mut st = self.state.lock();
            if st.generation != generation {
                // That connection is gone: the frame is resent on the next one.
                return Sent::Done;
            }
            st.partial = Some(rest);
            st.writing = false;
            st.waiting = false;
        }
        // The network thread must finish the frame: wake it even if it was not waiting.
        self.notify.notify_one();
        Sent::Done
    }

    fn release_if(&self, generation: u64) {
        let wake = {
            let mut st = self.state.lock();
            st.generation == generation && {
                st.writing = false;
                std::mem::take(&mut st.waiting)
            }
        };
        if wake {
            self.notify.notify_one();
        }
    }

    /// The network thread takes the writer's turn (waiting for a poller to finish) and
    /// gets the rest of a partly written frame to write first.
    pub(crate) async fn acquire(&self) -> Option<Vec<u8>> {
        loop {
            {
                let mut st = self.state.lock();
                if !st.writing {
                    st.writing = true;
                    return st.partial.take();
                }
                st.waiting = true;
            }
            self.notify.notified().await;
        }
    }

    /// A frame goes to the queue without a direct attempt (a device reset).
    pub(crate) fn count_queued(&self) {
        self.state.lock().queued += 1;
    }

    /// The network thread, holding the writer's turn, took `n` frames off the queue.
    pub(crate) fn taken(&self, n: usize) {
        let mut st = self.state.lock();
        st.queued = st.queued.saturating_sub(n);
    }

    /// The network thread is done writing.
    pub(crate) fn done(&self) {
        let generation = self.state.lock().generation;
        self.release_if(generation);
    }

    /// Resolves when a poller hands something over (or the turn is free again).
    pub(crate) async fn kicked(&self) {
        self.notify.notified().await;
    }
}
