//! Completions held back on a backend's own threads, so a device sees them in batches.
//!
//! A backend that answers from its own threads (a tokio runtime, a network thread) completes
//! one request at a time; each completion then takes the device's ring lock and may signal
//! the guest on its own. A thread that opts in with [`hold_on_this_thread`] lets the HAL keep
//! those completions and hand them over together: when the thread calls [`flush`] (a tokio
//! worker before it goes idle, a network thread after the replies of one read), or when the
//! HAL has held enough of them. Poller threads never opt in: their inline completions are
//! batched by the HAL already.
//!
//! The HAL side: [`is_held`] says whether to hold, [`on_flush`] registers the function that
//! hands over what it holds (once per held batch), and a HAL must also hand its held
//! completions over when the thread ends.

use std::cell::{Cell, RefCell};

thread_local! {
    static HOLD: Cell<bool> = const { Cell::new(false) };
    static FLUSHERS: RefCell<Vec<fn()>> = const { RefCell::new(Vec::new()) };
}

/// From now on, completions made on this thread may be held back until [`flush`] (or until
/// the HAL holds enough of them). The thread must call [`flush`] before it waits for work.
pub fn hold_on_this_thread() {
    HOLD.with(|h| h.set(true));
}

/// Whether completions made on this thread may be held back.
pub fn is_held() -> bool {
    HOLD.try_with(Cell::get).unwrap_or(false)
}

/// Registers `f` to run at this thread's next [`flush`]. A HAL registers once per batch it
/// starts holding (when its list goes from empty to non-empty).
pub fn on_flush(f: fn()) {
    let _ = FLUSHERS.try_with(|v| v.borrow_mut().push(f));
}

/// The park hook of a tokio runtime whose workers complete requests
/// (`Builder::on_thread_park(dpfs_core::hold::at_park)`): hands over what the worker holds
/// as it runs out of work, and from then on holds its completions. Holding starts at the
/// first park, so the runtime's blocking-pool threads, which never park this way, never hold.
pub fn at_park() {
    flush();
    hold_on_this_thread();
}

/// Hands every completion held on this thread to its device.
pub fn flush() {
    let flushers = FLUSHERS.try_with(|v| std::mem::take(&mut *v.borrow_mut())).unwrap_or_default();
    for f in flushers {
        f();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static FLUSHED: AtomicUsize = AtomicUsize::new(0);
    fn count() {
        FLUSHED.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn holding_is_per_thread_and_flush_runs_each_registration_once() {
        std::thread::spawn(|| {
            assert!(!is_held());
            hold_on_this_thread();
            assert!(is_held());
            on_flush(count);
            on_flush(count);
            flush();
            assert_eq!(FLUSHED.load(Ordering::SeqCst), 2);
            flush(); // nothing registered any more
            assert_eq!(FLUSHED.load(Ordering::SeqCst), 2);
        })
        .join()
        .unwrap();
        assert!(!is_held(), "another thread's choice does not leak here");
    }
}
