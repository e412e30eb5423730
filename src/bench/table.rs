//! The table a sweep prints on stdout: one row per point and class of operations.

use super::cases::size_label;
use super::doc::SavedPoint;
use std::fmt::Write;

/// The sweep table: bs, QD, class, IOPS, MiB/s, p50, p99, p99.9 (microseconds), repetitions.
pub fn sweep_table(points: &[SavedPoint]) -> String {
    let mut out = format!(
        "{:>6} {:>5} {:<5} {:>10} {:>9} {:>9} {:>9} {:>9} {:>4}\n",
        "bs", "qd", "class", "IOPS", "MiB/s", "p50 us", "p99 us", "p99.9 us", "runs"
    );
    for p in points {
        for (name, c) in [("read", &p.read), ("write", &p.write), ("meta", &p.meta)] {
            let Some(c) = c else { continue };
            let _ = writeln!(
                out,
                "{:>6} {:>5} {:<5} {:>10.0} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>4}",
                size_label(p.bs),
                p.iodepth,
                name,
                c.iops,
                c.mib_s,
                c.lat_us.p50,
                c.lat_us.p99,
                c.lat_us.p999,
                p.repetitions
            );
        }
    }
    out
}
