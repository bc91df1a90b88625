//! The handlers of the async adapters (tokio, async-std and smol share
//! them): the [`Handler`] trait users implement for batches, and the
//! [`Shape`] every kind of handler takes for the drive loop (a batch
//! handler, a per-message closure, the message stream). Each async adapter
//! re-exports both; the blocking adapter has its own, on threads.

use std::future::Future;

use xgroup_core::{Batch, Message, Outcome};

use crate::consumer::FnHandler;
use crate::each::{EachFn, Failure, MessageJob};
use crate::stream::Deliveries;

/// Handles batches of stream entries.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an xgroup handler",
    note = "implement `Handler` (re-exported by `xgroup_tokio` and `xgroup_async_std`) for it, or give `handler_fn` a closure returning a `Send` future of `Outcome`"
)]
pub trait Handler: Send + Sync + 'static {
    /// Handles one batch and says what to acknowledge. A panic is caught:
    /// the batch stays pending (redelivered) and the panic is reported.
    fn handle(&self, batch: Batch) -> impl Future<Output = Outcome> + Send;
}

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Batch) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn handle(&self, batch: Batch) -> impl Future<Output = Outcome> + Send {
        (self.0)(batch)
    }
}

/// How an async adapter runs each shape of handler: a [`Handler`]
/// (batches), a per-message closure (`handler_each`), the message stream
/// (`messages()`). Implemented for those; not meant to be implemented
/// elsewhere.
pub trait Shape: Send + Sync + 'static {
    /// Handles a batch (batch handlers only; the driver hands others
    /// messages).
    fn batch(&self, batch: Batch) -> impl Future<Output = Outcome> + Send;
    /// Handles one message (per-message handlers only).
    fn message(&self, job: MessageJob) -> impl Future<Output = Result<(), Failure>> + Send;
}

impl<H: Handler> Shape for H {
    fn batch(&self, batch: Batch) -> impl Future<Output = Outcome> + Send {
        self.handle(batch)
    }
    async fn message(&self, _: MessageJob) -> Result<(), Failure> {
        // Never asked: a batch handler gets batches.
        Err(Failure::keep())
    }
}

impl<F, Fut> Shape for EachFn<F>
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Failure>> + Send,
{
    async fn batch(&self, _: Batch) -> Outcome {
        // Never asked: a per-message handler gets messages.
        Outcome::AckNone
    }
    fn message(&self, job: MessageJob) -> impl Future<Output = Result<(), Failure>> + Send {
        (self.0)(job.message)
    }
}

impl Shape for Deliveries {
    async fn batch(&self, _: Batch) -> Outcome {
        // Never asked: the stream gets messages.
        Outcome::AckNone
    }
    fn message(&self, job: MessageJob) -> impl Future<Output = Result<(), Failure>> + Send {
        self.deliver(job)
    }
}
