//! End to end through the public API: real replies (recorded from
//! redis-server 7.0.15, RESP2 and RESP3) fed to [`Decoder`] in arbitrary
//! pieces parse to the same typed values as when fed whole.

use bytes::Bytes;
use proptest::prelude::*;
use xgroup_core::reply::{self, Entry};
use xgroup_core::{Decoder, Frame, ProtocolError, StreamId};

const R2_XREADGROUP_PENDING_DELETED: &[u8] = b"*1\r\n*2\r\n$2\r\ns2\r\n*3\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n*2\r\n$3\r\n2-0\r\n*-1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n";
const R3_XREADGROUP_PENDING_DELETED: &[u8] = b"%1\r\n$2\r\ns3\r\n*3\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n*2\r\n$3\r\n2-0\r\n_\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n";
const R2_XREADGROUP_TIMEOUT: &[u8] = b"*-1\r\n";
const R3_XREADGROUP_TIMEOUT: &[u8] = b"_\r\n";
const XAUTOCLAIM: &[u8] = b"*3\r\n$3\r\n0-0\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*1\r\n$3\r\n2-0\r\n";
const R2_XPENDING_SUMMARY_EMPTY: &[u8] = b"*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n";
const R3_XPENDING_SUMMARY_EMPTY: &[u8] = b"*4\r\n:0\r\n_\r\n_\r\n_\r\n";
const GROUP_CREATE_BUSY: &[u8] = b"-BUSYGROUP Consumer Group name already exists\r\n";
const XACK: &[u8] = b":2\r\n";

/// The replies of one consumer round trip, pipelined, as one RESP2 or RESP3
/// byte stream.
fn conversation(resp3: bool) -> Vec<u8> {
    let (read, timeout, pending) = if resp3 {
        (
            R3_XREADGROUP_PENDING_DELETED,
            R3_XREADGROUP_TIMEOUT,
            R3_XPENDING_SUMMARY_EMPTY,
        )
    } else {
        (
            R2_XREADGROUP_PENDING_DELETED,
            R2_XREADGROUP_TIMEOUT,
            R2_XPENDING_SUMMARY_EMPTY,
        )
    };
    [GROUP_CREATE_BUSY, read, XACK, timeout, XAUTOCLAIM, pending].concat()
}

#[derive(Debug, PartialEq)]
struct Parsed {
    group: reply::GroupCreated,
    read: Vec<Entry>,
    acked: i64,
    timeout: Vec<Entry>,
    claimed: reply::AutoClaimed,
    pending: reply::PendingSummary,
}

fn parse(frames: Vec<Frame>, stream: &[u8]) -> Parsed {
    let [group, read, acked, timeout, claimed, pending]: [Frame; 6] =
        frames.try_into().expect("six frames");
    Parsed {
        group: reply::group_create(group).unwrap(),
        read: reply::xreadgroup(read, stream).unwrap(),
        acked: reply::integer(acked, "XACK").unwrap(),
        timeout: reply::xreadgroup(timeout, stream).unwrap(),
        claimed: reply::xautoclaim(claimed).unwrap(),
        pending: reply::xpending_summary(pending).unwrap(),
    }
}

fn expected() -> Parsed {
    let fields = |pairs: &[(&'static str, &'static str)]| {
        Some(
            pairs
                .iter()
                .map(|(f, v)| (Bytes::from(*f), Bytes::from(*v)))
                .collect(),
        )
    };
    let e1 = Entry {
        id: StreamId::new(1, 0),
        fields: fields(&[("f1", "v1"), ("f2", "v2")]),
    };
    let e3 = Entry {
        id: StreamId::new(3, 0),
        fields: fields(&[("b", "2")]),
    };
    Parsed {
        group: reply::GroupCreated::AlreadyExisted,
        read: vec![
            e1.clone(),
            Entry {
                id: StreamId::new(2, 0),
                fields: None,
            },
            e3.clone(),
        ],
        acked: 2,
        timeout: vec![],
        claimed: reply::AutoClaimed {
            next: StreamId::ZERO,
            entries: vec![e1, e3],
            deleted: vec![StreamId::new(2, 0)],
            nil_entries: 0,
        },
        pending: reply::PendingSummary::default(),
    }
}

fn decode_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Frame> {
    let mut d = Decoder::new();
    let mut frames = Vec::new();
    let mut rest = bytes;
    for &n in cuts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(n.clamp(1, rest.len()));
        rest = tail;
        d.feed(chunk);
        while let Some(f) = d.next_frame().unwrap() {
            frames.push(f);
        }
    }
    assert_eq!(d.buffered(), 0);
    frames
}

#[test]
fn whole_and_byte_by_byte() {
    for (resp3, stream) in [(false, &b"s2"[..]), (true, b"s3")] {
        let bytes = conversation(resp3);
        assert_eq!(
            parse(decode_in_pieces(&bytes, &[bytes.len()]), stream),
            expected()
        );
        assert_eq!(parse(decode_in_pieces(&bytes, &[1]), stream), expected());
    }
}

#[test]
fn garbage_after_a_frame_is_reported_after_that_frame() {
    let mut d = Decoder::new();
    d.feed(XACK);
    d.feed(b"@oops\r\n");
    assert!(d.next_frame().unwrap().is_some());
    assert!(matches!(d.next_frame(), Err(ProtocolError::Malformed(_))));
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_split_parses_the_same(
        resp3 in any::<bool>(),
        cuts in proptest::collection::vec(1usize..40, 1..20),
    ) {
        let bytes = conversation(resp3);
        let stream: &[u8] = if resp3 { b"s3" } else { b"s2" };
        prop_assert_eq!(parse(decode_in_pieces(&bytes, &cuts), stream), expected());
    }
}
