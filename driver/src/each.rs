//! Per-message handlers: what one answers when it does not acknowledge
//! ([`Failure`]), the closure wrapper ([`EachFn`]), `order_by`'s key
//! function ([`OrderBy`]) and one message handed to the adapter to run
//! ([`MessageJob`]).

use std::collections::HashSet;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::Span;
use xgroup_core::{BatchId, Disposition, Message, StreamId};

/// What a per-message handler answers when it does not acknowledge its
/// message (`Ok(())` acknowledges it): retry it after the configured
/// backoff ([`retry`](Self::retry)), at a time of its choosing
/// ([`retry_after`](Self::retry_after), [`retry_at`](Self::retry_at)),
/// move it to the dead letters ([`dead_letter`](Self::dead_letter)) or
/// leave it pending ([`keep`](Self::keep)).
///
/// Any `std::error::Error` converts into a retry, so `?` works in a
/// handler: the error's text is logged (debug level) with the message id.
/// (`Failure` itself is not an `Error`, which is what allows that.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    disposition: Disposition,
    cause: Option<String>,
}

impl Failure {
    /// Redeliver the message to this consumer after the configured retry
    /// backoff (`retry_backoff`); past `max_deliveries` it is
    /// dead-lettered instead.
    pub fn retry() -> Self {
        Self::with(Disposition::Retry)
    }

    /// Redeliver it to this consumer, not before `delay` from now.
    pub fn retry_after(delay: Duration) -> Self {
        Self::retry_at(Instant::now() + delay)
    }

    /// Redeliver it to this consumer, not before `at`; meanwhile its idle
    /// time is kept fresh so no other consumer claims it.
    pub fn retry_at(at: Instant) -> Self {
        Self::with(Disposition::RetryAt(at))
    }

    /// Move it to the dead letters (the configured `dead_letter`), with
    /// this reason.
    pub fn dead_letter(reason: impl Into<String>) -> Self {
        Self::with(Disposition::DeadLetter(reason.into()))
    }

    /// Leave it pending, neither acknowledged nor retried: it is redelivered
    /// by a replay of this consumer's pending entries (after a reconnection)
    /// or a claim once idle for `claim_min_idle`.
    pub fn keep() -> Self {
        Self::with(Disposition::Keep)
    }

    /// Adds what went wrong, logged (debug level) with the message id.
    pub fn because(self, cause: impl fmt::Display) -> Self {
        Failure {
            cause: Some(cause.to_string()),
            ..self
        }
    }

    /// What becomes of the message.
    pub fn disposition(&self) -> &Disposition {
        &self.disposition
    }

    /// What went wrong, if said.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    fn with(disposition: Disposition) -> Self {
        Failure {
            disposition,
            cause: None,
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    /// An error is a retry after the configured backoff.
    fn from(error: E) -> Self {
        Failure::retry().because(error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.disposition {
            Disposition::Retry => f.write_str("retry")?,
            Disposition::RetryAt(_) => f.write_str("retry later")?,
            Disposition::DeadLetter(reason) => write!(f, "dead-letter ({reason})")?,
            _ => f.write_str("keep pending")?,
        }
        match &self.cause {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

/// A closure as a per-message handler (see
/// [`ConsumerBuilder::handler_each`](crate::ConsumerBuilder::handler_each));
/// each adapter runs it.
#[derive(Debug, Clone)]
pub struct EachFn<F>(pub F);

/// `order_by`'s key function: the hash of a message's key. Messages whose
/// keys hash alike are handled one at a time (a 64-bit hash: different keys
/// practically never share one).
#[derive(Clone)]
pub struct OrderBy(Arc<dyn Fn(&Message) -> u64 + Send + Sync>);

impl OrderBy {
    /// Orders by the key `f` gives each message.
    pub fn new<K: Hash>(f: impl Fn(&Message) -> K + Send + Sync + 'static) -> Self {
        OrderBy(Arc::new(move |m| {
            let mut h = DefaultHasher::new();
            f(m).hash(&mut h);
            h.finish()
        }))
    }

    /// The message's key, hashed.
    pub(crate) fn key(&self, message: &Message) -> u64 {
        (self.0)(message)
    }
}

impl fmt::Debug for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrderBy(..)")
    }
}

/// Names one message handed to a per-message handler, to report its
/// result with ([`Driver::handled`](crate::Driver::handled)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub(crate) batch: BatchId,
    pub(crate) id: StreamId,
    pub(crate) key: Option<u64>,
}

impl Ticket {
    /// The batch the message came in.
    pub fn batch(&self) -> BatchId {
        self.batch
    }

    /// The message's id.
    pub fn id(&self) -> StreamId {
        self.id
    }
}

/// Batches whose application reported progress since the driver last
/// looked, shared with the deliveries that report it.
pub(crate) type ProgressSet = Arc<Mutex<HashSet<BatchId>>>;

/// Reports that the application is still working on a message's batch (see
/// [`Delivery::in_progress`](crate::Delivery::in_progress)).
#[derive(Clone)]
pub struct Progress {
    batch: BatchId,
    set: ProgressSet,
}

impl Progress {
    pub(crate) fn new(batch: BatchId, set: ProgressSet) -> Self {
        Progress { batch, set }
    }

    /// Still working: the batch's handler timeout starts again at the
    /// consumer's next timer (well before the timeout runs out).
    pub fn report(&self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(self.batch);
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("batch", &self.batch)
            .finish()
    }
}

/// One message for the per-message handler (from
/// [`Action::Handle`](crate::Action::Handle)): run it in [`span`](Self::span)
/// and report with [`Driver::handled`](crate::Driver::handled) and its
/// [`ticket`](Self::ticket).
#[derive(Debug)]
pub struct MessageJob {
    /// The message.
    pub message: Message,
    /// Its batch's span (`xgroup.batch`), for the handler to run in.
    pub span: Span,
    pub(crate) ticket: Ticket,
    pub(crate) progress: Progress,
}

impl MessageJob {
    /// What to report its result with.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    /// Reports progress on it (see [`Progress`]).
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn an_error_is_a_retry_that_says_why() {
        fn fails() -> Result<(), Failure> {
            Err(io::Error::other("disk full"))?;
            Ok(())
        }
        let failure = fails().unwrap_err();
        assert_eq!(failure.disposition(), &Disposition::Retry);
        assert_eq!(failure.cause(), Some("disk full"));
        assert_eq!(failure.to_string(), "retry: disk full");
    }

    #[test]
    fn each_constructor_says_what_becomes_of_the_message() {
        let before = Instant::now();
        let later = Failure::retry_after(Duration::from_secs(5));
        let Disposition::RetryAt(at) = later.disposition() else {
            panic!("{later:?}")
        };
        assert!(*at >= before + Duration::from_secs(5));
        assert_eq!(
            Failure::dead_letter("bad").disposition(),
            &Disposition::DeadLetter("bad".into())
        );
        assert_eq!(Failure::keep().disposition(), &Disposition::Keep);
        assert_eq!(Failure::keep().cause(), None);
    }

    #[test]
    fn order_by_keys_equal_values_alike() {
        let message = |key: &str| Message {
            id: StreamId::new(1, 0),
            fields: [("key", key)].into_iter().collect(),
            attempt: 1,
        };
        let by_key = OrderBy::new(|m: &Message| m.fields.get("key").map(<[u8]>::to_vec));
        assert_eq!(by_key.key(&message("a")), by_key.key(&message("a")));
        assert_ne!(by_key.key(&message("a")), by_key.key(&message("b")));
    }

    #[test]
    fn progress_is_collected_per_batch() {
        let set = ProgressSet::default();
        let progress = Progress::new(BatchId(3), set.clone());
        progress.report();
        progress.clone().report();
        let seen = set.lock().unwrap().clone();
        assert_eq!(seen, HashSet::from([BatchId(3)]));
    }
}
