//! A queued build's place in line, for `GET /api/v1/builds/{id}` (and so
//! `burst submit --follow`): counted among the builds waiting for the same
//! pool, since builds for other pools do not hold it back.

use super::state::State;
use crate::model::{BuildId, QueuePosition};

impl State {
    /// `None` when the build is not queued (running, finished, unknown) or
    /// no pool serves it.
    pub fn queue_position(&self, id: BuildId) -> Option<QueuePosition> {
        let pool_of = |id: &BuildId| {
            let labels = &self.builds.get(id)?.labels;
            self.pools.iter().position(|p| p.serves(labels))
        };
        let pool = pool_of(&id)?;
        let (mut position, mut queued) = (None, 0u32);
        // Oldest first, as `decide` hands them out.
        for queued_id in &self.queue {
            if pool_of(queued_id) != Some(pool) {
                continue;
            }
            queued += 1;
            if *queued_id == id {
                position = Some(queued);
            }
        }
        Some(QueuePosition {
            pool: self.pools[pool].name.clone(),
            position: position?,
            queued,
        })
    }
}
