//! Replacing secret values with `***` in step output, as it streams.
//!
//! Every byte covered by an occurrence of any secret is masked; overlapping
//! or touching occurrences (a secret that is a prefix of another, two
//! secrets sharing bytes) become one `***`. Output arrives in chunks, and a
//! secret may be split across them, so a stream holds back the last
//! `longest secret - 1` bytes until the next chunk or the end: whatever is
//! released can no longer become part of an occurrence. The masked stream
//! is byte for byte what masking the whole output at once gives.

use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};

/// What a masked run of bytes is replaced with.
pub const MASKED: &[u8] = b"***";

#[derive(Debug, thiserror::Error)]
#[error("failed to build the secret masker")]
pub struct MaskError(#[source] aho_corasick::BuildError);

/// The secrets to mask, compiled once and shared by every step's stream.
#[derive(Clone, Default)]
pub struct Mask {
    finder: Option<Arc<AhoCorasick>>,
    longest: usize,
    /// No secret spans a line break, so no occurrence crosses one: a
    /// stream releases every complete line at once and holds back only a
    /// partial last line (lines of stdout and stderr stay whole in the log).
    single_line: bool,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("Mask")
            .field(
                "secrets",
                &self.finder.as_ref().map_or(0, |a| a.patterns_len()),
            )
            .finish()
    }
}

impl Mask {
    /// Masks each non-empty value of `secrets` (empty ones are skipped:
    /// they would match everywhere).
    pub fn new<S: AsRef<[u8]>>(secrets: impl IntoIterator<Item = S>) -> Result<Self, MaskError> {
        let patterns: Vec<Vec<u8>> = secrets
            .into_iter()
            .map(|s| s.as_ref().to_vec())
            .filter(|s| !s.is_empty())
            .collect();
        let Some(longest) = patterns.iter().map(Vec::len).max() else {
            return Ok(Self::default());
        };
        // Standard semantics: the only kind that reports overlapping matches.
        let finder = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&patterns)
            .map_err(MaskError)?;
        let single_line = patterns.iter().all(|p| !p.contains(&b'\n'));
        Ok(Self {
            finder: Some(Arc::new(finder)),
            longest,
            single_line,
        })
    }

    /// A stream for one step's output.
    pub fn stream(&self) -> MaskStream {
        MaskStream {
            mask: self.clone(),
            pending: Vec::new(),
            carry: 0,
            masked_before: false,
        }
    }

    /// `data` masked whole.
    pub fn mask(&self, data: &[u8]) -> Vec<u8> {
        let mut stream = self.stream();
        let mut out = stream.push(data);
        out.extend(stream.finish());
        out
    }

    /// `text` masked whole. A UTF-8 secret matches only at character
    /// boundaries of UTF-8 text, so the result is UTF-8 too.
    pub fn mask_str(&self, text: &str) -> String {
        if self.finder.is_none() {
            return text.to_owned();
        }
        String::from_utf8_lossy(&self.mask(text.as_bytes())).into_owned()
    }
}

/// One step's output on its way to the log file.
pub struct MaskStream {
    mask: Mask,
    /// Received, not yet released.
    pending: Vec<u8>,
    /// How many leading bytes of `pending` an occurrence already seen
    /// covers (it started in released bytes).
    carry: usize,
    /// The last released byte was masked: a run that continues at
    /// `pending[0]` is the same `***`.
    masked_before: bool,
}

impl MaskStream {
    /// Takes a chunk; returns the masked bytes that are final.
    pub fn push(&mut self, data: &[u8]) -> Vec<u8> {
        if self.mask.finder.is_none() {
            return data.to_vec();
        }
        self.pending.extend_from_slice(data);
        let hold = self.mask.longest - 1;
        let mut cut = self.pending.len().saturating_sub(hold);
        if self.mask.single_line {
            if let Some(newline) = self.pending.iter().rposition(|&b| b == b'\n') {
                cut = cut.max(newline + 1);
            }
        }
        self.release(cut)
    }

    /// Holds nothing back: everything pushed so far was released.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// The end of the output: releases what was held back.
    pub fn finish(&mut self) -> Vec<u8> {
        let cut = self.pending.len();
        self.release(cut)
    }

    /// Masks and releases `pending[..cut]`. Every occurrence that starts
    /// before `cut` ends within `pending` (no secret is longer than what
    /// is held back plus one), so the masking of those bytes is final.
    fn release(&mut self, cut: usize) -> Vec<u8> {
        let Some(finder) = self.mask.finder.clone() else {
            return std::mem::take(&mut self.pending);
        };
        if cut == 0 {
            return Vec::new();
        }
        let runs = covered_runs(&finder, &self.pending, self.carry);
        let mut out = Vec::with_capacity(cut);
        let mut pos = 0;
        let mut carry = 0;
        let mut masked_at_cut = false;
        for &(start, end) in runs.iter().take_while(|(start, _)| *start < cut) {
            out.extend_from_slice(&self.pending[pos..start]);
            if !(start == 0 && self.masked_before) {
                out.extend_from_slice(MASKED);
            }
            pos = end.min(cut);
            masked_at_cut = end >= cut;
            carry = end.saturating_sub(cut);
        }
        out.extend_from_slice(&self.pending[pos..cut]);
        self.pending.drain(..cut);
        self.carry = carry;
        self.masked_before = masked_at_cut;
        out
    }
}

/// The maximal runs of `data` that occurrences of secrets cover, in order;
/// touching occurrences make one run. `[0, carry)` counts as covered.
fn covered_runs(finder: &AhoCorasick, data: &[u8], carry: usize) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = finder
        .find_overlapping_iter(data)
        .map(|m| (m.start(), m.end()))
        .collect();
    if carry > 0 {
        spans.push((0, carry));
    }
    spans.sort_unstable();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (start, end) in spans {
        match runs.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => runs.push((start, end)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(secrets: &[&str]) -> Mask {
        Mask::new(secrets.iter().map(|s| s.as_bytes())).unwrap()
    }

    /// `data` through a stream cut at `cuts`.
    fn streamed(m: &Mask, data: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut stream = m.stream();
        let mut out = Vec::new();
        let mut from = 0;
        for &cut in cuts {
            out.extend(stream.push(&data[from..cut]));
            from = cut;
        }
        out.extend(stream.push(&data[from..]));
        out.extend(stream.finish());
        out
    }

    #[test]
    fn whole_output_is_masked() {
        let m = mask(&["s3cr3t-value"]);
        assert_eq!(
            m.mask(b"key=s3cr3t-value; again s3cr3t-value\n"),
            b"key=***; again ***\n"
        );
        assert_eq!(m.mask(b"s3cr3t-valu"), b"s3cr3t-valu");
        assert_eq!(m.mask(b""), b"");
    }

    #[test]
    fn overlapping_prefix_and_touching_secrets_make_one_run() {
        // One secret a prefix of another: the longer one is masked whole.
        let m = mask(&["abcdefgh", "abcdefghij"]);
        assert_eq!(m.mask(b"<abcdefghij>"), b"<***>");
        assert_eq!(m.mask(b"<abcdefghi>"), b"<***i>");
        // Two secrets sharing bytes: neither's tail shows.
        let m = mask(&["abcdefgh", "efghijkl"]);
        assert_eq!(m.mask(b"<abcdefghijkl>"), b"<***>");
        // A value repeated back to back, and overlapping itself.
        let m = mask(&["aaaaaaaa"]);
        assert_eq!(m.mask(b"xaaaaaaaaaaaaaaaaaax"), b"x***x");
        let m = mask(&["abcdefgh"]);
        assert_eq!(m.mask(b"abcdefghabcdefgh"), b"***");
    }

    #[test]
    fn no_secrets_passes_everything_through_at_once() {
        let m = Mask::new(Vec::<Vec<u8>>::new()).unwrap();
        let mut s = m.stream();
        assert_eq!(s.push(b"hello"), b"hello");
        assert_eq!(s.finish(), b"");
        assert_eq!(m.mask_str("x"), "x");
    }

    #[test]
    fn a_secret_split_across_two_chunks_at_every_position_is_masked() {
        let secrets = ["deploy-key-0123456789", "tok-abcdefgh"];
        let m = mask(&secrets);
        let data = b"start deploy-key-0123456789 mid tok-abcdefgh end deploy-key-0123456789";
        let want = m.mask(data);
        assert_eq!(want, b"start *** mid *** end ***");
        for i in 0..=data.len() {
            assert_eq!(streamed(&m, data, &[i]), want, "cut at {i}");
        }
    }

    #[test]
    fn a_secret_split_across_three_chunks_at_every_position_is_masked() {
        let m = mask(&["abcdefgh", "efghijkl", "0123456789"]);
        let data = b"-abcdefghijkl-0123456789abcdefgh-x";
        let want = m.mask(data);
        assert_eq!(want, b"-***-***-x");
        for i in 0..=data.len() {
            for j in i..=data.len() {
                assert_eq!(streamed(&m, data, &[i, j]), want, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn output_is_held_back_only_as_long_as_a_secret_could_still_match() {
        let m = mask(&["12345678"]);
        let mut s = m.stream();
        // Seven bytes could be the start of the secret: held.
        assert_eq!(s.push(b"abc1234567"), b"abc");
        // Not the secret after all: released as soon as that is certain.
        assert_eq!(s.push(b"x"), b"1");
        // A run that starts in released bytes is shown as `***` at once;
        // the rest of it, held back, adds nothing.
        assert_eq!(s.push(b"12345678"), b"234567x***");
        assert_eq!(s.finish(), b"");
        // The end flushes the tail, masked.
        assert_eq!(s.push(b"ab1234"), b"");
        assert_eq!(s.push(b"5678"), b"ab***");
        assert_eq!(s.finish(), b"");
        assert_eq!(s.push(b"..12345"), b"");
        assert_eq!(s.finish(), b"..12345");
    }

    #[test]
    fn complete_lines_are_released_at_once_and_still_masked() {
        let m = mask(&["deploy-key-0123456789"]);
        let mut s = m.stream();
        // A whole line cannot hold the start of a secret that goes on in
        // the next chunk: only the partial last line is held.
        assert_eq!(
            s.push(b"one\ntwo deploy-key-0123456789\nthr"),
            b"one\ntwo ***\n"
        );
        assert_eq!(s.push(b"ee deploy-key-01"), b"");
        assert_eq!(s.push(b"23456789 end\n"), b"three *** end\n");
        assert_eq!(s.finish(), b"");
        let data = b"a\ndeploy-key-0123456789\nb deploy-key-0123456789 c\n\ndeploy-key-0123";
        let want = m.mask(data);
        assert_eq!(want, b"a\n***\nb *** c\n\ndeploy-key-0123");
        for i in 0..=data.len() {
            for j in i..=data.len() {
                assert_eq!(streamed(&m, data, &[i, j]), want, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn a_secret_with_a_line_break_is_held_back_across_lines() {
        let m = mask(&["-----BEGIN\nKEY-----"]);
        let mut s = m.stream();
        assert_eq!(s.push(b"x\n-----BEGIN\n"), b"");
        assert_eq!(s.push(b"KEY----- y\n"), b"x\n***");
        assert_eq!(s.finish(), b" y\n");
        let data = b"-----BEGIN\nKEY-----\n-----BEGIN\nKEY\n";
        let want = m.mask(data);
        assert_eq!(want, b"***\n-----BEGIN\nKEY\n");
        for i in 0..=data.len() {
            for j in i..=data.len() {
                assert_eq!(streamed(&m, data, &[i, j]), want, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn chunks_of_one_byte() {
        let m = mask(&["abcdefgh", "defghijk"]);
        let data = b"..abcdefghijk..abcdefgh..defghijk..abcdefg";
        let cuts: Vec<usize> = (1..data.len()).collect();
        assert_eq!(streamed(&m, data, &cuts), m.mask(data));
        assert_eq!(m.mask(data), b"..***..***..***..abcdefg");
    }

    #[test]
    fn binary_data_is_masked_and_otherwise_untouched() {
        let secret: &[u8] = &[0xff, 0x00, 0xfe, 0x01, 0x80, 0x7f, 0x00, 0xc3];
        let m = Mask::new([secret]).unwrap();
        let mut data: Vec<u8> = (0..=255u8).collect();
        data.extend_from_slice(secret);
        data.extend([0u8, 0xff, 0x00]);
        let mut want: Vec<u8> = (0..=255u8).collect();
        want.extend_from_slice(MASKED);
        want.extend([0u8, 0xff, 0x00]);
        for i in 0..=data.len() {
            assert_eq!(streamed(&m, &data, &[i]), want, "cut at {i}");
        }
    }

    #[test]
    fn text_stays_text() {
        let m = mask(&["pässwörd"]);
        assert_eq!(m.mask_str("a pässwörd é"), "a *** é");
    }

    #[test]
    fn debug_shows_no_value() {
        let m = mask(&["hunter2-hunter2"]);
        assert!(!format!("{m:?}").contains("hunter2"));
    }
}
