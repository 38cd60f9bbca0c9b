//! Everything the server remembers: per-serial sessions, command queues,
//! results, uploads, served files and the log of every request.
//!
//! All of it lives in memory behind the server's one mutex; tests read it
//! through `RefServer` accessors or inside `RefServer::wait_for`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

/// One data record: ordered `key=value` fields as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub fields: Vec<(String, String)>,
}

impl Record {
    /// Value of `key` (exact match first, then case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        crate::http::query_get(&self.fields, key)
    }

    /// Splits `text` on `sep` into `key=value` fields; a field without `=`
    /// becomes a key with an empty value. Empty fields are skipped.
    pub fn parse(text: &str, sep: char) -> Record {
        let fields = text
            .split(sep)
            .map(|f| f.trim_matches('\r'))
            .filter(|f| !f.is_empty())
            .map(|f| match f.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (f.to_string(), String::new()),
            })
            .collect();
        Record { fields }
    }
}

/// A registration: the parsed capability line of `POST /iclock/registry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub sn: String,
    /// The body as received.
    pub raw: String,
    /// `key=value` pairs in order; optional keys keep their leading `~`.
    pub capabilities: Record,
    /// The RegistryCode the server answered.
    pub registry_code: String,
}

impl Registration {
    /// Capability value by key, with or without the `~` prefix.
    pub fn get(&self, key: &str) -> Option<&str> {
        let bare = key.trim_start_matches('~');
        self.capabilities
            .get(bare)
            .or_else(|| self.capabilities.get(&format!("~{bare}")))
    }
}

/// The current session values of a serial (what the token is computed from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub registry_code: String,
    pub session_id: String,
}

impl Session {
    /// `md5(RegistryCode + SN + SessionID)` as lowercase hex (7.5 note).
    pub fn token(&self, sn: &str) -> String {
        md5_hex(&format!("{}{}{}", self.registry_code, sn, self.session_id))
    }
}

/// Lowercase hex MD5 of `text`.
pub fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A command waiting for its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedCommand {
    pub id: String,
    pub text: String,
    /// How many getrequest answers carried it so far.
    pub deliveries: u32,
}

/// One result line of `POST /iclock/devicecmd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub id: String,
    pub ret: i64,
    /// The `CMD=` value.
    pub cmd: String,
    /// Any further `&`-separated pieces (ACCOUNT adds `transaction`, `RecordSum=`...).
    pub extra: Vec<(String, String)>,
    /// The line as received.
    pub raw: String,
    /// Whether the ID was in this server's queue when the result arrived.
    pub was_queued: bool,
}

/// Whether a request carried the token the server expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// The cookie matched `md5(RegistryCode+SN+SessionID)`.
    Valid,
    /// No `token` cookie.
    Missing,
    /// A token that does not match the current session (or no session exists).
    Invalid,
}

/// One upload to `/iclock/cdata`, `/iclock/querydata`, `/iclock/file` or `/iclock/fdata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Sequence number shared with [`RequestLog::seq`].
    pub seq: u64,
    /// Request path, e.g. `/iclock/cdata`.
    pub endpoint: String,
    pub query: Vec<(String, String)>,
    /// `table=` (cdata) or `type=` (querydata) value.
    pub table: Option<String>,
    /// `tablename=` value.
    pub tablename: Option<String>,
    /// Parsed records (tabledata lines without their table-name prefix).
    pub records: Vec<Record>,
    /// The body as received.
    pub raw: Vec<u8>,
    /// `count=` compared with the records: `None` when not applicable.
    pub count_matches: Option<bool>,
    /// Whether the server acknowledged it as accepted.
    pub accepted: bool,
    pub token: TokenCheck,
}

impl Upload {
    pub fn query_value(&self, key: &str) -> Option<&str> {
        crate::http::query_get(&self.query, key)
    }
}

/// One request as the server saw it and what it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLog {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Status answered; 0 when the connection was closed without a reply.
    pub status: u16,
    /// Token check result; `None` for requests that carry no token by
    /// protocol (init, registry, files outside `/iclock/`) and had none.
    pub token: Option<TokenCheck>,
    /// The fault applied, if any (debug text).
    pub fault: Option<String>,
    /// When the server had handled it (for rates measured at the server).
    pub handled_at: std::time::Instant,
    /// It came over an encrypted channel: a POST body was sealed (`body`
    /// is its plaintext), a GET's answer was sealed.
    pub sealed: bool,
}

impl RequestLog {
    pub fn sn(&self) -> Option<&str> {
        crate::http::query_get(&self.query, "SN")
    }

    /// The request carried the valid token.
    pub fn token_ok(&self) -> bool {
        self.token == Some(TokenCheck::Valid)
    }

    pub fn query_value(&self, key: &str) -> Option<&str> {
        crate::http::query_get(&self.query, key)
    }
}

/// Per-serial state.
#[derive(Debug, Clone, Default)]
pub(crate) struct Device {
    pub registration: Option<Registration>,
    pub session: Option<Session>,
    pub queue: Vec<QueuedCommand>,
    pub results: Vec<CommandResult>,
    pub uploads: Vec<Upload>,
}

/// The whole recorded state. Read it with the accessor methods.
#[derive(Debug)]
pub struct State {
    pub(crate) devices: BTreeMap<String, Device>,
    pub(crate) requests: Vec<RequestLog>,
    pub(crate) files: HashMap<String, Vec<u8>>,
    pub(crate) approved: HashSet<String>,
    pub(crate) refused_connections: u64,
    pub(crate) next_seq: u64,
    pub(crate) secure: crate::secure::Secure,
    next_cmd_id: u64,
    used_ids: HashSet<String>,
    rng: u64,
}

impl Default for State {
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        State {
            devices: BTreeMap::new(),
            requests: Vec::new(),
            files: HashMap::new(),
            approved: HashSet::new(),
            refused_connections: 0,
            next_seq: 1,
            secure: Default::default(),
            next_cmd_id: 1,
            used_ids: HashSet::new(),
            rng: seed | 1,
        }
    }
}

const EMPTY_RESULTS: &[CommandResult] = &[];
const EMPTY_UPLOADS: &[Upload] = &[];

impl State {
    /// Completed key exchanges of `sn` (encrypted PUSH).
    pub fn exchanges(&self, sn: &str) -> u32 {
        self.secure.exchanges.get(sn).copied().unwrap_or(0)
    }

    /// Whether `sn` has an encrypted channel now.
    pub fn encrypted(&self, sn: &str) -> bool {
        self.secure.has_channel(sn)
    }

    /// Sealed request bodies the server refused, in order.
    pub fn seal_rejections(&self) -> &[crate::secure::SealRejection] {
        &self.secure.rejections
    }

    /// Every request in arrival order.
    pub fn requests(&self) -> &[RequestLog] {
        &self.requests
    }

    /// Requests from one serial (`SN=` query value).
    pub fn requests_from<'a>(&'a self, sn: &'a str) -> impl Iterator<Item = &'a RequestLog> + 'a {
        self.requests.iter().filter(move |r| r.sn() == Some(sn))
    }

    /// Command results of a serial, in arrival order.
    pub fn results(&self, sn: &str) -> &[CommandResult] {
        self.devices.get(sn).map_or(EMPTY_RESULTS, |d| &d.results)
    }

    /// Uploads of a serial, in arrival order.
    pub fn uploads(&self, sn: &str) -> &[Upload] {
        self.devices.get(sn).map_or(EMPTY_UPLOADS, |d| &d.uploads)
    }

    /// All accepted `table=rtlog` records of a serial, in arrival order.
    pub fn rtlog(&self, sn: &str) -> Vec<Record> {
        self.table_records(sn, "rtlog")
    }

    /// All records of accepted cdata uploads whose `table=` (or `tablename=`) is `table`.
    pub fn table_records(&self, sn: &str, table: &str) -> Vec<Record> {
        self.uploads(sn)
            .iter()
            .filter(|u| u.accepted && u.endpoint == "/iclock/cdata")
            .filter(|u| {
                u.table
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case(table))
                    || u.tablename
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case(table))
            })
            .flat_map(|u| u.records.iter().cloned())
            .collect()
    }

    pub fn registration(&self, sn: &str) -> Option<&Registration> {
        self.devices.get(sn).and_then(|d| d.registration.as_ref())
    }

    pub fn session(&self, sn: &str) -> Option<&Session> {
        self.devices.get(sn).and_then(|d| d.session.as_ref())
    }

    /// Commands still waiting for a result.
    pub fn pending_commands(&self, sn: &str) -> &[QueuedCommand] {
        self.devices.get(sn).map_or(&[], |d| &d.queue)
    }

    /// Serials that contacted the server or had commands queued.
    pub fn serials(&self) -> Vec<String> {
        self.devices.keys().cloned().collect()
    }

    /// Connections closed at accept by `FaultKind::RefuseConnection`.
    pub fn refused_connections(&self) -> u64 {
        self.refused_connections
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub(crate) fn device_mut(&mut self, sn: &str) -> &mut Device {
        self.devices.entry(sn.to_string()).or_default()
    }

    pub(crate) fn next_random(&mut self) -> u64 {
        // xorshift64*: plenty for registry codes and session IDs of a test server.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A random alphanumeric string (RegistryCode: "random, up to 32 bytes").
    pub(crate) fn random_code(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        (0..len)
            .map(|_| {
                let r = self.next_random() % 57;
                char::from(ALPHABET[usize::try_from(r).unwrap_or(0)])
            })
            .collect()
    }

    /// A 32-digit uppercase hex SessionID, like the spec example.
    pub(crate) fn random_session_id(&mut self) -> String {
        format!("{:016X}{:016X}", self.next_random(), self.next_random())
    }

    /// A new command ID in the configured style, unique for this server's lifetime.
    pub(crate) fn new_command_id(&mut self, style: crate::config::IdStyle, now_ms: u64) -> u64 {
        loop {
            let id = match style {
                crate::config::IdStyle::Sequential => {
                    let id = self.next_cmd_id;
                    self.next_cmd_id += 1;
                    id
                }
                // Time-derived but scrambled in the low bits so consecutive IDs
                // are not increasing, like servers that use timestamps + random.
                crate::config::IdStyle::TimeBased => {
                    (now_ms * 1000) ^ (self.next_random() % 1_000_000)
                }
            };
            if self.used_ids.insert(id.to_string()) {
                return id;
            }
        }
    }

    /// Forgets every queued command and the IDs handed out, so the next
    /// server-assigned ID is 1 again: a server that keeps its counter and
    /// queue in memory, restarted. Results and uploads stay recorded.
    pub(crate) fn renumber_commands(&mut self) {
        self.next_cmd_id = 1;
        self.used_ids.clear();
        for device in self.devices.values_mut() {
            device.queue.clear();
        }
    }

    pub(crate) fn mark_id_used(&mut self, id: &str) {
        self.used_ids.insert(id.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_parse_and_get() {
        let r = Record::parse("time=2017-01-10 11:49:32\tpin=0\tcardno=0\tflag", '\t');
        assert_eq!(r.get("time"), Some("2017-01-10 11:49:32"));
        assert_eq!(r.get("PIN"), Some("0"));
        assert_eq!(r.get("flag"), Some(""));
        assert_eq!(r.get("missing"), None);
    }

    #[test]
    fn token_is_md5_of_code_sn_session() {
        let s = Session {
            registry_code: "Uy47fxftP3".into(),
            session_id: "30BFB04B2C8AECC72C01C03BFD549D15".into(),
        };
        assert_eq!(
            s.token("3383154200002"),
            md5_hex("Uy47fxftP3338315420000230BFB04B2C8AECC72C01C03BFD549D15")
        );
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn renumbering_starts_the_ids_at_1_again() {
        let mut st = State::default();
        let style = crate::config::IdStyle::Sequential;
        assert_eq!(st.new_command_id(style, 0), 1);
        assert_eq!(st.new_command_id(style, 0), 2);
        st.device_mut("A").queue.push(QueuedCommand {
            id: "2".into(),
            text: "X".into(),
            deliveries: 1,
        });
        st.renumber_commands();
        assert!(st.pending_commands("A").is_empty());
        assert_eq!(st.new_command_id(style, 0), 1);
    }

    #[test]
    fn time_based_ids_are_unique_and_not_monotonic() {
        let mut st = State::default();
        let ids: Vec<u64> = (0..50)
            .map(|_| st.new_command_id(crate::config::IdStyle::TimeBased, 1_700_000_000_000))
            .collect();
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(ids.windows(2).any(|w| w[1] < w[0]));
        assert!(ids.iter().all(|&i| i > 1_000_000_000_000));
    }
}
