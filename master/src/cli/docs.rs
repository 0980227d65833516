//! Docs generated from the clap definition itself, so they never drift
//! from the real flags: shell completions and man pages.

use std::fs;
use std::path::Path;

use clap::CommandFactory;

use super::args::Cli;
use super::exit::{CliError, Exit};
use super::output::Output;

/// `burst completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell, out: &Output) -> Result<Exit, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "burst", &mut script);
    out.write(&script)?;
    Ok(Exit::Success)
}

/// `burst manpages DIR`: `burst.1` plus `burst-SUB.1` for each subcommand
/// (and `burst-SUB-SUBSUB.1` below it), the layout `man` and Debian expect.
pub fn manpages(dir: &Path, out: &Output) -> Result<Exit, CliError> {
    let failed = |what: &str, e: std::io::Error| {
        CliError::Internal(format!(
            "failed to write man pages to {}: {what}: {e}",
            dir.display()
        ))
    };
    fs::create_dir_all(dir).map_err(|e| failed("cannot create the directory", e))?;
    // One page per command, named `burst-SUB[-SUBSUB].1`: clap_mangen's
    // own layout, the one `man` and Debian expect.
    clap_mangen::generate_to(Cli::command(), dir).map_err(|e| failed("write", e))?;
    let mut pages: Vec<String> = fs::read_dir(dir)
        .map_err(|e| failed("list", e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("burst") && name.ends_with(".1"))
        .collect();
    pages.sort();
    for page in pages {
        out.line(&page)?;
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_name_every_subcommand() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let (out, buf) = Output::buffer();
            completions(shell, &out).unwrap();
            let script = buf.contents();
            for sub in ["submit", "builds", "logs", "init", "token", "completions"] {
                assert!(script.contains(sub), "{shell}: no {sub}");
            }
        }
    }

    #[test]
    fn a_man_page_per_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        let (out, buf) = Output::buffer();
        manpages(dir.path(), &out).unwrap();
        let listed = buf.contents();
        for page in [
            "burst.1",
            "burst-submit.1",
            "burst-token-create.1",
            "burst-init.1",
        ] {
            assert!(listed.lines().any(|l| l == page), "{listed}");
            let text = fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH"), "{page} is not a man page");
        }
        let submit = fs::read_to_string(dir.path().join("burst-submit.1")).unwrap();
        assert!(submit.contains("follow"), "the page lists the flags");
    }
}
