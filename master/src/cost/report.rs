//! `burst cost`: spend over a window, grouped by builder, pool or label,
//! from the attribution of `attribution.rs`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::attribution::{attribute, BuildCost, WorkerAttempt};
use crate::model::{BuildId, Instance, Millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Builder,
    #[default]
    Pool,
    Label,
}

/// The row that holds what no build can be charged for (spares never used),
/// when grouping by builder or label.
pub const UNATTRIBUTED: &str = "(unattributed)";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostRow {
    pub key: String,
    pub spend: f64,
    /// Billed instance time in hours (pools only: builds share instances).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_hours: Option<f64>,
    /// The part of `spend` that paid for idle time (and, for a pool, for
    /// spares no build used), between 0 and 1.
    pub idle_share: f64,
    pub builds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_build_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_per_build_p95: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    pub since: Millis,
    pub until: Millis,
    pub by: GroupBy,
    pub currency: String,
    pub rows: Vec<CostRow>,
    pub total: CostRow,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[derive(Default)]
struct Acc {
    spend: f64,
    idle: f64,
    hours: Option<f64>,
    builds: Vec<f64>,
}

impl Acc {
    fn row(mut self, key: String) -> CostRow {
        self.builds.sort_by(f64::total_cmp);
        CostRow {
            key,
            spend: self.spend,
            instance_hours: self.hours,
            idle_share: if self.spend > 0.0 {
                (self.idle / self.spend).clamp(0.0, 1.0)
            } else {
                0.0
            },
            builds: self.builds.len() as u32,
            cost_per_build_p50: percentile(&self.builds, 0.50),
            cost_per_build_p95: percentile(&self.builds, 0.95),
        }
    }
}

/// The report over `instances` (those the window holds) and the attempts
/// that ran on them. A build with several labels counts in each label's row.
pub fn report(
    instances: &[Instance],
    attempts: &[WorkerAttempt],
    by: GroupBy,
    window: (Millis, Millis),
    currency: &str,
) -> CostReport {
    let (since, until) = window;
    let a = attribute(instances, attempts, until);
    let pool_of: HashMap<&str, &str> = instances
        .iter()
        .map(|i| (i.worker_id.as_str(), i.pool.as_str()))
        .collect();
    // Each build's groups, from its (last) attempt on a listed worker.
    let mut keys: BTreeMap<BuildId, Vec<String>> = BTreeMap::new();
    for at in attempts {
        let Some(pool) = pool_of.get(at.worker_id.as_str()) else {
            continue;
        };
        let k = match by {
            GroupBy::Builder => vec![at.builder.clone()],
            GroupBy::Pool => vec![(*pool).to_owned()],
            GroupBy::Label => at.labels.clone(),
        };
        keys.insert(at.build, k);
    }
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let mut all = Acc::default();
    let charge = |acc: &mut Acc, c: &BuildCost| {
        acc.builds.push(c.total());
        if by != GroupBy::Pool {
            acc.spend += c.total();
            acc.idle += c.idle;
        }
    };
    for (build, cost) in &a.builds {
        for k in keys.get(build).into_iter().flatten() {
            charge(groups.entry(k.clone()).or_default(), cost);
        }
        all.builds.push(cost.total());
    }
    let mut unattributed = 0.0;
    for (name, p) in &a.pools {
        all.spend += p.spend;
        all.idle += p.idle + p.unattributed;
        *all.hours.get_or_insert(0.0) += p.instance_hours;
        unattributed += p.unattributed;
        if by == GroupBy::Pool {
            let g = groups.entry(name.clone()).or_default();
            g.spend = p.spend;
            g.idle = p.idle + p.unattributed;
            g.hours = Some(p.instance_hours);
        }
    }
    if by != GroupBy::Pool && unattributed > 0.0 {
        let g = groups.entry(UNATTRIBUTED.to_owned()).or_default();
        g.spend = unattributed;
        g.idle = unattributed;
    }
    let mut rows: Vec<CostRow> = groups.into_iter().map(|(k, acc)| acc.row(k)).collect();
    rows.sort_by(|x, y| y.spend.total_cmp(&x.spend).then_with(|| x.key.cmp(&y.key)));
    CostReport {
        since,
        until,
        by,
        currency: currency.to_owned(),
        rows,
        total: all.row("total".to_owned()),
    }
}

#[cfg(test)]
mod tests;
