//! Bounds on what a hello may carry, checked before the scheduler sees it,
//! and the truncation used wherever a worker-chosen string is logged.

use burst_proto::Hello;

pub const MAX_WORKER_ID: usize = 128;
pub const MAX_LABEL: usize = 64;
pub const MAX_LABELS: usize = 64;
/// Version, OS, arch and shell names.
pub const MAX_SHORT_FIELD: usize = 64;
/// Resume tokens are 64 hex characters; launch tokens are shorter.
pub const MAX_TOKEN: usize = 256;
/// Step ids the worker says it still runs.
pub const MAX_RUNNING_STEPS: usize = 64;
/// A worker id or label in a log line is cut to this many characters.
pub const LOG_FIELD: usize = 64;

/// Why a hello is refused, or `None` when every field is within bounds.
pub fn check(hello: &Hello) -> Option<String> {
    let too_long = |what: &str, len: usize, max: usize| {
        (len > max).then(|| format!("{what} is {len} bytes long; at most {max} are allowed"))
    };
    let platform = hello.platform.clone().unwrap_or_default();
    too_long("the worker id", hello.worker_id.len(), MAX_WORKER_ID)
        .or_else(|| too_long("the token", hello.token.len(), MAX_TOKEN))
        .or_else(|| too_long("the version", hello.version.len(), MAX_SHORT_FIELD))
        .or_else(|| too_long("the platform os", platform.os.len(), MAX_SHORT_FIELD))
        .or_else(|| too_long("the platform arch", platform.arch.len(), MAX_SHORT_FIELD))
        .or_else(|| {
            too_long(
                "the default shell",
                platform.default_shell.len(),
                MAX_SHORT_FIELD,
            )
        })
        .or_else(|| {
            (hello.labels.len() > MAX_LABELS).then(|| {
                format!(
                    "{} labels were sent; at most {MAX_LABELS} are allowed",
                    hello.labels.len()
                )
            })
        })
        .or_else(|| {
            hello
                .labels
                .iter()
                .find_map(|l| too_long("a label", l.len(), MAX_LABEL))
        })
        .or_else(|| {
            (hello.running_steps.len() > MAX_RUNNING_STEPS).then(|| {
                format!(
                    "{} running steps were sent; at most {MAX_RUNNING_STEPS} are allowed",
                    hello.running_steps.len()
                )
            })
        })
        .or_else(|| {
            hello
                .running_steps
                .iter()
                .find_map(|s| too_long("a running step id", s.len(), MAX_SHORT_FIELD))
        })
        .or_else(|| {
            (hello.finished_steps.len() > MAX_RUNNING_STEPS).then(|| {
                format!(
                    "{} finished steps were sent; at most {MAX_RUNNING_STEPS} are allowed",
                    hello.finished_steps.len()
                )
            })
        })
        .or_else(|| {
            hello
                .finished_steps
                .iter()
                .find_map(|s| too_long("a finished step id", s.len(), MAX_SHORT_FIELD))
        })
}

/// `s` cut to `LOG_FIELD` characters, with how much was cut, for log lines.
pub fn for_log(s: &str) -> String {
    match s.char_indices().nth(LOG_FIELD) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…({} bytes)", &s[..end], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_refused() {
        let ok = Hello {
            worker_id: "w".repeat(MAX_WORKER_ID),
            labels: vec!["l".repeat(MAX_LABEL); MAX_LABELS],
            ..Hello::default()
        };
        assert_eq!(check(&ok), None);
        let long_id = Hello {
            worker_id: "w".repeat(MAX_WORKER_ID + 1),
            ..Hello::default()
        };
        assert!(check(&long_id).unwrap().contains("worker id"));
        let long_label = Hello {
            labels: vec!["l".repeat(MAX_LABEL + 1)],
            ..Hello::default()
        };
        assert!(check(&long_label).unwrap().contains("label"));
        let many = Hello {
            labels: vec!["l".into(); MAX_LABELS + 1],
            ..Hello::default()
        };
        assert!(check(&many).unwrap().contains("labels"));
    }

    #[test]
    fn log_fields_are_cut() {
        assert_eq!(for_log("short"), "short");
        let cut = for_log(&"é".repeat(1000));
        assert!(cut.starts_with(&"é".repeat(LOG_FIELD)), "{cut}");
        assert!(cut.ends_with("…(2000 bytes)"), "{cut}");
    }
}
