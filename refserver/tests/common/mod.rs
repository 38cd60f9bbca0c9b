//! A minimal HTTP client for the tests: raw bytes out, a parsed reply in.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use lintel_refserver::{md5_hex, RefServer};

pub const SN: &str = "DEV0001";

pub const CAPS: &str = "DeviceType=acc,~DeviceName=lintel,FirmVer=0.1.0,PushVersion=3.1.2,MAC=00:11:22:33:44:55,\
CommType=ethernet,MaxPackageSize=2048000,LockCount=2,ReaderCount=2,AuxInCount=0,AuxOutCount=0,MachineType=101,\
~MaxUserCount=1000,SimpleEventType=1";

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the stream ended before the announced body length.
    pub complete: bool,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// `key=value` lines of a config block.
    pub fn value(&self, key: &str) -> Option<String> {
        self.text()
            .lines()
            .filter_map(|l| l.trim_end_matches('\r').split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }
}

pub fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    Ok(s)
}

pub fn request_bytes(
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: test\r\nUser-Agent: iClock Proxy/1.09\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Cookie: token={t}\r\n"));
    }
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn read_reply<R: BufRead>(r: &mut R) -> io::Result<Reply> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no reply"));
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("status line {line:?}"))
        })?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _): &&(String, String)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    let mut complete = true;
    if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end)?;
                break;
            }
            let mut chunk = vec![0; n];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            r.read_line(&mut crlf)?;
        }
    } else if let Some(len) = get("content-length") {
        let len: usize = len.parse().unwrap();
        let mut buf = vec![0; len];
        let mut got = 0;
        while got < len {
            let n = r.read(&mut buf[got..])?;
            if n == 0 {
                complete = false;
                break;
            }
            got += n;
        }
        buf.truncate(got);
        body = buf;
    } else {
        r.read_to_end(&mut body)?;
    }
    Ok(Reply {
        status,
        headers,
        body,
        complete,
    })
}

/// One request on a fresh connection.
pub fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &[u8],
) -> io::Result<Reply> {
    send_with(addr, method, target, token, body, &[])
}

pub fn send_with(
    addr: SocketAddr,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &[u8],
    extra: &[(&str, &str)],
) -> io::Result<Reply> {
    let mut s = connect(addr)?;
    s.write_all(&request_bytes(method, target, token, body, extra))?;
    read_reply(&mut BufReader::new(s))
}

/// Init, registry, push: returns the token to use afterwards.
pub fn register(server: &RefServer, sn: &str, caps: &str) -> String {
    let addr = server.addr();
    let init = send(
        addr,
        "GET",
        &format!("/iclock/cdata?SN={sn}&options=all&pushver=3.1.2"),
        None,
        b"",
    )
    .unwrap();
    assert_eq!(init.status, 200);
    let reg = send(
        addr,
        "POST",
        &format!("/iclock/registry?SN={sn}"),
        None,
        caps.as_bytes(),
    )
    .unwrap();
    assert_eq!(reg.status, 200, "{}", reg.text());
    let code = reg.value("RegistryCode").expect("RegistryCode");
    let push = send(
        addr,
        "POST",
        &format!("/iclock/push?SN={sn}"),
        Some(&md5_hex(&format!("{code}{sn}"))),
        b"",
    )
    .unwrap();
    assert_eq!(push.status, 200, "{}", push.text());
    let session = push.value("SessionID").expect("SessionID");
    md5_hex(&format!("{code}{sn}{session}"))
}
