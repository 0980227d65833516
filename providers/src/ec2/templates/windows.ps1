<powershell>
# burst worker boot, rendered by burst's ec2 provider for one instance and
# run once by EC2Launch. The launch token below is single-use: the worker's
# first hello spends it, before any step runs.
$ErrorActionPreference = 'Stop'
$settings = [ordered]@{
  'BURST_MASTER_URL' = {{BURST_MASTER_URL}}
  'BURST_WORKER_ID' = {{BURST_WORKER_ID}}
  'BURST_TOKEN' = {{BURST_TOKEN}}
  'BURST_LABELS' = {{BURST_LABELS}}
  'BURST_IMDS_URL' = {{BURST_IMDS_URL}}
  'BURST_MASTER_PIN' = {{BURST_MASTER_PIN}}
}
# The token goes into a file only SYSTEM and Administrators can read, which
# the worker deletes once read: never into an environment.
$runDir = if ($env:BURST_RUN_DIR) { $env:BURST_RUN_DIR } else { 'C:\ProgramData\burst' }
[void][IO.Directory]::CreateDirectory($runDir)
if (-not $env:BURST_WORKER_BIN) {
  # Before the file exists, so it inherits this ACL from its first byte.
  & icacls.exe $runDir /inheritance:r /grant:r '*S-1-5-18:(OI)(CI)F' '*S-1-5-32-544:(OI)(CI)F' | Out-Null
}
$tokenFile = Join-Path $runDir 'token'
[IO.File]::WriteAllText($tokenFile, $settings['BURST_TOKEN'] + "`n")
$settings.Remove('BURST_TOKEN')
$settings['BURST_TOKEN_FILE'] = $tokenFile
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
