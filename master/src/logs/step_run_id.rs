use std::fmt;
use std::str::FromStr;

use crate::model::BuildId;

/// Names one run of one step: `BUILD.ATTEMPT.INDEX`. The worker echoes it
/// back with every output chunk and result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepRunId {
    pub build: BuildId,
    /// 1-based attempt number.
    pub attempt: u32,
    /// 0-based step index.
    pub index: u32,
}

impl fmt::Display for StepRunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.build, self.attempt, self.index)
    }
}

impl FromStr for StepRunId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("malformed step run id {s:?}");
        let mut parts = s.split('.');
        let (Some(b), Some(a), Some(i), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Self {
            build: b.parse().map_err(|_| bad())?,
            attempt: a.parse().map_err(|_| bad())?,
            index: i.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let id = StepRunId {
            build: 12,
            attempt: 2,
            index: 0,
        };
        assert_eq!(id.to_string().parse::<StepRunId>(), Ok(id));
        for bad in ["", "1.2", "1.2.3.4", "a.1.1", "1.-1.0", "../../etc.1.1"] {
            assert!(bad.parse::<StepRunId>().is_err(), "{bad} should be refused");
        }
    }
}
