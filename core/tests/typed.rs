//! Typed messages: structs to fields and back (a property test over every
//! kind of value the field mapping takes), the errors naming the field,
//! and payload fields.
#![cfg(all(feature = "serde", feature = "json"))]

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use xgroup_core::{to_fields, Fields, FieldsError, FieldsErrorKind, Payload};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Status {
    Open,
    Paid,
    #[serde(rename = "on-hold")]
    OnHold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct UserId(u64);

/// Every kind of value a field can hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    small: u8,
    unsigned: u64,
    huge: u128,
    signed: i64,
    tiny: i8,
    wide: i128,
    ratio: f64,
    single: f32,
    flag: bool,
    letter: char,
    text: String,
    maybe_text: Option<String>,
    maybe_number: Option<i32>,
    raw: Vec<u8>,
    shared: Bytes,
    status: Status,
    user: UserId,
    nothing: (),
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![Just(Status::Open), Just(Status::Paid), Just(Status::OnHold)]
}

prop_compose! {
    fn everything()(
        small in any::<u8>(),
        unsigned in any::<u64>(),
        huge in any::<u128>(),
        signed in any::<i64>(),
        tiny in any::<i8>(),
        wide in any::<i128>(),
        ratio in any::<f64>().prop_filter("finite", |f| f.is_finite()),
        single in any::<f32>().prop_filter("finite", |f| f.is_finite()),
        flag in any::<bool>(),
        letter in any::<char>(),
        text in ".*",
        maybe_text in proptest::option::of(".*"),
        maybe_number in proptest::option::of(any::<i32>()),
        raw in proptest::collection::vec(any::<u8>(), 0..64),
        shared in proptest::collection::vec(any::<u8>(), 0..64),
        status in status(),
        user in any::<u64>(),
    ) -> Everything {
        Everything {
            small, unsigned, huge, signed, tiny, wide, ratio, single, flag, letter, text,
            maybe_text, maybe_number, raw, shared: Bytes::from(shared), status,
            user: UserId(user), nothing: (),
        }
    }
}

/// The fields as the server would send them back: the pairs re-encoded
/// as received bytes, not the `Fields` `to_fields` built.
fn as_received(fields: &Fields) -> Fields {
    fields.to_vec().into()
}

proptest! {
    #[test]
    fn structs_round_trip_through_fields(value in everything()) {
        let fields = to_fields(&value).expect("serializable");
        // One field per struct field, but for the `None`s.
        let nones = usize::from(value.maybe_text.is_none()) + usize::from(value.maybe_number.is_none());
        prop_assert_eq!(fields.len(), 18 - nones);
        prop_assert_eq!(fields.get("maybe_text").is_some(), value.maybe_text.is_some());
        prop_assert_eq!(fields.get("raw"), Some(&value.raw[..]));
        let unsigned = value.unsigned.to_string();
        prop_assert_eq!(fields.get("unsigned"), Some(unsigned.as_bytes()));
        let back: Everything = as_received(&fields).deserialize().expect("deserializable");
        prop_assert_eq!(back, value);
    }

    #[test]
    fn maps_round_trip_through_fields(map in proptest::collection::btree_map(".*", ".*", 0..8)) {
        let fields = to_fields(&map).expect("serializable");
        prop_assert_eq!(fields.len(), map.len());
        let back: BTreeMap<String, String> = as_received(&fields).deserialize().expect("deserializable");
        prop_assert_eq!(&back, &map);
        let hashed: HashMap<String, String> = fields.deserialize().expect("deserializable");
        prop_assert_eq!(hashed.len(), map.len());
    }

    /// Text that is not a number never reads as one: the error names the
    /// field and shows the value.
    #[test]
    fn a_value_that_is_not_a_number_names_its_field(text in ".*") {
        prop_assume!(text.parse::<u64>().is_err());
        let fields: Fields = [("id", "1"), ("count", text.as_str())].into_iter().collect();
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Counted { id: u64, count: u64 }
        let e = fields.deserialize::<Counted>().unwrap_err();
        prop_assert_eq!(e.field.as_deref(), Some("count"));
        let is_invalid = matches!(e.kind, FieldsErrorKind::Invalid { expected: "an integer (u64)", .. });
        prop_assert!(is_invalid, "{:?}", e);
    }
}

#[derive(Debug, PartialEq, Deserialize)]
struct Payment {
    user: String,
    amount: f64,
    paid: bool,
    note: Option<String>,
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs.iter().copied().collect()
}

#[test]
fn errors_name_the_field_and_say_why() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("user", "ada"), ("amount", "abc"), ("paid", "true")],
            r#"field "amount": "abc" is not a number"#,
        ),
        (
            &[("user", "ada"), ("amount", "1"), ("paid", "yes")],
            r#"field "paid": "yes" is not a bool (true, false, 1 or 0)"#,
        ),
        (
            &[("user", "ada"), ("paid", "true")],
            r#"field "amount" is missing"#,
        ),
    ];
    for (pairs, want) in cases {
        let e = fields(pairs).deserialize::<Payment>().unwrap_err();
        assert_eq!(e.to_string(), *want);
    }
    // Not UTF-8 where text is wanted.
    let bad: Fields = [
        (&b"user"[..], &b"\xff"[..]),
        (b"amount", b"1"),
        (b"paid", b"0"),
    ]
    .into_iter()
    .collect();
    let e = bad.deserialize::<Payment>().unwrap_err();
    assert_eq!(e.field.as_deref(), Some("user"));
    assert_eq!(e.kind, FieldsErrorKind::NotText);
    // A long value is shortened in the error.
    let long = "x".repeat(1000);
    let e = fields(&[("user", "a"), ("amount", &long), ("paid", "1")])
        .deserialize::<Payment>()
        .unwrap_err();
    assert!(e.to_string().len() < 150, "{e}");
    // An unknown enum variant, and an unknown field where they are denied.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        status: Status,
    }
    let e = fields(&[("status", "Lost")])
        .deserialize::<Strict>()
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("status"));
    assert!(e.to_string().contains("unknown variant `Lost`"), "{e}");
    let e = fields(&[("status", "Paid"), ("extra", "1")])
        .deserialize::<Strict>()
        .unwrap_err();
    assert_eq!(e.to_string(), r#"field "extra" is not a field of the type"#);
}

#[test]
fn reading_takes_the_first_of_duplicate_fields_and_borrows() {
    #[derive(Debug, Deserialize)]
    struct Borrowed<'a> {
        user: &'a str,
        #[serde(with = "serde_bytes_like")]
        blob: &'a [u8],
    }
    mod serde_bytes_like {
        pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<&'de [u8], D::Error> {
            <&[u8]>::deserialize(d)
        }
        use serde::Deserialize;
    }
    let f = fields(&[("user", "first"), ("blob", "\x01\x02"), ("user", "second")]);
    let b: Borrowed<'_> = f.deserialize().expect("deserializable");
    assert_eq!(b.user, "first");
    assert_eq!(b.blob, b"\x01\x02");
    assert!(f.as_resp().as_ptr_range().contains(&b.user.as_ptr()));
}

#[test]
fn nested_structures_are_errors_naming_the_field() {
    #[derive(Debug, Serialize, Deserialize)]
    struct Address {
        city: String,
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct Customer {
        name: String,
        address: Address,
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct Tagged {
        name: String,
        tags: Vec<String>,
    }
    let e = to_fields(&Customer {
        name: "ada".into(),
        address: Address {
            city: "London".into(),
        },
    })
    .unwrap_err();
    assert_eq!(
        e,
        FieldsError::new(Some("address".into()), FieldsErrorKind::Nested)
    );
    let e = to_fields(&Tagged {
        name: "ada".into(),
        tags: vec!["a".into()],
    })
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("tags"));
    assert_eq!(e.kind, FieldsErrorKind::Nested);
    let e = fields(&[("name", "ada"), ("address", "London")])
        .deserialize::<Customer>()
        .unwrap_err();
    assert_eq!(
        e,
        FieldsError::new(Some("address".into()), FieldsErrorKind::Nested)
    );
    let e = fields(&[("name", "ada"), ("tags", "a")])
        .deserialize::<Tagged>()
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("tags"));
    // A value with no field names at all.
    let e = to_fields(&vec![1, 2]).unwrap_err();
    assert_eq!(e.kind, FieldsErrorKind::NotAnEntry { what: "a sequence" });
    assert_eq!(e.field, None);
}

#[test]
fn payload_fields_hold_nested_values_in_json() {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: u64,
        items: Vec<String>,
        customer: BTreeMap<String, String>,
    }
    let order = Order {
        id: 7,
        items: vec!["widget".into(), "gadget".into()],
        customer: [("name".to_owned(), "ada".to_owned())].into(),
    };
    let payload = Payload::json("payload");
    let f = payload.to_fields(&order).expect("encodable");
    assert_eq!(f.len(), 1);
    let back: Order = as_received(&f)
        .deserialize_payload(&payload)
        .expect("decodable");
    assert_eq!(back, order);

    let e = fields(&[("other", "{}")])
        .deserialize_payload::<Order, _>(&payload)
        .unwrap_err();
    assert_eq!(e.to_string(), r#"field "payload" is missing"#);
    let e = fields(&[("payload", r#"{"id":"seven"}"#)])
        .deserialize_payload::<Order, _>(&payload)
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("payload"));
    assert!(
        matches!(&e.kind, FieldsErrorKind::Payload { format, detail } if format == "JSON" && detail.contains("invalid type")),
        "{e:?}"
    );
}
