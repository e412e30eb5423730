//! Reading the instruction counts out of what gungraun prints with `--output-format=json`:
//! one JSON document per benchmark, on a line of its own.

use std::collections::BTreeMap;

/// Why a line of gungraun output could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    /// A line that starts like JSON is not valid JSON.
    #[error("line {line}: not JSON: {msg}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parser's message.
        msg: String,
    },
    /// A benchmark summary lacks a field the gate needs.
    #[error("line {line}: benchmark summary has no {field}")]
    Missing {
        /// 1-based line number.
        line: usize,
        /// The field.
        field: &'static str,
    },
    /// The same case twice.
    #[error("line {line}: case {case} appears twice")]
    Duplicate {
        /// 1-based line number.
        line: usize,
        /// The case.
        case: String,
    },
    /// No benchmark summary at all: the benches did not run.
    #[error("no benchmark results in the output")]
    Empty,
}

/// The callgrind instruction count (`Ir`) of every case in `text`, by case name
/// `FUNCTION/ID` (e.g. `null/getattr`). Lines that are not JSON objects are ignored.
pub fn instruction_counts(text: &str) -> Result<BTreeMap<String, f64>, OutputError> {
    let mut counts = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if !raw.starts_with('{') {
            continue;
        }
        let doc: serde_json::Value =
            serde_json::from_str(raw).map_err(|e| OutputError::Json { line, msg: e.to_string() })?;
        let field = |v: Option<&serde_json::Value>, field| {
            v.and_then(|v| v.as_str()).map(str::to_owned).ok_or(OutputError::Missing { line, field })
        };
        let function = field(doc.get("function_name"), "function_name")?;
        let id = field(doc.get("id"), "id")?;
        let ir = doc
            .get("profiles")
            .and_then(|p| p.as_array())
            .and_then(|p| p.iter().find(|p| p.get("tool").and_then(|t| t.as_str()) == Some("Callgrind")))
            .and_then(|p| p.pointer("/data/total/metrics/Ir/values/new"))
            .and_then(|v| v.as_f64())
            .ok_or(OutputError::Missing { line, field: "callgrind Ir" })?;
        let case = format!("{function}/{id}");
        if counts.insert(case.clone(), ir).is_some() {
            return Err(OutputError::Duplicate { line, case });
        }
    }
    if counts.is_empty() {
        return Err(OutputError::Empty);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(function: &str, id: &str, ir: u64) -> String {
        format!(
            r#"{{"function_name":"{function}","id":"{id}","module_path":"instructions::g::{function}","profiles":[{{"tool":"Callgrind","data":{{"total":{{"metrics":{{"Ir":{{"values":{{"new":{ir},"old":null}}}}}}}}}}}}]}}"#
        )
    }

    #[test]
    fn reads_one_count_per_case() {
        let text = format!("noise\n{}\n{}\n", summary("null", "getattr", 1442), summary("mem", "read_4k", 2100));
        let counts = instruction_counts(&text).unwrap();
        assert_eq!(counts.get("null/getattr"), Some(&1442.0));
        assert_eq!(counts.get("mem/read_4k"), Some(&2100.0));
        assert_eq!(counts.len(), 2);
    }

    #[test]
    fn broken_output_is_an_error_naming_the_line() {
        assert_eq!(instruction_counts("").unwrap_err(), OutputError::Empty);
        assert!(matches!(instruction_counts("{oops").unwrap_err(), OutputError::Json { line: 1, .. }));
        let no_ir = r#"{"function_name":"f","id":"i","profiles":[]}"#;
        assert_eq!(instruction_counts(no_ir).unwrap_err(), OutputError::Missing { line: 1, field: "callgrind Ir" });
        let twice = format!("{}\n{}", summary("a", "b", 1), summary("a", "b", 2));
        assert!(matches!(instruction_counts(&twice).unwrap_err(), OutputError::Duplicate { line: 2, .. }));
    }
}
