//! `dpfs bench --baseline`: a saved report and this run as named cases (`read.iops`,
//! `qd32/bs4k/read.lat_p99_us`), compared under one regression limit with `dpfs-gate`.

use super::doc::{mismatches, Saved, SavedClass, SavedPoint};
use dpfs_gate::{compare, Better, Comparison, Limits};
use std::collections::BTreeMap;

/// A block size as people write it: `4k`, `128k`, `1m`, or bytes.
pub fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}g", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}m", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}k", b >> 10),
        b => b.to_string(),
    }
}

/// The case-name prefix of a sweep point: `qd32/bs4k/`.
pub fn point_prefix(p: &SavedPoint) -> String {
    format!("qd{}/bs{}/", p.iodepth, size_label(p.bs))
}

fn class_cases(out: &mut BTreeMap<String, f64>, prefix: &str, name: &str, c: &SavedClass) {
    let mut put = |fig: &str, v: f64| {
        out.insert(format!("{prefix}{name}.{fig}"), v);
    };
    put("iops", c.iops);
    if name != "meta" {
        put("mib_s", c.mib_s);
    }
    put("lat_p50_us", c.lat_us.p50);
    put("lat_p99_us", c.lat_us.p99);
}

/// Every compared figure of a document by case name: per class (read, write, meta) IOPS,
/// MiB/s (data classes), p50 and p99 latency; prefixed with the point in a sweep.
pub fn cases(doc: &Saved) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for p in &doc.points {
        let prefix = if doc.sweep { point_prefix(p) } else { String::new() };
        for (name, c) in [("read", &p.read), ("write", &p.write), ("meta", &p.meta)] {
            if let Some(c) = c {
                class_cases(&mut out, &prefix, name, c);
            }
        }
    }
    out
}

/// Which way a case gets better: throughput up, latency down.
pub fn better(case: &str) -> Better {
    if case.ends_with(".iops") || case.ends_with(".mib_s") {
        Better::Higher
    } else {
        Better::Lower
    }
}

/// Compares `current` with `baseline` under `max_regression_pct`; refuses (naming every
/// differing parameter) if they were measured with different workload parameters.
pub fn compare_docs(baseline: &Saved, current: &Saved, max_regression_pct: f64) -> Result<Comparison, String> {
    let diff = mismatches(&baseline.params, &current.params);
    if !diff.is_empty() {
        return Err(format!(
            "the baseline was measured with different workload parameters: {}; rerun one of them so they match",
            diff.join(", ")
        ));
    }
    if baseline.sweep != current.sweep {
        let kind = |s: bool| if s { "a sweep" } else { "a single point" };
        return Err(format!("the baseline is {} but this run is {}", kind(baseline.sweep), kind(current.sweep)));
    }
    Ok(compare(&cases(baseline), &cases(current), better, &Limits::uniform(max_regression_pct)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::doc::{Params, SavedLatency};

    fn point(iodepth: usize, bs: u64, iops: f64) -> SavedPoint {
        let lat = SavedLatency { p50: 10.0, p99: 40.0, p999: 80.0 };
        SavedPoint {
            workload: "randread".into(),
            bs,
            iodepth,
            jobs: 1,
            iops,
            mib_s: iops / 256.0,
            lat_us: lat.clone(),
            read: Some(SavedClass { iops, mib_s: iops / 256.0, lat_us: lat }),
            write: None,
            meta: None,
            repetitions: 1,
        }
    }

    fn doc(sweep: bool, points: Vec<SavedPoint>) -> Saved {
        let params: Params = [("rw", "randread"), ("iodepth", "1,32")].map(|(k, v)| (k.into(), v.into())).into();
        Saved { params, sweep, points }
    }

    #[test]
    fn single_points_name_class_and_figure() {
        let names: Vec<String> = cases(&doc(false, vec![point(1, 4096, 1000.0)])).into_keys().collect();
        assert_eq!(names, ["read.iops", "read.lat_p50_us", "read.lat_p99_us", "read.mib_s"]);
    }

    #[test]
    fn sweep_cases_carry_the_point() {
        let c = cases(&doc(true, vec![point(1, 4096, 1000.0), point(32, 128 << 10, 9000.0)]));
        assert_eq!(c["qd32/bs128k/read.iops"], 9000.0);
        assert!(c.contains_key("qd1/bs4k/read.lat_p99_us"));
        assert_eq!(c.len(), 8);
        assert_eq!(better("qd1/bs4k/read.iops"), Better::Higher);
        assert_eq!(better("read.lat_p99_us"), Better::Lower);
    }

    #[test]
    fn size_labels() {
        assert_eq!(size_label(4096), "4k");
        assert_eq!(size_label(128 << 10), "128k");
        assert_eq!(size_label(1 << 20), "1m");
        assert_eq!(size_label(1000), "1000");
    }

    #[test]
    fn a_lower_iops_fails_and_names_the_case() {
        let base = doc(true, vec![point(1, 4096, 1000.0), point(32, 4096, 9000.0)]);
        let cur = doc(true, vec![point(1, 4096, 1000.0), point(32, 4096, 7000.0)]);
        let c = compare_docs(&base, &cur, 10.0).unwrap();
        assert!(!c.passed());
        let failed: Vec<&str> = c.with(dpfs_gate::Verdict::Regressed).map(|r| r.name.as_str()).collect();
        assert_eq!(failed, ["qd32/bs4k/read.iops", "qd32/bs4k/read.mib_s"]);
        assert!(compare_docs(&base, &base, 0.0).unwrap().passed());
    }

    #[test]
    fn a_baseline_with_other_parameters_is_refused() {
        let base = doc(false, vec![point(1, 4096, 1000.0)]);
        let mut cur = base.clone();
        cur.params.insert("rw".into(), "randwrite".into());
        let e = compare_docs(&base, &cur, 10.0).unwrap_err();
        assert!(e.contains("--rw randread (baseline) vs randwrite (this run)"), "{e}");
        let e = compare_docs(&base, &doc(true, base.points.clone()), 10.0).unwrap_err();
        assert!(e.contains("sweep"), "{e}");
    }
}
