//! Entries read ahead: new entries read and not yet handed to the handler.
//! They are pending for this consumer at the server like any held entry, so
//! they are refreshed, counted, retouched and given up like the others; the
//! handler gets them in batches of at most `count`, oldest first, with the
//! time they were last seen ours kept (see `HeldMessage::touched`).

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use crate::id::StreamId;

use super::super::batch::Message;

/// The read-ahead buffer and what it holds.
#[derive(Debug, Default)]
pub(crate) struct ReadAhead {
    /// Each entry with when it was last seen ours and its size (counted
    /// once: `size` walks the fields).
    entries: VecDeque<(Message, Instant, usize)>,
    /// Field and value bytes of the entries.
    bytes: usize,
}

impl ReadAhead {
    /// New entries read at `now`.
    pub(crate) fn push(&mut self, now: Instant, messages: Vec<Message>) {
        self.entries.reserve(messages.len());
        for m in messages {
            let size = size(&m);
            self.bytes += size;
            self.entries.push_back((m, now, size));
        }
    }

    /// Up to `max` entries for one handler call, oldest first, each with
    /// when it was last seen ours.
    pub(crate) fn take(&mut self, max: usize) -> Vec<(Message, Instant)> {
        let n = max.min(self.entries.len());
        let mut bytes = 0;
        let batch = self
            .entries
            .drain(..n)
            .map(|(m, t, size)| {
                bytes += size;
                (m, t)
            })
            .collect();
        self.bytes -= bytes;
        batch
    }

    /// Entries and bytes held.
    pub(crate) fn len(&self) -> (usize, usize) {
        (self.entries.len(), self.bytes)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.entries.iter().map(|(m, _, _)| m.id)
    }

    /// Each entry with when it was last seen ours.
    pub(crate) fn touched(&self) -> impl Iterator<Item = (Instant, StreamId)> + '_ {
        self.entries.iter().map(|(m, t, _)| (*t, m.id))
    }

    /// A reply showed these ours at `now`.
    pub(crate) fn retouch(&mut self, now: Instant, ids: &HashSet<StreamId>) {
        for (m, t, _) in self.entries.iter_mut() {
            if ids.contains(&m.id) {
                *t = now;
            }
        }
    }

    /// A replay or claim of ours returned these again: the server counted
    /// one more delivery of each, and the handler must see that count.
    pub(crate) fn delivered_again(&mut self, ids: &HashSet<StreamId>) {
        for (m, _, _) in self.entries.iter_mut() {
            if ids.contains(&m.id) {
                m.attempt += 1;
            }
        }
    }

    /// These are another consumer's now (or deleted): never handed out
    /// here. Returns how many.
    pub(crate) fn give_up(&mut self, ids: &HashSet<StreamId>) -> usize {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|(m, _, size)| {
            let keep = !ids.contains(&m.id);
            if !keep {
                freed += size;
            }
            keep
        });
        self.bytes -= freed;
        before - self.entries.len()
    }

    /// Forgets everything (a graceful stop: the entries stay pending for
    /// this consumer's next start or another's claim).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

/// An entry's field and value bytes.
fn size(m: &Message) -> usize {
    m.fields.iter().map(|(f, v)| f.len() + v.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::Fields;

    #[allow(clippy::disallowed_methods)] // a test's instant
    fn t0() -> Instant {
        Instant::now()
    }

    fn message(ms: u64, value: &'static str) -> Message {
        Message {
            id: StreamId::new(ms, 0),
            fields: Fields::from_iter([("k", value)]),
            attempt: 1,
        }
    }

    #[test]
    fn batches_come_oldest_first_and_the_bytes_are_counted() {
        let (t, mut ra) = (t0(), ReadAhead::default());
        ra.push(
            t,
            vec![message(1, "a"), message(2, "bb"), message(3, "ccc")],
        );
        assert_eq!(ra.len(), (3, 2 + 3 + 4));
        let first = ra.take(2);
        assert_eq!(
            first.iter().map(|(m, _)| m.id.ms).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(ra.len(), (1, 4));
        assert_eq!(ra.take(10).len(), 1);
        assert_eq!(ra.len(), (0, 0));
        assert!(ra.take(1).is_empty());
    }

    #[test]
    fn refreshes_retouch_and_lost_entries_are_never_handed_out() {
        let (t, mut ra) = (t0(), ReadAhead::default());
        ra.push(t, vec![message(1, "a"), message(2, "b")]);
        let later = t + std::time::Duration::from_secs(1);
        ra.retouch(later, &HashSet::from([StreamId::new(2, 0)]));
        let touched: Vec<(Instant, StreamId)> = ra.touched().collect();
        assert_eq!(
            touched,
            [(t, StreamId::new(1, 0)), (later, StreamId::new(2, 0))]
        );
        ra.delivered_again(&HashSet::from([StreamId::new(2, 0)]));
        assert_eq!(ra.give_up(&HashSet::from([StreamId::new(1, 0)])), 1);
        assert_eq!(ra.take(1)[0].0.attempt, 2, "the server's count");
        ra.push(t, vec![message(2, "b")]);
        assert_eq!(ra.len(), (1, 2));
        assert_eq!(ra.ids().collect::<Vec<_>>(), [StreamId::new(2, 0)]);
        ra.clear();
        assert_eq!(ra.len(), (0, 0));
    }
}
