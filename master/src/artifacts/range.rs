//! `Range: bytes=…` on downloads: one range, as RFC 9110 §14 puts it.

/// A satisfiable range of an object of known size: `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

/// `Ok(None)`: no usable range (absent, another unit, several ranges or
/// malformed: the whole object is sent, as the RFC allows). `Err(())`: a
/// well-formed range that the size cannot satisfy (416).
#[allow(clippy::result_unit_err)]
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        // bytes=-N: the last N bytes.
        _ if first.is_empty() => match last.parse::<u64>() {
            Ok(0) => return Err(()),
            Ok(n) => ByteRange {
                start: size.saturating_sub(n),
                end: size,
            },
            Err(_) => return Ok(None),
        },
        (Ok(start), _) if last.is_empty() => ByteRange { start, end: size },
        (Ok(start), Ok(last)) if last >= start => ByteRange {
            start,
            end: last.saturating_add(1).min(size),
        },
        _ => return Ok(None),
    };
    if range.start >= size {
        return Err(());
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(start: u64, end: u64) -> Result<Option<ByteRange>, ()> {
        Ok(Some(ByteRange { start, end }))
    }

    #[test]
    fn ranges_as_the_rfc_reads() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), r(0, 10));
        assert_eq!(parse_range(Some("bytes=90-"), 100), r(90, 100));
        assert_eq!(parse_range(Some("bytes=-10"), 100), r(90, 100));
        assert_eq!(parse_range(Some("bytes=-1000"), 100), r(0, 100));
        assert_eq!(parse_range(Some("bytes=95-1000"), 100), r(95, 100));
        assert_eq!(parse_range(None, 100), Ok(None));
        assert_eq!(parse_range(Some("items=0-1"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=9-3"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=x-3"), 100), Ok(None));
        assert_eq!(parse_range(Some("bytes=100-"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=-0"), 100), Err(()));
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Err(()));
    }
}
