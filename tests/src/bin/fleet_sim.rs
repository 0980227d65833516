//! The fleet simulator on its own: hosts the sessions of a master's
//! `provider = "sim"` pools until Ctrl-C (see `burst_e2e::fleet_sim`).
//!
//!   fleet_sim SOCKET [STEP_DELAY_MS] [SESSIONS_PER_CONNECTION]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use burst_e2e::fleet_sim::{FleetSim, SimOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let socket = PathBuf::from(
        args.next()
            .context("usage: fleet_sim SOCKET [STEP_DELAY_MS] [SESSIONS_PER_CONNECTION]")?,
    );
    let number = |arg: Option<String>, what: &str, default: u64| -> anyhow::Result<u64> {
        arg.map_or(Ok(default), |a| {
            a.parse()
                .with_context(|| format!("{what} must be a whole number, got {a:?}"))
        })
    };
    let delay = number(args.next(), "STEP_DELAY_MS", 0)?;
    let per = number(args.next(), "SESSIONS_PER_CONNECTION", 1)?;
    let opts = SimOptions {
        step_delay: Duration::from_millis(delay),
        sessions_per_connection: usize::try_from(per)?,
        ..SimOptions::default()
    };
    let sim = FleetSim::start(&socket, opts)?;
    println!("fleet_sim listening on {}", sim.socket().display());
    let mut report = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = report.tick() => println!(
                "welcomed {} live {} steps {}",
                sim.welcomed(),
                sim.live(),
                sim.steps()
            ),
        }
    }
    Ok(())
}
