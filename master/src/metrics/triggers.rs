//! The families of triggers and reporters: what sources received, polls
//! that failed, status deliveries. Labels are config names (source,
//! reporter) and fixed words, never ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Metrics;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceOutcome {
    source: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookRefusal {
    kind: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    reporter: String,
    result: &'static str,
}

#[derive(Debug, Default)]
pub(super) struct TriggerFamilies {
    changes: Family<SourceOutcome, Counter>,
    refusals: Family<HookRefusal, Counter>,
    polls: Family<SourceOutcome, Counter>,
    poll_failing: Family<SourceLabels, Gauge>,
    reports: Family<ReportLabels, Counter>,
}

impl TriggerFamilies {
    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "trigger_changes",
            "Changes sources received and schedule runs, by what became of them (built, \
             ignored, duplicate, collapsed, unmatched, unchanged, refused, failed)",
            self.changes.clone(),
        );
        r.register(
            "hook_refusals",
            "Webhook requests refused for their signature or token",
            self.refusals.clone(),
        );
        r.register(
            "source_polls",
            "Polls of git-poll sources, by outcome (ok, failed)",
            self.polls.clone(),
        );
        r.register(
            "source_poll_failing",
            "Failed polls in a row of a git-poll source (0 when it works)",
            self.poll_failing.clone(),
        );
        r.register(
            "report_deliveries",
            "Status deliveries tried, by reporter and result (delivered, retry, gave_up)",
            self.reports.clone(),
        );
    }
}

impl Metrics {
    /// `outcome` is one of the words in `trigger_changes`' help.
    pub fn trigger_change(&self, source: &str, outcome: &'static str) {
        self.triggers
            .changes
            .get_or_create(&SourceOutcome {
                source: source.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn hook_refused(&self, kind: &'static str, reason: &'static str) {
        self.triggers
            .refusals
            .get_or_create(&HookRefusal { kind, reason })
            .inc();
    }

    pub fn poll_done(&self, source: &str, ok: bool) {
        let t = &self.triggers;
        t.polls
            .get_or_create(&SourceOutcome {
                source: source.to_owned(),
                outcome: if ok { "ok" } else { "failed" },
            })
            .inc();
        let failing = t.poll_failing.get_or_create(&SourceLabels {
            source: source.to_owned(),
        });
        if ok {
            failing.set(0);
        } else {
            failing.inc();
        }
    }

    /// `result`: delivered, retry or gave_up.
    pub fn report_done(&self, reporter: &str, result: &'static str) {
        self.triggers
            .reports
            .get_or_create(&ReportLabels {
                reporter: reporter.to_owned(),
                result,
            })
            .inc();
    }
}
