//! The JSON document of `dpfs bench --json`: one run's report (today's shape, plus how many
//! repetitions it is the median of and the workload parameters), or a sweep of them; and
//! reading such a document back for `--baseline` and `dpfs bench-plot`.

use anyhow::Context;
use dpfs_sim::bench::{BenchArgs, Report, SweepArgs, Workload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Workload parameters by flag name (`rw`, `bs`, `iodepth`, `jobs`…): what a baseline must
/// share with a run to be compared with it.
pub type Params = BTreeMap<String, String>;

/// One point as written: the load generator's report with its repetition count.
#[derive(Debug, Serialize)]
pub struct PointOut<'a> {
    /// The (median) report.
    #[serde(flatten)]
    pub report: &'a Report,
    /// How many runs the figures are the median of.
    pub repetitions: u32,
}

/// A single-point document: the report's fields at the top level, as before sweeps existed.
#[derive(Debug, Serialize)]
pub struct SingleOut<'a> {
    /// The point.
    #[serde(flatten)]
    pub point: PointOut<'a>,
    /// The workload parameters.
    pub params: &'a Params,
}

/// A sweep document: every point, in the order run.
#[derive(Debug, Serialize)]
pub struct SweepOut<'a> {
    /// The workload parameters (`bs` and `iodepth` as the comma lists swept).
    pub params: &'a Params,
    /// Runs per point.
    pub repetitions: u32,
    /// The points.
    pub points: Vec<PointOut<'a>>,
}

/// The figures of one class as read back.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SavedClass {
    /// Operations per second.
    pub iops: f64,
    /// MiB per second.
    pub mib_s: f64,
    /// Latency percentiles.
    pub lat_us: SavedLatency,
}

/// Latency percentiles as read back (microseconds).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SavedLatency {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(default)]
    pub p999: f64,
}

/// One point as read back: the fields comparisons and plots use (others are ignored).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SavedPoint {
    /// Workload name.
    pub workload: String,
    /// Block size.
    pub bs: u64,
    /// Queue depth per job.
    pub iodepth: usize,
    /// Jobs.
    pub jobs: usize,
    /// All operations per second.
    pub iops: f64,
    /// All data MiB per second.
    pub mib_s: f64,
    /// Latency of all operations.
    pub lat_us: SavedLatency,
    /// Reads.
    pub read: Option<SavedClass>,
    /// Writes.
    pub write: Option<SavedClass>,
    /// Metadata operations.
    pub meta: Option<SavedClass>,
    /// Runs the figures are the median of (1 in reports older than `--repeat`).
    #[serde(default = "one")]
    pub repetitions: u32,
}

fn one() -> u32 {
    1
}

/// A saved document: a single point or a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Saved {
    /// The workload parameters (from the point's own fields in reports older than `params`).
    pub params: Params,
    /// True for a sweep document (case names then carry the point).
    pub sweep: bool,
    /// The points.
    pub points: Vec<SavedPoint>,
}

#[derive(Deserialize)]
struct SweepIn {
    #[serde(default)]
    params: Params,
    points: Vec<SavedPoint>,
}

#[derive(Deserialize)]
struct SingleIn {
    #[serde(default)]
    params: Params,
    #[serde(flatten)]
    point: SavedPoint,
}

impl Saved {
    /// Parses the text of a `--json` report.
    pub fn parse(text: &str) -> anyhow::Result<Saved> {
        let v: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
        if v.get("points").is_some() {
            let s: SweepIn = serde_json::from_value(v).context("not a dpfs bench sweep report")?;
            anyhow::ensure!(!s.points.is_empty(), "the sweep has no points");
            Ok(Saved { params: s.params, sweep: true, points: s.points })
        } else {
            let s: SingleIn = serde_json::from_value(v).context("not a dpfs bench --json report")?;
            let mut params = s.params;
            let p = &s.point;
            for (k, v) in [("rw", p.workload.clone()), ("bs", p.bs.to_string()), ("iodepth", p.iodepth.to_string())] {
                params.entry(k.into()).or_insert(v);
            }
            params.entry("jobs".into()).or_insert(p.jobs.to_string());
            Ok(Saved { params, sweep: false, points: vec![s.point] })
        }
    }

    /// Reads `path`; errors name it.
    pub fn load(path: &Path) -> anyhow::Result<Saved> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Saved::parse(&text).with_context(|| format!("{} is not a dpfs bench --json report", path.display()))
    }
}

/// The workload parameters of a run or sweep, by flag name. Runtime and repetitions are
/// left out (they change the precision, not the workload); flags that do not apply to the
/// workload are too.
pub fn params(sweep: &SweepArgs) -> Params {
    let a: &BenchArgs = &sweep.run;
    let list = |v: Vec<String>| v.join(",");
    let mut p = Params::new();
    let mut put = |k: &str, v: String| {
        p.insert(k.to_string(), v);
    };
    put("rw", format!("{:?}", a.rw).to_lowercase());
    put("iodepth", list(sweep.iodepth.iter().map(|d| d.to_string()).collect()));
    put("jobs", a.jobs.to_string());
    put("queues", a.queues.to_string());
    put("queue-size", a.queue_size.to_string());
    put("segmentation", format!("{:?}", a.segmentation).to_lowercase());
    put("event-idx", (!a.no_event_idx).to_string());
    put("indirect", (!a.no_indirect).to_string());
    put("busy-poll", a.busy_poll.to_string());
    put("number-ios", a.number_ios.map_or("none".into(), |n| n.to_string()));
    if a.rw.is_io() {
        put("bs", list(sweep.bs.iter().map(|b| b.to_string()).collect()));
        put("size", a.size.to_string());
    }
    if a.rw == Workload::Randrw {
        put("rwmixread", a.rwmixread.to_string());
    }
    if a.rw == Workload::Readdir {
        put("files", a.files.to_string());
    }
    p
}

/// Names every parameter both sides set to different values, as `--flag A (baseline) vs B
/// (this run)`; empty if the two can be compared.
pub fn mismatches(baseline: &Params, current: &Params) -> Vec<String> {
    baseline
        .iter()
        .filter_map(|(k, old)| {
            let new = current.get(k)?;
            (old != new).then(|| format!("--{k} {old} (baseline) vs {new} (this run)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD_SINGLE: &str = r#"{"workload":"randread","bs":4096,"iodepth":32,"jobs":1,"iops":1000.0,"mib_s":3.9,
        "lat_us":{"min":1,"mean":2,"p50":2,"p99":9,"p999":12,"max":20},
        "read":{"ops":10,"iops":1000.0,"mib_s":3.9,"lat_us":{"min":1,"mean":2,"p50":2,"p99":9,"p999":12,"max":20}},
        "write":null,"meta":null,"errors":0,"queues":[]}"#;

    #[test]
    fn a_report_from_before_params_reads_with_its_own_fields_as_params() {
        let s = Saved::parse(OLD_SINGLE).unwrap();
        assert!(!s.sweep);
        assert_eq!(s.points[0].repetitions, 1);
        assert_eq!(s.params["rw"], "randread");
        assert_eq!(s.params["iodepth"], "32");
        assert_eq!(s.points[0].read.as_ref().unwrap().lat_us.p99, 9.0);
    }

    #[test]
    fn differing_parameters_are_named() {
        let base = Saved::parse(OLD_SINGLE).unwrap().params;
        let mut cur = base.clone();
        assert!(mismatches(&base, &cur).is_empty());
        cur.insert("iodepth".into(), "1".into());
        cur.insert("queues".into(), "4".into()); // not in the old baseline: not compared
        let m = mismatches(&base, &cur);
        assert_eq!(m, ["--iodepth 32 (baseline) vs 1 (this run)"]);
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(Saved::parse("{").is_err());
        let e = Saved::parse(r#"{"points": []}"#).unwrap_err();
        assert!(format!("{e:#}").contains("no points"), "{e:#}");
        assert!(Saved::parse(r#"{"workload": "x"}"#).is_err());
    }
}
