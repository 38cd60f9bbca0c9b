//! How a [`FaultKind`] is put on the wire: replies reshaped (headers, body,
//! encoding) before they are written, and replies written the wrong way
//! (dripped, mis-framed, streamed far past any sane size, held open).
//!
//! Huge replies are streamed in small pieces and never held in memory, so the
//! server itself stays small whatever it sends.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::fault::FaultKind;
use crate::http::{self, BodyCut, Framing, Request, Response};

/// How long a reply announced longer than it is keeps the connection open.
const LONG_HOLD: Duration = Duration::from_secs(60);
/// Piece size for streamed replies.
const PIECE: usize = 64 * 1024;

/// What the connection does after a faulty reply was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum After {
    /// Read the next request, as after a normal reply.
    KeepAlive,
    /// Close the connection.
    Close,
    /// Keep the connection open and silent, then close.
    HoldThenClose(Duration),
}

/// Changes to the reply itself for the kinds that only reshape it; the
/// others pass it through unchanged.
pub(crate) fn reshape(kind: &FaultKind, req: &Request, mut resp: Response) -> Response {
    match kind {
        FaultKind::Gzip => {
            resp.body = gzip(&resp.body);
            resp.headers
                .push(("Content-Encoding".into(), "gzip".into()));
        }
        FaultKind::GzipGarbage => {
            // A gzip magic and method, then nothing a decoder can follow.
            let mut body = vec![0x1f, 0x8b, 0x08, 0x00];
            body.extend_from_slice(b"\xde\xad\xbe\xefnot a deflate stream\xff\xfe\x00");
            resp.body = body;
            resp.headers
                .push(("Content-Encoding".into(), "gzip".into()));
        }
        FaultKind::NonUtf8Line => {
            resp.body
                .extend_from_slice(b"\n\xff\xfe\xfd=\xc3\x28\xa0\xa1\xe2\x82");
        }
        FaultKind::BadDate(date) => {
            resp.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("date"));
            if let Some(d) = date {
                resp.headers.push(("Date".into(), d.clone()));
            }
        }
        FaultKind::GarbageConfig if is_config_answer(req) => {
            resp.body.push(b'\n');
            resp.body.extend_from_slice(&garbage_config());
        }
        _ => {}
    }
    resp
}

/// Whether the request is one whose answer is a configuration block or
/// the registry code: the init request (7.1), registry (7.4), push (7.5).
pub(crate) fn is_config_answer(req: &Request) -> bool {
    match req.path.as_str() {
        "/iclock/registry" | "/iclock/push" => true,
        "/iclock/cdata" => {
            req.method.eq_ignore_ascii_case("GET") && req.query_value("options").is_some()
        }
        _ => false,
    }
}

/// Key/value lines no configuration answer should carry: every number out
/// of range, values that are not printable, huge keys and values.
fn garbage_config() -> Vec<u8> {
    let mut out = Vec::new();
    for line in [
        "ErrorDelay=18446744073709551615",
        "RequestDelay=-1",
        "TimeoutSec=99999999999999999999",
        "TransInterval=4294967296",
        "TransTimes=25:61;;99:99;abc;00:00;",
        "Realtime=x",
        "Delay=-5",
        "PushProtVer=999999.999999.999999",
        "ServerVersion=\u{1}\u{2}\u{7f}",
        "BioPhotoFun=-1",
        "=value without a key",
        "a line without an equals sign",
        "TimeZone=+99",
    ] {
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"SessionID=\x01\x02\x03");
    out.extend(std::iter::repeat_n(b'\x07', 4096));
    out.push(b'\n');
    out.extend_from_slice(b"RegistryCode=\xff\xfe");
    out.extend(std::iter::repeat_n(b'R', 8192));
    out.push(b'\n');
    out.extend(std::iter::repeat_n(b'K', 16384));
    out.extend_from_slice(b"=1\nMultiBioDataSupport=");
    for _ in 0..2000 {
        out.extend_from_slice(b"1:");
    }
    out.extend_from_slice(b"\n\x00\x00=\x00\n");
    out
}

/// Writes the reply the faulty way. `None` when the kind writes normally
/// (the caller then writes it with its configured framing).
pub(crate) fn write<W: Write>(
    kind: &FaultKind,
    w: &mut W,
    resp: &Response,
    keep_alive: bool,
) -> Option<io::Result<After>> {
    let written = match kind {
        FaultKind::SlowDrip { chunk, pause } => drip(w, resp, *chunk, *pause, keep_alive),
        FaultKind::ContentLengthOff(delta) => length_off(w, resp, *delta),
        FaultKind::Chunked => {
            http::write_response(w, resp, Framing::Chunked, keep_alive, BodyCut::Whole).map(
                |whole| {
                    if whole && keep_alive {
                        After::KeepAlive
                    } else {
                        After::Close
                    }
                },
            )
        }
        FaultKind::BrokenChunked => broken_chunked(w, resp),
        FaultKind::GzipBomb { inflated } => {
            let mut bomb = resp.clone();
            bomb.body = gzip_zeros(*inflated);
            bomb.headers
                .push(("Content-Encoding".into(), "gzip".into()));
            http::write_response(w, &bomb, Framing::ContentLength, false, BodyCut::Whole)
                .map(|_| After::Close)
        }
        FaultKind::HugeBody { bytes } => {
            let mut first = resp.body.clone();
            first.push(b'\n');
            stream(w, resp, &first, *bytes, b'#')
        }
        FaultKind::JunkLines { lines } => {
            let first_line = resp.body.split(|b| *b == b'\n').next().unwrap_or_default();
            let mut first = first_line.to_vec();
            first.push(b'\n');
            let total = u64::try_from(first.len())
                .unwrap_or(u64::MAX)
                .saturating_add(lines.saturating_mul(2));
            stream(w, resp, &first, total, b'x')
        }
        _ => return None,
    };
    Some(written)
}

/// Keeps a connection open and silent until the peer closes it, the server
/// shuts it down, or `max` has passed.
pub(crate) fn hold(stream: &TcpStream, max: Duration) {
    let end = Instant::now() + max;
    let mut reader = stream;
    let mut buf = [0u8; 512];
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.read(&mut buf) {
            // Whatever the client sends meanwhile is ignored.
            Ok(n) if n > 0 => continue,
            _ => return,
        }
    }
}

/// The status line and headers of `resp` plus `extra` header lines.
fn head(resp: &Response, extra: &[String]) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, http::reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn drip<W: Write>(
    w: &mut W,
    resp: &Response,
    chunk: usize,
    pause: Duration,
    keep_alive: bool,
) -> io::Result<After> {
    let mut bytes = Vec::new();
    http::write_response(
        &mut bytes,
        resp,
        Framing::ContentLength,
        keep_alive,
        BodyCut::Whole,
    )?;
    for piece in bytes.chunks(chunk.max(1)) {
        w.write_all(piece)?;
        w.flush()?;
        std::thread::sleep(pause);
    }
    Ok(if keep_alive {
        After::KeepAlive
    } else {
        After::Close
    })
}

fn length_off<W: Write>(w: &mut W, resp: &Response, delta: i64) -> io::Result<After> {
    let len = i64::try_from(resp.body.len()).unwrap_or(i64::MAX);
    let announced = len.saturating_add(delta).max(0);
    let mut out = head(resp, &[format!("Content-Length: {announced}")]);
    out.extend_from_slice(&resp.body);
    w.write_all(&out)?;
    w.flush()?;
    Ok(if delta > 0 {
        After::HoldThenClose(LONG_HOLD)
    } else {
        After::KeepAlive
    })
}

fn broken_chunked<W: Write>(w: &mut W, resp: &Response) -> io::Result<After> {
    let mid = resp.body.len() / 2;
    let mut out = head(resp, &["Transfer-Encoding: chunked".to_string()]);
    if mid > 0 {
        out.extend_from_slice(format!("{mid:x}\r\n").as_bytes());
        out.extend_from_slice(&resp.body[..mid]);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"zz; not a size\r\n");
    out.extend_from_slice(&resp.body[mid..]);
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)?;
    w.flush()?;
    Ok(After::Close)
}

/// Announces `total` bytes, sends `first`, then `fill` bytes (a line break
/// after every 2 bytes when `fill` is `x`, as junk lines) until `total`.
fn stream<W: Write>(
    w: &mut W,
    resp: &Response,
    first: &[u8],
    total: u64,
    fill: u8,
) -> io::Result<After> {
    let total = total.max(u64::try_from(first.len()).unwrap_or(u64::MAX));
    let mut out = head(
        resp,
        &[
            format!("Content-Length: {total}"),
            "Connection: close".into(),
        ],
    );
    out.extend_from_slice(first);
    w.write_all(&out)?;
    let piece: Vec<u8> = if fill == b'x' {
        b"x\n".iter().copied().cycle().take(PIECE).collect()
    } else {
        vec![fill; PIECE]
    };
    let mut left = total - u64::try_from(first.len()).unwrap_or(0);
    while left > 0 {
        let n = usize::try_from(left).map_or(PIECE, |l| l.min(PIECE));
        w.write_all(&piece[..n])?;
        left -= u64::try_from(n).unwrap_or(left);
    }
    w.flush()?;
    Ok(After::Close)
}

/// `bytes` gzip-compressed.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// A valid gzip stream of `inflated` zero bytes (rounded up to whole MiB),
/// built from one compressed MiB repeated: each copy ends with a full flush,
/// so it never refers back past its own start and copies can follow each
/// other. The CRC is combined per copy instead of computed over the data.
pub(crate) fn gzip_zeros(inflated: u64) -> Vec<u8> {
    const MIB: usize = 1 << 20;
    let copies = inflated.div_ceil(MIB as u64).max(1);
    let zeros = vec![0u8; MIB];
    let mut deflate = flate2::Compress::new(flate2::Compression::best(), false);
    let mut segment = Vec::with_capacity(4096);
    // One MiB of zeros deflates to about a kilobyte; a full flush ends it on
    // a byte boundary with an empty stored block.
    let _ = deflate.compress_vec(&zeros, &mut segment, flate2::FlushCompress::Full);
    while segment.len() == segment.capacity() {
        segment.reserve(4096);
        let _ = deflate.compress_vec(&[], &mut segment, flate2::FlushCompress::Full);
    }
    let mut one = crc32fast::Hasher::new();
    one.update(&zeros);
    let mut crc = crc32fast::Hasher::new();
    let mut out = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
    for _ in 0..copies {
        out.extend_from_slice(&segment);
        crc.combine(&one);
    }
    // A final, empty block with fixed codes: BFINAL=1, BTYPE=01, EOB.
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32.
    let size = u32::try_from((copies * MIB as u64) & 0xffff_ffff).unwrap_or(0);
    out.extend_from_slice(&size.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bomb_is_a_valid_gzip_stream_of_zeros() {
        let bomb = gzip_zeros(3 << 20);
        assert!(bomb.len() < 20_000, "{} bytes on the wire", bomb.len());
        let mut dec = flate2::read::GzDecoder::new(&bomb[..]);
        let mut out = Vec::new();
        dec.read_to_end(&mut out)
            .expect("valid gzip, CRC and length included");
        assert_eq!(out.len(), 3 << 20);
        assert!(out.iter().all(|b| *b == 0));
    }

    #[test]
    fn gzip_round_trips() {
        let packed = gzip(b"OK");
        let mut dec = flate2::read::GzDecoder::new(&packed[..]);
        let mut out = String::new();
        dec.read_to_string(&mut out).unwrap();
        assert_eq!(out, "OK");
    }
}
