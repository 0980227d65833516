//! Splits a byte stream into lines and prefixes each with a build's tag.

/// A line longer than this is emitted in pieces, so memory stays bounded
/// even for output without newlines.
const MAX_PARTIAL: usize = 64 * 1024;

pub struct LinePrefixer {
    prefix: Vec<u8>,
    /// The current line so far (no newline seen yet).
    partial: Vec<u8>,
}

impl LinePrefixer {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.as_bytes().to_vec(),
            partial: Vec::new(),
        }
    }

    /// Every line completed by `chunk`, prefixed, as one buffer to write at once.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.emit(&mut out, &rest[..=pos]);
            rest = &rest[pos + 1..];
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() >= MAX_PARTIAL {
            self.partial.push(b'\n');
            self.emit(&mut out, &[]);
        }
        out
    }

    /// The unterminated last line, prefixed and newline-terminated (empty if none).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.partial.is_empty() {
            self.partial.push(b'\n');
            self.emit(&mut out, &[]);
        }
        out
    }

    /// Writes prefix + pending partial + `tail` and clears the partial.
    fn emit(&mut self, out: &mut Vec<u8>, tail: &[u8]) {
        out.extend_from_slice(&self.prefix);
        out.append(&mut self.partial);
        out.extend_from_slice(tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> String {
        let mut p = LinePrefixer::new("[1] ");
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c));
        }
        out.extend(p.finish());
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn lines_split_across_chunks() {
        let want = "[1] hello\n[1] world\n[1] tail\n";
        assert_eq!(run(&[b"hel", b"lo\nwor", b"ld\n", b"ta", b"il"]), want);
        assert_eq!(run(&[b"hello\nworld\ntail"]), want);
        let bytes: Vec<&[u8]> = b"hello\nworld\ntail".chunks(1).collect();
        assert_eq!(run(&bytes), want);
    }

    #[test]
    fn empty_lines_and_empty_chunks() {
        assert_eq!(run(&[b"", b"\n\n", b""]), "[1] \n[1] \n");
        assert_eq!(run(&[]), "");
    }

    #[test]
    fn nothing_is_emitted_before_the_newline() {
        let mut p = LinePrefixer::new("> ");
        assert!(p.push(b"abc").is_empty());
        assert_eq!(p.push(b"d\ne"), b"> abcd\n");
        assert_eq!(p.finish(), b"> e\n");
        assert!(p.finish().is_empty());
    }

    #[test]
    fn very_long_lines_are_cut() {
        let mut p = LinePrefixer::new("> ");
        let out = p.push(&vec![b'x'; MAX_PARTIAL + 5]);
        assert_eq!(out.len(), 2 + MAX_PARTIAL + 5 + 1);
        assert!(p.finish().is_empty());
    }
}
