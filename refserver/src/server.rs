//! The running server: listener thread, one thread per connection, faults.

use std::io::{self, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::ServerConfig;
use crate::fault::{Fault, FaultKind, FaultSet};
use crate::http::{self, BodyCut, Framing, HttpError, Request, Response};
use crate::state::{
    CommandResult, QueuedCommand, Record, Registration, RequestLog, Session, State, Upload,
};

/// How long an idle keep-alive connection is kept before the server closes it.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

struct Inner {
    state: State,
    config: ServerConfig,
    faults: FaultSet,
}

struct Shared {
    inner: Mutex<Inner>,
    /// HTTPS: every connection is TLS with this identity (see `start_tls`).
    tls: Option<Arc<rustls::ServerConfig>>,
    changed: Condvar,
    /// Live connections, so `stop` can cut them (a restarted server drops them).
    connections: Mutex<Vec<(u64, TcpStream)>>,
    next_conn: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in a connection thread must not take the test's server down.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Listener {
    running: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// A reference PUSH server on a local port. Dropping it stops it.
///
/// All methods take `&self` and are thread-safe.
pub struct RefServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Mutex<Option<Listener>>,
}

impl RefServer {
    /// Starts on `127.0.0.1` with a free port.
    pub fn start(cfg: ServerConfig) -> io::Result<RefServer> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), cfg)
    }

    /// Starts on `addr` (port 0 picks a free port).
    pub fn start_on(addr: SocketAddr, cfg: ServerConfig) -> io::Result<RefServer> {
        Self::start_with(addr, cfg, None)
    }

    /// Starts an HTTPS server on `127.0.0.1` with a free port, presenting
    /// `identity` (tests make theirs with a CA of their own).
    pub fn start_tls(
        cfg: ServerConfig,
        identity: &crate::tls::TlsIdentity,
    ) -> io::Result<RefServer> {
        Self::start_tls_on(SocketAddr::from(([127, 0, 0, 1], 0)), cfg, identity)
    }

    /// Starts an HTTPS server on `addr`.
    pub fn start_tls_on(
        addr: SocketAddr,
        cfg: ServerConfig,
        identity: &crate::tls::TlsIdentity,
    ) -> io::Result<RefServer> {
        let config = crate::tls::server_config(identity)?;
        Self::start_with(addr, cfg, Some(config))
    }

    fn start_with(
        addr: SocketAddr,
        cfg: ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<RefServer> {
        let shared = Arc::new(Shared {
            tls,
            inner: Mutex::new(Inner {
                state: State::default(),
                config: cfg,
                faults: FaultSet::default(),
            }),
            changed: Condvar::new(),
            connections: Mutex::new(Vec::new()),
            next_conn: AtomicU64::new(1),
        });
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let server = RefServer {
            addr,
            shared,
            listener: Mutex::new(None),
        };
        server.spawn_listener(listener)?;
        Ok(server)
    }

    fn spawn_listener(&self, listener: TcpListener) -> io::Result<()> {
        let running = Arc::new(AtomicBool::new(true));
        let shared = Arc::clone(&self.shared);
        let flag = Arc::clone(&running);
        let thread = thread::Builder::new()
            .name("refserver-accept".into())
            .spawn(move || accept_loop(&listener, &shared, &flag))?;
        *self.listener.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Listener { running, thread });
        Ok(())
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` for a TLS
    /// server (its certificate must name the IP address 127.0.0.1).
    pub fn url(&self) -> String {
        if self.shared.tls.is_some() {
            format!("https://127.0.0.1:{}", self.addr.port())
        } else {
            format!("http://{}", self.addr)
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> ServerConfig {
        self.shared.lock().config.clone()
    }

    /// Changes the configuration; takes effect from the next request.
    pub fn update_config(&self, f: impl FnOnce(&mut ServerConfig)) {
        f(&mut self.shared.lock().config);
    }

    /// Queues a command for `sn` with a server-assigned ID, returned.
    pub fn queue_command(&self, sn: &str, text: &str) -> u64 {
        let mut inner = self.shared.lock();
        let inner = &mut *inner;
        crate::queue::queue(&mut inner.state, &inner.config, sn, text)
    }

    /// Queues a command for `sn` with a chosen ID (e.g. large or repeated ones).
    pub fn queue_command_with_id(&self, sn: &str, id: &str, text: &str) {
        crate::queue::queue_with_id(&mut self.shared.lock().state, sn, id, text);
    }

    /// Commands of `sn` still waiting for their result.
    pub fn pending_commands(&self, sn: &str) -> Vec<QueuedCommand> {
        self.shared.lock().state.pending_commands(sn).to_vec()
    }

    /// Command results posted by `sn`, in arrival order.
    pub fn results(&self, sn: &str) -> Vec<CommandResult> {
        self.shared.lock().state.results(sn).to_vec()
    }

    /// Uploads posted by `sn`, in arrival order (accepted or not).
    pub fn uploads(&self, sn: &str) -> Vec<Upload> {
        self.shared.lock().state.uploads(sn).to_vec()
    }

    /// Records of accepted `table=rtlog` uploads of `sn`.
    pub fn rtlog(&self, sn: &str) -> Vec<Record> {
        self.shared.lock().state.rtlog(sn)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestLog> {
        self.shared.lock().state.requests().to_vec()
    }

    /// The capability line `sn` registered with, if registered.
    pub fn registration(&self, sn: &str) -> Option<Registration> {
        self.shared.lock().state.registration(sn).cloned()
    }

    /// Current RegistryCode and SessionID of `sn`.
    pub fn session(&self, sn: &str) -> Option<Session> {
        self.shared.lock().state.session(sn).cloned()
    }

    /// The token `sn` must send now, if it has a session.
    pub fn expected_token(&self, sn: &str) -> Option<String> {
        self.session(sn).map(|s| s.token(sn))
    }

    /// Runs `f` on the state under the lock (for reads not covered above).
    pub fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.shared.lock().state)
    }

    /// Approves `sn` for registration in manual approval mode.
    pub fn approve_serial(&self, sn: &str) {
        self.shared.lock().state.approved.insert(sn.to_string());
    }

    /// Forgets all registrations and sessions, as a server restarted with an
    /// empty database: the next init answers `OK` and old tokens get 401.
    pub fn forget_registrations(&self) {
        crate::admin::forget_registrations(&mut self.shared.lock().state);
    }

    /// Numbers commands from 1 again and drops the queues, as a server that
    /// keeps both in memory does when it restarts (interop.md: IDs are not
    /// unique over time). Combine with `restart` and `forget_registrations`
    /// for the whole restart.
    pub fn renumber_commands(&self) {
        self.shared.lock().state.renumber_commands();
    }

    /// Gives `sn` a new SessionID now (servers that rotate it daily); returns
    /// it, or `None` when `sn` has no session. Old tokens get 401 afterwards.
    pub fn rotate_session(&self, sn: &str) -> Option<String> {
        let mut inner = self.shared.lock();
        let state = &mut inner.state;
        state.session(sn)?;
        let id = state.random_session_id();
        let session = state.device_mut(sn).session.as_mut()?;
        session.session_id = id.clone();
        Some(id)
    }

    /// Registers bytes served at `url_path` (e.g. `/fw/emfw.cfg`) both as a
    /// plain GET path and through `GET /iclock/file?url=<any host><url_path>`.
    pub fn serve_file(&self, url_path: &str, bytes: Vec<u8>) {
        let path = crate::protocol::url_path(url_path);
        self.shared.lock().state.files.insert(path, bytes);
    }

    /// Adds a fault (faults are consulted in the order they were added).
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().faults.add(fault);
    }

    /// Removes all faults.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Waits until `pred` holds on the state, re-checking after every request.
    /// Returns false if `timeout` passed first.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inner = self.shared.lock();
        loop {
            if pred(&inner.state) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            inner = match self.shared.changed.wait_timeout(inner, deadline - now) {
                Ok((guard, _)) => guard,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Stops accepting and cuts every open connection. State is kept.
    pub fn stop(&self) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(l) = listener {
            l.running.store(false, Ordering::SeqCst);
            // Wake the blocking accept; failure means it is already gone.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = l.thread.join();
        }
        let conns = std::mem::take(
            &mut *self
                .shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for (_, stream) in conns {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Starts listening again on the same address after `stop`, keeping the
    /// state (call `forget_registrations` too for a server that lost its data).
    pub fn restart(&self) -> io::Result<()> {
        self.stop();
        let listener = TcpListener::bind(self.addr)?;
        self.spawn_listener(listener)
    }

    /// Whether the server is accepting connections.
    pub fn is_running(&self) -> bool {
        self.listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, running: &AtomicBool) {
    for stream in listener.incoming() {
        if !running.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.lock().faults.take_refusal() {
            shared.lock().state.refused_connections += 1;
            shared.changed.notify_all();
            drop(stream);
            continue;
        }
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            shared
                .connections
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((id, clone));
        }
        let shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("refserver-conn-{id}"))
            .spawn(move || {
                serve_connection(stream, &shared);
                shared
                    .connections
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(c, _)| *c != id);
            });
        if let Err(e) = spawned {
            log::error!("cannot spawn a connection thread: {e}; the connection is dropped");
        }
    }
}

/// Bytes that are no protocol text and not UTF-8.
const GARBAGE: &[u8] = b"\xff\xfe\x00\x13\x8f<\x00garbage\xc3\x28\xa0\xa1\r\n\x00";

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let Ok(socket) = stream.try_clone() else {
        return;
    };
    match &shared.tls {
        None => serve_stream(stream, &socket, shared),
        Some(config) => match rustls::ServerConnection::new(config.clone()) {
            Ok(conn) => serve_stream(rustls::StreamOwned::new(conn, stream), &socket, shared),
            Err(e) => log::warn!("TLS setup failed: {e}"),
        },
    }
}

/// One connection's requests, over plain TCP or TLS; `socket` is the TCP
/// socket underneath (for shutdown and resets).
fn serve_stream<S: io::Read + io::Write>(io: S, socket: &TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(io);
    loop {
        let req = match http::read_request(&mut reader) {
            Ok(r) => r,
            Err(HttpError::Malformed(why)) => {
                log::debug!("malformed request: {why}; answering 400 and closing");
                let resp = Response::new(400, format!("bad request: {why}").into_bytes());
                let _ = http::write_response(
                    reader.get_mut(),
                    &resp,
                    Framing::ContentLength,
                    false,
                    BodyCut::Whole,
                );
                return;
            }
            Err(HttpError::Closed | HttpError::Io(_)) => return,
        };
        let fault = {
            let mut inner = shared.lock();
            inner
                .faults
                .take_for_request(&req.method, &req.path, &req.query)
        };
        if let Some(FaultKind::Delay(d)) = &fault {
            thread::sleep(*d);
        }
        let (resp, framing, keep_alive, cut, reset) = {
            let mut inner = shared.lock();
            let (resp, framing) = respond(&mut inner, &req, fault.as_ref());
            let mut cut = BodyCut::Whole;
            let mut reset = false;
            match fault {
                Some(FaultKind::TruncateBody { keep }) => cut = BodyCut::After(keep),
                Some(FaultKind::ResetMidBody { keep }) => {
                    cut = BodyCut::After(keep);
                    reset = true;
                }
                _ => {}
            }
            let keep_alive = req.wants_keep_alive()
                && framing != Framing::CloseDelimited
                && cut == BodyCut::Whole;
            (resp, framing, keep_alive, cut, reset)
        };
        shared.changed.notify_all();
        let Some(resp) = resp else {
            // CloseWithoutReply, or Hang: silent until the client gives up.
            if let Some(FaultKind::Hang(max)) = &fault {
                crate::misbehave::hold(socket, *max);
            }
            return;
        };
        if reset {
            // SO_LINGER 0 makes close() send RST instead of FIN.
            let _ = socket2::SockRef::from(socket).set_linger(Some(Duration::ZERO));
        }
        if let Some(kind) = &fault {
            match crate::misbehave::write(kind, reader.get_mut(), &resp, keep_alive) {
                Some(Ok(crate::misbehave::After::KeepAlive)) => continue,
                Some(Ok(crate::misbehave::After::HoldThenClose(max))) => {
                    crate::misbehave::hold(socket, max);
                    let _ = socket.shutdown(Shutdown::Write);
                    return;
                }
                Some(_) => {
                    let _ = socket.shutdown(Shutdown::Write);
                    return;
                }
                None => {}
            }
        }
        let written = http::write_response(reader.get_mut(), &resp, framing, keep_alive, cut);
        let _ = reader.get_mut().flush();
        if !matches!(written, Ok(true)) || !keep_alive {
            if !reset {
                let _ = socket.shutdown(Shutdown::Write);
            }
            return;
        }
    }
}

/// Builds the reply (or `None` to close without one) and logs the request.
fn respond(
    inner: &mut Inner,
    req: &Request,
    fault: Option<&FaultKind>,
) -> (Option<Response>, Framing) {
    let seq = inner.state.next_seq;
    inner.state.next_seq += 1;
    let cfg = &inner.config;
    let mut sealed = false;
    let mut logged_body = None;
    let (resp, token) = match fault {
        Some(FaultKind::CloseWithoutReply | FaultKind::Hang(_)) => (None, None),
        Some(FaultKind::Status(s)) => (
            Some(crate::protocol::html_error(*s, "injected fault")),
            None,
        ),
        _ if req.path == "/iclock/exchange" && req.method.eq_ignore_ascii_case("POST") => {
            let sn = req.query_value("SN").unwrap_or_default().to_string();
            crate::secure::open_request(&mut inner.state, cfg, req);
            (
                Some(crate::secure::exchange(
                    &mut inner.state,
                    cfg,
                    &sn,
                    req,
                    fault,
                )),
                None,
            )
        }
        _ => match crate::secure::open_request(&mut inner.state, cfg, req) {
            crate::secure::Opened::Refused(resp) => (Some(resp), None),
            opened => {
                let plain;
                let handled_req = if let crate::secure::Opened::Body(body) = &opened {
                    sealed = true;
                    plain = Request {
                        body: body.clone(),
                        ..req.clone()
                    };
                    logged_body = Some(body.clone());
                    &plain
                } else {
                    req
                };
                let handled = crate::protocol::handle(&mut inner.state, cfg, handled_req, seq);
                let mut resp = handled.response;
                if sealed {
                    resp = crate::secure::seal_response(&mut inner.state, req, resp, fault);
                }
                match fault {
                    Some(FaultKind::GarbageBody) => resp.body = GARBAGE.to_vec(),
                    Some(FaultKind::ReplaceBody {
                        status,
                        body,
                        headers,
                    }) => {
                        resp.status = status.unwrap_or(resp.status);
                        resp.body = body.clone();
                        resp.headers.extend(headers.iter().cloned());
                    }
                    _ => {}
                }
                (Some(resp), handled.token)
            }
        },
    };
    let resp = resp.map(|r| decorate(r, cfg)).map(|r| match fault {
        Some(kind) => crate::misbehave::reshape(kind, req, r),
        None => r,
    });
    inner.state.requests.push(RequestLog {
        seq,
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers: req.headers.clone(),
        body: logged_body.unwrap_or_else(|| req.body.clone()),
        status: resp.as_ref().map_or(0, |r| r.status),
        token,
        // A replaced body can be megabytes: the log names its size only.
        fault: fault.map(|f| match f {
            FaultKind::ReplaceBody { body, .. } => format!("ReplaceBody({} bytes)", body.len()),
            other => format!("{other:?}"),
        }),
        handled_at: std::time::Instant::now(),
        sealed,
    });
    (resp, cfg.framing)
}

/// Adds the headers every reply carries: Server, Date (7.1: required, GMT),
/// Content-Type, and any configured unrelated cookies.
fn decorate(mut resp: Response, cfg: &ServerConfig) -> Response {
    let mut headers = vec![
        ("Server".to_string(), cfg.server_header.clone()),
        (
            "Date".to_string(),
            httpdate::fmt_http_date(cfg.clock.now().max(std::time::UNIX_EPOCH)),
        ),
    ];
    if !resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".to_string(), cfg.content_type.clone()));
    }
    for cookie in &cfg.extra_set_cookies {
        headers.push(("Set-Cookie".to_string(), cookie.clone()));
    }
    headers.append(&mut resp.headers);
    resp.headers = headers;
    resp
}
