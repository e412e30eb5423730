//! Comparing measured figures with their baseline, case by case.

use std::collections::BTreeMap;
use std::fmt;

/// Which way a figure gets better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Instructions, latency: less is better.
    Lower,
    /// IOPS, bandwidth: more is better.
    Higher,
}

/// Regression limits in percent: one default, and overrides for cases that are noisier.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Limit of every case without an override.
    pub default_pct: f64,
    /// Per-case overrides, by case name.
    pub per_case: BTreeMap<String, f64>,
}

impl Limits {
    /// The same limit for every case.
    pub fn uniform(pct: f64) -> Limits {
        Limits { default_pct: pct, per_case: BTreeMap::new() }
    }

    /// The limit that applies to `case`.
    pub fn for_case(&self, case: &str) -> f64 {
        self.per_case.get(case).copied().unwrap_or(self.default_pct)
    }
}

/// What became of one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Worse than the baseline by more than the limit: the gate fails.
    Regressed,
    /// Better than the baseline by more than the limit: time to tighten the baseline.
    Improved,
    /// Within the limit either way.
    Unchanged,
    /// Measured, but the baseline has no figure for it: the gate fails until the baseline
    /// is updated, so a new case cannot go unchecked.
    New,
    /// In the baseline but not measured: the gate fails, so a case cannot silently stop
    /// running.
    Missing,
}

impl Verdict {
    /// True for the verdicts that fail a gate.
    pub fn fails(self) -> bool {
        matches!(self, Verdict::Regressed | Verdict::New | Verdict::Missing)
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Regressed => "REGRESSED",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "ok",
            Verdict::New => "NEW (no baseline)",
            Verdict::Missing => "MISSING (not measured)",
        }
    }
}

/// One case of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Case name.
    pub name: String,
    /// Baseline figure.
    pub old: Option<f64>,
    /// Measured figure.
    pub new: Option<f64>,
    /// Change in percent of the baseline (positive: the figure grew).
    pub change_pct: Option<f64>,
    /// The limit that applied.
    pub limit_pct: f64,
    /// Which way is better for this case.
    pub better: Better,
    /// The outcome.
    pub verdict: Verdict,
}

/// The outcome of comparing every case.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// One row per case, sorted by name.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// True if no case fails (see [`Verdict::fails`]).
    pub fn passed(&self) -> bool {
        !self.rows.iter().any(|r| r.verdict.fails())
    }

    /// The rows with `verdict`.
    pub fn with(&self, verdict: Verdict) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(move |r| r.verdict == verdict)
    }

    /// A one-line summary: how many cases regressed, improved, stayed.
    pub fn summary(&self) -> String {
        let n = |v| self.with(v).count();
        let mut s = format!(
            "{} cases: {} regressed, {} improved, {} unchanged",
            self.rows.len(),
            n(Verdict::Regressed),
            n(Verdict::Improved),
            n(Verdict::Unchanged)
        );
        for (v, what) in [(Verdict::New, "without baseline"), (Verdict::Missing, "not measured")] {
            if n(v) > 0 {
                s.push_str(&format!(", {} {what}", n(v)));
            }
        }
        s
    }
}

/// Compares `current` with `baseline`, case by case; `better` says which way each case
/// improves, `limits` how far it may move the wrong way.
///
/// A baseline of 0 only passes a current 0 when lower is better (any growth from nothing is
/// a regression), and passes anything when higher is better.
pub fn compare(
    baseline: &BTreeMap<String, f64>,
    current: &BTreeMap<String, f64>,
    better: impl Fn(&str) -> Better,
    limits: &Limits,
) -> Comparison {
    let mut names: Vec<&String> = baseline.keys().chain(current.keys()).collect();
    names.sort();
    names.dedup();
    let rows = names
        .into_iter()
        .map(|name| {
            let (old, new) = (baseline.get(name).copied(), current.get(name).copied());
            let limit_pct = limits.for_case(name);
            let dir = better(name);
            let (change_pct, verdict) = match (old, new) {
                (Some(o), Some(n)) => judge(o, n, dir, limit_pct),
                (None, _) => (None, Verdict::New),
                (_, None) => (None, Verdict::Missing),
            };
            Row { name: name.clone(), old, new, change_pct, limit_pct, better: dir, verdict }
        })
        .collect();
    Comparison { rows }
}

fn judge(old: f64, new: f64, better: Better, limit_pct: f64) -> (Option<f64>, Verdict) {
    if old == 0.0 {
        let worse = match better {
            Better::Lower => new > 0.0,
            Better::Higher => false,
        };
        let verdict = if worse {
            Verdict::Regressed
        } else if new != 0.0 && better == Better::Higher {
            Verdict::Improved
        } else {
            Verdict::Unchanged
        };
        return (None, verdict);
    }
    let change = (new - old) / old.abs() * 100.0;
    let worse_by = match better {
        Better::Lower => change,
        Better::Higher => -change,
    };
    let verdict = if worse_by > limit_pct {
        Verdict::Regressed
    } else if -worse_by > limit_pct {
        Verdict::Improved
    } else {
        Verdict::Unchanged
    };
    (Some(change), verdict)
}

fn figure(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

impl fmt::Display for Comparison {
    /// A table: case, baseline, current, change, limit, verdict; then the summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self.rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
        writeln!(
            f,
            "{:<width$}  {:>14}  {:>14}  {:>8}  {:>6}  verdict",
            "case", "baseline", "current", "change", "limit"
        )?;
        for r in &self.rows {
            let change = r.change_pct.map(|c| format!("{c:+.2}%")).unwrap_or_else(|| "-".into());
            let arrow = match r.better {
                Better::Lower => "lower is better",
                Better::Higher => "higher is better",
            };
            let verdict = match r.verdict {
                Verdict::Regressed | Verdict::Improved => format!("{} ({arrow})", r.verdict.label()),
                v => v.label().to_string(),
            };
            writeln!(
                f,
                "{:<width$}  {:>14}  {:>14}  {:>8}  {:>5.1}%  {verdict}",
                r.name,
                figure(r.old),
                figure(r.new),
                change,
                r.limit_pct
            )?;
        }
        write!(f, "{}", self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(v: &[(&str, f64)]) -> BTreeMap<String, f64> {
        v.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn regression_over_the_limit_fails_and_names_the_case() {
        let c = compare(
            &map(&[("getattr", 1000.0)]),
            &map(&[("getattr", 1021.0)]),
            |_| Better::Lower,
            &Limits::uniform(2.0),
        );
        assert!(!c.passed());
        let row = c.with(Verdict::Regressed).next().unwrap();
        assert_eq!(row.name, "getattr");
        let table = c.to_string();
        assert!(
            table.contains("getattr")
                && table.contains("1000")
                && table.contains("1021")
                && table.contains("REGRESSED"),
            "{table}"
        );
    }

    #[test]
    fn growth_within_the_limit_passes() {
        let c = compare(&map(&[("a", 1000.0)]), &map(&[("a", 1020.0)]), |_| Better::Lower, &Limits::uniform(2.0));
        assert!(c.passed());
        assert_eq!(c.rows[0].verdict, Verdict::Unchanged);
    }

    #[test]
    fn improvements_are_reported_and_pass() {
        let c = compare(&map(&[("a", 1000.0)]), &map(&[("a", 900.0)]), |_| Better::Lower, &Limits::uniform(2.0));
        assert!(c.passed());
        assert_eq!(c.rows[0].verdict, Verdict::Improved);
        assert!(c.summary().contains("1 improved"));
    }

    #[test]
    fn higher_is_better_inverts_the_verdict() {
        let base = map(&[("iops", 100_000.0)]);
        let lower = compare(&base, &map(&[("iops", 90_000.0)]), |_| Better::Higher, &Limits::uniform(5.0));
        assert_eq!(lower.rows[0].verdict, Verdict::Regressed);
        let higher = compare(&base, &map(&[("iops", 110_000.0)]), |_| Better::Higher, &Limits::uniform(5.0));
        assert_eq!(higher.rows[0].verdict, Verdict::Improved);
    }

    #[test]
    fn per_case_limits_override_the_default() {
        let limits = Limits { default_pct: 2.0, per_case: map(&[("noisy", 10.0)]) };
        let c = compare(
            &map(&[("noisy", 100.0), ("quiet", 100.0)]),
            &map(&[("noisy", 108.0), ("quiet", 108.0)]),
            |_| Better::Lower,
            &limits,
        );
        let verdicts: Vec<_> = c.rows.iter().map(|r| (r.name.as_str(), r.verdict)).collect();
        assert_eq!(verdicts, [("noisy", Verdict::Unchanged), ("quiet", Verdict::Regressed)]);
    }

    #[test]
    fn new_and_missing_cases_fail() {
        let c = compare(&map(&[("gone", 1.0)]), &map(&[("fresh", 1.0)]), |_| Better::Lower, &Limits::uniform(2.0));
        assert!(!c.passed());
        assert_eq!(c.with(Verdict::New).next().unwrap().name, "fresh");
        assert_eq!(c.with(Verdict::Missing).next().unwrap().name, "gone");
    }

    #[test]
    fn a_zero_baseline_is_judged_without_dividing() {
        let c = compare(&map(&[("a", 0.0)]), &map(&[("a", 5.0)]), |_| Better::Lower, &Limits::uniform(2.0));
        assert_eq!(c.rows[0].verdict, Verdict::Regressed);
        assert_eq!(c.rows[0].change_pct, None);
    }

    proptest! {
        /// Any growth of a lower-is-better figure beyond the limit fails; any within passes.
        #[test]
        fn lower_is_better_threshold(old in 1u64..10_000_000, permille in 0u64..100) {
            let new = old as f64 * (1.0 + permille as f64 / 1000.0);
            let c = compare(&map(&[("x", old as f64)]), &map(&[("x", new)]), |_| Better::Lower, &Limits::uniform(2.0));
            let change = (new - old as f64) / old as f64 * 100.0;
            prop_assert_eq!(c.passed(), change <= 2.0);
        }

        /// Comparing a set of figures with itself always passes with every case unchanged.
        #[test]
        fn identity_passes(values in proptest::collection::btree_map("[a-z]{1,8}", 0.0f64..1e12, 0..20)) {
            let c = compare(&values, &values, |_| Better::Lower, &Limits::uniform(0.0));
            prop_assert!(c.passed());
            prop_assert!(c.rows.iter().all(|r| r.verdict == Verdict::Unchanged));
        }
    }
}
