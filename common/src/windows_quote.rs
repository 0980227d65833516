//! Windows command lines. A Windows program gets one string, not an argv:
//! nearly every program splits it with the rules of `CommandLineToArgvW` (the
//! C runtime uses the same ones), and `cmd.exe` parses it first with rules of
//! its own (`^` escapes, `%VAR%` expansion, `&`, `|`, `<`, `>`, quotes).
//!
//! Pure string functions, compiled on every OS so their tests run on Linux:
//! the worker uses them to start steps on Windows, the ssh provider to start
//! workers on Windows hosts.

use std::fmt;

/// Characters `cmd.exe` treats specially on a command line (`!` only with
/// delayed expansion, but escaping it is free).
const CMD_SPECIAL: &[char] = &['(', ')', '%', '!', '^', '"', '<', '>', '&', '|'];

/// Characters that make `CommandLineToArgvW` split or unquote.
const ARGV_SPECIAL: &[char] = &[' ', '\t', '\n', '\x0b', '"'];

/// Quotes `arg` so that `CommandLineToArgvW` reads it back unchanged (as any
/// argument but the first): quoted when it holds whitespace or `"`, with
/// backslashes doubled only where they precede a quote. Left bare when
/// nothing in it needs quoting.
pub fn quote_arg(arg: &str) -> String {
    quote_arg_with(arg, !arg.is_empty() && !arg.contains(ARGV_SPECIAL), false)
}

/// A whole argv as a Windows command line.
pub fn command_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote_arg(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes `arg` like [`quote_arg`] unless `bare`; with `split_percent`,
/// every `%` is put outside the quotes (`"100"%""`), which
/// CommandLineToArgvW reads the same. Then no `%…%` span can be a variable
/// name for cmd: each holds a quote. (Real cmd would not expand `^%NAME^%`
/// anyway, but wine's cmd drops the carets first.)
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

/// `text` with a `^` before every `cmd.exe` metacharacter, quotes included:
/// cmd then sees no quoted region, no variable and no operator, and after it
/// strips the carets the program gets `text` exactly. (A `%` escaped this
/// way cannot expand: cmd looks up `VAR^`, which no one defines.) Apply it
/// to a command line already quoted with [`command_line`].
pub fn escape_cmd(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if CMD_SPECIAL.contains(&c) {
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

/// Text that no `cmd /C` line can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdLineError(String);

impl fmt::Display for CmdLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CmdLineError {}

/// For callers that report failures as text (the worker's step setup).
impl From<CmdLineError> for String {
    fn from(e: CmdLineError) -> Self {
        e.0
    }
}

/// Fails for text no `cmd /C` line can carry: a line break ends the command,
/// and NUL ends the string.
pub fn check_one_line(what: &str, text: &str) -> Result<(), CmdLineError> {
    if text.contains(['\r', '\n', '\0']) {
        return Err(CmdLineError(format!(
            "failed to pass {what} {text:?} through cmd: it contains a line break or NUL"
        )));
    }
    Ok(())
}

/// The text to put after `cmd /D /V:OFF /S /C ` (as a raw argument) so that
/// cmd starts `argv[0]` (a program, a batch file or a builtin, found through
/// PATH and PATHEXT) and the program reads exactly `argv[1..]` back.
pub fn cmd_argv_line<S: AsRef<str>>(argv: &[S]) -> Result<String, CmdLineError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CmdLineError("failed to run step: argv is empty".to_owned()));
    };
    let program = program.as_ref();
    check_one_line("program", program)?;
    // cmd finds the program by its first token, which must be quoted for
    // real (not with escaped quotes) to hold spaces; inside real quotes
    // `%` would still expand and `^` would stay literal.
    if program.is_empty() || program.contains(['"', '%', '^']) {
        return Err(CmdLineError(format!(
            "failed to run {program:?} through cmd: a program name must be non-empty \
             and contain no '\"', '%' or '^'"
        )));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile arguments: quotes, cmd and shell metacharacters, backslashes
    /// before quotes and at the end, spaces, tabs, empty, non-ASCII.
    const HOSTILE: &[&str] = &[
        "",
        " ",
        "plain",
        "a b",
        "with space",
        "it's",
        "'",
        "''",
        "\"",
        "\"\"",
        "a\"b",
        "\"quoted\"",
        "quote\\\"mix",
        "a\\b",
        "back\\slash",
        "a\\",
        "a\\\\",
        "trailing\\",
        "trail\\\\",
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
        "%PATH% !x! ^ & | < > ( )",
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
        "tab\there",
        "\"&calc&\"",
        "a\"&echo pwned&\"b",
        "\\\"&whoami",
        "--flag=\"a b\"",
        "-n",
        "a;touch /tmp/pwned",
        "$(touch /tmp/pwned)",
        "`id`",
        "$HOME ~ * ? [a]",
        "\u{2018}curly\u{2019} \u{201A}low\u{201B}",
        "é ü ß",
        "ünïcödé €",
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

    /// cmd.exe's caret pass over a fully escaped line: `^x` becomes `x`, and
    /// an unescaped metacharacter would be syntax. Checks that escaping
    /// leaves none.
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
    fn command_line_round_trips_all_hostile_strings_at_once() {
        let line = command_line(HOSTILE);
        assert_eq!(parse_args(&line), HOSTILE, "{line}");
        assert_eq!(
            quote_arg("C:\\Program Files\\x\\"),
            "\"C:\\Program Files\\x\\\\\""
        );
        assert_eq!(quote_arg("a\\\"b"), "\"a\\\\\\\"b\"");
        assert_eq!(quote_arg("C:\\plain\\path"), "C:\\plain\\path");
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
        assert_eq!(escape_cmd("\"%PATH%\""), "^\"^%PATH^%^\"");
        assert_eq!(
            escape_cmd("\"x\" ^ (y) <z> !w!"),
            "^\"x^\" ^^ ^(y^) ^<z^> ^!w^!"
        );
        assert_eq!(escape_cmd("plain text"), "plain text");
    }

    #[test]
    fn escape_cmd_hides_every_metacharacter_of_a_command_line() {
        let line = command_line(HOSTILE);
        let escaped = escape_cmd(&line);
        assert_eq!(cmd_unescape(&escaped), Ok(line.clone()));
        assert_eq!(
            parse_args(&cmd_unescape(&escaped).unwrap_or_default()),
            HOSTILE
        );
    }

    #[test]
    fn cmd_paths_refuse_what_quotes_cannot_hold() {
        assert!(cmd_path_problem("C:\\burst state\\x (1)").is_none());
        assert!(cmd_path_problem("C:\\a\"b").is_some());
        assert!(cmd_path_problem("%TEMP%\\x").is_some());
        assert!(cmd_path_problem("x!y").is_some());
        assert!(cmd_path_problem("x\ny").is_some());
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
        assert!(check_one_line("script", "a\nb").is_err());
        assert!(check_one_line("script", "a & b").is_ok());
    }
}
