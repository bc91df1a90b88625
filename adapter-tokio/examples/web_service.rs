//! A web service that produces and consumes, with a health endpoint (axum):
//!
//! - `POST /orders` with `{"user": "u1", "item": "widget", "qty": 2}` adds
//!   the order to the stream `orders` (`XADD`) and answers 202 with its id
//!   (400 for a body that is no order, 503 if the server cannot be reached);
//! - a consumer in the same process fulfils the orders (group `fulfilment`);
//! - `GET /health` answers JSON from the consumer's `info()`: 200 while it
//!   is connected, 503 otherwise (with its last error);
//! - with `--features metrics`, `GET /metrics` answers the Prometheus text of
//!   every `xgroup_*` metric;
//! - Ctrl-C or SIGTERM: the service stops taking requests, the consumer
//!   finishes the orders in hand and acknowledges them, then it exits.
//!
//! ```sh
//! cargo run -p xgroup-tokio --example web_service
//! curl -s -XPOST localhost:9187/orders -d '{"user":"u1","item":"widget","qty":2}'
//! curl -s localhost:9187/health
//! cargo run -p xgroup-tokio --example web_service -- --self-test   # a few requests to itself, then exit
//! cargo run -p xgroup-tokio --features metrics --example web_service   # and /metrics
//! ```
//!
//! Uses `--url` or `REDIS_URL` if given, else a private `redis-server` from
//! `PATH` (in a process group of its own, so Ctrl-C reaches only the
//! service, which removes the server after its graceful stop), else
//! xgroup's in-memory model server. Listens on `127.0.0.1:9187` (`--addr`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use xgroup_testkit::examples::web_service;
use xgroup_tokio::{
    Connection, Consumer, ConsumerHandle, DeadLetter, Failure, Message, XAddOptions,
};

const STREAM: &str = "orders";
const GROUP: &str = "fulfilment";

/// What the request handlers share.
#[derive(Clone)]
struct App {
    /// Producing: one connection, one request at a time.
    producer: Arc<Mutex<Connection>>,
    /// The consumer's handle: `info()` for the health check.
    consumer: ConsumerHandle,
}

/// The body of `POST /orders`.
#[derive(Deserialize)]
struct Order {
    user: String,
    item: String,
    qty: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = web_service::Args::parse_for(
        "web service: orders in, orders handled, health (tokio, axum)",
    );
    let (_private, url) = args.server.server_kept_through_ctrl_c();

    let producer = Connection::connect_with(&url, args.server.tls.connection()).await?;
    let consumer = Consumer::builder(&url, STREAM, GROUP, "web-1")
        .configure(|c| {
            args.server
                .tls
                .configure(c)
                .dead_letter(DeadLetter::Stream("orders:dead".into()))
                // Group pending and lag for /health, sampled every second.
                .sample_group_stats(Duration::from_secs(1))
        })
        .concurrency(8)
        .handler_each(fulfil)
        .build()?;
    let app = App {
        producer: Arc::new(Mutex::new(producer)),
        consumer: consumer.handle(),
    };
    let handle = consumer.handle();
    let routes = Router::new()
        .route("/orders", post(add_order))
        .route("/health", get(health));
    #[cfg(feature = "metrics")]
    let routes = {
        let prometheus =
            metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
        routes.route("/metrics", get(move || async move { prometheus.render() }))
    };

    let listener = tokio::net::TcpListener::bind(args.listen_addr()).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}: POST /orders, GET /health");
    let consumer = tokio::spawn(consumer.run());

    // A self-test makes its requests from a thread of its own (blocking
    // HTTP), then asks for the same shutdown as Ctrl-C.
    let done = Arc::new(tokio::sync::Notify::new());
    let self_test = args.self_test.then(|| {
        let (done, handle) = (done.clone(), handle.clone());
        tokio::task::spawn_blocking(move || {
            let passed = web_service::self_test(addr, || handle.stop());
            done.notify_one();
            passed
        })
    });

    axum::serve(listener, routes.with_state(app))
        .with_graceful_shutdown(async move {
            tokio::select! {
                () = shutdown_signal() => println!("stopping: the consumer finishes the orders in hand"),
                () = done.notified() => {}
            }
            handle.stop();
        })
        .await?;
    consumer.await??;
    println!("stopped gracefully");
    if let Some(self_test) = self_test {
        self_test.await??;
    }
    Ok(())
}

/// `POST /orders`: the order goes to the stream; 202 and its id.
async fn add_order(State(app): State<App>, body: Bytes) -> Response {
    let order: Order = match serde_json::from_slice(&body) {
        Ok(order) => order,
        Err(e) => return answer(StatusCode::BAD_REQUEST, json!({ "error": e.to_string() })),
    };
    let qty = order.qty.to_string();
    let fields = [
        ("user", order.user.as_str()),
        ("item", order.item.as_str()),
        ("qty", qty.as_str()),
    ];
    let added = app
        .producer
        .lock()
        .await
        .xadd(STREAM, fields, &XAddOptions::default())
        .await;
    match added {
        Ok(id) => answer(StatusCode::ACCEPTED, json!({ "id": id.to_string() })),
        // The next request reconnects.
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": e.to_string() }),
        ),
    }
}

/// `GET /health`: 200 while the consumer is connected, 503 otherwise.
async fn health(State(app): State<App>) -> Response {
    let info = app.consumer.info();
    let status = if info.connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let group = info.group_counts.as_ref();
    let body = json!({
        "connected": info.connected,
        "consumer": info.consumer,
        "in_flight_batches": info.in_flight_batches,
        "held_entries": info.held_entries,
        // The group's, at the last sample; null before it, and the lag is
        // null when the server cannot tell.
        "group_pending": group.map(|g| g.pending),
        "lag": group.and_then(|g| g.lag),
        "acked": info.stats.acked,
        "retried": info.stats.retried,
        "dead_lettered": info.stats.dead_lettered,
        "reconnects": info.stats.connections.saturating_sub(1),
        "last_error": info.last_error,
    });
    answer(status, body)
}

/// The consumer's handler: one order at a time (up to eight at once).
async fn fulfil(m: Message) -> Result<(), Failure> {
    let (Some(user), Some(item), Some(qty)) = (
        m.fields.get("user"),
        m.fields.get("item"),
        m.fields.get("qty"),
    ) else {
        return Err(Failure::dead_letter(
            "not an order: user, item or qty missing",
        ));
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    println!(
        "fulfilled order {}: {} x {} for {}",
        m.id,
        text(qty),
        text(item),
        text(user)
    );
    Ok(())
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    (status, json, body.to_string()).into_response()
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
