//! Decoding a large `XREADGROUP` reply (whole and in socket-sized reads),
//! encoding a large `XACK`, and the consumer state machine per batch.
//!
//! `cargo bench -p xgroup-core --bench decode`; throughput is in messages
//! (stream entries), so criterion reports the cost per message.

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xgroup_core::{
    reply, CommandWriter, Conn, Consumer, ConsumerConfig, Decoder, Event, Outcome, StreamId,
};

/// Entries in the benchmark reply.
const ENTRIES: usize = 1000;
const STREAM: &str = "orders";

fn bulk(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("${}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// A RESP2 `XREADGROUP` reply of `n` entries of `stream`, ids
/// `1700000000000-<i>`, three fields each (~30 bytes of field payload).
fn xreadgroup_reply(stream: &str, n: usize) -> Vec<u8> {
    let mut out = b"*1\r\n*2\r\n".to_vec();
    bulk(&mut out, stream.as_bytes());
    out.extend_from_slice(format!("*{n}\r\n").as_bytes());
    for i in 0..n {
        out.extend_from_slice(b"*2\r\n");
        bulk(&mut out, format!("1700000000000-{i}").as_bytes());
        out.extend_from_slice(b"*6\r\n");
        bulk(&mut out, b"user_id");
        bulk(
            &mut out,
            format!("{:06}", 100_000 + i * 7 % 900_000).as_bytes(),
        );
        bulk(&mut out, b"item");
        bulk(&mut out, format!("sku-{:05}", i * 31 % 100_000).as_bytes());
        bulk(&mut out, b"qty");
        bulk(&mut out, (1 + i % 9).to_string().as_bytes());
    }
    out
}

/// Feeds `bytes` in reads of `chunk` bytes, calling `next_frame` after each
/// read as an adapter does, and parses the reply.
fn decode_in_reads(decoder: &mut Decoder, bytes: &[u8], chunk: usize) -> usize {
    let mut frame = None;
    for read in bytes.chunks(chunk) {
        decoder.feed(read);
        if let Some(f) = decoder.next_frame().expect("valid reply") {
            frame = Some(f);
        }
    }
    let frame = frame.expect("complete reply");
    reply::xreadgroup(frame, STREAM.as_bytes())
        .expect("entries")
        .len()
}

fn decode(c: &mut Criterion) {
    let bytes = xreadgroup_reply(STREAM, ENTRIES);
    let mut group = c.benchmark_group(format!("decode_xreadgroup_{ENTRIES}"));
    group.throughput(Throughput::Elements(ENTRIES as u64));
    let mut decoder = Decoder::new();
    assert_eq!(decode_in_reads(&mut decoder, &bytes, bytes.len()), ENTRIES);
    group.bench_function("whole", |b| {
        b.iter(|| {
            decoder.feed(black_box(&bytes));
            let frame = decoder.next_frame().expect("valid").expect("complete");
            let entries = reply::xreadgroup(frame, STREAM.as_bytes()).expect("entries");
            assert_eq!(entries.len(), ENTRIES);
            entries
        })
    });
    for (name, chunk) in [("16KiB_reads", 16 * 1024), ("1KiB_reads", 1024)] {
        group.bench_function(name, |b| {
            b.iter(|| decode_in_reads(&mut decoder, black_box(&bytes), chunk))
        });
    }
    // The consumer's hot path: frame boundaries found by the scan, entries
    // parsed straight from the bytes (no frame tree).
    for (name, chunk) in [
        ("fast_whole", bytes.len()),
        ("fast_16KiB_reads", 16 * 1024),
        ("fast_1KiB_reads", 1024),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0;
                for piece in black_box(&bytes).chunks(chunk) {
                    decoder.feed(piece);
                    if let Some(raw) = decoder.next_raw().expect("valid") {
                        n += reply::xreadgroup_raw(raw.bytes(), STREAM.as_bytes())
                            .expect("plain shape")
                            .expect("entries")
                            .len();
                    }
                }
                assert_eq!(n, ENTRIES);
                n
            })
        });
    }
    group.finish();
}

fn encode_xack(c: &mut Criterion) {
    let ids: Vec<StreamId> = (0..ENTRIES as u64)
        .map(|i| StreamId::new(1_700_000_000_000, i))
        .collect();
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut group = c.benchmark_group(format!("encode_xack_{ENTRIES}"));
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function("command_writer", |b| {
        b.iter(|| {
            out.clear();
            let mut w = CommandWriter::begin(&mut out, 3 + ids.len());
            w.arg(b"XACK").arg(STREAM.as_bytes()).arg(b"processors");
            for id in black_box(&ids) {
                w.arg_id(*id);
            }
            drop(w);
            out.len()
        })
    });
    group.finish();
}

fn drain_transmit(consumer: &mut Consumer) -> usize {
    let mut n = 0;
    while let Some((_, bytes)) = consumer.poll_transmit() {
        n += bytes.len();
    }
    n
}

/// A consumer past start-up (group created, nothing to replay or claim),
/// with its `XREADGROUP ... >` sent.
fn started_consumer(now: Instant) -> Consumer {
    // The read/ack path alone: no heartbeat commands in the pipeline, and
    // one connection for every reply.
    let config = ConsumerConfig::builder(STREAM, "processors", "proc-1")
        .count(ENTRIES as u64)
        .no_heartbeat()
        .separate_read_connection(false)
        .no_read_ahead()
        .build()
        .expect("valid config");
    let mut consumer = Consumer::new(config);
    assert_eq!(consumer.poll_event(), Some(Event::Connect(Conn::Control)));
    consumer.handle_connected(now, Conn::Control);
    drain_transmit(&mut consumer);
    consumer.handle_input(now, Conn::Control, b"+OK\r\n+OK\r\n");
    let mut empty_replay = b"*1\r\n*2\r\n".to_vec();
    bulk(&mut empty_replay, STREAM.as_bytes());
    empty_replay.extend_from_slice(b"*0\r\n");
    consumer.handle_input(now, Conn::Control, &empty_replay);
    consumer.handle_input(now, Conn::Control, b"*3\r\n$3\r\n0-0\r\n*0\r\n*0\r\n");
    assert!(drain_transmit(&mut consumer) > 0);
    assert_eq!(consumer.poll_event(), None);
    consumer
}

fn consumer_batch(c: &mut Criterion) {
    let bytes = xreadgroup_reply(STREAM, ENTRIES);
    // The consumer never reads a clock; one instant serves every input.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut consumer = started_consumer(now);
    let mut group = c.benchmark_group(format!("consumer_batch_{ENTRIES}"));
    group.throughput(Throughput::Elements(ENTRIES as u64));
    group.bench_function("read_deliver_ack", |b| {
        b.iter(|| {
            for read in bytes.chunks(16 * 1024) {
                consumer.handle_input(now, Conn::Control, read);
            }
            let Some(Event::Deliver(batch)) = consumer.poll_event() else {
                panic!("expected a batch");
            };
            assert_eq!(batch.messages.len(), ENTRIES);
            consumer.handle_completion(now, batch.id, Outcome::AckAll);
            // XACK of the batch and the next XREADGROUP.
            let sent = drain_transmit(&mut consumer);
            consumer.handle_input(now, Conn::Control, b":1000\r\n");
            assert_eq!(consumer.poll_event(), None);
            sent
        })
    });
    group.finish();
    assert_eq!(consumer.stats().errors, 0);
}

criterion_group!(benches, decode, encode_xack, consumer_batch);
criterion_main!(benches);
