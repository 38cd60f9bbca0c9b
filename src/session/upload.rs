//! Uploading the outbox (10): when an upload is due (real time, or
//! TransInterval and TransTimes), batches read ahead within one request's
//! byte budget, each checked against the server's acknowledgement before it
//! leaves the outbox. It never polls for commands.

use super::link::{self, ServerLink};
use super::transport::Method;
use super::{Session, SessionError, ACK_WRITE_EVERY, BATCH_HEADROOM, READ_AHEAD};
use crate::protocol::upload::{classify, UploadAck};
use crate::store::OutboxBatch;
use std::time::{Duration, Instant};

impl Session {
    /// Real-time: whenever something is pending. Otherwise every
    /// TransInterval, and at the TransTimes of day.
    pub(super) fn upload_due(&self, now: Instant) -> bool {
        if self.params.realtime {
            return true;
        }
        if !self.params.trans_interval.is_zero()
            && now.duration_since(self.last_upload) >= self.params.trans_interval
        {
            return true;
        }
        // Inside the first minute of a TransTimes point and not yet uploaded
        // in it. The wall clock (DST rules from the database) is read only
        // when a TransTimes point can be due.
        let since = now.duration_since(self.last_upload);
        if self.params.trans_times.is_empty() || since < Duration::from_secs(60) {
            return false;
        }
        use chrono::Timelike;
        let local = crate::engine::rules::wall_clock(self.store.conn(), &*self.clock);
        let t = local.hour() * 60 + local.minute();
        self.params
            .trans_times
            .iter()
            .any(|&(h, m)| t == u32::from(h) * 60 + u32::from(m))
    }

    /// Uploads the outbox oldest first; a batch leaves the outbox only after
    /// the server accepted it. An rtlog batch is one event unless batching
    /// is on: 10.2's body is one `${DataRecord}`, and servers that read only
    /// its first line lost the others (interop.md).
    pub fn flush_outbox(&mut self) -> Result<(), SessionError> {
        let limit = self
            .conn
            .max_package_size
            .saturating_sub(BATCH_HEADROOM)
            .max(1024);
        let batch_rtlog = self.setup.batch_rtlog;
        let max_records = move |channel: &str| {
            if channel == "rtlog" && !batch_rtlog {
                1
            } else {
                usize::MAX
            }
        };
        let mut unwritten = 0usize;
        // Batches are read READ_AHEAD at a time (Store::outbox_batches).
        let mut ahead = std::collections::VecDeque::new();
        loop {
            let t0 = Instant::now();
            if ahead.is_empty() {
                ahead.extend(self.store.outbox_batches(limit, &max_records, READ_AHEAD)?);
            }
            let Some(batch) = ahead.pop_front() else {
                break;
            };
            let t1 = Instant::now();
            self.drain_inputs()?;
            self.upload_batch(&batch)?;
            let t2 = Instant::now();
            // Accepted: in memory now, written every ACK_WRITE_EVERY records
            // and when the upload ends (Store::outbox_ack).
            self.store.outbox_ack(&batch)?;
            unwritten += batch.count;
            if unwritten >= ACK_WRITE_EVERY {
                unwritten = 0;
                self.store.outbox_compact(false)?;
            }
            log::debug!(
                "uploaded {} {} records: read {:?}, post {:?}, remove {:?}",
                batch.count,
                batch.channel,
                t1 - t0,
                t2 - t1,
                t2.elapsed()
            );
            self.last_upload = Instant::now();
            // 9: during a long upload the heartbeat is kept with ping.
            self.conn.keepalive();
        }
        self.last_upload = Instant::now();
        // Everything accepted: drop the acknowledged rows now that nothing waits.
        self.store.outbox_compact(true)?;
        // Within ~MaxAttLogCount, through acknowledged events only.
        match self.store.prune_event_log() {
            Ok(0) => {}
            Ok(n) => log::info!("event log at its cap: {n} uploaded event(s) pruned"),
            Err(e) => log::warn!("cannot prune the event log ({e}); it stays over its cap for now"),
        }
        Ok(())
    }

    fn upload_batch(&mut self, batch: &OutboxBatch) -> Result<(), SessionError> {
        let sn = &self.setup.serial;
        let count = batch.count;
        // `count=` wherever records are counted (interop.md: always send
        // it); 10.2 and 10.3 show none for rtlog and rtstate, and servers
        // that take the records alone ignore it.
        let pq = match batch.channel.split_once('/') {
            Some(("tabledata", name)) => {
                format!("/iclock/cdata?SN={sn}&table=tabledata&tablename={name}&count={count}")
            }
            _ if matches!(batch.channel.as_str(), "rtlog" | "rtstate") => {
                format!(
                    "/iclock/cdata?SN={sn}&table={}&count={count}",
                    batch.channel
                )
            }
            _ => format!("/iclock/cdata?SN={sn}&table={}", batch.channel),
        };
        let reply = self
            .conn
            .request(Method::Post, &pq, batch.body.as_bytes())?;
        if !reply.is_success() {
            return Err(self.status_error(reply.status, &link::endpoint_of(&pq)));
        }
        match classify(&reply.text()) {
            UploadAck::Accepted { count: Some(n) }
                if n != count as u64 && batch.channel.starts_with("tabledata") =>
            {
                log::warn!(
                    "server acknowledged {n} of {count} {} records; treating the 2xx as received",
                    batch.channel
                );
                Ok(())
            }
            UploadAck::Accepted { .. } => Ok(()),
            UploadAck::Rejected(detail) => Err(SessionError::UploadRejected {
                endpoint: format!("cdata table={}", batch.channel),
                detail,
            }),
        }
    }
}
