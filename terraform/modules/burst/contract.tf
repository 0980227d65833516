# The burst ec2 provider's contract (providers/src/ec2/contract.rs in the
# burst repository): the tag keys every worker instance carries from launch,
# and the settings its user-data hands the worker. burst's tests parse this
# file and fail if it drifts from the provider.
locals {
  tag_master = "burst:master"
  tag_pool   = "burst:pool"
  tag_worker = "burst:worker-id"

  user_data_settings = [
    "BURST_MASTER_URL",
    "BURST_WORKER_ID",
    "BURST_TOKEN",
    "BURST_LABELS",
    "BURST_IMDS_URL",
    "BURST_MASTER_PIN",
  ]
}
