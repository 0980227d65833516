//! Sends the outbox. Each due row is tried once per tick; a failure waits
//! a jittered, doubling delay (backon), a rate limit waits what the forge
//! asks (capped), a refusal (4xx) gives up at once. Rows go out in id
//! order; a row waiting for a retry is superseded once a newer state of
//! the same build and reporter exists, so a late `pending` never lands
//! after `success`.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use burst_common::error_chain::Chain;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::request::{request, Outgoing};
use crate::config::{Config, ReporterConfig};
use crate::metrics::Metrics;
use crate::model::{now_millis, Millis, Report};
use crate::store::Store;

/// Rows sent per tick at most.
const BATCH: u32 = 50;
/// A forge that does not answer within this is retried later.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct ReporterSettings {
    /// How often the outbox is looked at.
    pub tick: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Tries before a delivery is given up.
    pub max_attempts: u32,
    /// `target_url`'s base when a reporter sets no `build_url`.
    pub build_url: String,
}

impl ReporterSettings {
    pub fn new(build_url: String) -> Self {
        Self {
            tick: Duration::from_secs(1),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            max_attempts: 12,
            build_url,
        }
    }
}

struct Reporters {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    settings: ReporterSettings,
    http: reqwest::Client,
}

/// Starts the reporters' task when the config has reporters; it stops
/// when `stop` turns true.
pub fn spawn_reporters(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    settings: ReporterSettings,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    if config.reporters.is_empty() {
        return Ok(None);
    }
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| {
            anyhow::anyhow!("failed to set up the reporters' HTTP client: {}", Chain(&e))
        })?;
    let r = Reporters {
        config,
        store,
        metrics,
        settings,
        http,
    };
    Ok(Some(tokio::spawn(async move {
        loop {
            r.deliver().await;
            tokio::select! {
                () = tokio::time::sleep(r.settings.tick) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })))
}

/// What one try came to.
enum Tried {
    Delivered,
    /// Worth another try, after at least this long (a rate limit's wait).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    GiveUp(String),
}

impl Reporters {
    async fn deliver(&self) {
        let due = match self.store.due_reports(now_millis(), BATCH).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "failed to read the report outbox");
                return;
            }
        };
        for report in due {
            self.deliver_one(report).await;
        }
    }

    async fn deliver_one(&self, mut report: Report) {
        let Some(r) = self
            .config
            .reporters
            .iter()
            .find(|r| r.name == report.reporter)
        else {
            // A reporter removed from the config: nobody to send it to.
            report.gave_up = true;
            report.last_error = Some(format!(
                "reporter {:?} is no longer configured",
                report.reporter
            ));
            self.save(&report).await;
            return;
        };
        // Only a row that already failed is superseded: a first try goes
        // out in id order, so it cannot land after a newer state.
        if report.attempts > 0 {
            if let Some(newer) = self.newer_state(&report).await {
                report.gave_up = true;
                report.last_error = Some(format!("superseded by {}", newer.as_str()));
                self.metrics.report_done(&r.name, "superseded");
                self.save(&report).await;
                return;
            }
        }
        report.attempts += 1;
        let tried = self.try_send(r, &report).await;
        let now = now_millis();
        match tried {
            Tried::Delivered => {
                report.delivered_at = Some(now);
                report.last_error = None;
                self.metrics.report_done(&r.name, "delivered");
            }
            Tried::Retry { why, after } if report.attempts < self.settings.max_attempts => {
                let delay = self.delay(report.attempts).max(after.unwrap_or_default());
                tracing::warn!(reporter = %r.name, build = report.build_id, state = report.state.as_str(), attempts = report.attempts, retry_in = %humantime::format_duration(delay), "status delivery failed: {why}");
                report.next_at = now + millis(delay);
                report.last_error = Some(why);
                self.metrics.report_done(&r.name, "retry");
            }
            Tried::Retry { why, .. } | Tried::GiveUp(why) => {
                tracing::warn!(reporter = %r.name, build = report.build_id, state = report.state.as_str(), attempts = report.attempts, "status delivery given up: {why}");
                report.gave_up = true;
                report.last_error = Some(why);
                self.metrics.report_done(&r.name, "gave_up");
            }
        }
        self.save(&report).await;
    }

    /// A newer state of the same build queued for the same reporter.
    async fn newer_state(&self, report: &Report) -> Option<crate::model::BuildState> {
        let rows = self.store.build_reports(report.build_id).await.ok()?;
        rows.into_iter()
            .filter(|o| o.reporter == report.reporter && o.id > report.id)
            .map(|o| o.state)
            .next_back()
    }

    async fn try_send(&self, r: &ReporterConfig, report: &Report) -> Tried {
        let build = match self.store.get_build(report.build_id).await {
            Ok(Some(b)) => b,
            Ok(None) => return Tried::GiveUp(format!("build {} is gone", report.build_id)),
            Err(e) => {
                return Tried::Retry {
                    why: Chain(&e).to_string(),
                    after: None,
                }
            }
        };
        let token = r
            .token
            .as_deref()
            .and_then(|n| self.config.secret_values.get(n));
        let build_url = r
            .build_url
            .as_ref()
            .map_or_else(|| self.settings.build_url.clone(), ToString::to_string);
        let out = match request(r, token, &build, report.state, &build_url) {
            Ok(o) => o,
            Err(why) => return Tried::GiveUp(why),
        };
        self.send(&out).await
    }

    async fn send(&self, out: &Outgoing) -> Tried {
        let mut req = self.http.post(&out.url).json(&out.body);
        for (k, v) in &out.headers {
            req = req.header(*k, v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Tried::Retry {
                    why: format!("failed to reach {}: {}", out.url, Chain(&e)),
                    after: None,
                }
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Tried::Delivered;
        }
        let rate_limited = status.as_u16() == 429
            || (status.as_u16() == 403
                && resp
                    .headers()
                    .get("x-ratelimit-remaining")
                    .is_some_and(|v| v.as_bytes() == b"0"));
        let after = rate_limit_wait(resp.headers(), self.settings.retry_max);
        let text: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        let why = format!("{} answered {status}: {}", out.url, text.trim());
        if rate_limited {
            Tried::Retry { why, after }
        } else if status.is_server_error() || status.as_u16() == 408 {
            Tried::Retry { why, after: None }
        } else {
            Tried::GiveUp(why)
        }
    }

    /// The backoff after `attempts` failed tries.
    fn delay(&self, attempts: u32) -> Duration {
        let mut b = ExponentialBuilder::default()
            .with_min_delay(self.settings.retry_min)
            .with_max_delay(self.settings.retry_max)
            .with_jitter()
            .without_max_times()
            .build();
        let n = usize::try_from(attempts.saturating_sub(1)).unwrap_or(usize::MAX);
        b.nth(n)
            .unwrap_or(self.settings.retry_max)
            .min(self.settings.retry_max)
    }

    async fn save(&self, report: &Report) {
        if let Err(e) = self.store.save_report(report).await {
            tracing::warn!(report = report.id, error = %Chain(&e), "failed to save a report's delivery");
        }
    }
}

/// `Retry-After` (seconds) or GitHub's `x-ratelimit-reset` (epoch
/// seconds), capped at `max`.
fn rate_limit_wait(headers: &reqwest::header::HeaderMap, max: Duration) -> Option<Duration> {
    let num = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let wait = if let Some(secs) = num("retry-after") {
        Duration::from_secs(secs)
    } else {
        let reset = num("x-ratelimit-reset")?;
        let now = u64::try_from(now_millis() / 1000).unwrap_or(0);
        Duration::from_secs(reset.saturating_sub(now))
    };
    Some(wait.min(max))
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}
