//! Quoting for the remote shells: POSIX `sh` (`posix.rs`) and PowerShell
//! (`windows.rs`). Every value that comes from config or the master (paths,
//! ids, URLs) reaches a remote shell only through these functions, or
//! through `burst_common::windows_quote` for Windows command lines, so none
//! of it can become syntax.

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
}
