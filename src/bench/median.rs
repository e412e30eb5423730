//! Repetitions of one point folded into one report: the median of every figure.

use dpfs_sim::bench::{ClassReport, Latency, Report};

/// The median of `values` (the mean of the middle two for an even count); `None` if empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn med<T>(reps: &[T], f: impl Fn(&T) -> f64) -> f64 {
    median(&reps.iter().map(f).collect::<Vec<_>>()).unwrap_or(0.0)
}

fn latency(reps: &[&Latency]) -> Latency {
    Latency {
        min: med(reps, |l| l.min),
        mean: med(reps, |l| l.mean),
        p50: med(reps, |l| l.p50),
        p99: med(reps, |l| l.p99),
        p999: med(reps, |l| l.p999),
        max: med(reps, |l| l.max),
    }
}

fn class(reps: &[&ClassReport]) -> Option<ClassReport> {
    if reps.is_empty() {
        return None;
    }
    let lats: Vec<&Latency> = reps.iter().map(|c| &c.lat_us).collect();
    Some(ClassReport {
        ops: med(reps, |c| c.ops as f64).round() as u64,
        iops: med(reps, |c| c.iops),
        mib_s: med(reps, |c| c.mib_s),
        lat_us: latency(&lats),
    })
}

/// Folds the repetitions of one point: each figure (IOPS, MiB/s, every latency percentile,
/// per class and overall) is the median over the repetitions, each taken on its own (so
/// the p99 of the result is the median p99, not the p99 of one chosen run). Errors are
/// summed; the device and queue details are the first repetition's. `None` if `reps` is empty.
pub fn median_report(reps: &[Report]) -> Option<Report> {
    let first = reps.first()?;
    let classes = |pick: fn(&Report) -> Option<&ClassReport>| class(&reps.iter().filter_map(pick).collect::<Vec<_>>());
    Some(Report {
        runtime_s: med(reps, |r| r.runtime_s),
        ops: med(reps, |r| r.ops as f64).round() as u64,
        iops: med(reps, |r| r.iops),
        mib_s: med(reps, |r| r.mib_s),
        lat_us: latency(&reps.iter().map(|r| &r.lat_us).collect::<Vec<_>>()),
        read: classes(|r| r.read.as_ref()),
        write: classes(|r| r.write.as_ref()),
        meta: classes(|r| r.meta.as_ref()),
        errors: reps.iter().map(|r| r.errors).sum(),
        first_error: reps.iter().find_map(|r| r.first_error.clone()),
        ..first.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_sim::bench::DeviceReport;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 100.0]), Some(3.5));
    }

    fn report(iops: f64, p99: f64, errors: u64) -> Report {
        let lat = Latency { p99, ..Latency::default() };
        Report {
            workload: "randread".into(),
            bs: 4096,
            iodepth: 4,
            jobs: 1,
            device: DeviceReport {
                tag: None,
                device_queues: 2,
                request_queues: 1,
                event_idx: true,
                indirect: true,
                fuse: "7.45".into(),
                max_write: 1 << 20,
            },
            runtime_s: 1.0,
            ops: iops as u64,
            iops,
            mib_s: iops / 256.0,
            lat_us: lat.clone(),
            read: Some(ClassReport { ops: iops as u64, iops, mib_s: iops / 256.0, lat_us: lat }),
            write: None,
            meta: None,
            errors,
            first_error: None,
            queues: Vec::new(),
        }
    }

    #[test]
    fn every_figure_is_its_own_median() {
        // The outlier run (iops 10) does not drag the result; p99 is the median p99 even
        // though it comes from a different run than the median IOPS.
        let r = median_report(&[report(100.0, 50.0, 0), report(10.0, 40.0, 1), report(90.0, 900.0, 2)]).unwrap();
        assert_eq!(r.iops, 90.0);
        assert_eq!(r.lat_us.p99, 50.0);
        let read = r.read.unwrap();
        assert_eq!((read.iops, read.lat_us.p99, read.ops), (90.0, 50.0, 90));
        assert_eq!(r.errors, 3);
        assert!(r.write.is_none());
        assert!(median_report(&[]).is_none());
    }
}
