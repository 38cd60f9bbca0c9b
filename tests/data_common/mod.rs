//! Shared helpers of the data-command tests: an in-memory server link that
//! records every request, and a harness that runs command lines through the
//! dispatcher exactly as the session does.
#![allow(dead_code)]

use chrono::TimeZone;
use lintel::clock::ManualClock;
use lintel::commands::executors::{install, ExecutorEnv};
use lintel::commands::{CommandContext, CommandOutcome, Dispatcher};
use lintel::platform::RecordingPlatform;
use lintel::protocol::command::Command;
use lintel::protocol::{parse_getrequest, ProtocolVersion};
use lintel::session::link::{LinkError, ServerLink};
use lintel::session::origin::OriginPolicy;
use lintel::session::transport::{HttpReply, TransportError};
use lintel::store::Store;
use std::collections::HashMap;
use std::io::Write;

/// How the fake server answers a POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `<tablename>=<records>` for tabledata, `OK` otherwise (the spec).
    Spec,
    Status(u16),
    Body(String),
    NoResponse,
}

/// A recorded POST.
#[derive(Debug, Clone)]
pub struct Post {
    pub path_and_query: String,
    pub body: Vec<u8>,
}

impl Post {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.path_and_query.split_once('?')?.1;
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    }
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("")
    }
}

pub struct FakeLink {
    pub serial: String,
    pub posts: Vec<Post>,
    /// Paths and queries of the GETs, in order.
    pub gets: Vec<String>,
    pub answer: Answer,
    pub files: HashMap<String, Vec<u8>>,
    pub max_package_size: usize,
    pub version: ProtocolVersion,
}

impl FakeLink {
    pub fn new() -> Self {
        FakeLink {
            serial: "SN1".into(),
            posts: Vec::new(),
            gets: Vec::new(),
            answer: Answer::Spec,
            files: HashMap::new(),
            max_package_size: 2 * 1024 * 1024,
            version: ProtocolVersion::new(3, 1, 2),
        }
    }
}

fn reply(status: u16, body: &str) -> HttpReply {
    HttpReply {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

impl ServerLink for FakeLink {
    fn serial(&self) -> &str {
        &self.serial
    }
    fn get(&mut self, pq: &str) -> Result<HttpReply, LinkError> {
        self.gets.push(pq.to_owned());
        Ok(reply(200, "OK"))
    }
    fn post(&mut self, pq: &str, body: &[u8]) -> Result<HttpReply, LinkError> {
        self.posts.push(Post {
            path_and_query: pq.to_owned(),
            body: body.to_vec(),
        });
        let post = self.posts.last().cloned().unwrap();
        match &self.answer {
            Answer::Spec => {
                let is_tabledata = post.query("type").as_deref() == Some("tabledata")
                    || post.query("table").as_deref() == Some("tabledata");
                if is_tabledata && post.query("datafmt").is_none() {
                    let n = post.text().lines().filter(|l| !l.is_empty()).count();
                    Ok(reply(
                        200,
                        &format!("{}={n}", post.query("tablename").unwrap()),
                    ))
                } else if post.query("datafmt").is_some() {
                    Ok(reply(
                        200,
                        &format!("transaction={}", post.query("count").unwrap()),
                    ))
                } else {
                    Ok(reply(200, "OK"))
                }
            }
            Answer::Status(s) => Err(LinkError::Status {
                status: *s,
                endpoint: post.path().to_owned(),
            }),
            Answer::Body(b) => Ok(reply(200, b)),
            Answer::NoResponse => Err(LinkError::Transport(TransportError::Timeout {
                url: pq.to_owned(),
                message: "no answer".into(),
            })),
        }
    }
    fn download(
        &mut self,
        url: &str,
        _headers: &[(&str, String)],
        max_bytes: u64,
        sink: &mut dyn Write,
    ) -> Result<HttpReply, LinkError> {
        // The same origin rule as the real link.
        OriginPolicy::new(self.base_url(), &[]).resolve(url)?;
        match self.files.get(url) {
            Some(bytes) if bytes.len() as u64 > max_bytes => {
                Err(LinkError::Transport(TransportError::TooLarge {
                    url: url.to_owned(),
                    limit: max_bytes,
                }))
            }
            Some(bytes) => {
                sink.write_all(bytes)
                    .map_err(|e| LinkError::Transport(TransportError::Sink(e)))?;
                Ok(reply(200, ""))
            }
            None => Ok(reply(404, "")),
        }
    }
    fn keepalive(&mut self) {}
    fn max_package_size(&self) -> usize {
        self.max_package_size
    }
    fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }
    fn base_url(&self) -> &str {
        "http://fake"
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub link: FakeLink,
    pub clock: ManualClock,
    pub platform: RecordingPlatform,
    pub dispatcher: Dispatcher,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut dispatcher = Dispatcher::new();
        install(
            &mut dispatcher,
            &ExecutorEnv {
                data_dir: dir.path().to_owned(),
                serial: "SN1".into(),
                ..Default::default()
            },
        );
        Harness {
            dir,
            store,
            link: FakeLink::new(),
            clock: ManualClock::new(chrono::Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()),
            platform: RecordingPlatform::new(),
            dispatcher,
        }
    }

    /// Runs a getrequest line (`C:<id>:...`, further records after LF).
    pub fn run(&mut self, line: &str) -> CommandOutcome {
        let (cmds, issues) = parse_getrequest(line);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(cmds.len(), 1, "{line:?}");
        let command = Command::classify(&cmds[0]);
        let mut ctx = CommandContext {
            store: &mut self.store,
            link: &mut self.link,
            clock: &self.clock,
            platform: &self.platform,
        };
        self.dispatcher.execute(&command, &mut ctx)
    }

    /// Runs and returns the Return code.
    pub fn ret(&mut self, line: &str) -> i64 {
        self.run(line).ret
    }

    /// The records a `DATA QUERY ... fielddesc=*,filter=*` of `table` posts.
    pub fn query_lines(&mut self, table: &str) -> Vec<String> {
        self.link.posts.clear();
        let ret = self.ret(&format!(
            "C:9000:DATA QUERY tablename={table},fielddesc=*,filter=*"
        ));
        assert!(ret >= 0, "query of {table} failed: {ret}");
        let lines: Vec<String> = self
            .link
            .posts
            .iter()
            .flat_map(|p| p.text().lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(i64::try_from(lines.len()).unwrap(), ret);
        lines
    }

    pub fn count_rows(&self, sql_table: &str) -> i64 {
        self.store
            .conn()
            .query_row(&format!("SELECT COUNT(*) FROM {sql_table}"), [], |r| {
                r.get(0)
            })
            .unwrap()
    }

    /// A snapshot of every data table, to show a failed command changed nothing.
    pub fn snapshot(&self) -> Vec<(String, i64, String)> {
        let mut out = Vec::new();
        // The error log is left out: logging a failed command is the point of it.
        for t in lintel::commands::data::schema::TABLES
            .iter()
            .filter(|t| t.name != "errorlog")
        {
            let mut stmt = self
                .store
                .conn()
                .prepare(&format!("SELECT * FROM {} ORDER BY rowid", t.sql))
                .unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut s = String::new();
                    for i in 0..n {
                        s.push_str(&format!("{:?}|", r.get_ref(i)?));
                    }
                    Ok(s)
                })
                .unwrap();
            let all: Vec<String> = rows.map(Result::unwrap).collect();
            out.push((
                t.sql.to_owned(),
                i64::try_from(all.len()).unwrap(),
                all.join("\n"),
            ));
        }
        out
    }
}
