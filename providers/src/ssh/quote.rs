//! Quoting for the three remote command languages. Every value that comes
//! from config or the master (paths, ids, URLs) reaches a remote shell only
//! through these functions, so none of it can become syntax.

/// POSIX `sh`: one word, single-quoted unless it is plainly safe. Inside
/// single quotes nothing is special except `'` itself, written `'\''`.
pub fn posix(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'_' | b'-' | b'.' | b'/' | b',' | b':' | b'@' | b'+' | b'='
                )
        });
    if safe {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// PowerShell: a single-quoted (verbatim) string. PowerShell also takes the
/// typographic quotes U+2018..U+201B as single quotes, so each of them is
/// doubled like `'`.
pub fn powershell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// One argument as `CommandLineToArgvW` (and the MSVC runtime) splits it
/// back: quoted when it holds whitespace or `"`, with backslashes doubled
/// only where they precede a quote.
pub fn windows_arg(s: &str) -> String {
    let plain = !s.is_empty() && !s.contains([' ', '\t', '\n', '\u{b}', '"']);
    if plain {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut backslashes = 0usize;
    for c in s.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    // Backslashes before the closing quote would escape it: double them.
    out.extend(std::iter::repeat_n('\\', backslashes * 2));
    out.push('"');
    out
}

/// A whole argv as a Windows command line.
pub fn windows_command_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| windows_arg(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text that `cmd.exe` must pass through untouched: every metacharacter
/// (quotes included, so cmd never enters quote mode) gets a `^`. Apply it to
/// a command line already quoted with [`windows_command_line`].
pub fn cmd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if matches!(c, '(' | ')' | '%' | '!' | '^' | '"' | '<' | '>' | '&' | '|') {
            out.push('^');
        }
        out.push(c);
    }
    out
}

/// Why a string cannot be handed to cmd.exe as a quoted path (Windows file
/// names cannot hold `"` anyway; `%` and `!` would expand even in quotes).
pub fn cmd_path_problem(s: &str) -> Option<&'static str> {
    if s.contains(['"', '%', '!']) {
        Some("must not contain '\"', '%' or '!' on Windows hosts")
    } else if s.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings that break naive quoting in at least one of the dialects.
    const HOSTILE: &[&str] = &[
        "",
        "plain",
        "with space",
        "it's",
        "'",
        "''",
        "a;touch /tmp/pwned",
        "$(touch /tmp/pwned)",
        "`id`",
        "a\"b",
        "back\\slash",
        "trailing\\",
        "trail\\\\",
        "quote\\\"mix",
        "new\nline",
        "tab\there",
        "$HOME ~ * ? [a]",
        "%PATH% !x! ^ & | < > ( )",
        "\u{2018}curly\u{2019} \u{201A}low\u{201B}",
        "-n",
        "ünïcödé €",
    ];

    #[test]
    fn posix_quotes_round_trip_through_sh() {
        // printf '%s\0' <quoted>... must print back exactly the inputs.
        let words: Vec<String> = HOSTILE.iter().map(|s| posix(s)).collect();
        let script = format!("printf '%s\\0' {}", words.join(" "));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .expect("run sh");
        assert!(out.status.success(), "{script}");
        let got: Vec<&[u8]> = out.stdout.split(|b| *b == 0).collect();
        let want: Vec<&[u8]> = HOSTILE.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(&got[..got.len() - 1], &want[..]);
    }

    #[test]
    fn posix_leaves_safe_words_alone() {
        assert_eq!(posix("/usr/bin/x-1.2"), "/usr/bin/x-1.2");
        assert_eq!(posix("BURST_X=a,b:c"), "BURST_X=a,b:c");
        assert_eq!(posix(""), "''");
        assert_eq!(posix("a b"), "'a b'");
        assert_eq!(posix("it's"), "'it'\\''s'");
        assert_eq!(posix("~"), "'~'");
    }

    #[test]
    fn powershell_doubles_every_single_quote() {
        assert_eq!(powershell("plain"), "'plain'");
        assert_eq!(powershell("it's"), "'it''s'");
        assert_eq!(powershell("$env:X `n \"q\""), "'$env:X `n \"q\"'");
        assert_eq!(powershell("\u{2019}"), "'\u{2019}\u{2019}'");
        assert_eq!(
            powershell("';Remove-Item C:\\ -Recurse;'"),
            "''';Remove-Item C:\\ -Recurse;'''"
        );
        // Whatever the input, the body holds quote characters only in pairs,
        // so no input can close the literal early.
        for s in HOSTILE {
            let q = powershell(s);
            let body: Vec<char> = q.chars().collect();
            let body = &body[1..body.len() - 1];
            let mut i = 0;
            while i < body.len() {
                if matches!(
                    body[i],
                    '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}'
                ) {
                    assert_eq!(body.get(i + 1), Some(&body[i]), "{s:?} -> {q}");
                    i += 2;
                } else {
                    i += 1;
                }
            }
        }
    }

    /// `CommandLineToArgvW`, as documented for the MSVC runtime, for the
    /// round trip: the splitter Windows programs use.
    fn split_windows(line: &str) -> Vec<String> {
        let chars: Vec<char> = line.chars().collect();
        let mut args = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
            if i >= chars.len() {
                break;
            }
            let mut arg = String::new();
            let mut quoted = false;
            while i < chars.len() {
                let c = chars[i];
                if c == '\\' {
                    let start = i;
                    while i < chars.len() && chars[i] == '\\' {
                        i += 1;
                    }
                    let n = i - start;
                    if i < chars.len() && chars[i] == '"' {
                        arg.extend(std::iter::repeat_n('\\', n / 2));
                        if n % 2 == 1 {
                            arg.push('"');
                            i += 1;
                        }
                    } else {
                        arg.extend(std::iter::repeat_n('\\', n));
                    }
                    continue;
                }
                if c == '"' {
                    if quoted && chars.get(i + 1) == Some(&'"') {
                        arg.push('"');
                        i += 2;
                        continue;
                    }
                    quoted = !quoted;
                    i += 1;
                    continue;
                }
                if !quoted && (c == ' ' || c == '\t') {
                    break;
                }
                arg.push(c);
                i += 1;
            }
            args.push(arg);
        }
        args
    }

    #[test]
    fn windows_args_round_trip_through_command_line_to_argv() {
        let argv: Vec<&str> = HOSTILE
            .iter()
            .copied()
            .filter(|s| !s.contains('\n'))
            .collect();
        let line = windows_command_line(&argv);
        assert_eq!(split_windows(&line), argv, "{line}");
        assert_eq!(
            windows_arg("C:\\Program Files\\x\\"),
            "\"C:\\Program Files\\x\\\\\""
        );
        assert_eq!(windows_arg("a\\\"b"), "\"a\\\\\\\"b\"");
        assert_eq!(windows_arg("C:\\plain\\path"), "C:\\plain\\path");
    }

    /// cmd.exe's caret pass: `^x` becomes `x`, and an unescaped
    /// metacharacter would be syntax. Checks that escaping leaves none.
    fn cmd_unescape(s: &str) -> Result<String, char> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '^' => out.push(chars.next().ok_or('^')?),
                '(' | ')' | '%' | '!' | '"' | '<' | '>' | '&' | '|' => return Err(c),
                _ => out.push(c),
            }
        }
        Ok(out)
    }

    #[test]
    fn cmd_escape_hides_every_metacharacter() {
        let argv: Vec<&str> = HOSTILE
            .iter()
            .copied()
            .filter(|s| !s.contains('\n'))
            .collect();
        let line = windows_command_line(&argv);
        let escaped = cmd_escape(&line);
        assert_eq!(cmd_unescape(&escaped), Ok(line.clone()));
        assert_eq!(
            split_windows(&cmd_unescape(&escaped).unwrap_or_default()),
            argv
        );
        assert_eq!(cmd_escape("a&b|c"), "a^&b^|c");
        assert_eq!(cmd_escape("\"%PATH%\""), "^\"^%PATH^%^\"");
    }

    #[test]
    fn cmd_paths_refuse_what_quotes_cannot_hold() {
        assert!(cmd_path_problem("C:\\burst state\\x (1)").is_none());
        assert!(cmd_path_problem("C:\\a\"b").is_some());
        assert!(cmd_path_problem("%TEMP%\\x").is_some());
        assert!(cmd_path_problem("x!y").is_some());
        assert!(cmd_path_problem("x\ny").is_some());
    }
}
