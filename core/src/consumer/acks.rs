//! Acknowledgements (`XACK`; with delete-on-ack `XACKDEL`, or `XACK` and
//! `XDEL` in one `MULTI`) and dead letters (moved to a stream with their
//! ack in one `MULTI`, dropped, or kept pending).

use std::time::Instant;

use crate::config::DeadLetter;
use crate::error::ProtocolError;
use crate::reply::{self, ReplyError, Value};
use crate::resp::Frame;

use super::ledger::DeadItem;
use super::report::{DeadLetterAction, DeadLettered, Event, Warning};
use super::timers::Timer;
use super::Consumer;

/// How many ids one `XACK` carries at most.
const MAX_IDS_PER_ACK: usize = 10_000;

impl Consumer {
    /// Sends every acknowledgement waiting, in commands of at most
    /// [`MAX_IDS_PER_ACK`] ids.
    pub(super) fn flush_acks(&mut self, now: Instant) {
        let delete = self.cfg.delete_on_ack;
        let has_xackdel = self
            .links
            .control()
            .session()
            .is_some_and(|s| s.has_xackdel);
        while let Some(ids) = self.ledger.send_acks(MAX_IDS_PER_ACK) {
            match (delete, has_xackdel) {
                (false, _) => self.outbox.ack(now, ids),
                (true, true) => self.outbox.ack_delete(now, ids),
                (true, false) => self.outbox.ack_delete_tx(now, ids),
            }
        }
    }

    /// Dead letters: to the stream (atomically with their ack), dropped
    /// (acked), or kept pending, as configured.
    pub(super) fn flush_dead(&mut self, now: Instant) {
        // After a failed move, not before its backoff is over.
        if self.timers.is_armed(Timer::DeadLetterRetry) {
            return;
        }
        let items = self.ledger.take_dead();
        if items.is_empty() {
            return;
        }
        match self.cfg.dead_letter.clone() {
            Some(DeadLetter::Stream(key)) => {
                let items = self.ledger.sending_dead(items);
                let delete = self.cfg.delete_on_ack;
                self.outbox.dead_letter_move(now, &key, items, delete);
            }
            Some(DeadLetter::Drop) => {
                for item in items {
                    self.ledger.ack(item.id);
                    self.dead_lettered(item, DeadLetterAction::Dropped);
                }
            }
            Some(DeadLetter::KeepPending) | None => {
                for item in items {
                    self.dead_lettered(item, DeadLetterAction::KeptPending);
                }
            }
        }
    }

    /// `XACK`'s reply: how many were acked.
    pub(super) fn on_ack(&mut self, now: Instant, frame: Frame) {
        let result = reply::integer(frame, "XACK");
        // Failed ids are sent again after reconnecting.
        self.ledger.acks_answered(result.is_ok());
        match result {
            Ok(n) => self.stats.acked += u64::try_from(n).unwrap_or(0),
            Err(e) => self.command_failed(now, e),
        }
    }

    /// `XACKDEL`'s reply: one result per id, 1 for acked and deleted.
    pub(super) fn on_ack_delete(&mut self, now: Instant, frame: Frame) {
        let result = match Value::from_frame(frame) {
            Value::Array(results) => Ok(results),
            Value::Error(e) => Err(ReplyError::Server(e)),
            other => Err(ReplyError::Protocol(ProtocolError::unexpected(
                "XACKDEL",
                format!("expected an array, got {other:?}"),
            ))),
        };
        self.ledger.acks_answered(result.is_ok());
        match result {
            Ok(results) => {
                let acked = results.iter().filter(|r| matches!(r, Value::Int(1)));
                self.stats.acked += acked.count() as u64;
            }
            Err(ReplyError::Protocol(e)) => self.protocol_failure(now, e),
            Err(e) => self.command_failed(now, e),
        }
    }

    /// One frame of an ack transaction: `MULTI`'s `+OK` or a `+QUEUED`
    /// (another frame follows), or `EXEC`'s results.
    pub(super) fn on_tx_frame(
        &mut self,
        now: Instant,
        (left, mut failed): (usize, Option<ReplyError>),
        frame: Frame,
    ) {
        if left > 1 {
            if let Err(e) = reply::ok(frame, "MULTI") {
                failed.get_or_insert(e);
            }
            return self.outbox.await_tx(now, left - 1, failed);
        }
        let result = match failed {
            Some(e) => Err(e),
            None => exec_results(frame),
        };
        // Nothing of a failed transaction happened: sent again later.
        self.ledger.acks_answered(result.is_ok());
        match result {
            // XACK's count, then XDEL's.
            Ok(results) => {
                if let Some(Value::Int(n)) = results.first() {
                    self.stats.acked += u64::try_from(*n).unwrap_or(0);
                }
            }
            Err(e) => self.command_failed(now, e),
        }
    }

    /// The dead-letter script's reply: per entry its `XACK` count (moved) or
    /// the `XADD`'s error (left pending, moved again after a backoff).
    pub(super) fn on_dead_letters(&mut self, now: Instant, frame: Frame) {
        let items = self.ledger.dead_answered();
        let results = match Value::from_frame(frame) {
            Value::Array(results) if results.len() == items.len() => results,
            Value::Error(e) if e.is_transient() => {
                self.ledger.dead_again(items);
                return self.command_failed(now, ReplyError::Server(e));
            }
            // The whole script refused (out of memory, no permission for
            // EVAL, ...): every entry stays pending.
            Value::Error(e) => vec![Value::Error(e); items.len()],
            other => {
                self.ledger.dead_again(items);
                let detail = format!("expected one result per entry, got {other:?}");
                return self.protocol_failure(now, ProtocolError::unexpected("EVAL", detail));
            }
        };
        let key = match &self.cfg.dead_letter {
            Some(DeadLetter::Stream(key)) => key.clone(),
            _ => Default::default(),
        };
        let (mut failed, mut error) = (Vec::new(), None);
        for (item, result) in items.into_iter().zip(results) {
            match result {
                Value::Error(e) => {
                    error.get_or_insert(e);
                    failed.push(item);
                }
                acked => {
                    if let Value::Int(n) = acked {
                        self.stats.acked += u64::try_from(n).unwrap_or(0);
                    }
                    self.dead_lettered(item, DeadLetterAction::Moved(key.clone()));
                }
            }
        }
        let Some(error) = error else {
            return self.ledger.dead_moved();
        };
        let ids = failed.iter().map(|d| d.id).collect();
        let attempt = self.ledger.dead_again(failed);
        let (initial, max) = self.cfg.retry_backoff;
        let retry_in = initial
            .saturating_mul(1 << attempt.saturating_sub(1).min(20))
            .min(max);
        self.timers.set(Timer::DeadLetterRetry, now + retry_in);
        self.warn(Warning::DeadLetterFailed {
            ids,
            error,
            retry_in,
        });
    }

    fn dead_lettered(&mut self, item: DeadItem, action: DeadLetterAction) {
        self.stats.dead_lettered += 1;
        self.events.push_back(Event::DeadLettered(DeadLettered {
            id: item.id,
            deliveries: item.attempt,
            reason: item.reason,
            action,
        }));
    }
}

/// `EXEC`'s results, or the first error among them.
fn exec_results(frame: Frame) -> Result<Vec<Value>, ReplyError> {
    match Value::from_frame(frame) {
        Value::Array(results) => match results.iter().find_map(|r| match r {
            Value::Error(e) => Some(e.clone()),
            _ => None,
        }) {
            Some(e) => Err(ReplyError::Server(e)),
            None => Ok(results),
        },
        Value::Error(e) => Err(ReplyError::Server(e)),
        other => Err(ReplyError::Protocol(ProtocolError::unexpected(
            "EXEC",
            format!("expected an array, got {other:?}"),
        ))),
    }
}

/// Whether `INFO server` describes a server with `XACKDEL` (Redis 8.2+;
/// Valkey reports a fake `redis_version`, so its own field decides).
pub(super) fn server_has_xackdel(info: &[u8]) -> bool {
    let text = String::from_utf8_lossy(info);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .map(str::trim)
    };
    if field("valkey_version").is_some() {
        return false;
    }
    let Some(version) = field("redis_version") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (8, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xackdel_is_detected_from_info() {
        assert!(server_has_xackdel(
            b"# Server\r\nredis_version:8.2.1\r\nredis_mode:standalone\r\n"
        ));
        assert!(server_has_xackdel(b"redis_version:9.0.0\r\n"));
        assert!(!server_has_xackdel(b"# Server\r\nredis_version:7.0.15\r\n"));
        assert!(!server_has_xackdel(b"redis_version:8.0.2\r\n"));
        // Valkey reports a fake redis_version; its own field decides.
        assert!(!server_has_xackdel(
            b"redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.1.1\r\n"
        ));
        assert!(!server_has_xackdel(b"garbage"));
    }
}
