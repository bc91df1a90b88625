use super::*;

fn outbox() -> Outbox {
    let cfg = ConsumerConfig::builder("s", "g", "c")
        .build()
        .expect("valid config");
    Outbox::new(&cfg)
}

#[allow(clippy::disallowed_methods)] // a test's instant
fn now() -> Instant {
    Instant::now()
}

/// What is to be written on the control connection.
fn written(o: &mut Outbox) -> String {
    written_on(o, Conn::Control)
}

/// What is to be written on `conn` (the other's bytes must not come first).
fn written_on(o: &mut Outbox, conn: Conn) -> String {
    let bytes = match o.take_bytes() {
        Some((to, bytes)) => {
            assert_eq!(to, conn, "bytes for the other connection");
            bytes.to_vec()
        }
        None => Vec::new(),
    };
    String::from_utf8(bytes)
        .expect("utf-8")
        .replace("\r\n", " ")
}

#[test]
fn a_transaction_awaits_one_reply_per_frame() {
    let mut o = outbox();
    let ids = [StreamId::new(1, 0), StreamId::new(2, 0)];
    o.ack_delete_tx(now(), &ids);
    assert_eq!(
        written(&mut o),
        "*1 $5 MULTI *5 $4 XACK $1 s $1 g $3 1-0 $3 2-0 *4 $4 XDEL $1 s $3 1-0 $3 2-0 \
         *1 $4 EXEC "
    );
    match o.next_answered(Conn::Control).map(|c| c.what) {
        Some(Sent::Tx { left, .. }) => assert_eq!(left, 4),
        other => panic!("expected a transaction, got {other:?}"),
    }
}

#[test]
fn dead_letters_go_out_as_one_script_call_with_each_entrys_pairs() {
    let mut o = outbox();
    let item = |ms, fields: Option<crate::reply::Fields>| DeadItem {
        id: StreamId::new(ms, 0),
        attempt: 3,
        fields,
        reason: "r".into(),
        touched: now(),
    };
    let fields: crate::reply::Fields =
        vec![(Bytes::from_static(b"a"), Bytes::from_static(b"1"))].into();
    o.dead_letter_move(now(), b"dlq", &[item(1, Some(fields)), item(2, None)], true);
    let text = written(&mut o);
    // EVAL, the script, 2 keys, group, delete flag; then per entry its id,
    // its pair count (own fields + 6 of provenance) and the pairs.
    assert!(text.starts_with("*37 $4 EVAL "), "{text}");
    let args = text
        .split_once(" s $3 dlq $1 g $1 1 ")
        .expect("keys and flags")
        .1;
    assert!(
        args.starts_with("$3 1-0 $1 7 $1 a $1 1 $10 dlq_stream $1 s "),
        "{args}"
    );
    assert!(args.contains("$3 2-0 $1 6 $10 dlq_stream"), "{args}");
    assert!(
        args.ends_with("$14 dlq_deliveries $1 3 $10 dlq_reason $1 r "),
        "{args}"
    );
    assert!(matches!(
        o.next_answered(Conn::Control).map(|c| c.what),
        Some(Sent::DeadLetters)
    ));
}

#[test]
fn a_blocking_read_gets_its_block_time_to_answer() {
    let mut o = outbox();
    let t = now();
    o.read(
        t,
        (Conn::Control, Fetch::Read),
        ReadFrom::New,
        10,
        Some(Duration::from_millis(2500)),
    );
    o.read(
        t,
        (Conn::Control, Fetch::Replay),
        ReadFrom::PendingAfter(StreamId::ZERO),
        10,
        None,
    );
    assert_eq!(
        written(&mut o),
        "*11 $10 XREADGROUP $5 GROUP $1 g $1 c $5 COUNT $2 10 $5 BLOCK $4 2500 \
         $7 STREAMS $1 s $1 > \
         *9 $10 XREADGROUP $5 GROUP $1 g $1 c $5 COUNT $2 10 $7 STREAMS $1 s $3 0-0 "
    );
    let reply = ConsumerConfig::builder("s", "g", "c")
        .build()
        .expect("valid config")
        .reply_timeout;
    let first = o.next_answered(Conn::Control).expect("a read");
    assert_eq!(first.deadline, t + reply + Duration::from_millis(2500));
    assert_eq!(o.oldest().map(|c| c.deadline), Some(t + reply));
    assert!(o.only_fetches_out(Conn::Control));
    assert!(o.touching_out());
    assert!(!o.only_new_reads_out());
}

#[test]
fn failover_commands_name_the_dead_consumer_not_this_one() {
    let mut o = outbox();
    let dead = Bytes::from_static(b"gone");
    o.dead_pending(now(), dead.clone(), 10);
    o.liveness(now(), dead.clone(), b"{s}:xgroup:hb:g:gone");
    o.del_consumer(now(), dead, b"{s}:xgroup:hb:g:gone");
    let script = REMOVE_DEAD_SCRIPT;
    assert_eq!(
        written(&mut o),
        format!(
            "*7 $8 XPENDING $1 s $1 g $1 - $1 + $2 10 $4 gone \
             *2 $3 GET $20 {{s}}:xgroup:hb:g:gone \
             *7 $4 EVAL ${} {script} $1 2 $1 s $20 {{s}}:xgroup:hb:g:gone $1 g $4 gone ",
            script.len()
        )
    );
}

#[test]
fn clearing_forgets_bytes_and_replies() {
    let mut o = outbox();
    o.pending_summary(now());
    o.clear();
    assert!(o.take_bytes().is_none());
    assert!(o.next_answered(Conn::Control).is_none());
}

#[test]
fn reads_on_the_read_connection_are_written_and_answered_there() {
    let mut o = outbox();
    let t = now();
    let block = Some(Duration::from_millis(5000));
    o.read(t, (Conn::Read, Fetch::Read), ReadFrom::New, 10, block);
    o.ack(t, &[StreamId::new(1, 0)]);
    // The control connection's bytes first, each on its own connection.
    assert_eq!(written(&mut o), "*4 $4 XACK $1 s $1 g $3 1-0 ");
    assert_eq!(
        written_on(&mut o, Conn::Read),
        "*11 $10 XREADGROUP $5 GROUP $1 g $1 c $5 COUNT $2 10 $5 BLOCK $4 5000 \
         $7 STREAMS $1 s $1 > "
    );
    assert!(o.take_bytes().is_none());
    // The ack's reply is due first, and only new-entry reads stay out.
    let reply = outbox().reply_timeout;
    assert_eq!(o.oldest().map(|c| c.deadline), Some(t + reply));
    assert!(!o.only_fetches_out(Conn::Control) && o.only_fetches_out(Conn::Read));
    assert!(matches!(
        o.next_answered(Conn::Control).map(|c| c.what),
        Some(Sent::Ack)
    ));
    assert!(o.only_fetches_out(Conn::Control) && o.only_new_reads_out());
    assert_eq!(o.fetches_out(), 1);
    assert!(o.next_answered(Conn::Control).is_none());
    assert!(matches!(
        o.next_answered(Conn::Read).map(|c| c.what),
        Some(Sent::Fetch(Fetch::Read))
    ));
    // Clearing forgets both connections'.
    o.read(t, (Conn::Read, Fetch::Read), ReadFrom::New, 10, None);
    o.clear();
    assert!(o.take_bytes().is_none() && o.oldest().is_none());
}

#[test]
fn reads_asked_of_a_combined_read_are_counted_until_answered_in_their_epoch() {
    let mut o = outbox();
    o.ask_reads();
    let t = now();
    let block = Some(Duration::from_secs(2));
    o.read(t, (Conn::Read, Fetch::Read), ReadFrom::New, 10, block);
    o.read(t, (Conn::Read, Fetch::Read), ReadFrom::New, 7, None);
    assert!(o.take_bytes().is_none(), "asked, not written");
    assert!(o.oldest().is_none(), "no reply of its own to time out");
    assert_eq!((o.fetches_out(), o.fetches_out_on(Conn::Read)), (2, 2));
    assert_eq!(o.read_ask(), Some(ReadAsk { count: 10, block }));
    let epoch = o.take_read_ask().expect("one waiting");
    assert_eq!(o.read_asks_out(), 1);
    assert_eq!(o.read_ask().map(|a| a.count), Some(7));
    assert!(o.read_ask_answered(epoch));
    assert!(!o.read_ask_answered(epoch), "none out");
    // The connections lost: an answer asked before is not ours.
    let old = o.take_read_ask().expect("the second");
    o.clear();
    assert_eq!(o.fetches_out(), 0);
    assert!(!o.read_ask_answered(old));
    o.read(t, (Conn::Read, Fetch::Read), ReadFrom::New, 3, block);
    assert_eq!(o.drop_waiting_asks(), 1);
    assert_eq!(o.fetches_out(), 0);
    // Control fetches are still written.
    o.read(
        t,
        (Conn::Control, Fetch::Replay),
        ReadFrom::PendingAfter(StreamId::ZERO),
        5,
        None,
    );
    assert!(written(&mut o).starts_with("*9 $10 XREADGROUP"));
    o.stop_asking();
    o.read(t, (Conn::Read, Fetch::Read), ReadFrom::New, 3, None);
    assert!(written_on(&mut o, Conn::Read).starts_with("*9 $10 XREADGROUP"));
}
