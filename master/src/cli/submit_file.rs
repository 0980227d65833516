//! `burst submit --from FILE|-`: many submits read from a file or stdin.
//!
//! The format is the API's submit object (`{"builder": "NAME", "params":
//! {"KEY": "VALUE"}}`, `params` optional), either
//! - one object per line (JSON lines; blank lines are skipped), or
//! - one JSON array of them (the text starts with `[`; it may span lines).
//!
//! Everything is read and checked before anything is sent, and the batch is
//! sent as one request: it is queued whole or not at all.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::model::SubmitRequest;

/// Where the submits come from: `-` is stdin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    pub fn parse(arg: &str) -> Self {
        if arg == "-" {
            Source::Stdin
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    fn name(&self) -> String {
        match self {
            Source::Stdin => "stdin".to_owned(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitFileError {
    #[error("failed to read submits from {source_name}")]
    Read {
        source_name: String,
        #[source]
        source: io::Error,
    },
    #[error("{source_name}, line {line}: not a submit ({{\"builder\": …, \"params\": {{…}}}})")]
    Line {
        source_name: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{source_name}: not a JSON array of submits")]
    Array {
        source_name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{source_name} holds no submit")]
    Empty { source_name: String },
}

/// Reads every submit of `source`, in order.
pub fn read(source: &Source) -> Result<Vec<SubmitRequest>, SubmitFileError> {
    let text = match source {
        Source::Stdin => {
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map(|_| text)
                .map_err(|e| SubmitFileError::Read {
                    source_name: source.name(),
                    source: e,
                })?
        }
        Source::File(path) => read_file(path)?,
    };
    parse(&source.name(), &text)
}

fn read_file(path: &Path) -> Result<String, SubmitFileError> {
    std::fs::read_to_string(path).map_err(|e| SubmitFileError::Read {
        source_name: path.display().to_string(),
        source: e,
    })
}

/// Parses JSON lines or one JSON array (see the module docs).
pub fn parse(source_name: &str, text: &str) -> Result<Vec<SubmitRequest>, SubmitFileError> {
    let reqs = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| SubmitFileError::Array {
            source_name: source_name.to_owned(),
            source: e,
        })?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line).map_err(|e| SubmitFileError::Line {
                    source_name: source_name.to_owned(),
                    line: i + 1,
                    source: e,
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if reqs.is_empty() {
        return Err(SubmitFileError::Empty {
            source_name: source_name.to_owned(),
        });
    }
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use burst_common::error_chain::Chain;

    use super::*;

    #[test]
    fn json_lines_and_arrays() {
        let lines = "{\"builder\": \"a\"}\n\n{\"builder\": \"b\", \"params\": {\"K\": \"v\"}}\n";
        let reqs = parse("f", lines).unwrap_or_default();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[1].params.get("K").map(String::as_str), Some("v"));
        let array = "[\n  {\"builder\": \"a\"},\n  {\"builder\": \"b\"}\n]";
        let reqs = parse("f", array).unwrap_or_default();
        assert_eq!(
            reqs.iter().map(|r| r.builder.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn errors_name_the_source_and_line() {
        let bad = "{\"builder\": \"a\"}\n\n{\"builder\": 3}\n";
        let e = parse("jobs.jsonl", bad)
            .err()
            .map(|e| Chain(&e).to_string());
        let e = e.unwrap_or_default();
        assert!(e.starts_with("jobs.jsonl, line 3: not a submit"), "{e}");
        assert!(e.contains("invalid type"), "{e}");

        let e = parse("stdin", "[{\"builder\": \"a\"},\n {\"param\": 1}]").err();
        let e = e.map(|e| Chain(&e).to_string()).unwrap_or_default();
        assert!(e.starts_with("stdin: not a JSON array of submits"), "{e}");
        assert!(e.contains("line 2"), "{e}");

        let e = parse("stdin", "\n  \n").err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("stdin holds no submit"));
    }
}
