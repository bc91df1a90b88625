//! Which handler calls run when: at most `concurrency` at once; with a
//! per-message handler each batch split into its messages, one decision
//! collected per message until the batch is complete; with `order_by`,
//! messages of one key one at a time, in delivery order.

use std::collections::{HashMap, VecDeque};
use std::mem;

use tracing::Span;
use xgroup_core::{Batch, BatchId, Disposition, Outcome, StreamId};

use crate::each::{MessageJob, OrderBy, Progress, ProgressSet, Ticket};

/// A handler call to start.
#[derive(Debug)]
pub(crate) enum Job {
    /// A batch, for a batch handler.
    Batch(Batch),
    /// One message, for a per-message handler.
    Message(MessageJob),
}

/// The decisions of a batch's messages, until each has one.
#[derive(Debug)]
pub(crate) struct Collector {
    left: usize,
    decisions: Vec<(StreamId, Disposition)>,
}

impl Collector {
    pub(crate) fn new(messages: usize) -> Self {
        Collector {
            left: messages,
            decisions: Vec::with_capacity(messages),
        }
    }

    /// One message's decision; the batch's outcome once the last is in.
    pub(crate) fn decide(&mut self, id: StreamId, disposition: Disposition) -> Option<Outcome> {
        if self.left == 0 {
            return None;
        }
        self.decisions.push((id, disposition));
        self.left -= 1;
        (self.left == 0).then(|| Outcome::Each(mem::take(&mut self.decisions)))
    }
}

/// What the driver runs and when (see the module docs).
#[derive(Debug)]
pub(crate) struct Scheduler {
    limit: usize,
    per_message: bool,
    order_by: Option<OrderBy>,
    running: usize,
    /// Calls free to start, in delivery order.
    ready: VecDeque<Job>,
    /// Keys with a call ready or running, each with the calls of that key
    /// behind it, in delivery order.
    keys: HashMap<u64, VecDeque<MessageJob>>,
    /// Batches split into messages, collecting their decisions.
    open: HashMap<BatchId, Collector>,
}

impl Scheduler {
    pub(crate) fn new(limit: usize, per_message: bool, order_by: Option<OrderBy>) -> Self {
        Scheduler {
            limit: limit.max(1),
            per_message,
            order_by,
            running: 0,
            ready: VecDeque::new(),
            keys: HashMap::new(),
            open: HashMap::new(),
        }
    }

    /// Whether batches are split into messages.
    pub(crate) fn per_message(&self) -> bool {
        self.per_message
    }

    /// A batch the core delivered. Returns its outcome at once when there
    /// is nothing to handle (an empty batch split into messages).
    pub(crate) fn deliver(
        &mut self,
        batch: Batch,
        span: &Span,
        progress: &ProgressSet,
    ) -> Option<(BatchId, Outcome)> {
        if !self.per_message {
            self.ready.push_back(Job::Batch(batch));
            return None;
        }
        let id = batch.id;
        if batch.messages.is_empty() {
            return Some((id, Outcome::Each(Vec::new())));
        }
        self.open.insert(id, Collector::new(batch.messages.len()));
        for message in batch.messages {
            let key = self.order_by.as_ref().map(|o| o.key(&message));
            let job = MessageJob {
                ticket: Ticket {
                    batch: id,
                    id: message.id,
                    key,
                },
                message,
                span: span.clone(),
                progress: Progress::new(id, progress.clone()),
            };
            match key {
                Some(k) => match self.keys.get_mut(&k) {
                    Some(behind) => behind.push_back(job),
                    None => {
                        self.keys.insert(k, VecDeque::new());
                        self.ready.push_back(Job::Message(job));
                    }
                },
                None => self.ready.push_back(Job::Message(job)),
            }
        }
        None
    }

    /// The next call to start, if one is ready and under the limit.
    pub(crate) fn next(&mut self) -> Option<Job> {
        if self.running >= self.limit {
            return None;
        }
        let job = self.ready.pop_front()?;
        self.running += 1;
        Some(job)
    }

    /// A batch handler's call ended.
    pub(crate) fn batch_done(&mut self) {
        self.running = self.running.saturating_sub(1);
    }

    /// A message's call ended with this decision: the next message of its
    /// key is free to start, and its batch's outcome is returned once
    /// every message of the batch has its decision.
    pub(crate) fn message_done(
        &mut self,
        ticket: Ticket,
        disposition: Disposition,
    ) -> Option<Outcome> {
        self.running = self.running.saturating_sub(1);
        if let Some(k) = ticket.key {
            if let Some(behind) = self.keys.get_mut(&k) {
                match behind.pop_front() {
                    Some(next) => self.ready.push_back(Job::Message(next)),
                    None => {
                        self.keys.remove(&k);
                    }
                }
            }
        }
        self.decide(ticket.batch, ticket.id, disposition)
    }

    /// A graceful stop: calls not started are not started. Their messages
    /// are kept pending (redelivered later), their batches left alone
    /// (pending too); returns the outcomes of the batches that are
    /// complete with that.
    pub(crate) fn drop_queued(&mut self) -> Vec<(BatchId, Outcome)> {
        let mut dropped: Vec<MessageJob> = Vec::new();
        let mut done = Vec::new();
        for job in mem::take(&mut self.ready) {
            match job {
                Job::Batch(batch) => done.push((batch.id, Outcome::AckNone)),
                Job::Message(job) => {
                    // Its key has nothing running: the calls behind it go too.
                    if let Some(k) = job.ticket.key {
                        dropped.extend(self.keys.remove(&k).into_iter().flatten());
                    }
                    dropped.push(job);
                }
            }
        }
        // Keys left have a call running: what waits behind it goes.
        for behind in self.keys.values_mut() {
            dropped.extend(behind.drain(..));
        }
        for job in dropped {
            let Ticket { batch, id, .. } = job.ticket;
            if let Some(outcome) = self.decide(batch, id, Disposition::Keep) {
                done.push((batch, outcome));
            }
        }
        done
    }

    fn decide(&mut self, batch: BatchId, id: StreamId, d: Disposition) -> Option<Outcome> {
        let outcome = self.open.get_mut(&batch)?.decide(id, d);
        if outcome.is_some() {
            self.open.remove(&batch);
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    use xgroup_core::{Message, Source};

    fn batch(id: u64, messages: &[(u64, &str)]) -> Batch {
        Batch {
            id: BatchId(id),
            stream: "s".into(),
            source: Source::New,
            messages: messages
                .iter()
                .map(|&(ms, key)| Message {
                    id: StreamId::new(ms, 0),
                    fields: [("key", key)].into_iter().collect(),
                    attempt: 1,
                })
                .collect(),
            lease: None,
        }
    }

    fn by_key() -> Option<OrderBy> {
        Some(OrderBy::new(|m: &Message| {
            m.fields.get("key").map(<[u8]>::to_vec)
        }))
    }

    fn progress() -> ProgressSet {
        Arc::new(Mutex::new(HashSet::new()))
    }

    fn message(job: Job) -> MessageJob {
        match job {
            Job::Message(m) => m,
            Job::Batch(b) => panic!("a batch job: {b:?}"),
        }
    }

    fn start_all(s: &mut Scheduler) -> Vec<MessageJob> {
        std::iter::from_fn(|| s.next()).map(message).collect()
    }

    fn ms(jobs: &[MessageJob]) -> Vec<u64> {
        jobs.iter().map(|j| j.message.id.ms).collect()
    }

    #[test]
    fn collector_completes_with_every_decision_once() {
        let mut c = Collector::new(2);
        assert_eq!(c.decide(StreamId::new(1, 0), Disposition::Ack), None);
        let outcome = c.decide(StreamId::new(2, 0), Disposition::Retry);
        assert_eq!(
            outcome,
            Some(Outcome::Each(vec![
                (StreamId::new(1, 0), Disposition::Ack),
                (StreamId::new(2, 0), Disposition::Retry),
            ]))
        );
        // A stray decision after completion completes nothing again.
        assert_eq!(c.decide(StreamId::new(3, 0), Disposition::Ack), None);
    }

    #[test]
    fn batches_run_up_to_the_limit() {
        let mut s = Scheduler::new(2, false, None);
        let p = progress();
        for id in 1..=3 {
            assert!(s
                .deliver(batch(id, &[(id, "a")]), &Span::none(), &p)
                .is_none());
        }
        let started: Vec<u64> = std::iter::from_fn(|| s.next())
            .map(|j| match j {
                Job::Batch(b) => b.id.0,
                Job::Message(m) => panic!("{m:?}"),
            })
            .collect();
        assert_eq!(started, [1, 2]);
        s.batch_done();
        assert!(matches!(s.next(), Some(Job::Batch(b)) if b.id == BatchId(3)));
        assert!(s.next().is_none());
    }

    #[test]
    fn messages_run_up_to_the_limit_and_complete_their_batch() {
        let mut s = Scheduler::new(2, true, None);
        let p = progress();
        assert!(s
            .deliver(batch(1, &[(1, "a"), (2, "b"), (3, "c")]), &Span::none(), &p)
            .is_none());
        let first = start_all(&mut s);
        assert_eq!(ms(&first), [1, 2]);
        assert_eq!(s.message_done(first[1].ticket(), Disposition::Ack), None);
        let next = start_all(&mut s);
        assert_eq!(ms(&next), [3]);
        assert_eq!(s.message_done(next[0].ticket(), Disposition::Keep), None);
        let outcome = s.message_done(first[0].ticket(), Disposition::Retry);
        assert_eq!(
            outcome,
            Some(Outcome::Each(vec![
                (StreamId::new(2, 0), Disposition::Ack),
                (StreamId::new(3, 0), Disposition::Keep),
                (StreamId::new(1, 0), Disposition::Retry),
            ]))
        );
    }

    #[test]
    fn an_empty_batch_is_complete_at_once() {
        let mut s = Scheduler::new(2, true, None);
        let done = s.deliver(batch(7, &[]), &Span::none(), &progress());
        assert_eq!(done, Some((BatchId(7), Outcome::Each(Vec::new()))));
        assert!(s.next().is_none());
    }

    #[test]
    fn one_key_runs_one_at_a_time_in_order_across_batches_others_in_parallel() {
        let mut s = Scheduler::new(10, true, by_key());
        let p = progress();
        s.deliver(batch(1, &[(1, "a"), (2, "a"), (3, "b")]), &Span::none(), &p);
        s.deliver(batch(2, &[(4, "a"), (5, "c"), (6, "b")]), &Span::none(), &p);
        // One of each key at first.
        let first = start_all(&mut s);
        assert_eq!(ms(&first), [1, 3, 5]);
        // "a" finishes: the next "a" (2) starts; then 4 after it.
        assert_eq!(s.message_done(first[0].ticket(), Disposition::Ack), None);
        let next = start_all(&mut s);
        assert_eq!(ms(&next), [2]);
        assert_eq!(s.message_done(first[1].ticket(), Disposition::Ack), None);
        assert_eq!(ms(&start_all(&mut s)), [6]);
        // 2 was batch 1's last message: complete.
        let done = s.message_done(next[0].ticket(), Disposition::Ack);
        assert!(
            matches!(&done, Some(Outcome::Each(d)) if d.len() == 3),
            "{done:?}"
        );
        assert!(!s.open.contains_key(&BatchId(1)));
        let last = start_all(&mut s);
        assert_eq!(ms(&last), [4]);
    }

    #[test]
    fn a_key_waits_for_its_running_call_even_with_free_slots() {
        let mut s = Scheduler::new(4, true, by_key());
        let p = progress();
        s.deliver(batch(1, &[(1, "a"), (2, "a")]), &Span::none(), &p);
        let first = start_all(&mut s);
        assert_eq!(ms(&first), [1]);
        assert!(s.next().is_none());
        assert_eq!(s.message_done(first[0].ticket(), Disposition::Ack), None);
        let second = start_all(&mut s);
        assert_eq!(ms(&second), [2]);
        let outcome = s.message_done(second[0].ticket(), Disposition::Ack);
        assert!(matches!(outcome, Some(Outcome::Each(d)) if d.len() == 2));
        // The key is free again.
        assert!(s.keys.is_empty());
    }

    #[test]
    fn a_stop_keeps_what_has_not_started_and_completes_what_it_can() {
        let mut s = Scheduler::new(1, true, by_key());
        let p = progress();
        s.deliver(batch(1, &[(1, "a"), (2, "a"), (3, "b")]), &Span::none(), &p);
        s.deliver(batch(2, &[(4, "c")]), &Span::none(), &p);
        let running = start_all(&mut s);
        assert_eq!(ms(&running), [1]);
        let done = s.drop_queued();
        // Batch 2 had nothing running: complete, its message kept.
        assert_eq!(
            done,
            [(
                BatchId(2),
                Outcome::Each(vec![(StreamId::new(4, 0), Disposition::Keep)])
            )]
        );
        assert!(s.next().is_none());
        // Batch 1 completes when its running call does.
        let outcome = s.message_done(running[0].ticket(), Disposition::Ack);
        let Some(Outcome::Each(mut d)) = outcome else {
            panic!("{outcome:?}")
        };
        d.sort_by_key(|(id, _)| *id);
        assert_eq!(
            d,
            [
                (StreamId::new(1, 0), Disposition::Ack),
                (StreamId::new(2, 0), Disposition::Keep),
                (StreamId::new(3, 0), Disposition::Keep),
            ]
        );
        assert!(s.keys.is_empty());
    }

    #[test]
    fn a_stop_answers_queued_batches_with_ack_none() {
        let mut s = Scheduler::new(1, false, None);
        let p = progress();
        s.deliver(batch(1, &[(1, "a")]), &Span::none(), &p);
        s.deliver(batch(2, &[(2, "a")]), &Span::none(), &p);
        assert!(s.next().is_some());
        assert_eq!(s.drop_queued(), [(BatchId(2), Outcome::AckNone)]);
    }
}
