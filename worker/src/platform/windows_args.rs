//! Windows command lines. A Windows program gets one string, not an argv:
//! nearly every program splits it with the rules of `CommandLineToArgvW` (the
//! C runtime uses the same ones), and `cmd.exe` parses it first with rules of
//! its own (`^` escapes, `%VAR%` expansion, `&`, `|`, `<`, `>`, quotes).
//!
//! Pure string functions, compiled on every OS so their tests run on Linux
//! CI; the worker uses them only on Windows.

#![cfg_attr(not(windows), allow(dead_code))]

/// Characters `cmd.exe` treats specially on a command line (`!` only with
/// delayed expansion, which the worker turns off, but escaping it is free).
const CMD_SPECIAL: &[char] = &['(', ')', '%', '!', '^', '"', '<', '>', '&', '|'];

/// Characters that make `CommandLineToArgvW` split or unquote.
const ARGV_SPECIAL: &[char] = &[' ', '\t', '\n', '\x0b', '"'];

/// Quotes `arg` so that `CommandLineToArgvW` reads it back unchanged (as any
/// argument but the first). Left bare when nothing in it needs quoting.
pub(crate) fn quote_arg(arg: &str) -> String {
    quote_arg_if(arg, !arg.is_empty() && !arg.contains(ARGV_SPECIAL))
}

/// [`quote_arg`], but `bare` says whether the argument may stay unquoted.
fn quote_arg_if(arg: &str, bare: bool) -> String {
    quote_arg_with(arg, bare, false)
}

/// Quotes `arg` like [`quote_arg`]; with `split_percent`, every `%` is put
/// outside the quotes (`"100"%""`), which CommandLineToArgvW reads the
/// same. Then no `%…%` span can be a variable name for cmd: each holds a
/// quote. (Real cmd would not expand `^%NAME^%` anyway, but wine's cmd
/// drops the carets first.)
fn quote_arg_with(arg: &str, bare: bool, split_percent: bool) -> String {
    if bare {
        return arg.to_owned();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('"');
    // Backslashes are literal unless they run into a quote: then each one
    // must be doubled, and the quote itself escaped.
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                push_n(&mut out, '\\', backslashes * 2 + 1);
                out.push('"');
                backslashes = 0;
            }
            '%' if split_percent => {
                // Close the quotes (backslashes before them doubled), the
                // bare `%`, then open them again.
                push_n(&mut out, '\\', backslashes * 2);
                out.push_str("\"%\"");
                backslashes = 0;
            }
            c => {
                push_n(&mut out, '\\', backslashes);
                out.push(c);
                backslashes = 0;
            }
        }
    }
    // Trailing backslashes run into the closing quote.
    push_n(&mut out, '\\', backslashes * 2);
    out.push('"');
    out
}

fn push_n(out: &mut String, c: char, n: usize) {
    out.extend(std::iter::repeat_n(c, n));
}

/// The arguments joined into the tail of a command line.
#[cfg(test)]
fn join_args<S: AsRef<str>>(args: &[S]) -> String {
    args.iter()
        .map(|a| quote_arg(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with a `^` before every `cmd.exe` metacharacter, quotes included:
/// cmd then sees no quoted region, no variable and no operator, and after it
/// strips the carets the program gets `text` exactly. (A `%` escaped this
/// way cannot expand: cmd looks up `VAR^`, which no one defines.)
pub(crate) fn escape_cmd(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if CMD_SPECIAL.contains(&c) {
            out.push('^');
        }
        out.push(c);
    }
    out
}

/// Fails for text no `cmd /C` line can carry: a line break ends the command,
/// and NUL ends the string.
fn check_one_line(what: &str, text: &str) -> Result<(), String> {
    if text.contains(['\r', '\n', '\0']) {
        return Err(format!(
            "failed to pass {what} {text:?} through cmd: it contains a line break or NUL"
        ));
    }
    Ok(())
}

/// The text to put after `cmd /D /V:OFF /S /C ` (as a raw argument) so that
/// cmd starts `argv[0]` (a program, a batch file or a builtin, found through
/// PATH and PATHEXT) and the program reads exactly `argv[1..]` back.
pub(crate) fn cmd_argv_line<S: AsRef<str>>(argv: &[S]) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("failed to run step: argv is empty".to_owned());
    };
    let program = program.as_ref();
    check_one_line("program", program)?;
    // cmd finds the program by its first token, which must be quoted for
    // real (not with escaped quotes) to hold spaces; inside real quotes
    // `%` would still expand and `^` would stay literal.
    if program.is_empty() || program.contains(['"', '%', '^']) {
        return Err(format!(
            "failed to run {program:?} through cmd: a program name must be non-empty \
             and contain no '\"', '%' or '^'"
        ));
    }
    let mut line = if program.contains([' ', '\t']) || program.contains(CMD_SPECIAL) {
        format!("\"{program}\"")
    } else {
        program.to_owned()
    };
    for arg in args {
        let arg = arg.as_ref();
        check_one_line("argument", arg)?;
        // Quoting every argument that holds a cmd metacharacter also keeps a
        // batch file's `%1` and `%*` safe: they expand to the quoted form.
        let bare = !arg.is_empty() && !arg.contains(ARGV_SPECIAL) && !arg.contains(CMD_SPECIAL);
        line.push(' ');
        line.push_str(&escape_cmd(&quote_arg_with(arg, bare, true)));
    }
    // With /S, cmd strips exactly this outer pair of quotes.
    Ok(format!("\"{line}\""))
}

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

    /// Hostile arguments: quotes, cmd metacharacters, backslashes before
    /// quotes and at the end, spaces, tabs, empty, non-ASCII.
    const HOSTILE: &[&str] = &[
        "",
        " ",
        "plain",
        "a b",
        "\"",
        "\"\"",
        "a\"b",
        "\"quoted\"",
        "a\\b",
        "a\\",
        "a\\\\",
        "a b\\",
        "a b\\\\",
        "\\\"",
        "\\\\\"",
        "trailing\\\\\\",
        "\\\\server\\share\\",
        "C:\\Program Files\\x\\",
        "%PATH%",
        "%%",
        "100%",
        "%~dp0",
        "%1",
        "a\\%b\\",
        "\\%\\\"%",
        "^",
        "^^",
        "a^b",
        "&",
        "a&b",
        "a & b",
        "|",
        "a|b",
        "<in",
        ">out",
        "2>&1",
        "(x)",
        "!x!",
        "a\tb",
        "\"&calc&\"",
        "a\"&echo pwned&\"b",
        "\\\"&whoami",
        "--flag=\"a b\"",
        "é ü ß",
    ];

    /// `CommandLineToArgvW` for the arguments after the first, as
    /// documented: 2n backslashes + quote = n backslashes and a quote toggle;
    /// 2n+1 backslashes + quote = n backslashes and a literal quote;
    /// other backslashes are literal; unquoted blanks separate arguments.
    fn parse_args(line: &str) -> Vec<String> {
        let chars: Vec<char> = line.chars().collect();
        let mut args = Vec::new();
        let mut i = 0;
        loop {
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
            if i >= chars.len() {
                return args;
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
                    // `""` inside quotes is a literal quote.
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
    }

    /// What cmd does to a line built by [`cmd_argv_line`] before starting the
    /// program: strip the /S outer quotes, then (with quote state tracked)
    /// drop each escaping caret. Panics on anything cmd would act on: an
    /// unescaped operator or `%` outside quotes, or a `%` inside quotes, or a
    /// `%…%` span that names a variable even once carets are dropped (as
    /// wine's cmd does).
    fn cmd_parse(line: &str) -> String {
        let inner = line
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .expect("outer quotes for /S");
        let mut out = String::new();
        let mut quoted = false;
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => panic!("unescaped % would expand in {line:?}"),
                '^' if !quoted => out.push(chars.next().expect("caret escapes something")),
                '"' => {
                    quoted = !quoted;
                    out.push(c);
                }
                '&' | '|' | '<' | '>' | '(' | ')' if !quoted => {
                    panic!("unescaped {c:?} is an operator in {line:?}")
                }
                c => out.push(c),
            }
        }
        assert!(!quoted, "unbalanced quotes in {line:?}");
        let spans: Vec<&str> = inner.split('%').collect();
        for span in spans.iter().skip(1).take(spans.len().saturating_sub(2)) {
            assert!(
                span.contains('"'),
                "%{span}% could name a variable in {line:?}"
            );
        }
        out
    }

    #[test]
    fn quote_arg_round_trips_hostile_strings() {
        for arg in HOSTILE {
            let line = quote_arg(arg);
            assert_eq!(parse_args(&line), [*arg], "line {line:?}");
        }
    }

    #[test]
    fn join_args_round_trips_all_hostile_strings_at_once() {
        assert_eq!(parse_args(&join_args(HOSTILE)), HOSTILE);
    }

    #[test]
    fn quote_arg_leaves_plain_arguments_bare() {
        assert_eq!(quote_arg("plain"), "plain");
        assert_eq!(quote_arg("a\\b"), "a\\b");
        assert_eq!(quote_arg("100%"), "100%");
        assert_eq!(quote_arg(""), "\"\"");
        assert_eq!(quote_arg("a b\\"), "\"a b\\\\\"");
        assert_eq!(quote_arg("a\"b"), "\"a\\\"b\"");
        assert_eq!(quote_arg("\\\""), "\"\\\\\\\"\"");
    }

    #[test]
    fn escape_cmd_escapes_every_metacharacter() {
        assert_eq!(escape_cmd("a&b|c"), "a^&b^|c");
        assert_eq!(escape_cmd("%PATH%"), "^%PATH^%");
        assert_eq!(
            escape_cmd("\"x\" ^ (y) <z> !w!"),
            "^\"x^\" ^^ ^(y^) ^<z^> ^!w^!"
        );
        assert_eq!(escape_cmd("plain text"), "plain text");
    }

    #[test]
    fn cmd_argv_line_round_trips_hostile_strings_through_cmd_and_argv() {
        for arg in HOSTILE {
            let line = cmd_argv_line(&["prog.exe", arg]).expect("line");
            let seen = cmd_parse(&line);
            let (program, rest) = seen.split_once(' ').expect("program and args");
            assert_eq!(program, "prog.exe");
            assert_eq!(parse_args(rest), [*arg], "line {line:?}");
        }
        let mut argv = vec!["prog.exe"];
        argv.extend_from_slice(HOSTILE);
        let seen = cmd_parse(&cmd_argv_line(&argv).expect("line"));
        let rest = seen.strip_prefix("prog.exe ").expect("program");
        assert_eq!(parse_args(rest), HOSTILE);
    }

    #[test]
    fn cmd_argv_line_quotes_batch_file_arguments_with_metacharacters() {
        // A batch file's %1 expands to the argument as written, so anything
        // cmd would act on must arrive quoted.
        let line = cmd_argv_line(&["build.cmd", "a&b", "100%", "x"]).expect("line");
        assert_eq!(cmd_parse(&line), "build.cmd \"a&b\" \"100\"%\"\" x");
    }

    #[test]
    fn cmd_argv_line_quotes_a_program_with_spaces_for_real() {
        let line = cmd_argv_line(&["C:\\Program Files\\A&B\\x.exe", "a b"]).expect("line");
        assert_eq!(line, "\"\"C:\\Program Files\\A&B\\x.exe\" ^\"a b^\"\"");
        assert_eq!(
            cmd_parse(&line),
            "\"C:\\Program Files\\A&B\\x.exe\" \"a b\""
        );
    }

    #[test]
    fn cmd_argv_line_refuses_what_cmd_cannot_carry() {
        assert!(cmd_argv_line::<&str>(&[]).is_err());
        assert!(cmd_argv_line(&[""]).is_err());
        assert!(cmd_argv_line(&["%COMSPEC%"]).is_err());
        assert!(cmd_argv_line(&["a\"b"]).is_err());
        assert!(cmd_argv_line(&["prog", "two\nlines"]).is_err());
        assert!(cmd_argv_line(&["prog", "cr\r"]).is_err());
        assert!(cmd_argv_line(&["prog", "nul\0"]).is_err());
    }

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
