# Installs burst-worker as the Windows service "burst-worker" (run by packer).
# The service starts only when the instance's user-data starts it, after
# writing this boot's settings into the service's Environment value.
$ErrorActionPreference = 'Stop'

$dir = 'C:\Program Files\burst'
$worker = 'C:\Program Files\burst\burst-worker.exe'
New-Item -ItemType Directory -Force -Path $dir | Out-Null
New-Item -ItemType Directory -Force -Path 'C:\burst\work' | Out-Null
Copy-Item 'C:\Windows\Temp\burst-worker.exe' $worker -Force
& $worker --version
if ($LASTEXITCODE -ne 0) { throw "burst-worker.exe --version failed" }

# NSSM turns the console worker into a service; check the archive first.
if (-not $env:NSSM_SHA256) { throw 'set the nssm_sha256 packer variable' }
$zip = Join-Path $env:TEMP 'nssm.zip'
Invoke-WebRequest -Uri $env:NSSM_URL -OutFile $zip -UseBasicParsing
$hash = (Get-FileHash -Algorithm SHA256 -Path $zip).Hash
if ($hash -ne $env:NSSM_SHA256.ToUpperInvariant()) {
  throw "nssm archive sha256 $hash does not match nssm_sha256"
}
$unpacked = Join-Path $env:TEMP 'nssm'
Expand-Archive -Path $zip -DestinationPath $unpacked -Force
$nssmExe = Get-ChildItem -Path $unpacked -Recurse -Filter nssm.exe |
  Where-Object { $_.FullName -like '*win64*' } | Select-Object -First 1
$nssm = Join-Path $dir 'nssm.exe'
Copy-Item $nssmExe.FullName $nssm -Force

& $nssm install burst-worker $worker
& $nssm set burst-worker DisplayName 'burst worker agent'
# Started by user-data only; the one-time token makes a restart useless.
& $nssm set burst-worker Start SERVICE_DEMAND_START
& $nssm set burst-worker AppExit Default Exit
& $nssm set burst-worker AppDirectory 'C:\burst'
& $nssm set burst-worker AppEnvironmentExtra 'BURST_WORK_DIR=C:\burst\work'
& $nssm set burst-worker AppStdout 'C:\burst\worker.log'
& $nssm set burst-worker AppStderr 'C:\burst\worker.log'
Get-Service -Name burst-worker | Format-List Name, Status, StartType

# The optional GitHub Actions runner (packer variable actions_runner_zip,
# docs/github-actions.md). Steps run as the service's account (LocalSystem,
# NSSM's default), which may write the _diag and _work folders the runner
# makes here.
# Without one, packer uploaded a stand-in file, deleted below.
$runnerZip = 'C:\Windows\Temp\actions-runner.zip'
if ($env:ACTIONS_RUNNER -eq '1') {
  $runnerDir = 'C:\actions-runner'
  if (Test-Path $runnerDir) { Remove-Item -Recurse -Force $runnerDir }
  Expand-Archive -Path $runnerZip -DestinationPath $runnerDir -Force
  if (-not (Test-Path (Join-Path $runnerDir 'run.cmd'))) {
    throw 'no run.cmd at the top of actions_runner_zip: pass the actions-runner-win-x64-*.zip release'
  }
}
Remove-Item -Force $runnerZip -ErrorAction SilentlyContinue
