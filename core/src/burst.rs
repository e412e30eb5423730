//! Bursts: a HAL thread that hands a backend several requests in a row (a poller draining
//! a virtqueue) may say where that run ends, so a backend can do once per burst what it
//! would otherwise do once per request (kv on redb: one write transaction for the burst's
//! commits).
//!
//! The HAL opens a [`Burst`] on the thread that calls [`Handler::handle`] and drops it
//! after the burst's last request, *before* it puts the burst's replies on the used ring:
//! dropping it calls [`Handler::end_of_burst`] on the same thread, and replies completed
//! there join the burst's batch. While a burst is open, [`active`] is true on that
//! thread; a backend may then leave a request unanswered until `end_of_burst`, and only
//! then (a HAL that never opens a burst never gets the call, and [`active`] is false on
//! its threads). Bursts do not nest.

use crate::device::Device;
use crate::handler::Handler;
use crate::request::DeviceId;
use std::cell::Cell;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// True while a [`Burst`] is open on this thread: the backend is told when it ends.
pub fn active() -> bool {
    ACTIVE.with(Cell::get)
}

enum Target<'a> {
    Handler(&'a dyn Handler, DeviceId),
    Device(&'a Device),
}

/// An open burst of one device's requests on this thread; dropping it ends the burst.
pub struct Burst<'a> {
    target: Target<'a>,
}

impl<'a> Burst<'a> {
    /// Opens a burst of device `dev`'s requests, which this thread hands to `handler`.
    pub fn begin(handler: &'a dyn Handler, dev: DeviceId) -> Burst<'a> {
        Self::open(Target::Handler(handler, dev))
    }

    /// Opens a burst of requests this thread hands to `dev` directly.
    pub fn on_device(dev: &'a Device) -> Burst<'a> {
        Self::open(Target::Device(dev))
    }

    fn open(target: Target<'a>) -> Burst<'a> {
        let nested = ACTIVE.with(|a| a.replace(true));
        debug_assert!(!nested, "bursts do not nest");
        Burst { target }
    }
}

impl Drop for Burst<'_> {
    fn drop(&mut self) {
        // Closed first: what the backend does at the end of the burst is not deferred.
        ACTIVE.with(|a| a.set(false));
        match self.target {
            Target::Handler(h, dev) => h.end_of_burst(dev),
            Target::Device(d) => d.end_of_burst(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FileSystem;
    use crate::{Dispatcher, SessionConfig};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts the ends it hears of, and checks the burst is closed by then.
    #[derive(Default)]
    struct Ends(AtomicUsize);

    impl FileSystem for Ends {
        fn end_of_burst(&self) {
            assert!(!active(), "the burst is closed before the backend hears of its end");
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_dispatcher_forwards_the_end_to_the_device_backend() {
        let fs = Arc::new(Ends::default());
        let f = fs.clone();
        let d = Dispatcher::new(SessionConfig::default(), move |_| Ok(f.clone() as Arc<dyn FileSystem>));
        d.register_device(DeviceId(3)).unwrap();
        assert!(!active());
        {
            let _b = Burst::begin(&d, DeviceId(3));
            assert!(active());
        }
        assert!(!active());
        assert_eq!(fs.0.load(Ordering::Relaxed), 1);
        drop(Burst::begin(&d, DeviceId(9))); // no such device: nothing to tell
        let dev = d.device(DeviceId(3)).unwrap();
        drop(Burst::on_device(&dev));
        assert_eq!(fs.0.load(Ordering::Relaxed), 2);
    }
}
