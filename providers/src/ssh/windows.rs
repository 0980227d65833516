//! Remote commands for Windows hosts (Win32-OpenSSH, whose default shell is
//! cmd.exe or PowerShell). Each command is a PowerShell script with every
//! value embedded as a single-quoted literal, sent as
//! `powershell.exe ... -EncodedCommand <base64>`: the line the login shell
//! parses holds only fixed words and base64, so it means the same to cmd.exe
//! and to PowerShell.
//!
//! Workers are started through WMI (`Win32_Process.Create`), not
//! `Start-Process`: processes started inside an SSH session are killed with
//! the session's job object, WMI's are not.

use base64::Engine;
use burst_common::windows_quote;

use super::quote;

/// cmd.exe refuses longer command lines.
pub const MAX_COMMAND_LINE: usize = 8191;

const PRELUDE: &str = r#"$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
function Full($p) { [IO.Path]::GetFullPath([IO.Path]::Combine($HOME, $p)) }
function Sha($f) { (Get-FileHash -Algorithm SHA256 -LiteralPath $f).Hash.ToLowerInvariant() }
function Alive($p, $id) {
  $n = 0
  if (-not [int]::TryParse([string]$p, [ref]$n)) { return $false }
  $pr = Get-CimInstance Win32_Process -Filter "ProcessId=$n" -ErrorAction SilentlyContinue
  return [bool]($pr -and $pr.CommandLine -and $pr.CommandLine.Contains(' --worker-id ' + $id + ' '))
}
"#;

/// `powershell.exe ... -EncodedCommand <UTF-16LE base64 of prelude + script>`
fn render(script: &str) -> String {
    let text = format!("{PRELUDE}{script}");
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(utf16);
    // Fixed words and base64 only: nothing for cmd.exe or PowerShell to
    // interpret, so the line needs no escaping for either.
    let argv = [
        "powershell.exe",
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
        &encoded,
    ];
    windows_quote::command_line(&argv)
}

/// Prints `burst-probe <architecture> <sha256|missing>`.
pub fn probe(bin: &str) -> String {
    render(&format!(
        r#"$a = $env:PROCESSOR_ARCHITEW6432
if (-not $a) {{ $a = $env:PROCESSOR_ARCHITECTURE }}
$b = Full {bin}
if (Test-Path -LiteralPath $b -PathType Leaf) {{ $s = Sha $b }} else {{ $s = 'missing' }}
'burst-probe ' + $a + ' ' + $s
"#,
        bin = quote::powershell(bin)
    ))
}

/// The binary arrives on stdin. A running exe cannot be overwritten but can
/// be renamed: the old one moves aside and is deleted when it can be.
pub fn upload(bin: &str) -> String {
    render(&format!(
        r#"$b = Full {bin}
$d = [IO.Path]::GetDirectoryName($b)
[void][IO.Directory]::CreateDirectory($d)
Get-ChildItem -LiteralPath $d -Filter ([IO.Path]::GetFileName($b) + '.old-*') | Remove-Item -Force -ErrorAction SilentlyContinue
$t = $b + '.upload'
$o = [IO.File]::Create($t)
try {{ [Console]::OpenStandardInput().CopyTo($o) }} finally {{ $o.Close() }}
if (Test-Path -LiteralPath $b) {{ [IO.File]::Move($b, $b + '.old-' + [guid]::NewGuid().ToString('N')) }}
[IO.File]::Move($t, $b)
Get-ChildItem -LiteralPath $d -Filter ([IO.Path]::GetFileName($b) + '.old-*') | Remove-Item -Force -ErrorAction SilentlyContinue
'burst-sha256 ' + (Sha $b)
"#,
        bin = quote::powershell(bin)
    ))
}

/// The command line WMI runs: cmd.exe only to send the worker's stderr to
/// its log. The argv is quoted for `CommandLineToArgvW`, then every cmd
/// metacharacter is `^`-escaped; the log path (checked free of `"`, `%`
/// and `!`) is a plain quoted redirection target. Paths are relative to
/// the login directory, the process's working directory.
pub fn worker_command_line(bin: &str, worker_id: &str, log: &str) -> String {
    let argv = [bin, "--worker-id", worker_id];
    format!(
        "cmd.exe /d /v:off /c {} 2>\"{log}\"",
        windows_quote::escape_cmd(&windows_quote::command_line(&argv))
    )
}

/// The token is the first line of stdin; it goes into a file in the
/// worker's dir (under the login's profile, so its ACL is the user's), which
/// the worker deletes once read: neither the worker's environment (handed to
/// WMI) nor its command line carries it. Prints the pid.
pub fn start(dir: &str, bin: &str, worker_id: &str, env: &[(String, String)]) -> String {
    let log = join(dir, "log");
    let vars: Vec<String> = env
        .iter()
        .map(|(k, v)| quote::powershell(&format!("{k}={v}")))
        .collect();
    render(&format!(
        r#"$token = [Console]::In.ReadLine()
if (-not $token) {{ throw 'no token on stdin' }}
$dir = Full {dir}
$work = Join-Path $dir 'work'
[void][IO.Directory]::CreateDirectory($work)
$tokenFile = Join-Path $dir 'token'
[IO.File]::WriteAllText($tokenFile, $token + "`n")
Remove-Variable token
$vars = @(Get-ChildItem Env: | Where-Object {{ $_.Name -notlike 'BURST_*' }} | ForEach-Object {{ $_.Name + '=' + $_.Value }})
$vars += @({vars})
$vars += @('BURST_TOKEN_FILE=' + $tokenFile, 'BURST_WORK_DIR=' + $work)
$si = New-CimInstance -ClassName Win32_ProcessStartup -ClientOnly -Property @{{ EnvironmentVariables = [string[]]$vars; ShowWindow = [uint16]0 }}
$r = Invoke-CimMethod -ClassName Win32_Process -MethodName Create -Arguments @{{ CommandLine = {line}; CurrentDirectory = $HOME; ProcessStartupInformation = $si }}
if ($r.ReturnValue -ne 0) {{ throw ('Win32_Process.Create failed with code ' + $r.ReturnValue) }}
Set-Content -LiteralPath (Join-Path $dir 'pid') -Value $r.ProcessId -Encoding ascii
'burst-pid ' + $r.ProcessId
"#,
        dir = quote::powershell(dir),
        vars = vars.join(", "),
        line = quote::powershell(&worker_command_line(bin, worker_id, &log)),
    ))
}

/// Windows has no SIGTERM for console programs: the master has already
/// sent Shutdown over gRPC, so wait the grace for the worker to leave, then
/// end its whole tree. Prints how many burst workers remain on the host.
pub fn stop(dir: &str, worker_id: &str, pid: u32, grace_secs: u64, root: &str) -> String {
    render(&format!(
        r#"$dir = Full {dir}
$root = Full {root}
$id = {id}
if (Alive {pid} $id) {{
  $n = {ticks}
  while ($n -gt 0 -and (Alive {pid} $id)) {{ Start-Sleep -Milliseconds 200; $n-- }}
  # Windows PowerShell turns native stderr into errors: ignore them here.
  if (Alive {pid} $id) {{ try {{ & taskkill.exe /PID {pid} /T /F 2>&1 | Out-Null }} catch {{ }} }}
}}
for ($i = 0; $i -lt 10 -and (Test-Path -LiteralPath $dir); $i++) {{
  Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction SilentlyContinue
  if (Test-Path -LiteralPath $dir) {{ Start-Sleep -Milliseconds 200 }}
}}
$left = 0
foreach ($a in @(Get-ChildItem -LiteralPath $root -Directory -ErrorAction SilentlyContinue)) {{
  foreach ($b in @(Get-ChildItem -LiteralPath $a.FullName -Directory -ErrorAction SilentlyContinue)) {{
    foreach ($w in @(Get-ChildItem -LiteralPath $b.FullName -Directory -ErrorAction SilentlyContinue)) {{
      $f = Join-Path $w.FullName 'pid'
      if ((Test-Path -LiteralPath $f) -and (Alive (Get-Content -LiteralPath $f -TotalCount 1) $w.Name)) {{ $left++ }}
    }}
  }}
}}
'burst-left ' + $left
"#,
        dir = quote::powershell(dir),
        root = quote::powershell(root),
        id = quote::powershell(worker_id),
        ticks = grace_secs.saturating_mul(5),
    ))
}

pub fn health(dir: &str, worker_id: &str, pid: u32) -> String {
    render(&format!(
        r#"if (Alive {pid} {id}) {{ 'burst-health running' }} else {{
  'burst-health exited'
  $log = Join-Path (Full {dir}) 'log'
  if (Test-Path -LiteralPath $log) {{ Get-Content -LiteralPath $log -Tail 20 }}
}}
"#,
        id = quote::powershell(worker_id),
        dir = quote::powershell(dir),
    ))
}

pub fn list(pool_dir: &str) -> String {
    render(&format!(
        r#"$base = Full {base}
foreach ($w in @(Get-ChildItem -LiteralPath $base -Directory -ErrorAction SilentlyContinue)) {{
  $f = Join-Path $w.FullName 'pid'
  if (-not (Test-Path -LiteralPath $f)) {{ continue }}
  $p = Get-Content -LiteralPath $f -TotalCount 1
  if (Alive $p $w.Name) {{ 'burst-worker ' + $w.Name + ' ' + $p }} else {{ Remove-Item -LiteralPath $w.FullName -Recurse -Force -ErrorAction SilentlyContinue }}
}}
"#,
        base = quote::powershell(pool_dir)
    ))
}

/// A path as the scripts take it: `~\x`, `~/x` and relative paths are
/// relative to the login directory (written `.\x`); `/` becomes `\`.
pub fn path(p: &str) -> String {
    let p = p.replace('/', "\\");
    let p = p.strip_prefix("~\\").unwrap_or(&p);
    let p = if p == "~" { "" } else { p };
    let b = p.as_bytes();
    let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
    if drive || p.starts_with('\\') {
        let trimmed = p.trim_end_matches('\\');
        // Keep `C:\` and `\` whole.
        if trimmed.len() <= 2 {
            return p.to_owned();
        }
        return trimmed.to_owned();
    }
    let trimmed = p.trim_end_matches('\\');
    if trimmed.is_empty() || trimmed == "." {
        ".".to_owned()
    } else if trimmed.starts_with(".\\") {
        trimmed.to_owned()
    } else {
        format!(".\\{trimmed}")
    }
}

pub fn join(a: &str, b: &str) -> String {
    if a.ends_with('\\') {
        format!("{a}{b}")
    } else {
        format!("{a}\\{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script inside an `-EncodedCommand` line.
    fn decode(line: &str) -> String {
        let b64 = line
            .rsplit(' ')
            .next()
            .expect("encoded command is the last word");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("valid base64");
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).expect("utf-16")
    }

    const HOSTILE_DIR: &str = "C:\\burst ci\\it's (x) & y;$(calc)`n";

    #[test]
    fn outer_line_is_fixed_words_and_base64() {
        let line = probe(".\\.burst\\bin\\burst-worker.exe");
        assert!(line.starts_with(
            "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
        ));
        let last = line.rsplit(' ').next().unwrap_or_default();
        assert!(last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')));
        assert!(line.len() < MAX_COMMAND_LINE);
    }

    #[test]
    fn probe_hashes_with_get_filehash() {
        let script = decode(&probe(".\\.burst\\bin\\burst-worker.exe"));
        assert!(
            script.contains("$b = Full '.\\.burst\\bin\\burst-worker.exe'"),
            "{script}"
        );
        assert!(script.contains("Get-FileHash -Algorithm SHA256 -LiteralPath $f"));
        assert!(script.contains("PROCESSOR_ARCHITECTURE"));
    }

    #[test]
    fn upload_targets_the_exe_and_streams_stdin() {
        let bin = join(HOSTILE_DIR, "burst-worker.exe");
        let script = decode(&upload(&bin));
        assert!(
            script.contains("$b = Full 'C:\\burst ci\\it''s (x) & y;$(calc)`n\\burst-worker.exe'"),
            "{script}"
        );
        assert!(script.contains("[Console]::OpenStandardInput().CopyTo($o)"));
        assert!(script.contains("[IO.File]::Move($t, $b)"));
    }

    #[test]
    fn start_passes_the_token_through_stdin_and_wmi() {
        let env = vec![
            (
                "BURST_MASTER_URL".to_owned(),
                "http://10.0.0.1:8481".to_owned(),
            ),
            ("BURST_WORKER_ID".to_owned(), "p-abc".to_owned()),
            ("EXTRA".to_owned(), "it's; & | %PATH%".to_owned()),
        ];
        let line = start(
            HOSTILE_DIR,
            ".\\.burst\\bin\\burst-worker.exe",
            "p-abc",
            &env,
        );
        assert!(line.len() < MAX_COMMAND_LINE, "{}", line.len());
        let script = decode(&line);
        assert!(
            script.contains("$token = [Console]::In.ReadLine()"),
            "{script}"
        );
        assert!(script.contains("[IO.File]::WriteAllText($tokenFile, $token"));
        assert!(script.contains("'BURST_TOKEN_FILE=' + $tokenFile"));
        assert!(!script.contains("'BURST_TOKEN="), "{script}");
        assert!(script.contains("'EXTRA=it''s; & | %PATH%'"), "{script}");
        assert!(script.contains("'BURST_WORKER_ID=p-abc'"));
        assert!(script.contains("Invoke-CimMethod -ClassName Win32_Process -MethodName Create"));
        assert!(!script.contains("Start-Process"));
        assert!(
            script.contains("$dir = Full 'C:\\burst ci\\it''s (x) & y;$(calc)`n'"),
            "{script}"
        );
    }

    #[test]
    fn worker_command_line_escapes_for_cmd() {
        let line = worker_command_line(
            "C:\\Program Files (x86)\\burst & co\\burst-worker.exe",
            "p-abc",
            "C:\\burst ci\\x\\log",
        );
        assert_eq!(
            line,
            "cmd.exe /d /v:off /c ^\"C:\\Program Files ^(x86^)\\burst ^& co\\burst-worker.exe^\" \
             --worker-id p-abc 2>\"C:\\burst ci\\x\\log\""
        );
        // The marker `Alive` looks for.
        assert!(line.contains(" --worker-id p-abc "));
    }

    #[test]
    fn stop_waits_then_kills_the_tree() {
        let script = decode(&stop(
            ".\\.burst\\m\\p\\p-abc",
            "p-abc",
            4242,
            3,
            ".\\.burst",
        ));
        assert!(script.contains("if (Alive 4242 $id)"), "{script}");
        assert!(script.contains("$n = 15"));
        assert!(script.contains("taskkill.exe /PID 4242 /T /F"));
        assert!(script.contains("$id = 'p-abc'"));
    }

    #[test]
    fn windows_paths() {
        assert_eq!(path("~/.burst/bin"), ".\\.burst\\bin");
        assert_eq!(path(".burst\\bin\\"), ".\\.burst\\bin");
        assert_eq!(path("C:\\burst\\"), "C:\\burst");
        assert_eq!(path("C:\\"), "C:\\");
        assert_eq!(path("~"), ".");
        assert_eq!(join("C:\\", "x"), "C:\\x");
        assert_eq!(join(".\\a", "x"), ".\\a\\x");
    }
}
