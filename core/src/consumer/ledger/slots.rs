//! Matching a handler's decisions to the messages of its batch.

use crate::id::StreamId;

use super::HeldMessage;

/// A completed batch's messages, taken out one decision at a time. Decisions
/// usually come in batch order, so the slot after the last one taken is
/// tried first; any other order falls back to a sorted index (built once),
/// so matching stays O(n log n) whatever the handler returns.
#[derive(Debug)]
pub(super) struct HeldSlots {
    pub(super) slots: Vec<Option<HeldMessage>>,
    next: usize,
    /// `(id, slot)` sorted by id, built on the first out-of-order decision.
    index: Option<Vec<(StreamId, usize)>>,
}

impl HeldSlots {
    pub(super) fn new(msgs: Vec<HeldMessage>) -> Self {
        HeldSlots {
            slots: msgs.into_iter().map(Some).collect(),
            next: 0,
            index: None,
        }
    }

    /// The first message with `id` not taken yet.
    pub(super) fn take(&mut self, id: StreamId) -> Option<HeldMessage> {
        let hinted = self
            .slots
            .get(self.next)
            .and_then(Option::as_ref)
            .is_some_and(|m| m.id == id);
        let slot = if hinted {
            self.next
        } else {
            let slots = &self.slots;
            let index = self.index.get_or_insert_with(|| {
                let mut index: Vec<(StreamId, usize)> = slots
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| m.as_ref().map(|m| (m.id, i)))
                    .collect();
                index.sort_unstable();
                index
            });
            let from = index.partition_point(|&(other, _)| other < id);
            index[from..]
                .iter()
                .take_while(|&&(other, _)| other == id)
                .map(|&(_, i)| i)
                .find(|&i| slots[i].is_some())?
        };
        self.next = slot + 1;
        self.slots[slot].take()
    }
}
