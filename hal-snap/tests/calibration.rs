//! The timing model against DPFS-null's published figures: a model-correctness check on
//! a virtual clock (no wall-clock time is measured), and determinism.

use dpfs_hal_snap::timing::published::compare;
use dpfs_hal_snap::timing::{cost, simulate, Profile, Rw, Workload};

/// Largest deviation from a published figure the model may show, percent.
const TOLERANCE: f64 = 15.0;

#[test]
fn bf2_reproduces_dpfs_null_within_tolerance() {
    let p = Profile::load("bf2").unwrap();
    let rows = compare(&p);
    let mut bad = Vec::new();
    for c in &rows {
        println!(
            "{:<14} {:<26} published {:>10.1} model {:>10.1} {:+6.1}%",
            c.point.table, c.point.label, c.point.published, c.model, c.error_pct
        );
        if c.error_pct.abs() > TOLERANCE {
            bad.push(format!("{} {}: {:+.1}%", c.point.table, c.point.label, c.error_pct));
        }
    }
    assert!(rows.len() >= 80, "every published point is compared");
    assert!(
        bad.is_empty(),
        "{} of {} points off by more than {TOLERANCE}%:\n{}",
        bad.len(),
        rows.len(),
        bad.join("\n")
    );
}

#[test]
fn the_same_inputs_give_the_same_figures() {
    let p = Profile::load("bf2").unwrap();
    let w = Workload::paper(Rw::Read, 4096, 32, 2);
    let b = cost::dpfs_backend("mem").unwrap();
    assert_eq!(simulate(&p, &b, &w), simulate(&p, &b, &w));
    let other_seed = Workload { seed: 2, ..w.clone() };
    assert_ne!(simulate(&p, &b, &w), simulate(&p, &b, &other_seed), "the seed matters");
}
