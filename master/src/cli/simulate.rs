//! `burst simulate`: runs `crate::simulate` on a config and a trace, or
//! prints a generated trace. Nothing here talks to a master.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burst_common::error_chain::Chain;

use super::exit::{CliError, Exit};
use super::output::Output;
use crate::config::{self, BootTime};
use crate::simulate::{self, Kind, Options, Policy, Trace};

/// Which policies `--compare` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareSet {
    /// Buildbot, GitLab taskscaler and terraform-aws-github-runner
    /// emulations (docs/simulate.md).
    Anchors,
}

/// Flags that set every pool's simulated provider, over `[simulate.pools]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SimFlags {
    /// Boot time of every pool's workers: "45s" or "30s..90s" (uniform).
    #[arg(long, value_name = "TIME")]
    pub boot: Option<BootTime>,
    /// Share of launches that fail, 0 to 1.
    #[arg(long, value_name = "RATE")]
    pub failure_rate: Option<f64>,
    /// Dollars per instance-hour of every pool.
    #[arg(long, value_name = "DOLLARS")]
    pub price_per_hour: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub config: Option<PathBuf>,
    pub trace: Option<PathBuf>,
    pub compare: Option<CompareSet>,
    pub json: bool,
    pub chart: Option<PathBuf>,
    pub seed: u64,
    pub horizon: Option<Duration>,
    pub generate: Option<Kind>,
    pub flags: SimFlags,
}

pub fn run(req: Request, out: &Output, err: &mut dyn Write) -> Result<Exit, CliError> {
    if let Some(kind) = req.generate {
        let header = format!(
            "# burst simulate --generate {} --seed {}: a simulated week from Monday 00:00 UTC (docs/simulate.md)\n",
            kind.name(),
            req.seed
        );
        let trace = simulate::to_csv(&simulate::generate(kind, req.seed));
        out.write(format!("{header}{trace}").as_bytes())?;
        return Ok(Exit::Success);
    }
    let (Some(config_path), Some(trace_path)) = (&req.config, &req.trace) else {
        return Err(CliError::Internal(
            "simulate needs --config FILE and --trace TRACE (or --generate KIND)".into(),
        ));
    };
    let mut config = match config::load_file(config_path) {
        Ok(c) => c,
        Err(e) => return Err(CliError::Config(Chain(&e).to_string())),
    };
    apply_flags(&mut config, &req.flags)?;
    let trace = Trace::read(trace_path).map_err(simulate::SimError::from)?;
    let policies = match req.compare {
        Some(CompareSet::Anchors) => simulate::anchors(),
        None => vec![Policy::AsConfigured],
    };
    let opts = Options {
        seed: req.seed,
        horizon: req.horizon,
    };
    let began = Instant::now();
    let outcomes = simulate::run(&config, &trace, trace_path, &policies, &opts)?;
    let wall = began.elapsed();
    let chart_error = |path: &PathBuf| {
        let path = path.clone();
        move |source| simulate::SimError::Chart { path, source }
    };
    if let (Some(path), Some(first), None) = (&req.chart, outcomes.first(), req.compare) {
        let title = format!("{} on {}", first.report.policy, trace_path.display());
        simulate::write_chart(path, &title, &first.timeline).map_err(chart_error(path))?;
    }
    let reports: Vec<_> = outcomes.into_iter().map(|o| o.report).collect();
    // Compared policies: one point each, wait p95 against idle hours.
    if let (Some(path), Some(_)) = (&req.chart, req.compare) {
        let title = format!(
            "policies on {}: wait p95 vs idle hours",
            trace_path.display()
        );
        simulate::write_tradeoff(path, &title, &reports).map_err(chart_error(path))?;
    }
    if req.json {
        // Encoded from the structs, so keys keep their documented order.
        let json = match (req.compare, reports.as_slice()) {
            (None, [one]) => serde_json::to_string(one),
            _ => serde_json::to_string(&reports),
        }
        .map_err(|e| CliError::Internal(format!("cannot encode the report: {e}")))?;
        out.line(&json)?;
    } else if req.compare.is_some() {
        out.write(simulate::compare_text(&reports).as_bytes())?;
    } else {
        for r in &reports {
            out.write(simulate::text(r).as_bytes())?;
        }
    }
    // Wall time is not part of a report, which stays the same run to run.
    let _ = writeln!(
        err,
        "simulated {} {} in {:.2} s",
        reports.len(),
        if reports.len() == 1 {
            "policy"
        } else {
            "policies"
        },
        wall.as_secs_f64()
    );
    Ok(Exit::Success)
}

fn apply_flags(config: &mut config::Config, flags: &SimFlags) -> Result<(), CliError> {
    if let Some(rate) = flags.failure_rate {
        if !(0.0..1.0).contains(&rate) {
            return Err(CliError::Internal(format!(
                "--failure-rate {rate}: must be at least 0 and below 1"
            )));
        }
    }
    if let Some(price) = flags.price_per_hour {
        if !(price >= 0.0 && price.is_finite()) {
            return Err(CliError::Internal(format!(
                "--price-per-hour {price}: must be a price of 0 or more"
            )));
        }
    }
    let names: Vec<String> = config.pools.keys().cloned().collect();
    for name in names {
        let pool = config.simulate.pools.entry(name).or_default();
        if let Some(boot) = flags.boot {
            pool.boot = boot;
        }
        if let Some(rate) = flags.failure_rate {
            pool.failure_rate = rate;
        }
        if let Some(price) = flags.price_per_hour {
            pool.price_per_hour = Some(price);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
