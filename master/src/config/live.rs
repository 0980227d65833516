//! The config in force. A reload (`daemon/reload.rs`) swaps it whole;
//! readers take the current one per request and never see a half-applied
//! config.

use std::sync::Arc;

use tokio::sync::watch;

use super::schema::Config;

#[derive(Clone)]
pub struct LiveConfig(Arc<watch::Sender<Arc<Config>>>);

impl LiveConfig {
    pub fn new(config: Arc<Config>) -> Self {
        Self(Arc::new(watch::channel(config).0))
    }

    /// The config in force now.
    pub fn get(&self) -> Arc<Config> {
        self.0.borrow().clone()
    }

    /// Puts `config` in force.
    pub fn set(&self, config: Arc<Config>) {
        self.0.send_replace(config);
    }

    /// Changes with every `set`.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.0.subscribe()
    }
}

impl From<Arc<Config>> for LiveConfig {
    fn from(config: Arc<Config>) -> Self {
        Self::new(config)
    }
}

impl From<Config> for LiveConfig {
    fn from(config: Config) -> Self {
        Self::new(Arc::new(config))
    }
}
