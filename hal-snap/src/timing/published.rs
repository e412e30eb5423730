//! DPFS-null's published figures (dpfs.md §4.2, §4.3, §4.5: the SYSTOR '23 paper's fio
//! outputs and the thesis data in DPFS's `experiments/results`) and the workloads that
//! reproduce them, for the calibration test and `dpfs bench --dpu-model … --calibration`.

use super::cost::dpfs_c_null;
use super::workload::{Rw, Workload};
use super::{simulate, Profile};
use serde::Serialize;

/// What a published figure measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Mean completion latency, µs.
    ClatUs,
    /// MiB/s.
    MibS,
    /// IOPS.
    Iops,
}

/// One published point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// Which table it comes from.
    pub table: &'static str,
    /// Row label.
    pub label: String,
    /// The workload that reproduces it.
    pub workload: Workload,
    /// Metric.
    pub metric: Metric,
    /// The published value.
    pub published: f64,
}

const QDS: [usize; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/// §4.3, MiB/s with 2 jobs on one host core.
const SCALING: [(Rw, u64, [f64; 10]); 6] = [
    (Rw::Read, 4, [193., 351., 542., 937., 1122., 1212., 1269., 1278., 1283., 1308.]),
    (Rw::Read, 16, [589., 1096., 1579., 2803., 3568., 4090., 4388., 4072., 4597., 4024.]),
    (Rw::Read, 64, [1366., 2309., 3632., 5036., 6019., 6001., 5994., 5965., 5953., 5946.]),
    (Rw::Write, 4, [168., 301., 449., 718., 864., 924., 934., 937., 935., 936.]),
    (Rw::Write, 16, [529., 949., 1447., 1918., 2133., 2217., 2217., 2240., 2261., 2217.]),
    (Rw::Write, 64, [1219., 2189., 3290., 4061., 4424., 4535., 4586., 4521., 4492., 4405.]),
];
/// §4.5 multi-tenancy: (DPU threads, tenants), 4 KiB QD128 read/write IOPS, 64 KiB QD128
/// read/write MiB/s.
const TENANTS: [(usize, usize, f64, f64, f64, f64); 5] = [
    (1, 1, 316e3, 248e3, 4939., 4033.),
    (1, 8, 465e3, 367e3, 4448., 4188.),
    (2, 4, 1.01e6, 841e3, 10067., 9056.),
    (4, 8, 1.42e6, 1.23e6, 9863., 10485.),
    (8, 8, 1.36e6, 1.11e6, 9859., 10631.),
];

fn rw_name(rw: Rw) -> &'static str {
    match rw {
        Rw::Read => "read",
        Rw::Write => "write",
    }
}

/// Every published point the model is calibrated against.
pub fn points() -> Vec<Point> {
    let mut v = Vec::new();
    for (rw, kib, us) in [(Rw::Read, 4, 38.6), (Rw::Write, 4, 43.3), (Rw::Read, 16, 49.4), (Rw::Write, 16, 54.6)]
        .into_iter()
        .chain([(Rw::Read, 64, 92.7), (Rw::Write, 64, 83.0)])
    {
        v.push(Point {
            table: "qd1-latency",
            label: format!("{} {kib}k QD1 clat", rw_name(rw)),
            workload: Workload::paper(rw, kib << 10, 1, 1),
            metric: Metric::ClatUs,
            published: us,
        });
    }
    for (rw, kib, row) in SCALING {
        for (qd, mib) in QDS.iter().zip(row) {
            v.push(Point {
                table: "qd-scaling",
                label: format!("{} {kib}k QD{qd} P2", rw_name(rw)),
                workload: Workload::paper(rw, kib << 10, *qd, 2),
                metric: Metric::MibS,
                published: mib,
            });
        }
    }
    for (t, mt, r4, w4, r64, w64) in TENANTS {
        for (rw, kib, metric, val) in [
            (Rw::Read, 4, Metric::Iops, r4),
            (Rw::Write, 4, Metric::Iops, w4),
            (Rw::Read, 64, Metric::MibS, r64),
            (Rw::Write, 64, Metric::MibS, w64),
        ] {
            v.push(Point {
                table: "multi-tenant",
                label: format!("T{t}/MT{mt} {} {kib}k QD128", rw_name(rw)),
                workload: Workload::tenants(rw, kib << 10, 128, mt, t),
                metric,
                published: val,
            });
        }
    }
    v
}

/// A published point next to the model's figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The point.
    pub point: Point,
    /// The model's figure.
    pub model: f64,
    /// (model - published) / published, percent.
    pub error_pct: f64,
}

/// Runs every published point on `profile` with DPFS-null's costs.
pub fn compare(profile: &Profile) -> Vec<Comparison> {
    points()
        .into_iter()
        .map(|point| {
            let r = simulate(profile, &dpfs_c_null(), &point.workload);
            let model = match point.metric {
                Metric::ClatUs => r.clat_mean_us,
                Metric::MibS => r.mib_s,
                Metric::Iops => r.iops,
            };
            let error_pct = (model - point.published) / point.published * 100.0;
            Comparison { point, model, error_pct }
        })
        .collect()
}
