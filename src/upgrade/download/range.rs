//! Method 3 of UPGRADE: the package fetched in HTTP Range requests of at
//! most `RANGE_CHUNK_BYTES`, resumed from what is on disk, each answer's
//! `Content-Range` checked against what was asked. Plans and checks only;
//! the requests are the executor's.

use super::DownloadError;

/// An inclusive byte range `start..=end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start).saturating_add(1)
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Range` request header value, e.g. `bytes=0-1048575`.
    pub fn header_value(&self) -> String {
        format!("bytes={}-{}", self.start, self.end)
    }
}

/// Plan of a method-3 download: which range to ask for next, given what is already
/// on disk. A dropped connection loses at most the range in flight; the next
/// attempt resumes from the length of the partial file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangedDownload {
    total: u64,
    received: u64,
    chunk: u64,
}

impl RangedDownload {
    /// A download of `total` bytes of which `already_on_disk` are present.
    pub fn resume(total: u64, already_on_disk: u64, chunk: u64) -> Self {
        RangedDownload {
            total,
            received: already_on_disk.min(total),
            chunk: chunk.max(1),
        }
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn is_complete(&self) -> bool {
        self.received >= self.total
    }

    /// The next range to request, or `None` when all bytes are in.
    pub fn next_range(&self) -> Option<ByteRange> {
        if self.is_complete() {
            return None;
        }
        let end = self
            .received
            .saturating_add(self.chunk)
            .min(self.total)
            .saturating_sub(1);
        Some(ByteRange {
            start: self.received,
            end,
        })
    }

    /// Check a `206` answer's `Content-Range` against the range asked for.
    pub fn check_content_range(
        &self,
        asked: ByteRange,
        content_range: &str,
    ) -> Result<(), DownloadError> {
        let (start, end, total) = parse_content_range(content_range)
            .ok_or_else(|| DownloadError::BadRange(format!("Content-Range {content_range:?}")))?;
        if start != asked.start || end != asked.end {
            return Err(DownloadError::BadRange(format!(
                "asked {}, got {content_range:?}",
                asked.header_value()
            )));
        }
        if let Some(total) = total {
            if total != self.total {
                return Err(DownloadError::LengthMismatch {
                    expected: self.total,
                    actual: total,
                });
            }
        }
        Ok(())
    }

    /// Record `n` more bytes written to disk.
    pub fn advance(&mut self, n: u64) {
        self.received = self.received.saturating_add(n).min(self.total);
    }
}

/// Parse `bytes START-END/TOTAL` (TOTAL may be `*`).
pub fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.trim().split_once('-')?;
    let start = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start, end, total))
}
