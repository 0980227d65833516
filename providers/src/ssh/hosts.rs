//! One host's live state: its SSH session, and its slots (workers for the
//! capacity, and the backoff). A host that fails backs off alone; the
//! pool's other hosts keep taking builds.

use std::sync::Arc;

use burst_common::backoff::Backoff;
use burst_common::host_slots::HostSlots;
use openssh::Session;

use super::commands::Remote;
use super::settings::HostSettings;
use crate::host_choice::{SharedSlots, SlotHost, Words};

/// How launch errors speak of SSH hosts.
pub const WORDS: Words = Words {
    kind: "ssh",
    unit: "workers",
    resting: "backing off",
};

pub struct HostState {
    pub cfg: HostSettings,
    pub remote: Remote,
    /// The multiplexed connection; `None` until first use or after it died.
    /// Held while connecting, waking and sleeping, so those never overlap.
    pub session: tokio::sync::Mutex<Option<Arc<Session>>>,
    /// Serializes probe-and-upload, so concurrent launches upload once.
    pub upload_lock: tokio::sync::Mutex<()>,
    /// Workers launched (or being launched) on this host by this provider,
    /// and its backoff: jittered exponential after each failure; a
    /// permanent error (bad host key, refused auth) waits the longest at
    /// once.
    slots: SharedSlots,
}

impl HostState {
    pub fn new(cfg: HostSettings, remote: Remote, backoff: Backoff) -> Self {
        let capacity = Some(cfg.max_workers as usize);
        Self {
            cfg,
            remote,
            session: tokio::sync::Mutex::new(None),
            upload_lock: tokio::sync::Mutex::new(()),
            slots: SharedSlots::new(HostSlots::new(capacity, backoff)),
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }
}

impl SlotHost for HostState {
    fn name(&self) -> &str {
        HostState::name(self)
    }
    fn slots(&self) -> &SharedSlots {
        &self.slots
    }
}
