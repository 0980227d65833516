//! systemd readiness (`Type=notify`): READY=1 once the master listens and
//! has written run.json, STOPPING=1 when it begins to stop. Without
//! `NOTIFY_SOCKET` (not under systemd) these do nothing.

use burst_common::error_chain::Chain;
use sd_notify::NotifyState;

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    // `false`: NOTIFY_SOCKET stays set. Changing the environment of a
    // running multi-threaded process is a race; the unit's
    // NotifyAccess=main ignores anything a worker might send.
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %Chain(&e), "failed to notify systemd");
    }
}
