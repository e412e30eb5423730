//! The committed baseline of a gate: figures per case, regression limits, and what the
//! figures were measured with.
//!
//! ```toml
//! [meta]                      # what the figures depend on (toolchain, valgrind…)
//! rustc = "1.95.0"
//! [limits]
//! default = 2.0               # percent; kept by hand
//! [limits.cases]
//! "hal/vring_getattr" = 3.0   # a noisier case
//! [cases]                     # rewritten by `--update`
//! "null/getattr" = 1234
//! ```

use crate::compare::Limits;
use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A baseline file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// What the figures were measured with (tool versions): a mismatch explains a change.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Regression limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// The figures, by case name.
    #[serde(default)]
    pub cases: BTreeMap<String, f64>,
}

/// The `[limits]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Percent any case may regress.
    pub default: f64,
    /// Per-case overrides in percent.
    #[serde(default)]
    pub cases: BTreeMap<String, f64>,
}

impl Default for LimitsFile {
    fn default() -> LimitsFile {
        LimitsFile { default: 2.0, cases: BTreeMap::new() }
    }
}

impl Baseline {
    /// Reads and checks `path`; errors name the file and the bad key.
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
        Baseline::parse(&text).map_err(|msg| Error::Parse { path: path.into(), msg })
    }

    /// Parses the TOML text of a baseline.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let b: Baseline = toml::from_str(text).map_err(|e| e.to_string())?;
        let limits =
            std::iter::once(("default", b.limits.default)).chain(b.limits.cases.iter().map(|(k, v)| (k.as_str(), *v)));
        for (name, pct) in limits {
            if !pct.is_finite() || pct < 0.0 {
                return Err(format!("limit {name:?} must be a percentage >= 0, not {pct}"));
            }
        }
        if let Some((name, v)) = b.cases.iter().find(|(_, v)| !v.is_finite()) {
            return Err(format!("case {name:?} has no finite figure ({v})"));
        }
        Ok(b)
    }

    /// The limits in the form [`compare`](crate::compare()) takes.
    pub fn limits(&self) -> Limits {
        Limits { default_pct: self.limits.default, per_case: self.limits.cases.clone() }
    }

    /// Writes the baseline to `path` with `header` (comment lines, without `#`) on top.
    pub fn save(&self, path: &Path, header: &str) -> Result<(), Error> {
        let body = toml::to_string(self).map_err(|e| Error::Parse { path: path.into(), msg: e.to_string() })?;
        let mut text: String = header.lines().map(|l| format!("# {l}\n")).collect();
        text.push_str(&body);
        std::fs::write(path, text).map_err(|source| Error::Io { path: path.into(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_file() {
        let mut b = Baseline::default();
        b.meta.insert("rustc".into(), "1.95.0".into());
        b.limits.cases.insert("hal/x".into(), 5.0);
        b.cases.insert("null/getattr".into(), 1234.0);
        let dir = std::env::temp_dir().join(format!("dpfs-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.toml");
        b.save(&path, "written by a test\nsecond line").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# written by a test\n# second line\n"), "{text}");
        assert_eq!(Baseline::load(&path).unwrap(), b);
        assert_eq!(b.limits().for_case("hal/x"), 5.0);
        assert_eq!(b.limits().for_case("other"), 2.0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_files_name_the_key() {
        let e = Baseline::parse("[limits]\ndefault = -1.0\n").unwrap_err();
        assert!(e.contains("default"), "{e}");
        let e = Baseline::parse("[limits]\ndefault = 2.0\n[limits.cases]\n\"a/b\" = -3.0\n").unwrap_err();
        assert!(e.contains("a/b"), "{e}");
        let e = Baseline::parse("[case]\nx = 1\n").unwrap_err();
        assert!(e.contains("case"), "{e}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let e = Baseline::load(Path::new("/nonexistent/baseline.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/baseline.toml"), "{e}");
    }
}
