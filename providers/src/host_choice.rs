//! Placing a launch on one of a provider's hosts (Docker engines, SSH
//! machines): try the hosts in order of load, skip those that are full or
//! quarantined, reserve a slot, try, quarantine the host if it was at fault
//! and try the next; when none worked, say why host by host.

use std::sync::{Mutex, MutexGuard};

use burst_common::host_slots::HostSlots;
use tokio::time::Instant;

use crate::{Launched, ProviderError};

/// A host's slots behind a lock that a panic cannot spoil: every update is
/// a few assignments, so the state is usable whatever a holder did.
#[derive(Debug)]
pub(crate) struct SharedSlots(Mutex<HostSlots<Instant>>);

impl SharedSlots {
    pub fn new(slots: HostSlots<Instant>) -> Self {
        Self(Mutex::new(slots))
    }

    pub fn lock(&self) -> MutexGuard<'_, HostSlots<Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the launch loop needs of a host.
pub(crate) trait SlotHost {
    fn name(&self) -> &str;
    fn slots(&self) -> &SharedSlots;
}

impl<H: SlotHost> SlotHost for std::sync::Arc<H> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn slots(&self) -> &SharedSlots {
        (**self).slots()
    }
}

/// How a provider's messages speak of its hosts.
pub(crate) struct Words {
    /// The provider: "docker", "ssh".
    pub kind: &'static str,
    /// What fills a host's slots: "containers", "workers".
    pub unit: &'static str,
    /// A host kept away from after failures: "quarantined", "backing off".
    pub resting: &'static str,
}

/// A failed try on one host.
pub(crate) struct Failure {
    pub error: ProviderError,
    /// The host itself is at fault: keep launches away from it for a while.
    pub host_at_fault: bool,
}

impl From<ProviderError> for Failure {
    /// A failure of this launch, not of the host.
    fn from(error: ProviderError) -> Self {
        Self {
            error,
            host_at_fault: false,
        }
    }
}

/// The hosts a launch may try at `now`, best first: those with a free slot
/// and no quarantine, emptiest first (by fraction of capacity), config
/// order breaking ties. Indices into `hosts`.
pub(crate) fn candidates<H: SlotHost>(hosts: &[H], now: Instant) -> Vec<usize> {
    let mut free: Vec<_> = hosts
        .iter()
        .enumerate()
        .filter_map(|(i, h)| {
            let slots = h.slots().lock();
            slots.has_room(now).then(|| (slots.load(), i))
        })
        .collect();
    free.sort();
    free.into_iter().map(|(_, i)| i).collect()
}

/// Each host's quarantine, for metrics.
pub(crate) fn statuses<H: SlotHost>(hosts: &[H], now: Instant) -> Vec<crate::HostStatus> {
    hosts
        .iter()
        .map(|h| crate::HostStatus {
            name: h.name().to_owned(),
            quarantined_for: h
                .slots()
                .lock()
                .quarantined(now)
                .map_or(std::time::Duration::ZERO, |(left, _)| left),
        })
        .collect()
}

/// Each host's state: `h0: 2/4 workers` or `h1: backing off for 3s after: …`.
pub(crate) fn describe<H: SlotHost>(hosts: &[H], words: &Words, now: Instant) -> String {
    hosts
        .iter()
        .map(|h| {
            let slots = h.slots().lock();
            match slots.quarantined(now) {
                Some((left, why)) => format!(
                    "{}: {} for {}s after: {why}",
                    h.name(),
                    words.resting,
                    left.as_secs() + 1
                ),
                None => {
                    let cap = slots
                        .capacity()
                        .map_or_else(|| "unlimited".to_owned(), |c| c.to_string());
                    format!("{}: {}/{cap} {}", h.name(), slots.used(), words.unit)
                }
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// No host could be tried. Permanent when every host is out for a reason
/// only a config change fixes (so waiting builds fail with it instead of
/// waiting), transient otherwise.
pub(crate) fn no_room<H: SlotHost>(
    hosts: &[H],
    worker_id: &str,
    words: &Words,
    now: Instant,
) -> ProviderError {
    let permanent: Vec<(String, String)> = hosts
        .iter()
        .filter_map(|h| {
            let why = h.slots().lock().permanent_failure(now)?.to_owned();
            Some((h.name().to_owned(), why))
        })
        .collect();
    if permanent.is_empty() || permanent.len() < hosts.len() {
        // Some host is only busy: builds may still get it.
        return ProviderError::transient(format!(
            "failed to launch {} worker {worker_id}: no host has room ({})",
            words.kind,
            describe(hosts, words, now)
        ));
    }
    on_every_host(worker_id, words, permanent, true)
}

/// `failed to launch … on any host (h0: …; h1: …)`.
fn on_every_host(
    worker_id: &str,
    words: &Words,
    mut errors: Vec<(String, String)>,
    permanent: bool,
) -> ProviderError {
    let message = if errors.len() == 1 {
        errors.remove(0).1
    } else {
        let text = errors
            .iter()
            .map(|(h, e)| format!("{h}: {e}"))
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "failed to launch {} worker {worker_id} on any host ({text})",
            words.kind
        )
    };
    if permanent {
        ProviderError::permanent(message)
    } else {
        ProviderError::transient(message)
    }
}

/// Launches `worker_id` on the first host that takes it: candidates in
/// order, a slot reserved on each before `try_on` runs. A success lifts the
/// host's quarantine; a failure frees the slot and, when the host was at
/// fault, goes to `quarantine` (which backs the host off and logs it).
///
/// One host's error comes back as it is; several are joined, permanent
/// only if every one is.
pub(crate) async fn launch<'h, H, T, Q>(
    hosts: &'h [H],
    worker_id: &str,
    words: &Words,
    mut try_on: impl FnMut(&'h H) -> T,
    quarantine: Q,
) -> Result<Launched, ProviderError>
where
    H: SlotHost,
    T: std::future::Future<Output = Result<Launched, Failure>>,
    Q: Fn(&H, &ProviderError),
{
    let mut failures: Vec<(String, ProviderError)> = Vec::new();
    for i in candidates(hosts, Instant::now()) {
        let host = &hosts[i];
        // Another launch may have taken the last slot meanwhile.
        if !host.slots().lock().reserve(worker_id, Instant::now()) {
            continue;
        }
        match try_on(host).await {
            Ok(launched) => {
                host.slots().lock().healthy();
                return Ok(launched);
            }
            Err(Failure {
                error,
                host_at_fault,
            }) => {
                host.slots().lock().release(worker_id);
                if host_at_fault {
                    quarantine(host, &error);
                }
                failures.push((host.name().to_owned(), error));
            }
        }
    }
    match failures.len() {
        0 => Err(no_room(hosts, worker_id, words, Instant::now())),
        1 => Err(failures.remove(0).1),
        _ => {
            let permanent = failures.iter().all(|(_, e)| e.is_permanent());
            let errors = failures
                .into_iter()
                .map(|(h, e)| (h, e.to_string()))
                .collect();
            Err(on_every_host(worker_id, words, errors, permanent))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use burst_common::backoff::Backoff;

    use super::*;

    struct Host(String, SharedSlots);

    impl SlotHost for Host {
        fn name(&self) -> &str {
            &self.0
        }
        fn slots(&self) -> &SharedSlots {
            &self.1
        }
    }

    const WORDS: Words = Words {
        kind: "test",
        unit: "workers",
        resting: "backing off",
    };

    fn hosts(caps: &[Option<usize>]) -> Vec<Host> {
        caps.iter()
            .enumerate()
            .map(|(i, cap)| {
                let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(10));
                Host(
                    format!("h{i}"),
                    SharedSlots::new(HostSlots::new(*cap, backoff)),
                )
            })
            .collect()
    }

    fn launched(host: &str) -> Launched {
        Launched {
            provider_id: host.to_owned(),
            details: serde_json::Value::Null,
        }
    }

    fn quarantine(h: &Host, e: &ProviderError) {
        h.slots()
            .lock()
            .quarantine(Instant::now(), e.to_string(), e.is_permanent());
    }

    #[tokio::test(start_paused = true)]
    async fn statuses_show_each_hosts_quarantine_for_metrics() {
        let hosts = hosts(&[Some(1), None]);
        quarantine(&hosts[1], &ProviderError::transient("failed to connect"));
        let now = Instant::now();
        let shown = statuses(&hosts, now);
        assert_eq!(shown.len(), 2);
        assert_eq!(shown[0].name, "h0");
        assert_eq!(shown[0].quarantined_for, Duration::ZERO);
        assert_eq!(shown[1].name, "h1");
        assert!(
            shown[1].quarantined_for >= Duration::from_secs(5),
            "{shown:?}"
        );
        let later = statuses(&hosts, now + Duration::from_secs(11));
        assert_eq!(later[1].quarantined_for, Duration::ZERO);
    }

    #[tokio::test]
    async fn a_host_at_fault_is_quarantined_and_the_next_one_tried() {
        let hosts = hosts(&[Some(1), Some(2)]);
        let mut tried = Vec::new();
        let got = launch(
            &hosts,
            "w1",
            &WORDS,
            |h| {
                tried.push(h.name().to_owned());
                let name = h.name().to_owned();
                async move {
                    if name == "h0" {
                        Err(Failure {
                            error: ProviderError::transient("failed to reach h0"),
                            host_at_fault: true,
                        })
                    } else {
                        Ok(launched(&name))
                    }
                }
            },
            quarantine,
        )
        .await
        .expect("h1 takes it");
        assert_eq!(got.provider_id, "h1");
        assert_eq!(tried, ["h0", "h1"]);
        assert_eq!(
            hosts[0].slots().lock().used(),
            0,
            "the failed slot is freed"
        );
        assert_eq!(hosts[1].slots().lock().used(), 1);
        let now = Instant::now();
        assert_eq!(candidates(&hosts, now), [1]);
        let state = describe(&hosts, &WORDS, now);
        assert!(
            state.contains("h0: backing off for") && state.contains("after: failed to reach h0"),
            "{state}"
        );
        assert!(state.contains("h1: 1/2 workers"), "{state}");
    }

    #[tokio::test]
    async fn failures_are_joined_and_permanent_only_if_all_are() {
        let hosts = hosts(&[None, None]);
        let err = launch(
            &hosts,
            "w1",
            &WORDS,
            |h| {
                let error = if h.name() == "h0" {
                    ProviderError::permanent("failed to a")
                } else {
                    ProviderError::transient("failed to b")
                };
                async move { Err(Failure::from(error)) }
            },
            quarantine,
        )
        .await
        .expect_err("both fail");
        assert!(!err.is_permanent());
        assert_eq!(
            err.message,
            "failed to launch test worker w1 on any host (h0: failed to a; h1: failed to b)"
        );
        // Not the hosts' fault: nothing is quarantined.
        assert_eq!(candidates(&hosts, Instant::now()), [0, 1]);
    }

    #[tokio::test]
    async fn with_no_room_the_error_lists_every_host() {
        let hosts = hosts(&[Some(1)]);
        assert!(hosts[0].slots().lock().reserve("w0", Instant::now()));
        let err = launch(
            &hosts,
            "w1",
            &WORDS,
            |_| async { Ok(launched("never")) },
            quarantine,
        )
        .await
        .expect_err("full");
        assert!(!err.is_permanent());
        assert_eq!(
            err.message,
            "failed to launch test worker w1: no host has room (h0: 1/1 workers)"
        );
    }
}
