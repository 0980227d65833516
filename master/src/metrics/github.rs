//! The families of the GitHub runner manager: API calls and quota, jobs by
//! what became of them, JIT configs issued. Labels are fixed words and
//! config names, never job or runner ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Metrics;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    endpoint: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Default)]
pub(super) struct GithubFamilies {
    calls: Family<CallLabels, Counter>,
    remaining: Gauge,
    jobs: Family<OutcomeLabels, Counter>,
    runners_removed: Family<OutcomeLabels, Counter>,
    rate_limited: Counter,
}

impl GithubFamilies {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "github_api_calls",
            "GitHub API calls, by endpoint and answer (2xx, 4xx, 5xx, rate_limited, error)",
            self.calls.clone(),
        );
        r.register(
            "github_api_remaining",
            "The last X-RateLimit-Remaining GitHub sent (-1 before the first call)",
            self.remaining.clone(),
        );
        r.register(
            "github_rate_limit_waits",
            "Times the manager waited on a rate-limit answer (primary or secondary)",
            self.rate_limited.clone(),
        );
        r.register(
            "github_jobs",
            "workflow_job events and reconciled jobs, by what became of them (launched, \
             duplicate, unmatched, started, completed, cancelled_launch, ignored)",
            self.jobs.clone(),
        );
        r.register(
            "github_runners_removed",
            "Runner registrations removed by reconcile (orphan, offline, idle)",
            self.runners_removed.clone(),
        );
        self.remaining.set(-1);
    }
}

impl Metrics {
    /// `status` is one of the words in `github_api_calls`' help.
    pub fn github_call(&self, endpoint: &'static str, status: &'static str) {
        self.github
            .calls
            .get_or_create(&CallLabels { endpoint, status })
            .inc();
    }

    pub fn github_remaining(&self, remaining: i64) {
        self.github.remaining.set(remaining);
    }

    pub fn github_rate_limited(&self) {
        self.github.rate_limited.inc();
    }

    /// `outcome` is one of the words in `github_jobs`' help.
    pub fn github_job(&self, outcome: &'static str) {
        self.github
            .jobs
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn github_runner_removed(&self, outcome: &'static str) {
        self.github
            .runners_removed
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}
