//! What can stop a simulation, each naming the input at fault.

use std::path::PathBuf;

use crate::scheduler::SchedError;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Trace(#[from] super::trace::TraceError),
    #[error("trace line {line}: no pool serves the labels {labels:?}")]
    Unserved { line: usize, labels: Vec<String> },
    #[error("failed to start the simulation's runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to make the simulation's log directory")]
    TempDir(#[source] std::io::Error),
    #[error("the simulated scheduler refused a submit")]
    Submit(#[source] SchedError),
    #[error("failed to write chart {path}")]
    Chart {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}
