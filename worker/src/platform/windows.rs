//! Windows: a step runs inside its own job object, and the job is what we
//! kill. Every process the step starts joins the job, so `start /b`,
//! background `ping`s and other grandchildren die with it; and because the
//! job kills on close, even a worker that dies abruptly takes its steps
//! along (the OS closes its handles).
//!
//! The step is created suspended and resumed only once it is in the job, so
//! nothing it starts can escape in between.
//!
//! Killing the job is repeated until the job is empty: a process that is
//! still being created when the job is terminated is already in the job but
//! has no running thread yet, and wine (like Windows) skips it, so a
//! `start /b` grandchild born at that moment would live on. Until the job
//! is empty a thread keeps its handle open, so kill-on-close cannot fire
//! early either.

// Job objects and thread resumption are Win32 calls that windows-sys exposes
// only as `unsafe fn`s; this file is the one place in the workspace allowed
// to make them, each call with a SAFETY note.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectBasicAccountingInformation,
    JobObjectExtendedLimitInformation, QueryInformationJobObject, SetInformationJobObject,
    TerminateJobObject, JOBOBJECT_BASIC_ACCOUNTING_INFORMATION,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    OpenThread, ResumeThread, CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, CREATE_SUSPENDED,
    THREAD_SUSPEND_RESUME,
};

use super::windows_args;

/// The shell a script step runs with when it names none.
pub(crate) const DEFAULT_SHELL: &str = "cmd";

/// Exit code of processes the worker ends (what `taskkill /F` uses too).
const KILLED_EXIT_CODE: u32 = 1;

/// How often, and for how long at most, a killed job is checked for
/// processes that were still starting when it was terminated.
const DRAIN_POLL: Duration = Duration::from_millis(50);
const DRAIN_BOUND: Duration = Duration::from_secs(60);

/// `cmd` without AutoRun commands (/D), with command extensions (/E:ON),
/// without delayed `!VAR!` expansion (/V:OFF), stripping only the outer
/// quotes of what follows /C (/S).
fn cmd() -> Command {
    let mut cmd = Command::new("cmd.exe");
    cmd.args(["/D", "/E:ON", "/V:OFF", "/S", "/C"]);
    cmd
}

/// The command that runs `script` with `shell`. A multi-line cmd script is
/// written to `scratch` + `.cmd` first (a `cmd /C` line ends at a line
/// break); the file written, if any, is returned for removal afterwards.
pub(crate) fn shell_command(
    shell: &str,
    script: &str,
    scratch: &Path,
) -> Result<(Command, Option<PathBuf>), String> {
    match shell {
        "cmd" if windows_args::needs_batch_file(script) => {
            let path = scratch.with_extension("cmd");
            write_script(&path, &windows_args::batch_file_text(script))?;
            let line = windows_args::cmd_batch_line(&path.to_string_lossy())?;
            let mut cmd = cmd();
            cmd.raw_arg(line);
            Ok((cmd, Some(path)))
        }
        "cmd" => {
            let mut cmd = cmd();
            // cmd parses its own command line: std's argv quoting would add
            // backslashes cmd does not understand.
            cmd.raw_arg(windows_args::cmd_script_line(script)?);
            Ok((cmd, None))
        }
        "powershell" | "pwsh" => {
            let mut cmd = Command::new(shell);
            cmd.args(["-NoProfile", "-NonInteractive", "-Command"])
                .raw_arg(windows_args::quote_arg(script));
            Ok((cmd, None))
        }
        "sh" | "bash" => {
            let mut cmd = Command::new(shell);
            cmd.arg("-c").raw_arg(windows_args::quote_arg(script));
            Ok((cmd, None))
        }
        other => Err(format!("failed to run script: unknown shell {other:?}")),
    }
}

fn write_script(path: &Path, text: &str) -> Result<(), String> {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(path, text));
    written.map_err(|e| format!("failed to write script file {}: {e}", path.display()))
}

/// The command that runs `argv`. With `shell = "cmd"` it goes through cmd,
/// which finds batch files and builtins through PATH and PATHEXT (`npm`,
/// `mvn`, `echo`); otherwise the program is started directly.
pub(crate) fn argv_command(argv: &[String], shell: &str) -> Result<Command, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("failed to run step: argv is empty".to_owned());
    };
    if shell == "cmd" {
        let mut cmd = cmd();
        cmd.raw_arg(windows_args::cmd_argv_line(argv)?);
        return Ok(cmd);
    }
    let mut cmd = Command::new(program);
    // std quotes per CommandLineToArgvW, and for a .bat/.cmd program also
    // escapes for cmd (or refuses what it cannot escape).
    cmd.args(args);
    Ok(cmd)
}

/// Spawns `cmd` suspended, puts it in a new kill-on-close job, then lets it
/// run: everything it ever starts is in the job.
pub(crate) fn spawn(cmd: &mut Command) -> io::Result<(Child, ProcessTree)> {
    let job = Job::new()?;
    // A new process group keeps a Ctrl-C at the worker's console from
    // reaching steps directly; no window pops up for console programs.
    cmd.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW | CREATE_SUSPENDED);
    let mut child = cmd.spawn()?;
    let started = child
        .raw_handle()
        .zip(child.id())
        .ok_or_else(|| io::Error::other("the spawned process is already gone"))
        .and_then(|(process, pid)| {
            job.assign(process)?;
            resume_main_thread(pid)
        });
    if let Err(e) = started {
        // Never leave a suspended process behind.
        let _ = child.start_kill();
        return Err(io::Error::other(format!(
            "failed to start the step inside a job object: {e}"
        )));
    }
    Ok((child, ProcessTree { job: Arc::new(job) }))
}

/// A step's job object.
#[derive(Debug, Clone)]
pub(crate) struct ProcessTree {
    job: Arc<Job>,
}

impl ProcessTree {
    /// Console programs have no SIGTERM; end the tree at once.
    pub(crate) fn terminate(&self) {
        self.kill();
    }

    /// Ends every process of the job now, then, off the caller's thread,
    /// again until the job is empty (see the module doc).
    pub(crate) fn kill(&self) {
        if let Err(e) = self.job.terminate() {
            tracing::warn!("failed to terminate the step's job object: {e}");
            return;
        }
        let job = self.job.clone();
        let drain = std::thread::Builder::new()
            .name("job-drain".to_owned())
            .spawn(move || job.drain());
        if let Err(e) = drain {
            tracing::warn!("failed to start watching the step's job object: {e}");
        }
    }
}

/// A job object that kills its processes when its last handle closes.
#[derive(Debug)]
struct Job(OwnedHandle);

impl Job {
    fn new() -> io::Result<Self> {
        // SAFETY: null attributes (default security, not inheritable) and a
        // null name (an anonymous job) are both allowed.
        let raw: HANDLE = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if raw.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a valid handle just returned to us and owned by
        // no one else; OwnedHandle closes it exactly once.
        let job = Job(unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) });
        let mut info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        let size = u32::try_from(std::mem::size_of_val(&info))
            .map_err(|_| io::Error::other("job limit information too large"))?;
        // SAFETY: the handle is a live job object; `info` is the struct this
        // information class expects, `size` is its size, and it outlives the
        // call.
        let ok = unsafe {
            SetInformationJobObject(
                job.raw(),
                JobObjectExtendedLimitInformation,
                std::ptr::from_ref(&info).cast::<c_void>(),
                size,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(job)
    }

    fn raw(&self) -> HANDLE {
        self.0.as_raw_handle() as HANDLE
    }

    fn assign(&self, process: RawHandle) -> io::Result<()> {
        // SAFETY: both handles are live: the job is ours, and `process`
        // belongs to a `Child` that the caller holds across this call.
        let ok = unsafe { AssignProcessToJobObject(self.raw(), process as HANDLE) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn terminate(&self) -> io::Result<()> {
        // SAFETY: the handle is a live job object owned by `self`.
        let ok = unsafe { TerminateJobObject(self.raw(), KILLED_EXIT_CODE) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Processes in the job now, exited ones not counted.
    fn active_processes(&self) -> io::Result<u32> {
        let mut info = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
        let size = u32::try_from(std::mem::size_of_val(&info))
            .map_err(|_| io::Error::other("job accounting information too large"))?;
        // SAFETY: the handle is a live job object owned by `self`; `info` is
        // the struct this information class fills, `size` is its size, it
        // outlives the call, and a null return-length pointer is allowed.
        let ok = unsafe {
            QueryInformationJobObject(
                self.raw(),
                JobObjectBasicAccountingInformation,
                std::ptr::from_mut(&mut info).cast::<c_void>(),
                size,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(info.ActiveProcesses)
    }

    /// Terminates the job again until no process is left in it (bounded).
    fn drain(&self) {
        let start = Instant::now();
        loop {
            match self.active_processes() {
                Ok(0) => return,
                Ok(_) if start.elapsed() < DRAIN_BOUND => {}
                Ok(left) => {
                    tracing::warn!("{left} processes of a killed step's job are still running");
                    return;
                }
                Err(e) => {
                    tracing::warn!("failed to count the processes of a step's job: {e}");
                    return;
                }
            }
            std::thread::sleep(DRAIN_POLL);
            if let Err(e) = self.terminate() {
                tracing::warn!("failed to terminate the step's job object: {e}");
                return;
            }
        }
    }
}

/// Resumes the threads of the suspended process `pid` (it has just one, its
/// main thread). std does not hand out the thread handle CreateProcess
/// returned, so the thread is found in a snapshot.
fn resume_main_thread(pid: u32) -> io::Result<()> {
    // SAFETY: a thread snapshot takes no process id (0) and no pointers.
    let raw = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if raw == INVALID_HANDLE_VALUE || raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a valid snapshot handle owned by no one else.
    let snapshot = unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) };
    let snapshot = snapshot.as_raw_handle() as HANDLE;
    let mut entry = THREADENTRY32 {
        dwSize: u32::try_from(std::mem::size_of::<THREADENTRY32>())
            .map_err(|_| io::Error::other("thread entry too large"))?,
        ..Default::default()
    };
    let mut resumed = 0usize;
    // SAFETY: the snapshot handle is live and `entry` is a THREADENTRY32
    // with dwSize set, as Thread32First/Next require.
    let mut more = unsafe { Thread32First(snapshot, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            resume_thread(entry.th32ThreadID)?;
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snapshot, &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other(format!(
            "failed to find the main thread of process {pid}"
        )));
    }
    Ok(())
}

fn resume_thread(tid: u32) -> io::Result<()> {
    // SAFETY: OpenThread takes plain values; a null result is checked.
    let raw = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, tid) };
    if raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a valid thread handle owned by no one else.
    let thread = unsafe { OwnedHandle::from_raw_handle(raw as RawHandle) };
    // SAFETY: the handle is live and was opened with THREAD_SUSPEND_RESUME.
    if unsafe { ResumeThread(thread.as_raw_handle() as HANDLE) } == u32::MAX {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `(exit_code, signal)`: Windows has no signals. The exit code is a 32-bit
/// value; NTSTATUS codes such as 0xC000013A (Ctrl-C) come out negative, bit
/// for bit the same as the u32 Windows reported.
pub(crate) fn exit_parts(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), None)
}

/// Resolves when the worker is asked to stop (Ctrl-C, Ctrl-Break, console
/// close).
pub(crate) async fn shutdown_signal() {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let (c, brk, close) = match (ctrl_c(), ctrl_break(), ctrl_close()) {
        (Ok(c), Ok(brk), Ok(close)) => (c, brk, close),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            tracing::warn!("failed to listen for console control events: {e}");
            return std::future::pending().await;
        }
    };
    let (mut c, mut brk, mut close) = (c, brk, close);
    tokio::select! {
        _ = c.recv() => tracing::info!("received Ctrl-C"),
        _ = brk.recv() => tracing::info!("received Ctrl-Break"),
        _ = close.recv() => tracing::info!("received a console close event"),
    }
}
