//! # xgroup-driver
//!
//! The runtime-independent half of every xgroup adapter. An adapter
//! (`xgroup-tokio`, `xgroup-async-std`, `xgroup-blocking`) names its runtime
//! with a marker type, implements [`Runtime`] and [`Run`] (and [`AsyncIo`]
//! or [`BlockingIo`]) for it, and keeps only what its runtime needs: opening
//! sockets, reading and writing, timers, running handlers, waiting on several
//! inputs. Everything else is here, once:
//!
//! - the builder, the consumer and its handle ([`ConsumerBuilder`],
//!   [`Consumer`], [`ConsumerHandle`]), generic over the runtime marker; each
//!   adapter aliases them (`xgroup_tokio::Consumer<H>` is
//!   `Consumer<Tokio, H>`);
//! - the event dispatch ([`Driver`]): it drains the core's events, logs
//!   warnings, calls the failure callback, reports handler panics, publishes
//!   `info()`, and hands the adapter one [`Action`] at a time;
//! - the shapes of handling: batches ([`Action::Deliver`]), one message at a
//!   time ([`Action::Handle`], [`EachFn`], [`Failure`]) with the decisions
//!   of a batch collected until it is complete, `order_by`'s per-key queues
//!   ([`OrderBy`]) and the concurrency limit (all in the driver, so an
//!   adapter only starts the calls it is handed), and the message stream
//!   ([`Consumer::messages`], [`Delivery`], [`Messages`]) built on the
//!   per-message shape ([`Deliveries`]) and started by the adapter's
//!   [`Spawn`];
//! - the request/response logic of `Connection` ([`Calls`], sans-IO) and the
//!   connections built on it ([`AsyncConnection`], [`BlockingConnection`]),
//!   with the same timeouts everywhere ([`ConnectionOptions`], by default
//!   [`CONNECT_TIMEOUT`] and [`IO_TIMEOUT`]), reconnecting after a failure;
//! - TLS ([`tls`]): the rustls client configuration built once from the
//!   core's `TlsOptions` ([`TlsSetup`]), the crypto provider the `ring` /
//!   `aws-lc-rs` features choose, and failed handshakes read as typed
//!   errors; an adapter only wraps its sockets with its runtime's rustls
//!   wrapper;
//! - what blocking code needs of std: [`connect_std`] and the reused handler
//!   threads ([`HandlerThreads`]);
//! - the list of what every adapter re-exports ([`exports`]).
//!
//! An adapter's drive loop, in outline (see the adapters for the real ones):
//!
//! ```ignore
//! let Parts { mut driver, handler, stop } = consumer.into_parts();
//! loop {
//!     // One input happened: carry out every action it led to.
//!     while let Some(action) = driver.next_action() {
//!         match action {
//!             Action::Connect(conn, addr) => { /* open, then */ driver.connected(conn) }
//!             Action::Write(conn, bytes) => { /* write on that connection */ }
//!             Action::Disconnect(conn) => { /* close it */ }
//!             Action::Deliver(batch) => { /* run the handler, later */ driver.completed(id, result) }
//!             Action::Handle(job) => { /* run it on the message, later */ driver.handled(ticket, result) }
//!             Action::Stopped(result) => return result,
//!         }
//!     }
//!     // Wait for the first of: stop, a handler done, bytes on either
//!     // connection, driver.deadline().
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod calls;
mod connection;
mod consumer;
mod dispatch;
mod drive;
mod each;
pub mod exports;
mod io;
pub mod metrics;
mod route;
mod schedule;
mod shape;
mod stream;
mod threads;
pub mod tls;

pub use calls::{Calls, ConnectionOptions, Step, CONNECT_TIMEOUT, IO_TIMEOUT};
pub use connection::{AsyncConnection, BlockingConnection};
pub use consumer::{
    Consumer, ConsumerBuilder, ConsumerHandle, FnHandler, NoHandler, Parts, PerMessage, Run,
    RunFuture, Runtime,
};
pub use dispatch::{Action, Driver};
pub use drive::{Handlers, Links, WatchedHandler, BLOCKING_POLL_WARNING};
pub use each::{EachFn, Failure, MessageJob, OrderBy, Progress, Ticket};
pub use io::{connect_std, open, plaintext_answer_std, sleep_until, within, AsyncIo, BlockingIo};
pub use shape::{Handler, Shape};
pub use stream::{Deliveries, Delivery, Done, Messages, Spawn};
pub use threads::{HandlerThreads, Worker};
pub use tls::TlsSetup;
/// For adapters: running a handler inside [`Driver::batch_span`].
pub use tracing::{Instrument, Span};
