//! Plots of saved `dpfs bench` sweeps: `dpfs bench --plot` draws one run, `dpfs bench-plot`
//! draws several (one per daemon) in one figure and can write an HTML report around it.

pub mod html;
pub mod svg;

use crate::bench::doc::Saved;
use crate::bench::size_label;
use crate::cli::BenchPlotArgs;
use anyhow::Context;
use std::path::PathBuf;

/// One point of a line: queue depth, IOPS, p99 latency (us).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Queue depth per job.
    pub qd: usize,
    /// All operations per second.
    pub iops: f64,
    /// p99 latency of all operations, microseconds.
    pub p99_us: f64,
}

/// One line of a plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Points by increasing queue depth.
    pub points: Vec<Point>,
}

/// The lines of one saved report: one per block size, named `LABEL` (or `LABEL bs=128k`
/// when the sweep has several block sizes; just `bs=…` without a label).
pub fn series(label: &str, doc: &Saved) -> Vec<Series> {
    let mut sizes: Vec<u64> = doc.points.iter().map(|p| p.bs).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
        .iter()
        .map(|&bs| {
            let mut points: Vec<Point> = doc
                .points
                .iter()
                .filter(|p| p.bs == bs)
                .map(|p| Point { qd: p.iodepth, iops: p.iops, p99_us: p.lat_us.p99 })
                .collect();
            points.sort_by_key(|p| p.qd);
            let label = match (label.is_empty(), sizes.len() > 1) {
                (false, false) => label.to_string(),
                (false, true) => format!("{label} bs={}", size_label(bs)),
                (true, _) => format!("bs={}", size_label(bs)),
            };
            Series { label, points }
        })
        .collect()
}

/// Splits `LABEL=FILE`; the label may not be empty.
pub fn parse_labelled(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((label, file)) if !label.is_empty() && !file.is_empty() => Ok((label.to_string(), file.into())),
        _ => Err(format!("expected LABEL=FILE (e.g. dpfs-null=null.json), not {s:?}")),
    }
}

/// Loads every report; reports given under the same label become one (their points
/// joined in the order given), so single-point runs against daemons that serve one
/// connection only (virtiofsd) still make a line.
fn join_labels(reports: &[(String, PathBuf)]) -> anyhow::Result<Vec<(String, Saved)>> {
    let mut docs: Vec<(String, Saved)> = Vec::new();
    for (label, path) in reports {
        let doc = Saved::load(path)?;
        match docs.iter_mut().find(|(l, _)| l == label) {
            Some((_, joined)) => {
                joined.points.extend(doc.points);
                joined.sweep = true;
            }
            None => docs.push((label.clone(), doc)),
        }
    }
    Ok(docs)
}

/// `dpfs bench-plot`: draws every saved sweep into `--out`, and writes `--html` if asked.
pub fn run(args: &BenchPlotArgs) -> anyhow::Result<()> {
    let docs = join_labels(&args.reports)?;
    let lines: Vec<Series> = docs.iter().flat_map(|(label, doc)| series(label, doc)).collect();
    svg::draw(&args.out, &args.title, &lines).with_context(|| format!("cannot draw {}", args.out.display()))?;
    if let Some(page) = &args.html {
        let text = html::page(&args.title, &args.out, page, &docs);
        std::fs::write(page, text).with_context(|| format!("cannot write {}", page.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_need_a_name_and_a_file() {
        assert_eq!(parse_labelled("dpfs=a.json").unwrap(), ("dpfs".to_string(), PathBuf::from("a.json")));
        assert_eq!(parse_labelled("a=b=c.json").unwrap().1, PathBuf::from("b=c.json"));
        assert!(parse_labelled("a.json").unwrap_err().contains("a.json"));
        assert!(parse_labelled("=a.json").is_err());
    }
}
