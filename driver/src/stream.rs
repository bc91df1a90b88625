//! The message stream: `consumer.messages()` runs the consumer in the
//! background with a per-message handler that hands each message out as a
//! [`Delivery`] and waits for its decision.
//!
//! Why the consumer runs by itself: it has work of its own while the
//! application holds a delivery (heartbeats, idle refreshes, acks, reads
//! ahead). A stream that drove the consumer only while polled would stall
//! all of it whenever the application is busy with a message, and other
//! consumers would take this one for dead. So `messages()` consumes the
//! consumer and starts its run loop on the runtime (a tokio task; a thread
//! for async-io and for blocking code): nothing to forget, and the stream
//! is only the receiving end.

use std::fmt;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::Stream;
use xgroup_core::{Error, Message};

use crate::consumer::{Consumer, ConsumerHandle, NoHandler, Run, Runtime};
use crate::each::{Failure, MessageJob, Progress};
use crate::io::{AsyncIo, BlockingIo};

/// A message from [`Consumer::messages`], to decide on: [`ack`](Self::ack),
/// [`retry`](Self::retry), [`retry_at`](Self::retry_at),
/// [`dead_letter`](Self::dead_letter), [`keep`](Self::keep). Dereferences
/// to its [`Message`] (`id`, `fields`, `attempt`).
///
/// A delivery dropped without a decision stays pending and is redelivered
/// later (by a replay of this consumer's pending entries or a claim once idle
/// for `claim_min_idle`); the drop is logged as a warning. Holding one for
/// long: call [`in_progress`](Self::in_progress) now and then, or its
/// entry is taken for hung after `handler_timeout` and handed to other
/// consumers.
pub struct Delivery {
    message: Message,
    decide: Option<async_channel::Sender<Result<(), Failure>>>,
    progress: Progress,
}

impl Delivery {
    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// Acknowledge it: done.
    pub fn ack(self) {
        self.decide(Ok(()));
    }

    /// Redeliver it to this consumer after the configured retry backoff.
    pub fn retry(self) {
        self.fail(Failure::retry());
    }

    /// Redeliver it to this consumer, not before `delay` from now.
    pub fn retry_after(self, delay: Duration) {
        self.fail(Failure::retry_after(delay));
    }

    /// Redeliver it to this consumer, not before `at`.
    pub fn retry_at(self, at: Instant) {
        self.fail(Failure::retry_at(at));
    }

    /// Move it to the dead letters, with a reason.
    pub fn dead_letter(self, reason: impl Into<String>) {
        self.fail(Failure::dead_letter(reason));
    }

    /// Leave it pending, on purpose (no warning): redelivered later.
    pub fn keep(self) {
        self.fail(Failure::keep());
    }

    /// Any decision a per-message handler could return as its error.
    pub fn fail(self, failure: Failure) {
        self.decide(Err(failure));
    }

    /// Still working on it (like NATS' `AckProgress`): its batch's handler
    /// timeout starts again, so its entry keeps being refreshed against
    /// other consumers' claims. The consumer refreshes the idle time of
    /// every delivery out (every `claim_min_idle / 2`) by itself until
    /// `handler_timeout` (5 minutes by default) has passed since it was
    /// handed out or since the last `in_progress`.
    pub fn in_progress(&self) {
        self.progress.report();
    }

    fn decide(mut self, decision: Result<(), Failure>) {
        if let Some(tx) = self.decide.take() {
            // The consumer may have stopped meanwhile: the entry then stays
            // pending, as after any stop.
            let _ = tx.try_send(decision);
        }
    }
}

impl Deref for Delivery {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.message
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if self.decide.is_some() {
            tracing::warn!(
                id = %self.message.id,
                attempt = self.message.attempt,
                "an xgroup delivery was dropped without a decision: it stays pending and is \
                 redelivered later"
            );
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("message", &self.message)
            .field("decided", &self.decide.is_none())
            .finish()
    }
}

/// The per-message handler behind [`Consumer::messages`]: hands each message
/// to the stream as a [`Delivery`] and waits for its decision. Adapters run
/// it with [`deliver`](Self::deliver) or
/// [`deliver_blocking`](Self::deliver_blocking).
#[derive(Debug)]
pub struct Deliveries {
    tx: async_channel::Sender<Delivery>,
}

impl Deliveries {
    /// Hands `job`'s message out and waits for the decision; a delivery
    /// dropped undecided (or a stream gone) keeps it pending.
    pub async fn deliver(&self, job: MessageJob) -> Result<(), Failure> {
        let (delivery, decision) = Self::delivery(job);
        if self.tx.send(delivery).await.is_err() {
            return Err(Failure::keep().because("the message stream is gone"));
        }
        decision
            .recv()
            .await
            .unwrap_or_else(|_| Err(Failure::keep().because("dropped without a decision")))
    }

    /// [`deliver`](Self::deliver), blocking the thread.
    pub fn deliver_blocking(&self, job: MessageJob) -> Result<(), Failure> {
        let (delivery, decision) = Self::delivery(job);
        if self.tx.send_blocking(delivery).is_err() {
            return Err(Failure::keep().because("the message stream is gone"));
        }
        decision
            .recv_blocking()
            .unwrap_or_else(|_| Err(Failure::keep().because("dropped without a decision")))
    }

    fn delivery(job: MessageJob) -> (Delivery, async_channel::Receiver<Result<(), Failure>>) {
        let (tx, rx) = async_channel::bounded(1);
        let progress = job.progress();
        let delivery = Delivery {
            message: job.message,
            decide: Some(tx),
            progress,
        };
        (delivery, rx)
    }
}

/// Runs a consumer in the background, for [`Consumer::messages`]: each
/// adapter starts its run loop there (a task of its runtime, or a thread).
pub trait Spawn: Run<Deliveries> {
    /// Starts running `consumer`; `done` gets what `run` returned. An error
    /// means it could not start (and `done` is not called).
    fn spawn(consumer: Consumer<Self, Deliveries>, done: Done) -> Result<(), Error>;
}

/// What [`Spawn::spawn`] calls with the result of `run`.
pub type Done = Box<dyn FnOnce(Result<(), Error>) + Send + 'static>;

/// The messages of a consumer (from [`Consumer::messages`]): a
/// `futures::Stream` on async runtimes, an `Iterator` on blocking ones, of
/// `Result<Delivery, Error>`. It ends after a graceful stop (see
/// [`handle`](Self::handle)); a permanent error that stopped the consumer is
/// its last item. Dropping it stops the consumer.
pub struct Messages<R: Runtime> {
    // Pinned: a receiver polled as a stream is not `Unpin`.
    deliveries: Pin<Box<async_channel::Receiver<Delivery>>>,
    done: Pin<Box<async_channel::Receiver<Result<(), Error>>>>,
    handle: ConsumerHandle<R>,
    ended: bool,
}

impl<R: Runtime> Consumer<R, NoHandler> {
    /// Consumes the consumer and starts it in the background (a task of the
    /// runtime, or a thread), giving its messages one [`Delivery`] at a time
    /// to decide on. On tokio, call this within a runtime: outside one, the
    /// stream's only item is an [`Error::Config`].
    ///
    /// Deliveries out at once are bounded by `concurrency` (by default the
    /// in-flight limit), and with `order_by` a message is handed out only
    /// once the previous one of its key is decided. A graceful
    /// [`stop`](ConsumerHandle::stop) stops reading: the deliveries already
    /// out may still be decided (until the drain timeout), then the stream
    /// ends.
    pub fn messages(self) -> Messages<R>
    where
        R: Spawn,
    {
        let (tx, deliveries) = async_channel::unbounded();
        let (result, done) = async_channel::bounded(1);
        let handle = self.handle();
        let closing = tx.clone();
        let consumer = self.with_each(Deliveries { tx });
        let finish = move |outcome: Result<(), Error>| {
            // The result first: the stream reads it once the deliveries end.
            let _ = result.try_send(outcome);
            closing.close();
        };
        let failed = finish.clone();
        if let Err(e) = R::spawn(consumer, Box::new(finish)) {
            failed(Err(e));
        }
        Messages {
            deliveries: Box::pin(deliveries),
            done: Box::pin(done),
            handle,
            ended: false,
        }
    }
}

impl<R: Runtime> Messages<R> {
    /// A handle to watch and stop the consumer: after a stop, the stream
    /// ends once the deliveries already out are decided.
    pub fn handle(&self) -> ConsumerHandle<R> {
        self.handle.clone()
    }

    /// What ends the stream: `None` after a graceful stop, the error that
    /// stopped the consumer otherwise.
    fn end(&mut self, result: Option<Result<(), Error>>) -> Option<Result<Delivery, Error>> {
        self.ended = true;
        match result {
            Some(Err(e)) => Some(Err(e)),
            _ => None,
        }
    }
}

impl<R: Runtime + AsyncIo> Stream for Messages<R> {
    type Item = Result<Delivery, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match this.deliveries.as_mut().poll_next(cx) {
            Poll::Ready(Some(delivery)) => Poll::Ready(Some(Ok(delivery))),
            Poll::Ready(None) => match this.done.as_mut().poll_next(cx) {
                Poll::Ready(result) => Poll::Ready(this.end(result)),
                Poll::Pending => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<R: Runtime + BlockingIo> Iterator for Messages<R> {
    type Item = Result<Delivery, Error>;

    /// Blocks until the next delivery, or the end.
    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        match self.deliveries.recv_blocking() {
            Ok(delivery) => Some(Ok(delivery)),
            Err(_) => {
                let result = self.done.recv_blocking().ok();
                self.end(result)
            }
        }
    }
}

impl<R: Runtime> Drop for Messages<R> {
    /// Nobody takes deliveries any more: the consumer stops gracefully.
    fn drop(&mut self) {
        self.handle.stop();
    }
}

impl<R: Runtime> fmt::Debug for Messages<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messages")
            .field("waiting", &self.deliveries.len())
            .field("ended", &self.ended)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    use std::thread;

    use tracing::Span;
    use xgroup_core::{BatchId, Disposition, StreamId};

    use crate::each::Ticket;

    fn job(progress: &crate::each::ProgressSet) -> MessageJob {
        MessageJob {
            message: Message {
                id: StreamId::new(1, 0),
                fields: [("n", "1")].into_iter().collect(),
                attempt: 1,
            },
            span: Span::none(),
            ticket: Ticket {
                batch: BatchId(1),
                id: StreamId::new(1, 0),
                key: None,
            },
            progress: Progress::new(BatchId(1), progress.clone()),
        }
    }

    /// Runs `decide` on the delivery `deliver_blocking` hands out; returns
    /// what the handler side got.
    fn decided(decide: impl FnOnce(Delivery)) -> Result<(), Failure> {
        let (tx, rx) = async_channel::unbounded();
        let progress = Arc::new(Mutex::new(HashSet::new()));
        let job = job(&progress);
        let handler = thread::spawn(move || Deliveries { tx }.deliver_blocking(job));
        let delivery = rx.recv_blocking().expect("a delivery");
        assert_eq!(delivery.id, StreamId::new(1, 0));
        decide(delivery);
        handler.join().expect("the handler side")
    }

    #[test]
    fn each_decision_reaches_the_handler_side() {
        assert_eq!(decided(Delivery::ack), Ok(()));
        let retry = decided(Delivery::retry).unwrap_err();
        assert_eq!(retry.disposition(), &Disposition::Retry);
        let dead = decided(|d| d.dead_letter("bad")).unwrap_err();
        assert_eq!(dead.disposition(), &Disposition::DeadLetter("bad".into()));
        let keep = decided(Delivery::keep).unwrap_err();
        assert_eq!(keep.disposition(), &Disposition::Keep);
    }

    #[test]
    fn a_dropped_delivery_keeps_its_message_pending() {
        let dropped = decided(drop).unwrap_err();
        assert_eq!(dropped.disposition(), &Disposition::Keep);
        assert_eq!(dropped.cause(), Some("dropped without a decision"));
    }

    #[test]
    fn in_progress_reports_the_deliverys_batch() {
        let progress = Arc::new(Mutex::new(HashSet::new()));
        let (delivery, _decision) = Deliveries::delivery(job(&progress));
        delivery.in_progress();
        delivery.ack();
        assert!(progress.lock().unwrap().contains(&BatchId(1)));
    }

    #[test]
    fn a_gone_stream_keeps_the_message_pending() {
        let (tx, rx) = async_channel::unbounded();
        drop(rx);
        let progress = Arc::new(Mutex::new(HashSet::new()));
        let gone = Deliveries { tx }
            .deliver_blocking(job(&progress))
            .unwrap_err();
        assert_eq!(gone.disposition(), &Disposition::Keep);
    }
}
