//! Terminal colours (ANSI SGR escapes) in step output, turned into HTML
//! spans. The text is HTML-escaped here; every other escape sequence and
//! control character is dropped, so nothing a step prints can reach the
//! page as markup. Colours are classes (`f1`, `b4`, `ab` bold…) for the 16
//! basic ones, and an inline `color:#rrggbb` built from numbers for 256
//! and true colours.

use std::fmt::Write;

/// The text style in effect: it carries across lines, as in a terminal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    fg: Option<Colour>,
    bg: Option<Colour>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Colour {
    /// 0–15: the palette the stylesheet defines.
    Basic(u8),
    Rgb(u8, u8, u8),
}

impl Style {
    fn is_plain(&self) -> bool {
        *self == Style::default()
    }

    /// Applies one SGR sequence's parameters (`1;31`, `38;5;208`, ``).
    fn apply(&mut self, params: &str) {
        let nums: Vec<u16> = params
            .split([';', ':'])
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        let mut i = 0;
        while i < nums.len() {
            match nums[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                22 => {
                    self.bold = false;
                    self.dim = false;
                }
                23 => self.italic = false,
                24 => self.underline = false,
                n @ 30..=37 => self.fg = Some(Colour::Basic((n - 30) as u8)),
                n @ 90..=97 => self.fg = Some(Colour::Basic((n - 90 + 8) as u8)),
                39 => self.fg = None,
                n @ 40..=47 => self.bg = Some(Colour::Basic((n - 40) as u8)),
                n @ 100..=107 => self.bg = Some(Colour::Basic((n - 100 + 8) as u8)),
                49 => self.bg = None,
                n @ (38 | 48) => {
                    let (colour, used) = extended(&nums[i + 1..]);
                    i += used;
                    if n == 38 {
                        self.fg = colour.or(self.fg);
                    } else {
                        self.bg = colour.or(self.bg);
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn open_tag(&self, out: &mut String) {
        let mut classes = Vec::new();
        let mut style = String::new();
        for (colour, prefix, property) in [(self.fg, 'f', "color"), (self.bg, 'b', "background")] {
            match colour {
                Some(Colour::Basic(n)) => classes.push(format!("{prefix}{n}")),
                Some(Colour::Rgb(r, g, b)) => {
                    let _ = write!(style, "{property}:#{r:02x}{g:02x}{b:02x};");
                }
                None => {}
            }
        }
        for (on, class) in [
            (self.bold, "ab"),
            (self.dim, "ad"),
            (self.italic, "ai"),
            (self.underline, "au"),
        ] {
            if on {
                classes.push(class.to_owned());
            }
        }
        out.push_str("<span");
        if !classes.is_empty() {
            let _ = write!(out, " class=\"{}\"", classes.join(" "));
        }
        if !style.is_empty() {
            let _ = write!(out, " style=\"{style}\"");
        }
        out.push('>');
    }
}

/// `5;n` (256 colours) or `2;r;g;b` after a 38/48; returns the colour and
/// how many parameters it used.
fn extended(rest: &[u16]) -> (Option<Colour>, usize) {
    match rest {
        [5, n, ..] => (Some(palette(*n.min(&255) as u8)), 2),
        [2, r, g, b, ..] => (
            Some(Colour::Rgb(
                (*r).min(255) as u8,
                (*g).min(255) as u8,
                (*b).min(255) as u8,
            )),
            4,
        ),
        _ => (None, rest.len()),
    }
}

/// The xterm 256-colour palette: 0–15 basic, a 6×6×6 cube, then greys.
fn palette(n: u8) -> Colour {
    match n {
        0..=15 => Colour::Basic(n),
        16..=231 => {
            let n = n - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            Colour::Rgb(level(n / 36), level((n / 6) % 6), level(n % 6))
        }
        _ => {
            let v = 8 + (n - 232) * 10;
            Colour::Rgb(v, v, v)
        }
    }
}

/// Pushes `c` HTML-escaped.
fn escape(c: char, out: &mut String) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        '"' => out.push_str("&quot;"),
        '\'' => out.push_str("&#39;"),
        c => out.push(c),
    }
}

/// Renders one line (no newline) as HTML into `out`, starting in `style`
/// and leaving there the style in effect at its end. Every span it opens
/// is closed before it returns.
pub fn line_to_html(line: &[u8], style: &mut Style, out: &mut String) {
    let text = String::from_utf8_lossy(line);
    let mut open = false;
    let mut chars = text.chars().peekable();
    let restyle = |style: &Style, open: &mut bool, out: &mut String| {
        if *open {
            out.push_str("</span>");
            *open = false;
        }
        if !style.is_plain() {
            style.open_tag(out);
            *open = true;
        }
    };
    restyle(style, &mut open, out);
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    let mut params = String::new();
                    let mut fin = None;
                    // Parameter and intermediate bytes, then a final byte
                    // (RFC: 0x40–0x7E); bounded by the line's length.
                    for p in chars.by_ref() {
                        if ('\u{40}'..='\u{7e}').contains(&p) {
                            fin = Some(p);
                            break;
                        }
                        params.push(p);
                    }
                    if fin == Some('m') {
                        let before = *style;
                        style.apply(&params);
                        if *style != before {
                            restyle(style, &mut open, out);
                        }
                    }
                }
                // OSC (`ESC ]`… BEL or ST): titles, hyperlinks; dropped.
                Some(']') => {
                    chars.next();
                    while let Some(p) = chars.next() {
                        if p == '\u{7}' {
                            break;
                        }
                        if p == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                }
                // `ESC ( B` and kin: intermediate bytes (0x20–0x2F), then
                // one final byte.
                Some(_) => {
                    for p in chars.by_ref() {
                        if !('\u{20}'..='\u{2f}').contains(&p) {
                            break;
                        }
                    }
                }
                None => {}
            },
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => escape(c, out),
        }
    }
    if open {
        out.push_str("</span>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(line: &str) -> String {
        let mut out = String::new();
        line_to_html(line.as_bytes(), &mut Style::default(), &mut out);
        out
    }

    #[test]
    fn plain_text_is_escaped() {
        assert_eq!(
            html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn basic_colours_and_resets() {
        assert_eq!(
            html("\x1b[31mred\x1b[0m plain"),
            "<span class=\"f1\">red</span> plain"
        );
        assert_eq!(
            html("\x1b[1;92;44mX\x1b[39mY\x1b[m"),
            "<span class=\"f10 b4 ab\">X</span><span class=\"b4 ab\">Y</span>"
        );
        assert_eq!(html("\x1b[4mu\x1b[24mn"), "<span class=\"au\">u</span>n");
    }

    #[test]
    fn extended_colours_are_inline_hex() {
        assert_eq!(
            html("\x1b[38;5;208mo"),
            "<span style=\"color:#ff8700;\">o</span>"
        );
        assert_eq!(
            html("\x1b[48;2;1;2;300mb"),
            "<span style=\"background:#0102ff;\">b</span>"
        );
        assert_eq!(
            html("\x1b[38;5;244mg"),
            "<span style=\"color:#808080;\">g</span>"
        );
    }

    #[test]
    fn style_carries_to_the_next_line() {
        let mut style = Style::default();
        let mut a = String::new();
        line_to_html(b"\x1b[32mgreen", &mut style, &mut a);
        let mut b = String::new();
        line_to_html(b"still\x1b[0m", &mut style, &mut b);
        assert_eq!(a, "<span class=\"f2\">green</span>");
        assert_eq!(b, "<span class=\"f2\">still</span>");
        assert!(style.is_plain());
    }

    #[test]
    fn other_escapes_and_controls_are_dropped() {
        assert_eq!(html("a\x1b[2Kb\x1b[10;5Hc\rd\x07e"), "abcde");
        assert_eq!(html("\x1b]0;title\x07t"), "t");
        assert_eq!(html("\x1b]8;;http://x\x1b\\link"), "link");
        assert_eq!(html("\x1b(Bz"), "z");
        // A sequence cut off at the line's end neither panics nor leaks.
        assert_eq!(html("x\x1b[31"), "x");
        assert_eq!(html("x\x1b"), "x");
        // Hostile parameters cannot inject attributes.
        assert_eq!(html("\x1b[31;\"mq"), "q");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut out = String::new();
        line_to_html(b"a\xffb", &mut Style::default(), &mut out);
        assert_eq!(out, "a\u{fffd}b");
    }
}
