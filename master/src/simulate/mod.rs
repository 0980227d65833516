//! `burst simulate`: replays a job trace on virtual time through the real
//! scheduler, with simulated providers, to compare pool policies (the
//! config's own and emulations of rival systems'). See docs/simulate.md.

mod anchors;
mod chart;
mod error;
mod generate;
mod provider;
mod report;
mod run;
mod scenario;
mod trace;
mod tradeoff;
mod world;

pub use anchors::{anchors, Policy};
pub use chart::{samples, write as write_chart, Sample};
pub use error::SimError;
pub use generate::{generate, Kind, TRACE_SPAN};
pub use report::{compare_text, report, text, Figures, Report};
pub use run::{replay, BuildSpan, Setup, Timeline, WorkerSpan};
pub use scenario::{default_start, run, setup, Options, Outcome};
pub use trace::{to_csv, Job, Submit, Timed, Trace, TraceError};
pub use tradeoff::write as write_tradeoff;
