//! Which bytes of a step log one page of the log view shows: the tail, or
//! the page before a byte offset. Only the page's bytes are read (a seek,
//! then at most `PAGE` bytes), so a 100 MB log opens as fast as a small one.
//! Pages start on a line boundary, hold at most `MAX_LINES` lines, and
//! "older" pages back from the page's first byte.

use std::ops::Range;

/// Bytes read for one page.
pub const PAGE: u64 = 64 * 1024;
/// Lines shown on one page at most (short lines would otherwise make a
/// large page: each line carries its own anchor).
pub const MAX_LINES: usize = 1000;

/// The byte range to read for the page that ends at `end` (the file's size
/// for the tail).
pub fn window(end: u64) -> Range<u64> {
    end.saturating_sub(PAGE)..end
}

/// One page: the file offset it starts at and where it ends, and its lines
/// as (file offset of the line, range in `bytes`), newline excluded.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub start: u64,
    pub end: u64,
    pub lines: Vec<(u64, Range<usize>)>,
}

/// Cuts the bytes read from `read_start` into whole lines. Unless the read
/// began at the file's start, the first (probably partial) line is dropped,
/// so "older" asks for exactly the bytes before the first line shown; a
/// page with no newline at all is shown as it is. The last line may lack
/// its newline (the step is still writing it).
pub fn lines(bytes: &[u8], read_start: u64) -> Page {
    let mut from = 0;
    if read_start > 0 {
        if let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            from = nl + 1;
        }
    }
    let mut lines = Vec::new();
    let mut at = from;
    while at < bytes.len() {
        let end = bytes[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| at + p);
        lines.push((read_start + at as u64, at..end));
        at = end + 1;
    }
    if lines.len() > MAX_LINES {
        lines.drain(..lines.len() - MAX_LINES);
    }
    let start = lines
        .first()
        .map_or(read_start + bytes.len() as u64, |(off, _)| *off);
    Page {
        start,
        end: read_start + bytes.len() as u64,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(bytes: &'a [u8], page: &Page) -> Vec<&'a str> {
        page.lines
            .iter()
            .map(|(_, r)| std::str::from_utf8(&bytes[r.clone()]).expect("utf8"))
            .collect()
    }

    #[test]
    fn the_window_is_the_last_page() {
        assert_eq!(window(10), 0..10);
        assert_eq!(window(PAGE * 3 + 5), PAGE * 2 + 5..PAGE * 3 + 5);
    }

    #[test]
    fn a_whole_small_log_is_one_page() {
        let bytes = b"one\ntwo\nthree";
        let page = lines(bytes, 0);
        assert_eq!(texts(bytes, &page), ["one", "two", "three"]);
        assert_eq!(page.lines[1].0, 4);
        assert_eq!((page.start, page.end), (0, 13));
    }

    #[test]
    fn a_page_read_mid_file_starts_at_a_line() {
        // As if read from offset 100: "tial\n" ends a line that began earlier.
        let bytes = b"tial\nline b\nline c\n";
        let page = lines(bytes, 100);
        assert_eq!(texts(bytes, &page), ["line b", "line c"]);
        assert_eq!(page.start, 105);
        assert_eq!(page.lines[1].0, 112);
        assert_eq!(page.end, 119);
    }

    #[test]
    fn paging_back_covers_every_line_once() {
        // A log of numbered lines, paged back from the end with the real
        // window, must show each line exactly once.
        let mut log = Vec::new();
        for i in 0..20_000 {
            log.extend_from_slice(format!("line {i:05} {}\n", "x".repeat(i % 37)).as_bytes());
        }
        let mut seen = Vec::new();
        let mut end = log.len() as u64;
        for _ in 0..10_000 {
            let w = window(end);
            let bytes = &log[w.start as usize..w.end as usize];
            let page = lines(bytes, w.start);
            assert!(page.lines.len() <= MAX_LINES);
            let mut these: Vec<String> =
                texts(bytes, &page).into_iter().map(str::to_owned).collect();
            these.extend(seen);
            seen = these;
            if page.start == 0 {
                break;
            }
            assert!(page.start < end, "paging must move back");
            end = page.start;
        }
        assert_eq!(seen.len(), 20_000);
        for (i, l) in seen.iter().enumerate() {
            assert!(l.starts_with(&format!("line {i:05} ")), "{i}: {l}");
        }
    }

    #[test]
    fn many_short_lines_are_capped() {
        let bytes = "x\n".repeat(5000);
        let page = lines(bytes.as_bytes(), 1);
        assert_eq!(page.lines.len(), MAX_LINES);
        assert_eq!(page.start, 1 + (5000 - MAX_LINES as u64) * 2);
    }

    #[test]
    fn a_page_without_newline_is_shown_whole() {
        let bytes = "y".repeat(100);
        let page = lines(bytes.as_bytes(), 500);
        assert_eq!(page.lines, [(500, 0..100)]);
        assert_eq!(lines(b"", 0).lines, []);
    }
}
