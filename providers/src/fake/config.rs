//! `[pools.NAME.fake]`: how the fake's workers behave by default. The
//! section may be left out.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::provider::FakeProvider;
use crate::config::{Context, Path, Positive, Problems};
use crate::section::Section;
use crate::{Provider, ProviderError};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FakePoolConfig {
    /// How long a worker takes to say hello when no behaviour is planned.
    pub connect_after: Positive,
    /// How long each step takes on a fake worker.
    #[serde(with = "humantime_serde")]
    pub step_time: Duration,
    /// The exit code steps report.
    pub exit_code: i32,
}

impl Default for FakePoolConfig {
    fn default() -> Self {
        Self {
            connect_after: Positive::secs(1),
            step_time: Duration::from_secs(1),
            exit_code: 0,
        }
    }
}

impl Section for FakePoolConfig {
    fn absent() -> Option<Self> {
        Some(Self::default())
    }

    fn validate(&self, _ctx: &Context, out: &mut Problems) {
        out.check(
            &Path::root().key("fake").key("connect_after"),
            &self.connect_after,
        );
    }

    fn build(&self, _ctx: &Context) -> Result<Arc<dyn Provider>, ProviderError> {
        Ok(Arc::new(FakeProvider::from_config(self.clone())))
    }
}
