//! How the worker hands a step to `cmd.exe`: one-line scripts, multi-line
//! scripts as batch files. The quoting itself (CommandLineToArgvW and cmd's
//! `^` escapes) is shared with the ssh provider in
//! [`burst_common::windows_quote`].
//!
//! Pure string functions, compiled on every OS so their tests run on Linux
//! CI; the worker uses them only on Windows.

#![cfg_attr(not(windows), allow(dead_code, unused_imports))]

use burst_common::windows_quote::check_one_line;
pub(crate) use burst_common::windows_quote::{cmd_argv_line, quote_arg};

/// The text to put after `cmd /D /V:OFF /S /C ` to run a one-line `script`
/// as the user typed it: their quoting and operators are theirs.
pub(crate) fn cmd_script_line(script: &str) -> Result<String, String> {
    check_one_line("script", script)?;
    Ok(format!("\"{script}\""))
}

/// The text to put after `cmd /D /V:OFF /S /C ` to run the batch file at
/// `path`; its `exit /b N` becomes cmd's exit code. (Not through `call`,
/// which re-expands the path, and whose exit code wine loses.)
pub(crate) fn cmd_batch_line(path: &str) -> Result<String, String> {
    check_one_line("script path", path)?;
    // Inside quotes `%` still expands.
    if path.contains(['"', '%']) {
        return Err(format!(
            "failed to run a multi-line cmd script from {path:?}: the work dir path must \
             contain no '\"' or '%'"
        ));
    }
    Ok(format!("\"\"{path}\"\""))
}

/// Whether `cmd` can only run `script` from a batch file: a line break ends
/// a `cmd /C` command.
pub(crate) fn needs_batch_file(script: &str) -> bool {
    script.contains(['\r', '\n'])
}

/// A script as batch file text: commands not echoed (as on a command
/// line), CRLF line ends (cmd mis-reads labels and `goto` in LF-only files).
pub(crate) fn batch_file_text(script: &str) -> String {
    let mut out = String::with_capacity(script.len() + script.len() / 16 + 16);
    out.push_str("@echo off\r\n");
    for line in script.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_script_line_passes_the_script_untouched_inside_the_s_quotes() {
        let script = "\"C:\\Program Files\\x.exe\" \"a b\" & echo %FOO% ^& done";
        assert_eq!(
            cmd_script_line(script).expect("line"),
            format!("\"{script}\"")
        );
        assert!(cmd_script_line("a\nb").is_err());
    }

    #[test]
    fn cmd_batch_line_quotes_the_path_and_refuses_what_would_expand() {
        assert_eq!(
            cmd_batch_line("C:\\R&D ^dir\\s.cmd").expect("line"),
            "\"\"C:\\R&D ^dir\\s.cmd\"\""
        );
        assert!(cmd_batch_line("C:\\100%\\s.cmd").is_err());
        assert!(cmd_batch_line("C:\\a\nb\\s.cmd").is_err());
    }

    #[test]
    fn batch_files_get_crlf_line_ends() {
        assert!(needs_batch_file("echo a\necho b"));
        assert!(!needs_batch_file("echo a & echo b"));
        assert_eq!(
            batch_file_text("echo a\necho b\r\n:end\n"),
            "@echo off\r\necho a\r\necho b\r\n:end\r\n"
        );
        assert_eq!(batch_file_text("x"), "@echo off\r\nx\r\n");
    }
}
