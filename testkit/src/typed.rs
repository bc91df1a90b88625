//! The typed-message scenarios every adapter passes (run with the others by
//! [`adapter_scenarios!`](crate::adapter_scenarios)): structs written with
//! the adapter's `Connection::xadd_serialized` (and `xadd_payload`), read
//! back with `Fields::deserialize` inside the adapter's handler; and
//! malformed fields, whose errors name the field.

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use xgroup_core::{Error, Fields, FieldsError, FieldsErrorKind, Payload};

use crate::scenarios::{
    all_seen, fast, opts, spec, stop_ok, wait_pending, Adapter, Behavior, Seen, WAIT,
};
use crate::{RedisServer, RespValue};

/// An order, field by field: every kind of value a field holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// A number.
    pub id: u64,
    /// Text.
    pub customer: String,
    /// A float.
    pub amount: f64,
    /// A bool.
    pub paid: bool,
    /// Left out when `None`.
    pub note: Option<String>,
    /// Raw bytes.
    pub receipt: Bytes,
    /// A unit enum, by its variant's name.
    pub status: Status,
}

/// An order's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Not yet paid.
    Open,
    /// Paid.
    Paid,
}

/// A shipment with nested structure: only as a payload field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    /// The orders shipped.
    pub orders: Vec<u64>,
    /// Where to.
    pub address: Address,
}

/// A nested structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    /// The city.
    pub city: String,
}

/// The payload field shipments travel in.
fn shipment_payload() -> Payload<xgroup_core::Json> {
    Payload::json("shipment")
}

/// What the handler reads from an entry: a shipment from its payload
/// field if it has one, else an order field by field; as `Debug` text.
fn decode(fields: &Fields) -> String {
    if fields.get("shipment").is_some() {
        format!(
            "{:?}",
            fields.deserialize_payload::<Shipment, _>(&shipment_payload())
        )
    } else {
        format!("{:?}", fields.deserialize::<Order>())
    }
}

fn order(i: u64) -> Order {
    Order {
        id: i,
        customer: format!("customer {i} \u{e9}"),
        amount: i as f64 * 1.25 + 0.1,
        paid: i % 2 == 0,
        note: (i % 3 == 0).then(|| format!("note {i}")),
        receipt: Bytes::from(vec![0, 0xff, b'\r', b'\n', i as u8]),
        status: if i % 2 == 0 {
            Status::Paid
        } else {
            Status::Open
        },
    }
}

/// Orders written with `xadd_serialized` and a shipment with
/// `xadd_payload` are read back in the handler, equal to what was written;
/// the orders' fields are text as the mapping says.
pub fn typed_messages_are_produced_and_deserialized_in_the_handler<A: Adapter>() {
    let server = RedisServer::start();
    let url = server.url();
    let orders: Vec<Order> = (0..12).map(order).collect();
    let mut ids: Vec<String> = A::xadd_serialized(&url, "s", &orders)
        .expect("xadd_serialized")
        .iter()
        .map(ToString::to_string)
        .collect();
    let shipment = Shipment {
        orders: vec![1, 2, 3],
        address: Address {
            city: "Lyon".into(),
        },
    };
    let shipped = A::xadd_payload(&url, "s", &shipment_payload(), &shipment).expect("xadd_payload");
    ids.push(shipped.to_string());

    let mut s = spec(&url, "c1", Behavior::AckAll, opts(fast));
    s.seen = Arc::new(Seen::decoding(decode));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "not all delivered: {:?}",
        seen.ids()
    );
    wait_pending(&server, 0);
    stop_ok(running);

    let deliveries = seen.deliveries();
    let decoded: Vec<Option<String>> = deliveries.iter().map(|d| d.decoded.clone()).collect();
    let mut want: Vec<Option<String>> = orders
        .iter()
        .map(|o| Some(format!("{:?}", Ok::<_, FieldsError>(o.clone()))))
        .collect();
    want.push(Some(format!("{:?}", Ok::<_, FieldsError>(shipment))));
    assert_eq!(decoded, want);
    // As the server has them: text, `None` left out, the payload as JSON.
    let fields = |d: &crate::scenarios::Delivery| -> Vec<(String, String)> { d.fields.clone() };
    let first = fields(&deliveries[1]);
    assert_eq!(
        first.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        ["id", "customer", "amount", "paid", "receipt", "status"]
    );
    assert_eq!(first[2], ("amount".into(), orders[1].amount.to_string()));
    assert_eq!(first[3], ("paid".into(), "false".into()));
    assert_eq!(
        fields(&deliveries[12]),
        [(
            "shipment".into(),
            r#"{"orders":[1,2,3],"address":{"city":"Lyon"}}"#.into()
        )]
    );
}

/// Fields another producer wrote wrongly fail `deserialize` in the handler
/// with an error naming the field and why; a nested structure given to
/// `xadd_serialized` fails before anything is sent, naming its field.
pub fn malformed_typed_fields_are_errors_naming_the_field<A: Adapter>() {
    let server = RedisServer::start();
    let url = server.url();
    let nested = A::xadd_serialized(
        &url,
        "s",
        &[Shipment {
            orders: vec![1],
            address: Address {
                city: "Oslo".into(),
            },
        }],
    );
    match nested {
        Err(Error::Fields(e)) => {
            assert_eq!(e.field.as_deref(), Some("orders"), "{e}");
            assert_eq!(e.kind, FieldsErrorKind::Nested, "{e}");
        }
        other => panic!("a nested structure was not refused: {other:?}"),
    }
    assert_eq!(server.cmd(&["EXISTS", "s"]), RespValue::Int(0));

    let base = [
        ("id", "7"),
        ("customer", "ada"),
        ("amount", "12.5"),
        ("paid", "true"),
        ("receipt", ""),
        ("status", "Paid"),
    ];
    let broken: [(&str, &str, &str); 4] = [
        (
            "amount",
            "abc",
            r#"Err(field "amount": "abc" is not a number)"#,
        ),
        (
            "id",
            "-1",
            r#"Err(field "id": "-1" is not an integer (u64))"#,
        ),
        (
            "paid",
            "maybe",
            r#"Err(field "paid": "maybe" is not a bool (true, false, 1 or 0))"#,
        ),
        ("customer", "", r#"Err(field "customer" is missing)"#),
    ];
    let mut ids = Vec::new();
    for (field, value, _) in &broken {
        let mut args = vec!["XADD", "s", "*"];
        for (f, v) in base {
            if f == *field && value.is_empty() {
                continue; // left out
            }
            args.extend([f, if f == *field { value } else { v }]);
        }
        match server.cmd(&args) {
            RespValue::Bulk(id) => ids.push(String::from_utf8_lossy(&id).into_owned()),
            other => panic!("XADD: {other:?}"),
        }
    }
    let mut s = spec(&url, "c1", Behavior::AckAll, opts(fast));
    s.seen = Arc::new(Seen::decoding(|fields| {
        match fields.deserialize::<Order>() {
            Ok(order) => format!("Ok({order:?})"),
            Err(e) => format!("Err({e})"),
        }
    }));
    let seen = s.seen.clone();
    let running = A::start(s);
    assert!(
        seen.wait_for(WAIT, all_seen(&ids)),
        "not all delivered: {:?}",
        seen.ids()
    );
    stop_ok(running);
    let decoded: Vec<Option<String>> = seen
        .deliveries()
        .iter()
        .map(|d| d.decoded.clone())
        .collect();
    let want: Vec<Option<String>> = broken.iter().map(|(_, _, e)| Some(e.to_string())).collect();
    assert_eq!(decoded, want);
}
