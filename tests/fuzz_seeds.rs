//! Replays the fuzz seed corpus through the whole request path against the mem backend,
//! under every segmentation shape, plus byte-flipped variants: the fuzz target's invariants
//! (every request completed once, every reply well-formed) checked on each CI run.

use dpfs_backend_mem::MemFs;
use dpfs_core::corpus::seed_scripts;
use dpfs_core::local::LocalClient;
use dpfs_core::script::{push_record, records, replay};
use dpfs_core::{Device, DeviceId, SessionConfig};
use std::sync::Arc;

fn fresh() -> Device {
    let dev = Device::new(DeviceId(0), Arc::new(MemFs::default()), SessionConfig::default());
    assert!(LocalClient::new(&dev).init().is_some());
    dev
}

fn reshaped(script: &[u8], shape: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records(script) {
        push_record(&mut out, shape, r.message);
    }
    out
}

#[test]
fn seed_scripts_replay_cleanly_under_every_shape() {
    for (name, script) in seed_scripts() {
        for shape in (0..=255u8).step_by(17) {
            let stats = replay(&fresh(), &reshaped(&script, shape))
                .unwrap_or_else(|v| panic!("seed {name}, shape {shape}: {}", v.0));
            assert_eq!(stats.completed, stats.sent);
        }
    }
}

#[test]
fn the_namespace_seed_really_exercises_the_backend() {
    let (_, script) = seed_scripts().into_iter().find(|(n, _)| *n == "namespace").unwrap();
    let stats = replay(&fresh(), &script).unwrap();
    // INIT again (EISCONN) aside, a realistic session mostly succeeds.
    assert!(stats.replied >= stats.sent - 2, "{stats:?}");
    assert!(stats.errors * 4 < stats.replied, "too many errors for a realistic session: {stats:?}");
}

#[test]
fn byte_flipped_seeds_never_break_the_protocol() {
    let mut x = 0x2545_f491u32;
    for (name, script) in seed_scripts() {
        for _ in 0..40 {
            let mut s = script.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let i = x as usize % s.len();
                s[i] ^= (x >> 24) as u8 | 1;
            }
            if let Err(v) = replay(&fresh(), &s) {
                panic!("seed {name} mutated: {}", v.0);
            }
        }
    }
}
