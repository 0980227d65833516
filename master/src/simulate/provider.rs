//! The simulated provider: a launch draws a boot time and maybe a failure
//! from the pool's seeded generator, then starts a worker task in the
//! [`World`](super::world::World). Nothing leaves the process.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use burst_providers::{LaunchSpec, Launched, ListedInstance, Provider, ProviderError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::world::World;
use crate::config::SimPoolConfig;

pub struct SimProvider {
    pool: usize,
    cfg: SimPoolConfig,
    /// One stream per pool, so a policy that launches more in one pool
    /// does not shift another pool's boot times.
    rng: Mutex<StdRng>,
    world: Arc<World>,
}

impl SimProvider {
    pub fn new(pool: usize, cfg: SimPoolConfig, seed: u64, world: Arc<World>) -> Self {
        let seed = seed ^ (pool as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Self {
            pool,
            cfg,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            world,
        }
    }
}

#[async_trait]
impl Provider for SimProvider {
    fn kind(&self) -> &'static str {
        "simulated"
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<Launched, ProviderError> {
        let (fails, boot) = {
            let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
            // Both drawn every time, so the k-th launch boots alike
            // whatever the failures before it.
            let fails = rng.random::<f64>() < self.cfg.failure_rate;
            let (min, max) = (self.cfg.boot.min, self.cfg.boot.max);
            let boot = if max > min {
                rng.random_range(min..=max)
            } else {
                min
            };
            (fails, boot)
        };
        if fails {
            self.world.launch_failed(self.pool);
            return Err(ProviderError::transient(
                "simulated launch failure (failure_rate)",
            ));
        }
        self.world.launch(self.pool, spec.clone(), boot);
        Ok(Launched {
            provider_id: format!("sim-{}", spec.worker_id),
            details: serde_json::Value::Null,
        })
    }

    async fn terminate(&self, worker_id: &str, _provider_id: &str) -> Result<(), ProviderError> {
        self.world.terminate(worker_id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ListedInstance>, ProviderError> {
        Ok(Vec::new())
    }
}
