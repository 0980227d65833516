<powershell>
# burst worker boot, rendered by burst's ec2 provider for one instance and
# run once by EC2Launch. The launch token below is single-use: nothing here
# outlives this worker.
$ErrorActionPreference = 'Stop'
$settings = [ordered]@{
  'BURST_MASTER_URL' = {{BURST_MASTER_URL}}
  'BURST_WORKER_ID' = {{BURST_WORKER_ID}}
  'BURST_TOKEN' = {{BURST_TOKEN}}
  'BURST_LABELS' = {{BURST_LABELS}}
  'BURST_IMDS_URL' = {{BURST_IMDS_URL}}
  'BURST_MASTER_PIN' = {{BURST_MASTER_PIN}}
}
foreach ($name in $settings.Keys) {
  [Environment]::SetEnvironmentVariable($name, $settings[$name], 'Process')
}

# Tests and custom images run a given binary in the foreground.
if ($env:BURST_WORKER_BIN) {
  & $env:BURST_WORKER_BIN
  exit $LASTEXITCODE
}

# The image's service reads its environment from its registry key.
$service = Get-Service -Name 'burst-worker' -ErrorAction SilentlyContinue
if ($service) {
  $lines = foreach ($name in $settings.Keys) { "$name=$($settings[$name])" }
  New-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Services\burst-worker' `
    -Name 'Environment' -PropertyType MultiString -Value $lines -Force | Out-Null
  Start-Service -Name 'burst-worker'
  exit 0
}
& 'C:\Program Files\burst\burst-worker.exe'
exit $LASTEXITCODE
</powershell>
