//! Property tests: several consumers against the in-memory model of Redis
//! Streams, with random stream contents, handler outcomes (acks, retries,
//! retry-after, dead letters), disconnects, crashes, deleted entries, time
//! jumps and reply splits; heartbeats, delete-on-ack and polling mode on or
//! off per run.
#![cfg(feature = "sim")]
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use xgroup_core::{Error, MultiConsumer};

#[path = "support/world.rs"]
mod world;
use world::*;

fn features() -> impl Strategy<Value = Features> {
    (any::<[bool; 6]>()).prop_map(|[h, d, a, p, o, r]| Features {
        heartbeat: h,
        dead_letters: d,
        delete_on_ack: a,
        polling: p,
        one_connection: o,
        no_read_ahead: r,
        cluster: false,
        streams: 1,
        own_tags: false,
    })
}

/// The ops of [`op`] and a cluster's: failovers, migrations (started and
/// ended), dead nodes back.
fn cluster_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => op(),
        1 => (0usize..3).prop_map(Op::Failover),
        1 => (0usize..3).prop_map(Op::Migrate),
        1 => Just(Op::Recover),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..6).prop_map(Op::Produce),
        8 => (0usize..3).prop_map(Op::Step),
        6 => (0usize..3, 0u8..7).prop_map(|(c, o)| Op::Complete(c, o)),
        1 => (0usize..6).prop_map(Op::Disconnect),
        1 => (0usize..3).prop_map(Op::Crash),
        3 => (1u16..1500).prop_map(Op::Advance),
        1 => any::<u16>().prop_map(Op::Delete),
    ]
}

/// The ops of [`op`] over several streams: each production goes to one of
/// them, a disconnect cuts any stream's connection; and a cluster's (no-ops
/// on one server).
fn several_streams_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..6, 0u8..3).prop_map(|(n, s)| Op::Produce(s << 3 | n)),
        8 => (0usize..3).prop_map(Op::Step),
        6 => (0usize..3, 0u8..7).prop_map(|(c, o)| Op::Complete(c, o)),
        1 => (0usize..18).prop_map(Op::Disconnect),
        1 => (0usize..3).prop_map(Op::Crash),
        3 => (1u16..1500).prop_map(Op::Advance),
        1 => any::<u16>().prop_map(Op::Delete),
        1 => (0usize..3).prop_map(Op::Failover),
        1 => (0usize..3).prop_map(Op::Migrate),
        1 => Just(Op::Recover),
    ]
}

fn consumers_and_count() -> impl Strategy<Value = (usize, u64)> {
    (1usize..=3, 1u64..=4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 2000, .. ProptestConfig::default() })]

    /// Everything ends acknowledged, nothing is acked that no handler acked,
    /// in-flight limits hold, deadlines are never in the past, delivery
    /// counts match the model, and the claim cursor reaches every pending
    /// entry (count as small as 1 with many pending).
    #[test]
    fn at_least_once_under_faults(
        (consumers, count) in consumers_and_count(),
        ops in proptest::collection::vec(op(), 1..200),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
    ) {
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// On a 3-node cluster in front of the model: the slot's owner killed
    /// and another promoted, the slot migrated (`ASK` while its key is at
    /// the target, `MOVED` after), dead nodes back, at random moments among
    /// the other faults. Everything of the first property holds: nothing
    /// lost, nothing acked that no handler acked, limits kept, deadlines
    /// never in the past.
    #[test]
    fn at_least_once_on_a_cluster_under_failovers_and_migrations(
        (consumers, count) in consumers_and_count(),
        ops in proptest::collection::vec(cluster_op(), 1..200),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
    ) {
        let features = Features { cluster: true, ..features };
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// Consumers of one group with different claim settings (one sweeping
    /// far more eagerly than the others refresh), heartbeats on for all:
    /// a retry-after is kept group-wide (nobody gets the entry before its
    /// time while the consumer that asked is alive), a live handler's
    /// entries go to nobody else, and everything of the first property
    /// still holds.
    #[test]
    fn group_wide_promises_with_mixed_claim_settings(
        (consumers, count) in (2usize..=3, 1u64..=4),
        ops in proptest::collection::vec(op(), 1..200),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
        tunings in proptest::collection::vec((20u64..1200, 20u64..800), 3),
    ) {
        let features = Features { heartbeat: true, ..features };
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.check_held = true;
        // The first sweeps eagerly (min idle 100 ms, every 50 ms); the
        // others get random settings.
        world.tune_claims(0, Duration::from_millis(100), Duration::from_millis(50));
        for (i, &(idle, every)) in tunings.iter().enumerate().skip(1).take(consumers - 1) {
            world.tune_claims(i, Duration::from_millis(idle), Duration::from_millis(every));
        }
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// Second processes under running consumers' names, with crashes and
    /// restarts, disconnects and time jumps (heartbeats on): of the
    /// processes sharing a name, the others stop with `DuplicateConsumer`
    /// and one goes on; everything else of the first property holds.
    #[test]
    fn duplicate_names_and_crash_restarts(
        (consumers, count) in consumers_and_count(),
        ops in proptest::collection::vec(
            prop_oneof![12 => op(), 1 => (0usize..3).prop_map(Op::Duplicate)],
            1..200,
        ),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
    ) {
        let features = Features { heartbeat: true, ..features };
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// Every consumer reads 2 or 3 streams of one group under its one
    /// in-flight limit, on one server or a cluster, with every fault of the
    /// first property: everything holds per stream and id (two streams
    /// hold the same ids): each entry ends acknowledged or dead-lettered,
    /// nothing is acked that no handler acked, delivery counts match the
    /// stream's, retry-after promises are kept, and a consumer never has
    /// more batches in flight over all its streams than its limit.
    #[test]
    fn at_least_once_over_several_streams_under_faults(
        (consumers, count) in consumers_and_count(),
        streams in 2usize..=3,
        ops in proptest::collection::vec(several_streams_op(), 1..200),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
        (cluster, own_tags) in any::<(bool, bool)>(),
    ) {
        let features = Features { streams, cluster, own_tags, ..features };
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// [`group_wide_promises_with_mixed_claim_settings`] with every
    /// consumer reading 2 or 3 streams: a live handler's entries go to
    /// nobody else and retry-after promises are kept, per stream and id.
    #[test]
    fn group_wide_promises_over_several_streams(
        (consumers, count) in (2usize..=3, 1u64..=4),
        streams in 2usize..=3,
        ops in proptest::collection::vec(several_streams_op(), 1..200),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
        own_tags in any::<bool>(),
        tunings in proptest::collection::vec((20u64..1200, 20u64..800), 3),
    ) {
        let features = Features { heartbeat: true, streams, own_tags, ..features };
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.check_held = true;
        world.tune_claims(0, Duration::from_millis(100), Duration::from_millis(50));
        for (i, &(idle, every)) in tunings.iter().enumerate().skip(1).take(consumers - 1) {
            world.tune_claims(i, Duration::from_millis(idle), Duration::from_millis(every));
        }
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// [`duplicate_names_and_crash_restarts`] with every consumer reading 2
    /// or 3 streams (each stream fences the name on its own), on one
    /// server or a cluster.
    #[test]
    fn duplicate_names_over_several_streams(
        (consumers, count) in consumers_and_count(),
        streams in 2usize..=3,
        ops in proptest::collection::vec(
            prop_oneof![12 => several_streams_op(), 1 => (0usize..3).prop_map(Op::Duplicate)],
            1..200,
        ),
        chunks in proptest::collection::vec(1usize..64, 0..4),
        v62 in any::<bool>(),
        features in features(),
        (cluster, own_tags) in any::<(bool, bool)>(),
    ) {
        let features = Features { heartbeat: true, streams, cluster, own_tags, ..features };
        let mut world = World::with(consumers, count, chunks, v62, features);
        world.run(&ops);
        world.quiesce();
        world.check_final();
    }

    /// The same run with replies cut at arbitrary byte boundaries yields the
    /// same events as with whole replies.
    #[test]
    fn split_invariance(
        ops in proptest::collection::vec(op(), 1..80),
        chunks in proptest::collection::vec(1usize..40, 1..6),
        features in features(),
    ) {
        let mut whole = World::with(2, 3, Vec::new(), false, features);
        whole.run(&ops);
        let mut split = World::with(2, 3, chunks, false, features);
        split.run(&ops);
        prop_assert_eq!(whole.log, split.log);
    }
}

#[test]
fn a_crashed_consumers_entries_go_to_another_after_min_idle() {
    let mut world = World::new(2, 10, Vec::new(), false);
    world.run(&[Op::Produce(5)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:?}", world.log);
    // c0 dies for good: it never comes back.
    world.drop_connections(0);
    world.workers.remove(0);
    let before: Vec<Bytes> = world
        .sim
        .pending(STREAM, GROUP)
        .iter()
        .map(|p| p.consumer.clone())
        .collect();
    assert!(before.iter().all(|c| &c[..] == b"c0"));
    world.quiesce();
    world.check_final();
    assert!(
        world.log.iter().any(|l| l.contains("Claimed")),
        "{:#?}",
        world.log
    );
}

#[test]
fn a_restarted_consumer_replays_its_own_pending_first() {
    let mut world = World::new(1, 10, Vec::new(), false);
    world.run(&[
        Op::Produce(3),
        Op::Step(0),
        Op::Step(0),
        Op::Crash(0),
        Op::Step(0),
        Op::Step(0),
        Op::Step(0),
    ]);
    let batch = &world.workers[0].batches[0];
    assert_eq!(
        batch.source,
        xgroup_core::Source::OwnPending,
        "{:#?}",
        world.log
    );
    assert!(batch.messages.iter().all(|m| m.attempt == 2));
}

/// Found by the property test: the newest entry deleted before delivery.
#[test]
fn regression_deleted_last_entry() {
    let mut world = World::new(1, 1, Vec::new(), false);
    world.run(&[
        Op::Produce(3),
        Op::Produce(1),
        Op::Produce(2),
        Op::Produce(3),
        Op::Produce(3),
        Op::Produce(1),
        Op::Produce(3),
        Op::Produce(3),
        Op::Produce(5),
        Op::Produce(2),
        Op::Produce(3),
        Op::Produce(3),
        Op::Delete(54495),
    ]);
    world.quiesce();
    world.check_final();
}

fn hb_only() -> Features {
    Features {
        heartbeat: true,
        ..Features::default()
    }
}

#[test]
fn a_dead_consumer_is_taken_over_after_its_heartbeat_timeout_not_min_idle() {
    let mut world = World::with(2, 10, Vec::new(), false, hb_only());
    world.run(&[Op::Produce(5)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:#?}", world.log);
    world.drop_connections(0);
    world.workers.remove(0);
    let died = world.now;
    // Heartbeat 200 ms x 2 misses: taken over within ~0.4 s + one beat,
    // long before the claim min idle (1 s) allows a claim.
    for _ in 0..8 {
        world.advance(100);
        world.settle(0);
        if !world.workers[0].batches.is_empty() {
            break;
        }
    }
    let batch = world.workers[0]
        .batches
        .first()
        .expect("taken over")
        .clone();
    assert!(world.now - died < MIN_IDLE, "took {:?}", world.now - died);
    assert_eq!(batch.source, xgroup_core::Source::Claimed);
    assert!(batch.messages.iter().all(|m| m.attempt == 2));
    assert!(
        world.log.iter().any(|l| l.contains("ConsumerDead")),
        "{:#?}",
        world.log
    );
    world.quiesce();
    world.check_final();
    // Once nothing is pending for it, the dead consumer leaves the group.
    for _ in 0..10 {
        world.advance(100);
        world.settle(0);
    }
    let consumers = world.sim.consumers(STREAM, GROUP);
    assert!(!consumers.iter().any(|c| &c[..] == b"c0"), "{consumers:?}");
}

#[test]
fn a_second_live_process_with_the_same_name_stops_and_the_first_goes_on() {
    let mut world = World::with(2, 10, Vec::new(), false, hb_only());
    world.settle(0);
    world.advance(100);
    // A second process under c0's name, while c0 runs.
    world.workers[1].name = "c0".into();
    world.workers[1].consumer = MultiConsumer::new(config("c0", 10, 1, 42, hb_only()));
    world.settle(1);
    let started = world.now;
    while world.workers[1].stopped.is_none() && world.now - started < Duration::from_secs(2) {
        world.advance(50);
    }
    // Within about one heartbeat interval (200 ms) and a half.
    assert!(
        world.now - started <= Duration::from_millis(400),
        "took {:?}: {:#?}",
        world.now - started,
        world.log
    );
    assert!(
        matches!(
            world.workers[1].stopped,
            Some(Some(Error::DuplicateConsumer { .. }))
        ),
        "{:?}",
        world.workers[1].stopped
    );
    assert!(world.workers[0].stopped.is_none());
    // The newcomer read nothing; the holder goes on consuming.
    assert!(!world
        .log
        .iter()
        .any(|l| l.starts_with(&format!("{:?} 1: Deliver", world.now))));
    world.run(&[Op::Produce(4)]);
    world.quiesce();
    world.check_final();
    assert!(world.log.iter().any(|l| l.contains(" 0: Deliver")));
    assert!(!world.log.iter().any(|l| l.contains(" 1: Deliver")));
}

#[test]
fn a_crash_restart_resumes_its_own_work_within_about_one_interval() {
    let mut world = World::with(2, 10, Vec::new(), false, hb_only());
    world.run(&[Op::Produce(3)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:#?}", world.log);
    // c0's process dies without a graceful stop; it comes back at once.
    world.crash(0);
    let restarted = world.now;
    while world.workers[0].batches.is_empty() && world.now - restarted < Duration::from_secs(2) {
        world.advance(50);
    }
    let took = world.now - restarted;
    // Watched for an interval and a half (300 ms), not the key's expiry.
    assert!(
        took <= Duration::from_millis(400),
        "took {took:?}: {:#?}",
        world.log
    );
    let batch = &world.workers[0].batches[0];
    assert_eq!(batch.source, xgroup_core::Source::OwnPending);
    assert_eq!(batch.messages.len(), 3);
    assert!(world.workers[1].batches.is_empty(), "failed over meanwhile");
    assert!(
        !world.log.iter().any(|l| l.contains("ConsumerDead")),
        "{:#?}",
        world.log
    );
    world.quiesce();
    world.check_final();
}

#[test]
fn a_graceful_restart_starts_at_once() {
    let mut world = World::with(1, 10, Vec::new(), false, hb_only());
    world.run(&[Op::Produce(2)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:#?}", world.log);
    world.workers[0].consumer.handle_shutdown(world.now);
    world.drain(0);
    world.complete(0, 0);
    world.settle(0);
    assert!(
        matches!(world.workers[0].stopped, Some(None)),
        "{:?}: {:#?}",
        world.workers[0].stopped,
        world.log
    );
    // The key is gone: a new process under the name starts reading at once.
    assert!(world
        .sim
        .get_string(&xgroup_core::heartbeat_key(STREAM, GROUP, b"c0"))
        .is_none());
    world.crash(0);
    world.run(&[Op::Produce(1)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:#?}", world.log);
    world.quiesce();
    world.check_final();
}

#[test]
fn an_entry_that_always_fails_ends_dead_lettered_with_max_deliveries() {
    let features = Features {
        dead_letters: true,
        ..Features::default()
    };
    let mut world = World::with(1, 10, Vec::new(), false, features);
    world.run(&[Op::Produce(1)]);
    for _ in 0..40 {
        world.settle(0);
        world.complete(0, 3); // retry (it is the only message: k = 0)
        world.advance(100);
    }
    let dead = world.dead_lettered();
    assert_eq!(dead.len(), 1, "{:#?}", world.log);
    assert!(world.sim.pending(STREAM, GROUP).is_empty());
    let (_, fields) = &world.sim.entries(DLQ)[0];
    let get = |name: &[u8]| {
        fields
            .iter()
            .find(|(f, _)| &f[..] == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get(b"dlq_deliveries").unwrap(),
        Bytes::from(MAX_DELIVERIES.to_string())
    );
    assert_eq!(get(b"dlq_stream").unwrap(), Bytes::from_static(STREAM));
    assert_eq!(get(b"dlq_consumer").unwrap(), Bytes::from_static(b"c0"));
    assert!(get(b"dlq_reason").is_some());
    assert_eq!(world.handled.values().sum::<u32>() as u64, MAX_DELIVERIES);
}

#[test]
/// Found by the property test: a due retry waiting for a free slot must
/// keep its idle time fresh too.
fn regression_retry_waiting_for_a_slot_stays_fresh() {
    let mut world = World::with(2, 1, Vec::new(), false, Features::default());
    use Op::*;
    world.run(&[
        Produce(1),
        Produce(1),
        Produce(1),
        Produce(2),
        Complete(2, 1),
        Produce(1),
        Complete(0, 3),
        Advance(1),
        Advance(598),
        Advance(401),
        Complete(1, 0),
        Complete(1, 0),
        Advance(1),
        Complete(1, 0),
        Complete(0, 0),
        Complete(0, 0),
        Produce(1),
        Complete(1, 4),
        Produce(1),
        Produce(1),
    ]);
}

#[test]
/// Found by the property test: a decision taken on a half-read reply
/// depended on how the bytes were cut.
fn regression_no_decision_on_a_half_read_reply() {
    use Op::*;
    let f = Features {
        heartbeat: true,
        ..Features::default()
    };
    let ops = [Advance(1099), Produce(3), Produce(1), Produce(1)];
    let mut whole = World::with(2, 3, Vec::new(), false, f);
    whole.trace = true;
    whole.run(&ops);
    let mut split = World::with(2, 3, vec![1], false, f);
    split.trace = true;
    split.run(&ops);
    for (a, b) in whole.tx_log.iter().zip(split.tx_log.iter()) {
        if a != b {
            eprintln!("DIFF\n  whole {a}\n  split {b}");
            break;
        }
    }
    assert_eq!(whole.log, split.log);
}

#[test]
/// Found by the property test: a due retry was claimed back with min-idle 0,
/// taking the entry from the consumer that had claimed it meanwhile and
/// asked for a retry-after time.
fn regression_retry_after_across_crash_and_cuts() {
    use Op::*;
    let f = Features {
        heartbeat: true,
        ..Features::default()
    };
    let mut world = World::with(2, 2, Vec::new(), false, f);
    world.run(&[
        Advance(1),
        Produce(4),
        Produce(1),
        Produce(1),
        Produce(1),
        Produce(1),
        Produce(1),
        Crash(1),
        Advance(599),
        Disconnect(2),
        Advance(600),
        Produce(1),
        Produce(1),
        Produce(1),
        Produce(1),
        Complete(1, 2),
        Advance(300),
        Advance(363),
        Disconnect(1),
        Advance(16),
        Disconnect(0),
        Advance(118),
        Advance(303),
        Complete(2, 0),
        Produce(1),
        Complete(1, 0),
        Complete(1, 3),
        Produce(1),
        Produce(1),
        Complete(0, 4),
        Advance(1),
    ]);
    world.quiesce();
    world.check_final();
}

#[test]
/// Found by the property test: our own replay after a reconnect touched a
/// held entry; the refresh must count that touch as ours, or the entry is
/// given up and claimed by another before its retry-after time.
fn regression_retry_after_survives_disconnects() {
    use Op::*;
    let mut world = World::with(3, 1, Vec::new(), false, Features::default());
    world.run(&[
        Produce(1),
        Produce(3),
        Produce(1),
        Produce(1),
        Disconnect(0),
        Disconnect(2),
        Complete(2, 4),
    ]);
    world.quiesce();
    world.check_final();
}

#[test]
/// Found by the property test: an idle refresh written while our own replay
/// was out took that replay's touch for another consumer's, gave the entry
/// up, and it went to another consumer before its retry-after time.
fn regression_retry_after_across_a_disconnect_split() {
    use Op::*;
    let ops = [
        Step(0),
        Produce(1),
        Advance(1),
        Disconnect(0),
        Advance(8),
        Advance(400),
        Complete(0, 4),
        Advance(1000),
    ];
    let mut whole = World::with(2, 3, Vec::new(), false, Features::default());
    whole.run(&ops);
    let mut split = World::with(2, 3, vec![1], false, Features::default());
    split.run(&ops);
    assert_eq!(whole.log, split.log);
}

#[test]
/// A hung handler's consumer, alive (heartbeats on), releases the hung
/// entries: another consumer's sweep takes them, and once nothing is
/// pending for the released name, failover removes it from the group.
fn a_hung_handlers_entries_go_to_another_and_the_released_name_goes_away() {
    let mut world = World::with(2, 10, Vec::new(), false, hb_only());
    let hung = xgroup_core::ConsumerConfig::builder(STREAM, GROUP, "c0")
        .count(10)
        .block(Duration::from_millis(500))
        .claim_interval(CLAIM_EVERY)
        .claim_min_idle(MIN_IDLE)
        .heartbeat(Duration::from_millis(200), 2)
        .handler_timeout(Duration::from_millis(300))
        .seed(5)
        .build()
        .unwrap();
    world.workers[0].consumer = MultiConsumer::new(hung);
    world.run(&[Op::Produce(3)]);
    world.settle(0);
    assert_eq!(world.workers[0].batches.len(), 1, "{:#?}", world.log);
    let held: Vec<_> = world.workers[0].batches[0]
        .messages
        .iter()
        .map(|m| m.id)
        .collect();
    // c0's handler never finishes; time passes for everyone.
    for _ in 0..40 {
        world.advance(100);
        world.settle(1);
        while !world.workers[1].batches.is_empty() {
            world.complete(1, 0);
        }
    }
    assert!(
        world.log.iter().any(|l| l.contains("HandlerHung")),
        "{:#?}",
        world.log
    );
    for id in &held {
        assert!(
            world.handled.get(&(0, *id)) == Some(&2),
            "{id:?} not handled by c1: {:#?}",
            world.log
        );
    }
    assert!(world.sim.pending(STREAM, GROUP).is_empty());
    let consumers = world.sim.consumers(STREAM, GROUP);
    assert!(
        !consumers.iter().any(|c| c.ends_with(b"released")),
        "{consumers:?}"
    );
    assert!(world.workers[0].stopped.is_none());
}

#[test]
/// A second process under c0's name while c0 runs, then c0 crashes and
/// restarts: both newcomers watch the dead process's key and try to take
/// it over; one wins, the other stops, and nothing is lost.
fn two_newcomers_after_a_crash_one_takes_the_name_over() {
    let mut world = World::with(2, 3, Vec::new(), false, hb_only());
    world.run(&[
        Op::Produce(4),
        Op::Step(0),
        Op::Duplicate(0),
        Op::Crash(0),
        Op::Advance(1000),
    ]);
    let named: Vec<&Worker> = world.workers.iter().filter(|w| w.name == "c0").collect();
    assert_eq!(named.len(), 2);
    let running = named.iter().filter(|w| w.stopped.is_none()).count();
    assert_eq!(running, 1, "{:#?}", world.log);
    assert!(named
        .iter()
        .any(|w| matches!(w.stopped, Some(Some(Error::DuplicateConsumer { .. })))));
    world.quiesce();
    world.check_final();
}

/// Entries read ahead wait for a handler slot; meanwhile they are this
/// consumer's and kept fresh: another consumer's idle sweeps (min idle 1 s,
/// every 0.7 s) do not take them, however long the handler works, and the
/// reader hands them out itself once its slot is free.
#[test]
fn entries_read_ahead_are_kept_fresh_while_the_handler_works() {
    let mut world = World::with(2, 1, Vec::new(), false, Features::default());
    world.run(&[Op::Produce(3)]);
    world.settle(0);
    world.settle(1);
    let (reader, other) = if world.workers[0].batches.is_empty() {
        (1, 0)
    } else {
        (0, 1)
    };
    assert_eq!(world.workers[reader].batches.len(), 1, "{:#?}", world.log);
    assert!(world.workers[other].batches.is_empty());
    assert_eq!(
        world.workers[reader].consumer.held_entries(),
        3,
        "one with the handler, two read ahead"
    );
    for _ in 0..40 {
        world.advance(100);
        assert!(
            world.workers[other].batches.is_empty(),
            "entries read ahead were taken: {:#?}",
            &world.log[world.log.len().saturating_sub(20)..]
        );
    }
    for _ in 0..3 {
        world.complete(reader, 0);
        world.settle(reader);
    }
    world.quiesce();
    world.check_final();
    assert!(
        world.handled.values().all(|&n| n == 1),
        "{:?}",
        world.handled
    );
}

/// The cluster in front of the model redirects for real: a migration
/// (`ASK`, then `MOVED` once it ends) and a failover, with consumers
/// working through it, lose nothing; the consumers end at the new owner.
#[test]
fn a_migration_and_a_failover_on_the_model_cluster_are_followed() {
    let features = Features {
        cluster: true,
        ..Features::default()
    };
    let mut world = World::with(2, 2, Vec::new(), false, features);
    world.run(&[Op::Produce(5), Op::Advance(50), Op::Migrate(0)]);
    world.run(&[Op::Produce(5), Op::Advance(1200), Op::Step(0), Op::Step(1)]);
    let target = world.cluster.as_ref().unwrap().migrating_to.unwrap();
    let at_target = |w: &World| {
        w.workers
            .iter()
            .filter(|wk| {
                wk.consumer
                    .connect_address(xgroup_core::StreamConn {
                        stream: 0,
                        conn: xgroup_core::Conn::Control,
                    })
                    .map(|a| a.port)
                    == Some(NODE_PORT + target as u16)
            })
            .count()
    };
    assert_eq!(at_target(&world), 2, "not at the migration's target");
    world.run(&[
        Op::Migrate(0),
        Op::Produce(5),
        Op::Advance(300),
        Op::Failover(1),
    ]);
    world.run(&[Op::Produce(5), Op::Advance(1500), Op::Recover]);
    world.quiesce();
    world.check_final();
    let cluster = world.cluster.as_ref().unwrap();
    assert!(cluster.redirects >= 2, "{} redirects", cluster.redirects);
    assert_eq!(world.produced.len(), 20);
}

/// One consumer with room for one batch reading three streams, each with
/// a backlog: the slot goes round the streams (none starved while another
/// has entries waiting), it never holds two batches at once, and every
/// entry of every stream is handled once.
#[test]
fn one_slot_over_three_streams_goes_round_them_all() {
    let features = Features {
        streams: 3,
        ..Features::default()
    };
    let mut world = World::with(1, 1, Vec::new(), false, features);
    assert_eq!(world.workers[0].max_in_flight, 1);
    // Four entries in each stream, the first stream's first.
    world.run(&[Op::Produce(4), Op::Produce(8 | 4), Op::Produce(16 | 4)]);
    let mut order = Vec::new();
    for _ in 0..40 {
        world.settle(0);
        assert!(world.workers[0].batches.len() <= 1, "{:#?}", world.log);
        let Some(batch) = world.workers[0].batches.first() else {
            break;
        };
        order.push(world.features.stream_index(&batch.stream));
        world.complete(0, 0);
    }
    assert_eq!(order.len(), 12, "{order:?}: {:#?}", world.log);
    // Every stream has entries waiting all along: each slot freed goes to
    // the next stream in turn, so any three batches in a row are of three
    // streams (no stream waits behind another's backlog).
    for three in order.windows(3) {
        let mut streams = three.to_vec();
        streams.sort_unstable();
        assert_eq!(streams, [0, 1, 2], "{order:?}");
    }
    for s in 0..3 {
        assert_eq!(order.iter().filter(|&&o| o == s).count(), 4, "{order:?}");
    }
    world.quiesce();
    world.check_final();
    assert_eq!(world.handled.len(), 12);
    assert!(
        world.handled.values().all(|&n| n == 1),
        "{:?}",
        world.handled
    );
}

/// Streams put in one slot share a hash tag: a consumer of two of them,
/// alone under its name with heartbeats, is never taken for a second
/// process of that name (each stream's heartbeat is its own), and goes on
/// consuming both.
#[test]
fn a_consumer_of_streams_sharing_a_hash_tag_is_not_its_own_duplicate() {
    let features = Features {
        heartbeat: true,
        streams: 2,
        ..Features::default()
    };
    let mut world = World::with(1, 1, Vec::new(), false, features);
    // `run` checks after every op that no process stopped but a duplicate.
    world.run(&[Op::Advance(300), Op::Produce(1), Op::Produce(8 | 1)]);
    world.run(&[Op::Advance(1000)]);
    world.quiesce();
    world.check_final();
    assert_eq!(world.handled.len(), 2);
}

/// Without read-ahead a read of new entries takes a handler slot while
/// it waits. One slot over two streams, entries in the first only: the
/// empty stream's blocking reads, each sent again as the last comes back
/// empty, must not keep the slot from the stream with entries waiting.
#[test]
fn an_empty_streams_blocking_reads_do_not_keep_the_only_slot() {
    // (Read-ahead stays on: several streams refuse to go without it.)
    let features = Features {
        streams: 2,
        ..Features::default()
    };
    let mut world = World::with(1, 1, Vec::new(), false, features);
    world.run(&[Op::Produce(2)]);
    world.quiesce();
    world.check_final();
}

/// One slot over three streams, one connection each, heartbeats on (so an
/// entry of a live consumer is that consumer's to redeliver): the first
/// stream's sweeps (every 50 ms) and the others' reads come back in step.
/// An entry the handler left pending (ack none) on the second stream must
/// still come back: that stream's replay and sweeps get the slot in turn.
#[test]
fn every_stream_gets_the_slot_for_its_own_pending_entries() {
    let features = Features {
        heartbeat: true,
        one_connection: true,
        streams: 3,
        own_tags: true,
        ..Features::default()
    };
    let mut world = World::with(2, 1, Vec::new(), false, features);
    world.tune_claims(0, Duration::from_millis(100), Duration::from_millis(50));
    world.tune_claims(1, Duration::from_millis(20), Duration::from_millis(20));
    world.run(&[
        Op::Produce(1),
        Op::Produce(8 | 1),
        Op::Produce(1),
        Op::Produce(1),
        Op::Complete(0, 1),
    ]);
    world.quiesce();
    world.check_final();
}

/// Found by the property test: second processes under running consumers'
/// names, crashes and a cut connection of one stream. The processes
/// sharing a name come to the streams at different times, so one can hold
/// the name on some streams and find another holding it on the rest. Of
/// the processes sharing a name one must go on (the others stop with
/// `DuplicateConsumer`), as with one stream.
#[test]
fn of_two_processes_under_one_name_over_several_streams_one_goes_on() {
    use Op::*;
    let features = Features {
        heartbeat: true,
        streams: 2,
        own_tags: true,
        ..Features::default()
    };
    let mut world = World::with(2, 1, Vec::new(), false, features);
    // `run` checks after every op that a name sharing processes lives.
    world.run(&[
        Produce(1),
        Duplicate(1),
        Crash(1),
        Produce(1),
        Duplicate(0),
        Produce(1),
        Disconnect(9),
        Advance(99),
        Produce(1),
        Produce(1),
        Crash(0),
    ]);
    world.run(&[Advance(1000)]);
    world.quiesce();
    world.check_final();
}

/// The same on a cluster failing over, where a process is cut off from
/// the streams' node for a while.
#[test]
fn of_two_processes_under_one_name_over_several_streams_on_a_cluster_one_goes_on() {
    use Op::*;
    let features = Features {
        heartbeat: true,
        streams: 3,
        cluster: true,
        own_tags: true,
        ..Features::default()
    };
    let mut world = World::with(1, 1, Vec::new(), false, features);
    world.run(&[
        Migrate(2),
        Produce(1),
        Produce(1),
        Failover(0),
        Recover,
        Failover(0),
        Advance(120),
        Advance(478),
        Failover(0),
        Migrate(0),
        Duplicate(0),
        Produce(1),
        Advance(350),
        Produce(1),
        Produce(1),
        Produce(1),
    ]);
    // The handlers finish what they hold (a process that stops drains
    // first), time passes: `run` checks that the name still lives.
    for i in 0..world.workers.len() {
        while !world.workers[i].batches.is_empty() {
            world.complete(i, 0);
        }
    }
    world.run(&[Advance(1000)]);
    world.quiesce();
    world.check_final();
}

/// Found by the property test (1,500 cases, streams with their own hash
/// tags): consumers crash and restart under their names while the others
/// fail over the dead ones. A consumer taken for dead on a stream, whose
/// new process reads entries there under its name, must not be removed
/// from the group with them (`XGROUP DELCONSUMER` drops its pending
/// entries, which nobody would ever get again): every entry is handled.
#[test]
fn regression_a_dead_names_removal_keeps_what_its_new_process_read() {
    use Op::*;
    let features = Features {
        heartbeat: true,
        streams: 2,
        own_tags: true,
        ..Features::default()
    };
    let mut world = World::with(3, 1, Vec::new(), false, features);
    world.run(&[
        Advance(200),
        Produce(19),
        Produce(1),
        Advance(1),
        Disconnect(7),
        Produce(10),
        Complete(0, 2),
        Complete(2, 2),
        Step(0),
        Step(0),
        Step(0),
        Step(0),
        Crash(0),
        Complete(2, 1),
        Produce(20),
        Delete(24335),
        Advance(99),
        Produce(1),
        Crash(0),
        Advance(1099),
        Complete(0, 0),
        Produce(1),
        Produce(21),
        Produce(3),
        Complete(1, 1),
        Complete(0, 0),
        Step(0),
        Advance(400),
        Disconnect(14),
        Disconnect(0),
        Produce(21),
        Produce(19),
        Crash(1),
        Step(0),
        Produce(9),
        Step(0),
        Produce(12),
        Produce(5),
        Crash(0),
        Advance(200),
        Produce(12),
        Crash(2),
        Advance(300),
        Complete(1, 0),
        Produce(21),
        Delete(19936),
        Crash(2),
        Advance(99),
    ]);
    world.quiesce();
    world.check_final();
}

/// Streams with one hash tag share the name's heartbeat key. A graceful
/// stop while one stream's handler still works: the streams with nothing
/// in hand finish first, and the name must stay alive until the last one
/// has drained (no lapse of its heartbeat, its held entries to nobody
/// else), then go.
#[test]
fn a_graceful_stop_keeps_the_name_alive_while_a_stream_drains() {
    let features = Features {
        heartbeat: true,
        streams: 2,
        ..Features::default()
    };
    let mut world = World::with(2, 1, Vec::new(), false, features);
    world.check_held = true;
    world.run(&[Op::Produce(2), Op::Produce(8 | 2)]);
    world.settle(0);
    world.settle(1);
    assert_eq!(world.workers[0].batches.len(), 1, "{:#?}", world.log);
    world.workers[0].consumer.handle_shutdown(world.now);
    world.drain(0);
    for _ in 0..30 {
        world.advance(100);
        while !world.workers[1].batches.is_empty() {
            world.complete(1, 0);
        }
    }
    assert!(
        !world.log.iter().any(|l| l.contains("HeartbeatLapsed")),
        "{:#?}",
        world.log
    );
    world.complete(0, 0);
    world.settle(0);
    assert!(
        matches!(world.workers[0].stopped, Some(None)),
        "{:?}: {:#?}",
        world.workers[0].stopped,
        world.log
    );
    // A new process under the name finishes the work with the other.
    world.crash(0);
    world.quiesce();
    world.check_final();
}

/// Found by the property test over streams sharing a hash tag (so the
/// name's heartbeat key): consumers crash and come back under their
/// names, one stream's connection is cut. No second process ever shares
/// a name, so none stops.
#[test]
fn a_restart_over_streams_sharing_a_hash_tag_is_not_taken_for_a_duplicate() {
    use Op::*;
    let features = Features {
        heartbeat: true,
        streams: 2,
        ..Features::default()
    };
    let mut world = World::with(2, 1, Vec::new(), false, features);
    // `run` checks after every op that only a duplicate name stops.
    world.run(&[
        Produce(1),
        Crash(1),
        Produce(1),
        Disconnect(5),
        Produce(1),
        Crash(0),
    ]);
    world.run(&[Advance(1000)]);
    world.quiesce();
    world.check_final();
}

/// Found by the property test (polling, several streams): a consumer's
/// handler holds a batch of one stream while the shared slots are taken,
/// that stream's connection is cut and comes back, and the handler asks
/// for a retry after 2.5 s. The entries it holds, then promised, are its
/// own all along: nobody else gets them before the promised time (one
/// stream gets this right).
#[test]
fn regression_a_retry_after_is_kept_over_several_streams_when_polling() {
    use Op::*;
    let features = Features {
        polling: true,
        streams: 2,
        ..Features::default()
    };
    let mut world = World::with(3, 2, Vec::new(), false, features);
    world.run(&[
        Step(0),
        Step(2),
        Step(2),
        Step(0),
        Step(0),
        Step(2),
        Advance(499),
        Advance(250),
        Advance(550),
        Produce(3),
        Advance(800),
        Advance(157),
        Advance(442),
        Advance(750),
        Disconnect(16),
        Produce(9),
        Advance(299),
        Produce(1),
        Disconnect(4),
        Produce(1),
        Complete(1, 4),
        Advance(500),
    ]);
    world.quiesce();
    world.check_final();
}

/// On one server a consumer of three streams opens one read connection,
/// not one per stream: when every stream is drained, one blocked
/// `XREADGROUP` waits on all three, beside a control connection each.
#[test]
fn several_streams_on_one_server_wait_in_one_blocked_read() {
    let features = Features {
        streams: 3,
        ..Features::default()
    };
    let mut world = World::with(1, 2, Vec::new(), false, features);
    world.run(&[Op::Produce(3), Op::Produce(8 | 2), Op::Produce(16 | 4)]);
    world.quiesce();
    world.check_final();
    world.advance(10);
    let open: Vec<_> = world.workers[0].conns.iter().flatten().copied().collect();
    assert_eq!(
        open.len(),
        4,
        "a control connection per stream and one read"
    );
    let blocked = open.iter().filter(|&&c| world.sim.is_blocked(c)).count();
    assert_eq!(blocked, 1, "one read waits on every stream");
    // An entry on the last stream ends that wait and is delivered.
    world.run(&[Op::Produce(16 | 1)]);
    world.quiesce();
    world.check_final();
    assert_eq!(world.handled.len(), 10);
}

/// Two slots over three streams with a backlog each: once every stream
/// has entries waiting, each slot freed goes to the stream whose turn it
/// is (not the next one after the completing stream, which may hold the
/// other slot already), so any three batches in a row are of three streams
/// until the backlogs run out; each stream gets its share.
#[test]
fn two_slots_over_three_streams_go_round_them_all() {
    let features = Features {
        streams: 3,
        ..Features::default()
    };
    let mut world = World::with(1, 1, Vec::new(), false, features);
    let name = world.workers[0].name.clone();
    let consumer = MultiConsumer::new(config(&name, 1, 2, 0, features));
    world.workers[0] = Worker::new(name, consumer, 2, None);
    // Every stream's backlog is there before the consumer's first read.
    for s in 0..3 {
        for n in 0..6u8 {
            let id = world
                .sim
                .xadd(world.now, world.key(s), &[(b"n", &[b'0' + n])]);
            world.produced.insert((s, id));
        }
    }
    // Each batch's stream, in the order they were handed out.
    let (mut order, mut seen) = (Vec::new(), std::collections::HashSet::new());
    for _ in 0..40 {
        world.settle(0);
        let batches = &world.workers[0].batches;
        assert!(batches.len() <= 2, "{:#?}", world.log);
        if batches.is_empty() {
            break;
        }
        for b in batches.iter().filter(|b| seen.insert(b.id)) {
            order.push(world.features.stream_index(&b.stream));
        }
        world.complete(0, 0);
    }
    assert_eq!(order.len(), 18, "{order:?}");
    for three in order[3..15].windows(3) {
        let mut streams = three.to_vec();
        streams.sort_unstable();
        assert_eq!(streams, [0, 1, 2], "{order:?}");
    }
    world.quiesce();
    world.check_final();
    assert_eq!(world.handled.len(), 18);
}
