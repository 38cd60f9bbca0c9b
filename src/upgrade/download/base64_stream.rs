//! Method 1 of UPGRADE: the package as base64 text in the command, decoded
//! as a stream into the package file. Holds no more than a block between
//! writes; it never touches the file system itself.

use super::DownloadError;
use base64::Engine as _;
use std::io::{self, Write};

/// Streaming base64 decoder for method 1: text in (any chunking, line breaks and
/// whitespace allowed), decoded bytes out to the inner writer. Holds at most three
/// undecoded characters between writes.
pub struct Base64Decoder<W: Write> {
    inner: W,
    pending: Vec<u8>,
    decoded: Vec<u8>,
}

const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

impl<W: Write> Base64Decoder<W> {
    pub fn new(inner: W) -> Self {
        Base64Decoder {
            inner,
            pending: Vec::with_capacity(4096),
            decoded: Vec::with_capacity(3072),
        }
    }

    fn decode_pending(&mut self, upto: usize) -> io::Result<()> {
        if upto == 0 {
            return Ok(());
        }
        self.decoded.clear();
        let chunk = self.pending.get(..upto).unwrap_or_default();
        BASE64
            .decode_vec(chunk, &mut self.decoded)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.inner.write_all(&self.decoded)?;
        self.pending.drain(..upto);
        Ok(())
    }

    /// The writer the decoded bytes go to.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Decode what is left (unpadded tails are accepted) and return the inner writer.
    pub fn finish(mut self) -> Result<W, DownloadError> {
        let len = self.pending.len();
        self.decode_pending(len)
            .map_err(|e| DownloadError::Base64(e.to_string()))?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Base64Decoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for chunk in buf.chunks(3072) {
            self.pending
                .extend(chunk.iter().copied().filter(|b| !b.is_ascii_whitespace()));
            // Decode whole quanta only; a padded quantum ends the data, so keep the
            // last quantum back until finish() when it holds '='.
            let whole = self.pending.len() - self.pending.len() % 4;
            let upto = if self.pending.get(..whole).is_some_and(|q| q.contains(&b'=')) {
                whole.saturating_sub(4)
            } else {
                whole
            };
            self.decode_pending(upto)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
