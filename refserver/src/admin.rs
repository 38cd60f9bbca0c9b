//! Optional `/admin/*` endpoints so a person or a script can drive a running
//! server with curl (enabled by `ServerConfig::admin`).
//!
//! - `POST /admin/queue?SN=X`    body: one command text per line; answers the IDs
//! - `GET  /admin/pending?SN=X`  commands still waiting for a result
//! - `GET  /admin/results?SN=X`  command results, one raw line each
//! - `GET  /admin/uploads?SN=X`  uploads: `<seq> <endpoint>?<query>` then the body
//! - `POST /admin/approve?SN=X`  approve a serial (manual approval mode)
//! - `POST /admin/forget`        forget all registrations (as a restarted server)
//! - `POST /admin/renumber`      drop the queues and number commands from 1 again
//! - `GET  /admin/serials`       serials seen, with registration state

use crate::config::ServerConfig;
use crate::http::{Request, Response};
use crate::state::State;

pub(crate) fn handle(state: &mut State, cfg: &ServerConfig, req: &Request) -> Response {
    let sn = req.query_value("SN").unwrap_or_default().to_string();
    let needs_sn = !matches!(
        req.path.as_str(),
        "/admin/forget" | "/admin/serials" | "/admin/renumber"
    );
    if needs_sn && sn.is_empty() {
        return Response::new(400, "SN missing\n");
    }
    let mut out = String::new();
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/admin/queue") => {
            let body = String::from_utf8_lossy(&req.body).into_owned();
            for line in body
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
            {
                let id = crate::queue::queue(state, cfg, &sn, &unescape(line));
                out.push_str(&format!("{id}\n"));
            }
        }
        ("GET", "/admin/pending") => {
            for c in state.pending_commands(&sn) {
                out.push_str(&format!("C:{}:{} (sent {}x)\n", c.id, c.text, c.deliveries));
            }
        }
        ("GET", "/admin/results") => {
            for r in state.results(&sn) {
                out.push_str(&format!("{}\n", r.raw));
            }
        }
        ("GET", "/admin/uploads") => {
            for u in state.uploads(&sn) {
                let query: Vec<String> = u.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out.push_str(&format!(
                    "{} {}?{}\n{}\n",
                    u.seq,
                    u.endpoint,
                    query.join("&"),
                    String::from_utf8_lossy(&u.raw)
                ));
            }
        }
        ("POST", "/admin/approve") => {
            state.approved.insert(sn.clone());
            out.push_str(&format!("approved {sn}\n"));
        }
        ("POST", "/admin/forget") => {
            forget_registrations(state);
            out.push_str("forgot all registrations\n");
        }
        ("POST", "/admin/renumber") => {
            state.renumber_commands();
            out.push_str("queues dropped; command IDs start at 1 again\n");
        }
        ("GET", "/admin/serials") => {
            for s in state.serials() {
                let reg = if state.registration(&s).is_some() {
                    "registered"
                } else {
                    "unregistered"
                };
                out.push_str(&format!("{s} {reg}\n"));
            }
        }
        _ => return Response::new(404, "unknown admin endpoint\n"),
    }
    Response::new(200, out.into_bytes())
}

/// Lets a one-line shell argument carry TABs and LFs as `\t` and `\n`.
pub(crate) fn unescape(line: &str) -> String {
    line.replace("\\t", "\t").replace("\\n", "\n")
}

/// Forgets every registration and session (a restarted server with an empty
/// database); recorded uploads, results and queues stay.
pub(crate) fn forget_registrations(state: &mut State) {
    for device in state.devices.values_mut() {
        device.registration = None;
        device.session = None;
    }
}
