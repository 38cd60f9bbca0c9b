//! Connecting (7.1-7.5): initialisation, the encrypted-PUSH exchange when
//! it applies, registration on every connection, the configuration download
//! and the device options pushed after it. Leaves the session online or
//! returns why not; it never uploads events or runs commands.

use super::params::{self, ServerParams};
use super::transport::Method;
use super::{registry, sealed, Session, SessionError, SessionState};
use crate::protocol::kv::KeyValues;
use std::time::Instant;

impl Session {
    /// Initialisation (7.1), registration (7.4, on every connection), and the
    /// configuration download (7.5).
    pub fn connect(&mut self) -> Result<(), SessionError> {
        let sn = self.setup.serial.clone();
        self.conn.timeout = self.params.timeout;
        // 7.1: no token yet; the device introduces itself, in plain text.
        self.conn.set_token(None);
        self.encryption.drop_channel();
        let pq = format!(
            "/iclock/cdata?SN={sn}&options=all&pushver={}&DeviceType=acc",
            crate::protocol::DEVICE_PUSH_VERSION
        );
        let reply = self.conn.request(Method::Get, &pq, b"")?;
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/cdata"));
        }
        let init = KeyValues::parse_lines(&reply.text());
        params::check_answer(&init, "/iclock/cdata")?;
        self.init_registered = init
            .get("registry")
            .is_some_and(|v| v.eq_ignore_ascii_case("ok"));
        if self.init_registered {
            self.params.apply(&init);
            ServerParams::persist(&init, &mut self.store)?;
        } else if !init.contains("OK") {
            return Err(SessionError::BadReply {
                endpoint: "/iclock/cdata".into(),
                detail: "neither OK nor registry=ok".into(),
            });
        }

        // 7.2, 7.3: the exchange, decided by the version of the init answer
        // (or the one the server announced last time).
        let announced = crate::session::params::announced_version(&init).or_else(|| {
            self.store
                .option("PushProtVer")
                .ok()
                .flatten()
                .and_then(|v| crate::protocol::ProtocolVersion::parse(&v))
        });
        let url = self.setup.server_url.clone();
        let mode = self
            .encryption
            .establish(&mut self.conn, &sn, &url, announced)?;

        // 7.4: "the client needs to be registered for each connection".
        self.register()?;
        self.refresh_token();
        self.download_config()?;
        self.refresh_token();

        self.conn.timeout = self.params.timeout;
        self.conn.heartbeat = self.params.request_delay;
        self.conn.version = self.params.negotiated();
        self.ask_server_time();
        log::info!(
            "connected to {} ({} {}), protocol {}, {}, polling every {}s",
            self.setup.server_url,
            self.params.server_name.as_deref().unwrap_or("server"),
            self.params.server_version.as_deref().unwrap_or("?"),
            self.conn.version,
            match mode {
                sealed::ChannelMode::Encrypted => "encrypted",
                sealed::ChannelMode::Plain => "plain text",
            },
            self.params.request_delay.as_secs()
        );
        if self.setup.push_options {
            self.push_device_options()?;
        }
        self.state = SessionState::Online;
        self.was_online = true;
        self.next_poll = Instant::now();
        // Event 214: connected to the server.
        self.log_device_event(214);
        if let Some(upgrade) = &self.upgrade {
            upgrade.on_registered(&mut self.store, self.conn.version, &*self.clock);
        }
        Ok(())
    }

    /// After every connection the server is asked for its time and zone
    /// (12.5.1's rtdata; the spec has devices ask after SET OPTIONS
    /// DateTime, and a device that has just started needs both). A server
    /// without it keeps the connection: the Date header and SET OPTIONS
    /// remain, and the zone stays as it was.
    fn ask_server_time(&mut self) {
        if let Err(e) =
            crate::commands::server_time::ask_server_time(&mut self.conn, &self.store, &*self.clock)
        {
            log::info!("{e}; the local zone stays {}", self.clock.zone().describe());
        }
    }

    fn register(&mut self) -> Result<(), SessionError> {
        let store = &self.store;
        let line =
            registry::capability_line(&self.setup.device, &|k| store.option(k).ok().flatten());
        // The facts announced are what GET OPTIONS answers later (LockCount,
        // FirmVer, ...); negotiated biometrics keep the server's values, and
        // so does NewVFStyles: the engine reads the server's answer there (10.2).
        let facts = KeyValues::parse_comma(&line);
        self.store.set_options(
            facts
                .iter()
                .filter(|(k, _)| !k.starts_with("MultiBio") && *k != "NewVFStyles"),
        )?;
        let pq = format!("/iclock/registry?SN={}", self.setup.serial);
        let reply = self.conn.request(Method::Post, &pq, line.as_bytes())?;
        if reply.status == 404 && self.init_registered {
            log::debug!("server has no /iclock/registry; its init answer registered us");
            return Ok(());
        }
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/registry"));
        }
        let kv = KeyValues::parse_lines(&reply.text());
        params::check_answer(&kv, "/iclock/registry")?;
        match kv.get("RegistryCode") {
            Some(code) if !code.is_empty() => {
                if !kv.contains("SessionID") && self.params.registry_code.as_deref() != Some(code) {
                    // A new registration starts a new session whose SessionID
                    // comes with the push reply: an older one would make a
                    // wrong token.
                    self.params.session_id.clear();
                }
                self.params.apply(&kv);
                ServerParams::persist(&kv, &mut self.store)?;
                Ok(())
            }
            _ if self.init_registered && self.params.registry_code.is_some() => Ok(()),
            _ => Err(SessionError::BadReply {
                endpoint: "/iclock/registry".into(),
                detail: "no RegistryCode".into(),
            }),
        }
    }

    fn download_config(&mut self) -> Result<(), SessionError> {
        let pq = format!("/iclock/push?SN={}", self.setup.serial);
        let reply = self.conn.request(Method::Post, &pq, b"")?;
        if reply.status == 404 && self.init_registered {
            log::debug!("server has no /iclock/push; using the init answer's parameters");
            return Ok(());
        }
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/push"));
        }
        let kv = KeyValues::parse_lines(&reply.text());
        params::check_answer(&kv, "/iclock/push")?;
        self.params.apply(&kv);
        ServerParams::persist(&kv, &mut self.store)?;
        Ok(())
    }

    /// 7.6: the device's parameters, comma-separated.
    fn push_device_options(&mut self) -> Result<(), SessionError> {
        let d = &self.setup.device;
        let mut kv = KeyValues::default();
        kv.0.push(("~DeviceName".into(), d.name.clone()));
        if let Some(mac) = &d.mac {
            kv.0.push(("MAC".into(), mac.clone()));
        }
        kv.0.push((
            "TransactionCount".into(),
            self.store.event_count()?.to_string(),
        ));
        kv.0.push(("FWVersion".into(), d.firmware_version.clone()));
        kv.0.push((
            "PushVersion".into(),
            crate::protocol::DEVICE_PUSH_VERSION.to_string(),
        ));
        let pq = format!("/iclock/cdata?SN={}&table=options", self.setup.serial);
        let reply = self
            .conn
            .request(Method::Post, &pq, kv.to_comma_line().as_bytes())?;
        if !reply.is_success() {
            return Err(self.status_error(reply.status, "/iclock/cdata?table=options"));
        }
        Ok(())
    }
}
