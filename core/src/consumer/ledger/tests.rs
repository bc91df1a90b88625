use super::*;

#[allow(clippy::disallowed_methods)] // a test's instant
fn t0() -> Instant {
    Instant::now()
}

fn id(ms: u64) -> StreamId {
    StreamId::new(ms, 0)
}

fn cfg() -> ConsumerConfig {
    ConsumerConfig::builder("s", "g", "c")
        .max_deliveries(3, crate::config::DeadLetter::Drop)
        .build()
        .expect("valid config")
}

fn message(ms: u64, attempt: u64) -> Message {
    Message {
        id: id(ms),
        fields: Fields::new(),
        attempt,
    }
}

fn ids(list: &[u64]) -> HashSet<StreamId> {
    list.iter().map(|&ms| id(ms)).collect()
}

fn held(ids: &[(u64, u64)]) -> HeldSlots {
    HeldSlots::new(
        ids.iter()
            .map(|&(ms, seq)| HeldMessage {
                id: StreamId::new(ms, seq),
                attempt: 1,
                fields: None,
                touched: t0(),
                lost: false,
            })
            .collect(),
    )
}

fn taken(slots: &mut HeldSlots, ms: u64, seq: u64) -> Option<StreamId> {
    slots.take(StreamId::new(ms, seq)).map(|m| m.id)
}

#[test]
fn held_slots_match_each_message_once_in_any_order() {
    let mut slots = held(&[(1, 0), (1, 1), (2, 0), (3, 5)]);
    // In order (the hint), then out of order (the index), then repeats
    // and strangers, which match nothing.
    assert_eq!(taken(&mut slots, 1, 0), Some(StreamId::new(1, 0)));
    assert_eq!(taken(&mut slots, 3, 5), Some(StreamId::new(3, 5)));
    assert_eq!(taken(&mut slots, 1, 1), Some(StreamId::new(1, 1)));
    assert_eq!(taken(&mut slots, 1, 1), None);
    assert_eq!(taken(&mut slots, 9, 9), None);
    assert_eq!(taken(&mut slots, 0, 0), None);
    assert_eq!(taken(&mut slots, 2, 0), Some(StreamId::new(2, 0)));
    assert_eq!(taken(&mut slots, 2, 0), None);
    assert!(slots.slots.iter().all(Option::is_none));
}

#[test]
fn held_slots_with_a_repeated_id_give_each_copy_once() {
    let mut slots = held(&[(5, 0), (4, 0), (5, 0)]);
    assert_eq!(taken(&mut slots, 5, 0), Some(StreamId::new(5, 0)));
    assert_eq!(taken(&mut slots, 5, 0), Some(StreamId::new(5, 0)));
    assert_eq!(taken(&mut slots, 5, 0), None);
    assert_eq!(taken(&mut slots, 4, 0), Some(StreamId::new(4, 0)));
}

#[test]
fn each_disposition_puts_an_entry_where_it_belongs() {
    let (now, cfg) = (t0(), cfg());
    let mut ledger = Ledger::default();
    let msgs: Vec<Message> = (1..=5)
        .map(|ms| message(ms, 1))
        .chain([message(6, 3)])
        .collect();
    ledger.hold(BatchId(0), now, &msgs, false);
    assert_eq!(ledger.batches(), 1);
    assert_eq!(ledger.held(), 6);
    let outcome = Outcome::Each(vec![
        (id(1), Disposition::Ack),
        (id(2), Disposition::Keep),
        (id(3), Disposition::Retry),
        (id(4), Disposition::DeadLetter("bad".into())),
        (id(6), Disposition::Retry),
        (id(9), Disposition::Ack),
    ]);
    let done = ledger.complete(now, BatchId(0), outcome, &cfg);
    assert_eq!(
        done,
        Completed::Done {
            strangers: vec![id(9)]
        }
    );
    assert_eq!(ledger.batches(), 0);
    // Acked, retrying, dead (asked for, and out of attempts); kept and
    // undecided ones are no longer held here.
    assert_eq!(ledger.held_ids(), ids(&[1, 3, 4, 6]));
    assert_eq!(ledger.held(), 4, "counted without the set");
    assert!(ledger.next_retry().is_some_and(|at| at > now));
    let dead: Vec<StreamId> = ledger.take_dead().iter().map(|d| d.id).collect();
    assert_eq!(dead, vec![id(4), id(6)]);
    assert_eq!(
        ledger.complete(now, BatchId(0), Outcome::AckAll, &cfg),
        Completed::UnknownBatch
    );
}

#[test]
fn acks_stay_held_until_their_reply_and_come_back_when_it_fails() {
    let (now, cfg) = (t0(), cfg());
    let mut ledger = Ledger::default();
    let msgs: Vec<Message> = (1..=3).map(|ms| message(ms, 1)).collect();
    ledger.hold(BatchId(0), now, &msgs, false);
    ledger.complete(now, BatchId(0), Outcome::AckAll, &cfg);
    assert_eq!(ledger.send_acks(2), Some(&[id(1), id(2)][..]));
    assert_eq!(ledger.send_acks(2), Some(&[id(3)][..]));
    assert_eq!(ledger.send_acks(2), None);
    assert_eq!(ledger.unacked(), 3);
    assert!(!ledger.is_settled());
    // The first fails (sent again), the second is confirmed.
    ledger.acks_answered(false);
    ledger.acks_answered(true);
    assert_eq!(ledger.held_ids(), ids(&[1, 2]));
    assert_eq!(ledger.held(), 2);
    assert_eq!(ledger.send_acks(10), Some(&[id(1), id(2)][..]));
    // The connection drops before the reply: sent again on the next one.
    ledger.connection_lost();
    assert_eq!(ledger.unacked(), 2);
    assert_eq!(ledger.send_acks(10), Some(&[id(1), id(2)][..]));
    ledger.acks_answered(true);
    assert!(ledger.is_settled());
}

#[test]
fn unacked_counts_every_kind_of_ack_out_and_dead_letters() {
    let now = t0();
    let mut ledger = Ledger::default();
    ledger.ack(id(1));
    ledger.ack(id(2));
    let _ = ledger.send_acks(1);
    let item = |ms| DeadItem {
        id: id(ms),
        attempt: 1,
        fields: None,
        reason: String::new(),
        touched: now,
    };
    let _ = ledger.sending_dead(vec![item(3), item(4)]);
    ledger.dead_letter(item(5));
    assert_eq!(ledger.unacked(), 5);
    // A failed move waits for another try, counted; a good one is done.
    let failed = ledger.dead_answered();
    assert_eq!(failed.len(), 2);
    assert_eq!(ledger.dead_again(failed), 1);
    assert_eq!(ledger.take_dead().len(), 3);
    let _ = ledger.sending_dead(vec![item(6)]);
    assert_eq!(ledger.dead_answered().len(), 1);
    ledger.dead_moved();
    assert_eq!(ledger.dead_again(Vec::new()), 1);
    assert_eq!(ledger.unacked(), 2);
}

#[test]
fn retries_fire_in_due_order_and_redeliver_sorted() {
    let (now, cfg) = (t0(), cfg());
    let mut ledger = Ledger::default();
    let msgs: Vec<Message> = (1..=3).map(|ms| message(ms, 1)).collect();
    ledger.hold(BatchId(0), now, &msgs, false);
    let later = |s| now + Duration::from_secs(s);
    let outcome = Outcome::Each(vec![
        (id(3), Disposition::RetryAt(later(5))),
        (id(1), Disposition::RetryAt(later(9))),
        (id(2), Disposition::RetryAt(later(1))),
    ]);
    ledger.complete(now, BatchId(0), outcome, &cfg);
    assert_eq!(ledger.next_retry(), Some(later(1)));
    ledger.fire_retries(later(5));
    assert_eq!(ledger.next_retry(), Some(later(9)));
    assert!(ledger.has_redeliveries());
    let (due, touched) = ledger.take_redeliveries(10).expect("due retries");
    assert_eq!(due, vec![id(2), id(3)]);
    assert_eq!(touched, now);
    assert!(!ledger.has_redeliveries());
}

#[test]
fn a_refresh_retouches_what_is_ours_and_gives_up_the_rest() {
    let (now, cfg) = (t0(), cfg());
    let mut ledger = Ledger::default();
    let msgs: Vec<Message> = (1..=3).map(|ms| message(ms, 1)).collect();
    ledger.hold(BatchId(0), now, &msgs, false);
    ledger.hold(BatchId(1), now, &[message(4, 1)], false);
    ledger.complete(
        now,
        BatchId(1),
        Outcome::Each(vec![(id(4), Disposition::Retry)]),
        &cfg,
    );
    let later = now + Duration::from_secs(10);
    let all: Vec<StreamId> = (1..=4).map(id).collect();
    assert_eq!(
        ledger
            .refresh_candidates(later, Duration::from_secs(1))
            .len(),
        4
    );
    // 1 and 3 are still ours; 2 and the retry 4 were taken by another.
    let lost = ledger.refreshed(later, &all, &[id(1), id(3)]);
    assert_eq!(lost, 2);
    let candidates = ledger.refresh_candidates(later, Duration::ZERO);
    assert_eq!(candidates, vec![(later, id(1)), (later, id(3))]);
    assert_eq!(ledger.next_retry(), None);
    // A lost entry the handler then retries is not retried here.
    ledger.complete(
        later,
        BatchId(0),
        Outcome::Each(vec![(id(2), Disposition::Retry)]),
        &cfg,
    );
    assert_eq!(ledger.next_retry(), None);
}

#[test]
fn hung_batches_are_reported_once_and_no_longer_refreshed() {
    let now = t0();
    let mut ledger = Ledger::default();
    ledger.hold(BatchId(7), now, &[message(1, 1)], false);
    let later = now + Duration::from_secs(5);
    assert!(ledger.mark_hung(later, Duration::from_secs(10)).is_empty());
    let hung = ledger.mark_hung(later, Duration::from_secs(1));
    assert_eq!(hung, vec![(BatchId(7), Duration::from_secs(5))]);
    assert!(ledger.mark_hung(later, Duration::from_secs(1)).is_empty());
    assert!(ledger.refresh_candidates(later, Duration::ZERO).is_empty());
}

#[test]
fn hung_entries_are_listed_for_release_until_given_up() {
    let now = t0();
    let mut ledger = Ledger::default();
    ledger.hold(BatchId(1), now, &[message(2, 1), message(1, 1)], false);
    ledger.hold(BatchId(2), now, &[message(3, 1)], false);
    assert!(ledger.hung_entries().is_empty());
    let later = now + Duration::from_secs(5);
    ledger.mark_hung(later - Duration::from_secs(3), Duration::from_secs(1));
    assert_eq!(
        ledger.hung_entries(),
        vec![(now, id(1)), (now, id(2)), (now, id(3))]
    );
    // Released (or found another's): no longer listed, nor retried; its
    // ack still goes out.
    assert_eq!(ledger.give_up(&ids(&[1, 2])), 2);
    assert_eq!(ledger.hung_entries(), vec![(now, id(3))]);
    let cfg = cfg();
    let outcome = Outcome::Each(vec![(id(1), Disposition::Ack), (id(2), Disposition::Retry)]);
    ledger.complete(later, BatchId(1), outcome, &cfg);
    assert_eq!(ledger.next_retry(), None);
    assert_eq!(ledger.send_acks(10), Some(&[id(1)][..]));
}

#[test]
fn entries_waiting_for_counts_are_held_until_answered_or_the_connection_drops() {
    let mut ledger = Ledger::default();
    let pending = |ms| PendingCounts {
        source: Source::Claimed,
        entries: vec![(id(ms), Fields::new())],
        counts: vec![None],
        last: id(ms),
    };
    let _ = ledger.await_counts(pending(1));
    let _ = ledger.await_counts(pending(2));
    assert!(ledger.awaiting_counts());
    assert_eq!(ledger.held_ids(), ids(&[1, 2]));
    assert_eq!(ledger.counts_answered().map(|p| p.last), Some(id(1)));
    ledger.connection_lost();
    assert!(!ledger.awaiting_counts());
    assert!(ledger.held_ids().is_empty());
}

#[test]
fn a_batch_completed_after_a_stop_is_forgotten_without_acks() {
    let mut l = Ledger::default();
    let now = t0();
    l.hold(BatchId(4), now, &[message(1, 1), message(2, 1)], false);
    l.hold(BatchId(6), now, &[message(3, 1)], false);
    assert!(l.forget(BatchId(4)));
    assert!(!l.forget(BatchId(4)), "once");
    assert_eq!(l.batches(), 1);
    assert!(l.send_acks(10).is_none(), "nothing acknowledged");
    assert_eq!(l.held_ids(), ids(&[3]));
}
