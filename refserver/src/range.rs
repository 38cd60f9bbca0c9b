//! Serving registered files with HTTP `Range` support (UPGRADE method 3,
//! 12.4.1: the device pulls the package in pieces with `Range: bytes=a-b`).

use crate::http::{Request, Response};

/// A byte range resolved against a body of known length (inclusive end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub start: usize,
    pub end: usize,
}

/// Parses one `bytes=a-b`, `bytes=a-` or `bytes=-n` range.
/// `Ok(None)`: no usable single range (serve the whole body, as RFC 9110
/// allows for multi-range or unknown units); `Err(())`: unsatisfiable (416).
pub(crate) fn parse_range(header: &str, len: usize) -> Result<Option<ByteRange>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: usize = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Err(());
        }
        ByteRange {
            start: len.saturating_sub(n),
            end: len - 1,
        }
    } else {
        let start: usize = a.parse().map_err(|_| ())?;
        let end: usize = if b.is_empty() {
            usize::MAX
        } else {
            b.parse().map_err(|_| ())?
        };
        if start >= len || end < start {
            return Err(());
        }
        ByteRange {
            start,
            end: end.min(len - 1),
        }
    };
    Ok(Some(range))
}

/// A 200 with the whole body, a 206 with the requested range, or a 416.
pub(crate) fn serve(req: &Request, bytes: &[u8]) -> Response {
    let len = bytes.len();
    let base = |status: u16, body: &[u8]| {
        Response::new(status, body.to_vec())
            .with_header("Content-Type", "application/octet-stream")
            .with_header("Accept-Ranges", "bytes")
    };
    match req.header("range").map(|h| parse_range(h, len)) {
        None | Some(Ok(None)) => base(200, bytes),
        Some(Ok(Some(r))) => base(206, &bytes[r.start..=r.end]).with_header(
            "Content-Range",
            format!("bytes {}-{}/{len}", r.start, r.end),
        ),
        Some(Err(())) => base(416, b"").with_header("Content-Range", format!("bytes */{len}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_forms() {
        assert_eq!(
            parse_range("bytes=0-9", 100),
            Ok(Some(ByteRange { start: 0, end: 9 }))
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            Ok(Some(ByteRange { start: 90, end: 99 }))
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Ok(Some(ByteRange { start: 90, end: 99 }))
        );
        assert_eq!(
            parse_range("bytes=50-500", 100),
            Ok(Some(ByteRange { start: 50, end: 99 }))
        );
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
    }
}
