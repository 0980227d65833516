//! The one source of truth shared by the provider, the worker images
//! (`images/`) and the Terraform module (`terraform/`): tag keys, the
//! settings user-data hands the worker, and where the images put things.
//! `tests` in this crate check that those files agree with these names.

use burst_common::launch_env;

/// Tag keys every instance gets at launch (TagSpecifications). The Terraform
/// IAM policy conditions on them.
pub const TAG_MASTER: &str = "burst:master";
pub const TAG_POOL: &str = "burst:pool";
pub const TAG_WORKER: &str = "burst:worker-id";

/// Settings the user-data sets for the worker, by environment variable name.
/// Everything here is either public or one-time: nothing long-lived.
pub const SETTING_MASTER_URL: &str = launch_env::MASTER_URL;
pub const SETTING_WORKER_ID: &str = launch_env::WORKER_ID;
pub const SETTING_TOKEN: &str = launch_env::TOKEN;
pub const SETTING_LABELS: &str = launch_env::LABELS;
/// Base URL of the instance metadata service; enables the worker's spot
/// interruption watch.
pub const SETTING_IMDS_URL: &str = launch_env::IMDS_URL;
/// The master's TLS certificate pin; empty when it serves no TLS. Public.
pub const SETTING_MASTER_PIN: &str = launch_env::MASTER_PIN;

/// Every setting the user-data templates must set, in template order.
pub const USER_DATA_SETTINGS: &[&str] = &[
    SETTING_MASTER_URL,
    SETTING_WORKER_ID,
    SETTING_TOKEN,
    SETTING_LABELS,
    SETTING_IMDS_URL,
    SETTING_MASTER_PIN,
];

/// The EC2 API actions the provider calls: the Terraform master policy must
/// grant each of them.
pub const IAM_ACTIONS: &[&str] = &[
    "ec2:RunInstances",
    "ec2:CreateTags",
    "ec2:TerminateInstances",
    "ec2:DescribeInstances",
    "ec2:DescribeImages",
    "ec2:DescribeSpotPriceHistory",
];

/// Read by the user-data scripts, not set by them: run this worker binary
/// in the foreground instead of starting the installed service. Tests point
/// it at a freshly built `burst-worker`.
pub const WORKER_BIN_OVERRIDE: &str = "BURST_WORKER_BIN";

/// Where the Linux image installs the worker, and its systemd unit.
pub const LINUX_WORKER_PATH: &str = "/usr/local/bin/burst-worker";
pub const LINUX_SERVICE: &str = "burst-worker.service";
/// The unit's `EnvironmentFile`, written by user-data on a tmpfs so the
/// one-time token does not outlive the boot.
pub const LINUX_ENV_FILE: &str = "/run/burst/worker.env";

/// Where the Windows image installs the worker, and its service name. The
/// user-data writes the settings into the service's `Environment` value.
pub const WINDOWS_WORKER_PATH: &str = r"C:\Program Files\burst\burst-worker.exe";
pub const WINDOWS_SERVICE: &str = "burst-worker";

/// The instance metadata service every EC2 instance has.
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254";
