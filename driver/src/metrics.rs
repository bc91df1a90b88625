//! What the consumer reports through the `metrics` facade (feature
//! `metrics`; without it every method here does nothing). Names follow
//! Prometheus' conventions (`_total` counters, base units in `_seconds`);
//! labels are `stream` and `group`, and `consumer` only when asked for
//! (per-consumer series multiply with every deploy).
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `xgroup_messages_delivered_total` | counter | messages handed to the handler |
//! | `xgroup_messages_acked_total` | counter | acknowledgements the server confirmed |
//! | `xgroup_messages_redelivered_total` | counter | messages handed out again (attempt > 1) |
//! | `xgroup_messages_claimed_total` | counter | entries claimed from other consumers |
//! | `xgroup_messages_retried_total` | counter | messages the handler asked to retry |
//! | `xgroup_messages_dead_lettered_total` | counter | messages dead-lettered |
//! | `xgroup_handler_failures_total` | counter | handler calls that failed (panics included) |
//! | `xgroup_reconnects_total` | counter | connections opened after the first |
//! | `xgroup_warnings_total{kind}` | counter | warnings, by kind (`reconnecting`, `write_refused`, ...) |
//! | `xgroup_handler_duration_seconds` | histogram | time from handing a batch out to its completion |
//! | `xgroup_batch_size` | histogram | messages per batch |
//! | `xgroup_message_age_seconds` | histogram | at delivery: now minus the time in the entry's id |
//! | `xgroup_batches_in_flight` | gauge | batches with the handler |
//! | `xgroup_entries_held` | gauge | entries held (handler, retries, acks and dead letters in flight) |
//! | `xgroup_group_pending` | gauge | the group's pending count, when sampled (`sample_group_stats`) |
//! | `xgroup_group_lag` | gauge | the group's lag, when sampled; NaN when the server cannot tell |

#[cfg(feature = "metrics")]
pub(crate) use enabled::Metrics;

#[cfg(not(feature = "metrics"))]
pub(crate) use disabled::Metrics;

#[cfg(feature = "metrics")]
mod enabled {
    use std::collections::HashMap;
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    use metrics::{counter, gauge, histogram, Label};
    use xgroup_core::{Batch, BatchId, MultiConsumer, Stats, Warning};

    /// The consumer's metric labels, and what was last reported.
    #[derive(Debug)]
    pub(crate) struct Metrics {
        labels: Vec<Label>,
        reported: Stats,
        started: HashMap<BatchId, Instant>,
    }

    impl Metrics {
        /// Labels `stream` and `group`, and `consumer` when asked for.
        pub(crate) fn new(names: &[String; 3], per_consumer: bool) -> Self {
            let [stream, group, consumer] = names;
            let mut labels = vec![
                Label::new("stream", stream.clone()),
                Label::new("group", group.clone()),
            ];
            if per_consumer {
                labels.push(Label::new("consumer", consumer.clone()));
            }
            Metrics {
                labels,
                reported: Stats::default(),
                started: HashMap::new(),
            }
        }

        /// A batch handed to the handler.
        pub(crate) fn delivered(&mut self, batch: &Batch) {
            self.started.insert(batch.id, Instant::now());
            let labels = self.labels.clone();
            histogram!("xgroup_batch_size", labels.clone()).record(batch.messages.len() as f64);
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let age = histogram!("xgroup_message_age_seconds", labels);
            for m in &batch.messages {
                age.record(now_ms.saturating_sub(m.id.ms) as f64 / 1000.0);
            }
        }

        /// The handler finished `batch` (or failed on it).
        pub(crate) fn completed(&mut self, batch: BatchId) {
            if let Some(start) = self.started.remove(&batch) {
                histogram!("xgroup_handler_duration_seconds", self.labels.clone())
                    .record(start.elapsed().as_secs_f64());
            }
        }

        pub(crate) fn warned(&self, warning: &Warning) {
            let mut labels = self.labels.clone();
            labels.push(Label::new("kind", warning.kind()));
            counter!("xgroup_warnings_total", labels).increment(1);
        }

        /// Counters by what changed since the last report, and the gauges.
        pub(crate) fn publish(&mut self, core: &MultiConsumer) {
            let (now, was) = (core.stats(), self.reported);
            let labels = &self.labels;
            let add = |name: &'static str, now: u64, was: u64| {
                if now > was {
                    counter!(name, labels.clone()).increment(now - was);
                }
            };
            add(
                "xgroup_messages_delivered_total",
                now.delivered,
                was.delivered,
            );
            add("xgroup_messages_acked_total", now.acked, was.acked);
            add(
                "xgroup_messages_redelivered_total",
                now.redelivered,
                was.redelivered,
            );
            add("xgroup_messages_claimed_total", now.claimed, was.claimed);
            add("xgroup_messages_retried_total", now.retried, was.retried);
            add(
                "xgroup_messages_dead_lettered_total",
                now.dead_lettered,
                was.dead_lettered,
            );
            add(
                "xgroup_handler_failures_total",
                now.handler_failures,
                was.handler_failures,
            );
            add(
                "xgroup_reconnects_total",
                now.connections.saturating_sub(1),
                was.connections.saturating_sub(1),
            );
            self.reported = now;
            gauge!("xgroup_batches_in_flight", labels.clone()).set(core.in_flight() as f64);
            gauge!("xgroup_entries_held", labels.clone()).set(core.held_entries() as f64);
            if let Some(counts) = core.group_counts() {
                gauge!("xgroup_group_pending", labels.clone()).set(counts.pending as f64);
                // Unknown (entries deleted) is NaN, never 0.
                let lag = counts.lag.map_or(f64::NAN, |lag| lag as f64);
                gauge!("xgroup_group_lag", labels.clone()).set(lag);
            }
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod disabled {
    use xgroup_core::{Batch, BatchId, MultiConsumer, Warning};

    /// Nothing is reported without the `metrics` feature.
    #[derive(Debug)]
    pub(crate) struct Metrics;

    impl Metrics {
        pub(crate) fn new(_names: &[String; 3], _per_consumer: bool) -> Self {
            Metrics
        }

        pub(crate) fn delivered(&mut self, _batch: &Batch) {}

        pub(crate) fn completed(&mut self, _batch: BatchId) {}

        pub(crate) fn warned(&self, _warning: &Warning) {}

        pub(crate) fn publish(&mut self, _core: &MultiConsumer) {}
    }
}
