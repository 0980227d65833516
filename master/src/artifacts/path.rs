/// Longest artifact path, and longest part of one, accepted from a worker.
const MAX_PATH: usize = 1024;
const MAX_PART: usize = 255;

/// Checks a path a worker sent: relative, `/`-separated, every part a plain
/// name. Nothing that could name a place outside the build's files passes
/// (`..`, absolute paths, drives, backslashes, control characters).
pub fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.len() > MAX_PATH {
        return Err("the path is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return Err("the path is absolute");
    }
    if path.contains('\\') {
        return Err("the path contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return Err("the path contains a control character");
    }
    for (i, part) in path.split('/').enumerate() {
        match part {
            "" => return Err("the path has an empty part"),
            "." | ".." => return Err("the path has a '.' or '..' part"),
            _ if part.len() > MAX_PART => {
                return Err("a part of the path is longer than 255 bytes")
            }
            _ if i == 0 && part.contains(':') => return Err("the path names a drive"),
            _ => {}
        }
    }
    Ok(())
}

/// `path` as it goes in a URL: each part percent-encoded (all but
/// unreserved characters), joined with `/`.
pub fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, part) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths_escape_all_but_unreserved_characters() {
        assert_eq!(url_path("reports/a b+c%.xml"), "reports/a%20b%2Bc%25.xml");
        assert_eq!(url_path("é/x?#"), "%C3%A9/x%3F%23");
    }

    #[test]
    fn plain_relative_paths_pass() {
        for ok in ["app", "target/release/app", "reports/unit/a b.xml", "a/b:c"] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn anything_that_could_leave_the_build_is_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "C:/x",
            "c:x",
            "..\\x",
            "a\\b",
            "a\u{0}b",
            "a\nb",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path(&"a/".repeat(600)).is_err());
        assert!(check_path(&"x".repeat(256)).is_err());
    }
}
