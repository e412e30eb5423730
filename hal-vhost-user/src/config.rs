//! The shape of one vhost-user-fs device: tag, queues, poller threads, polling mode.

use crate::Error;
use dpfs_core::DeviceId;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Most request queues a device offers: queue masks are 64 bits wide and queue 0 is hiprio.
pub const MAX_REQUEST_QUEUES: u16 = 63;
/// Longest tag the virtio-fs config space holds (bytes, no NUL needed).
pub const MAX_TAG_LEN: usize = 36;
/// Largest virtqueue a split ring may have.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// How poller threads wait for work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PollMode {
    /// Sleep in epoll until the guest kicks the queue's eventfd.
    #[default]
    Event,
    /// After a kick, keep spinning on the thread's available rings while work keeps
    /// arriving; sleep again only after [`BUSY_IDLE`] without any. Burns a core per
    /// poller thread under load.
    Busy,
    /// After each burst, spin for [`DeviceConfig::spin`] (default 50 µs) for more work
    /// before sleeping: lower latency for back-to-back requests at little CPU cost.
    Hybrid,
}

/// Idle time after which a `Busy` poller goes back to sleeping in epoll.
pub const BUSY_IDLE: Duration = Duration::from_secs(1);

impl FromStr for PollMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "event" => Ok(PollMode::Event),
            "busy" => Ok(PollMode::Busy),
            "hybrid" => Ok(PollMode::Hybrid),
            _ => Err(format!("unknown poll mode '{s}' (expected event, busy or hybrid)")),
        }
    }
}

impl fmt::Display for PollMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PollMode::Event => "event",
            PollMode::Busy => "busy",
            PollMode::Hybrid => "hybrid",
        })
    }
}

/// One virtio-fs device served on one socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// The id core knows the device by.
    pub id: DeviceId,
    /// The tag the guest mounts (`mount -t virtiofs TAG /mnt`), at most 36 bytes.
    pub tag: String,
    /// Request queues (queues 1..=N); queue 0 is hiprio.
    pub request_queues: u16,
    /// Poller threads; request queue `i` runs on thread `(i - 1) % threads`, hiprio on 0.
    pub threads: u16,
    /// Largest virtqueue size the frontend may configure.
    pub max_queue_size: u16,
    /// Polling mode.
    pub poll: PollMode,
    /// How long a `Hybrid` poller spins for more work after a burst.
    pub spin: Duration,
    /// Offer `VHOST_USER_PROTOCOL_F_CONFIG` (the frontend may read tag and queue count
    /// from the device). QEMU's vhost-user-fs uses its own `tag` property and ignores it;
    /// QEMU 7.1-8.0 are reported to misbehave when it is offered, so it is opt-in.
    pub config_space: bool,
}

impl DeviceConfig {
    /// A device with one request queue on one event-mode thread.
    pub fn new(id: DeviceId, tag: impl Into<String>) -> DeviceConfig {
        DeviceConfig {
            id,
            tag: tag.into(),
            request_queues: 1,
            threads: 1,
            max_queue_size: MAX_QUEUE_SIZE,
            poll: PollMode::Event,
            spin: Duration::from_micros(50),
            config_space: false,
        }
    }

    /// Checks every value; names the first bad one.
    pub fn validate(&self) -> Result<(), Error> {
        if self.tag.is_empty() || self.tag.len() > MAX_TAG_LEN {
            return Err(Error::Config(format!(
                "tag '{}' must be 1 to {MAX_TAG_LEN} bytes long (it is {})",
                self.tag,
                self.tag.len()
            )));
        }
        if self.tag.bytes().any(|b| b == 0) {
            return Err(Error::Config("tag must not contain NUL bytes".into()));
        }
        if self.request_queues == 0 || self.request_queues > MAX_REQUEST_QUEUES {
            return Err(Error::Config(format!(
                "request queues = {} (expected 1 to {MAX_REQUEST_QUEUES})",
                self.request_queues
            )));
        }
        if self.threads == 0 || self.threads > self.request_queues {
            return Err(Error::Config(format!(
                "threads = {} (expected 1 to the number of request queues, {})",
                self.threads, self.request_queues
            )));
        }
        if !self.max_queue_size.is_power_of_two() || self.max_queue_size < 2 {
            return Err(Error::Config(format!(
                "queue size = {} (expected a power of two from 2 to {MAX_QUEUE_SIZE})",
                self.max_queue_size
            )));
        }
        if self.spin > Duration::from_secs(1) {
            return Err(Error::Config(format!("hybrid spin time {:?} (expected at most 1 s)", self.spin)));
        }
        Ok(())
    }

    /// How long a poller keeps looking for work after the last burst.
    pub fn spin_budget(&self) -> Duration {
        match self.poll {
            PollMode::Event => Duration::ZERO,
            PollMode::Hybrid => self.spin,
            PollMode::Busy => BUSY_IDLE,
        }
    }

    /// Total virtqueues: hiprio plus the request queues.
    pub fn num_queues(&self) -> usize {
        1 + self.request_queues as usize
    }

    /// The poller thread of queue `q`.
    pub fn thread_of(&self, q: usize) -> usize {
        if q == 0 {
            0
        } else {
            (q - 1) % self.threads.max(1) as usize
        }
    }

    /// For each poller thread, the bit mask of the queues it serves.
    pub fn queue_masks(&self) -> Vec<u64> {
        let mut masks = vec![0u64; self.threads.max(1) as usize];
        for q in 0..self.num_queues().min(64) {
            if let Some(m) = masks.get_mut(self.thread_of(q)) {
                *m |= 1u64 << q;
            }
        }
        masks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_put_hiprio_on_thread_zero_and_spread_request_queues() {
        let mut c = DeviceConfig::new(DeviceId(0), "t");
        c.request_queues = 4;
        c.threads = 2;
        assert_eq!(c.queue_masks(), vec![0b01011, 0b10100]);
        c.threads = 1;
        assert_eq!(c.queue_masks(), vec![0b11111]);
    }

    #[test]
    fn validation_names_the_bad_value() {
        let mut c = DeviceConfig::new(DeviceId(0), "x".repeat(37));
        assert!(c.validate().unwrap_err().to_string().contains("tag"));
        c.tag = "ok".into();
        c.request_queues = 64;
        assert!(c.validate().unwrap_err().to_string().contains("request queues"));
        c.request_queues = 2;
        c.threads = 3;
        assert!(c.validate().unwrap_err().to_string().contains("threads"));
        c.threads = 2;
        c.max_queue_size = 1000;
        assert!(c.validate().unwrap_err().to_string().contains("queue size"));
        c.max_queue_size = 1024;
        c.validate().unwrap();
    }
}
