//! The launch-environment contract: the variables a provider hands to the
//! worker it launches, which the worker reads back (see `burst-worker --help`).
//! One list, so the names cannot drift between the three sides.

pub const MASTER_URL: &str = "BURST_MASTER_URL";
pub const WORKER_ID: &str = "BURST_WORKER_ID";
/// The one-time launch token. Never log it.
pub const TOKEN: &str = "BURST_TOKEN";
/// The pin (`burst_common::cert_pin`) of the TLS master's certificate; set
/// when the master serves TLS, which its `https://` URL then says. Public:
/// it authenticates the master, it grants nothing.
pub const MASTER_PIN: &str = "BURST_MASTER_PIN";
pub const LABELS: &str = "BURST_LABELS";
pub const WORK_DIR: &str = "BURST_WORK_DIR";
/// Which master launched the worker: lets a provider's `list` find its workers.
pub const MASTER_ID: &str = "BURST_MASTER_ID";
pub const POOL: &str = "BURST_POOL";
/// The names (comma-separated) of the pool's configured `env` entries: the
/// worker hands exactly these on to its steps, whose environment is
/// otherwise built from scratch.
pub const STEP_ENV: &str = "BURST_STEP_ENV";

/// Set only by the EC2 provider's user data: the instance metadata service
/// the worker polls for spot interruption notices. Not reserved: config may
/// point a worker elsewhere.
pub const IMDS_URL: &str = "BURST_IMDS_URL";

/// Every variable a provider sets for a worker itself. Config may not set
/// these: a user value would be overridden for one provider and break the
/// launch for another, so every provider refuses them the same way.
pub const RESERVED: &[&str] = &[
    MASTER_URL, WORKER_ID, TOKEN, LABELS, WORK_DIR, MASTER_ID, POOL, MASTER_PIN,
];

/// The value of [`STEP_ENV`] for a pool's configured env names.
pub fn step_env_names<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names
        .into_iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `name` belongs to the launch contract.
pub fn is_reserved(name: &str) -> bool {
    RESERVED.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_name_is_reserved_and_others_are_not() {
        for name in RESERVED {
            assert!(is_reserved(name), "{name}");
            assert!(name.starts_with("BURST_"), "{name}");
        }
        assert!(!is_reserved("BURST_BUILD_ID"));
        assert!(!is_reserved("PATH"));
        assert!(!is_reserved(IMDS_URL));
    }
}
