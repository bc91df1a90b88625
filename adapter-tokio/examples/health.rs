//! A consumer with a health endpoint and Prometheus metrics, in a few lines:
//! `GET /health` answers 200 while the consumer is connected (503 with its
//! last error otherwise), `GET /metrics` the Prometheus text of every
//! `xgroup_*` metric.
//!
//! ```sh
//! cargo run -p xgroup-tokio --features metrics --example health -- redis://127.0.0.1:6379
//! curl -s localhost:9187/health; curl -s localhost:9187/metrics | grep xgroup_
//! ```
//!
//! Uses `REDIS_URL` (or the first argument), default `redis://127.0.0.1:6379`;
//! listens on `127.0.0.1:9187` (`HEALTH_ADDR` to change it).

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusBuilder;
use xgroup_tokio::{Consumer, ConsumerHandle, Outcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("REDIS_URL").ok())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let addr = std::env::var("HEALTH_ADDR").unwrap_or_else(|_| "127.0.0.1:9187".into());
    let prometheus = PrometheusBuilder::new().install_recorder()?;

    let consumer = Consumer::builder(&url, "orders", "processors", "proc-1")
        .configure(|c| c.sample_group_stats(Duration::from_secs(5)))
        .handler_fn(|_batch| async { Outcome::AckAll })
        .build()?;
    let handle = consumer.handle();
    let app = Router::new()
        .route("/health", get(move || health(handle.clone())))
        .route("/metrics", get(move || async move { prometheus.render() }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("health on http://{addr}/health, metrics on http://{addr}/metrics");
    tokio::select! {
        served = axum::serve(listener, app) => served?,
        ran = consumer.run() => ran?,
    }
    Ok(())
}

/// 200 and the counts while connected; 503 and the last error otherwise.
async fn health(handle: ConsumerHandle) -> (StatusCode, String) {
    let info = handle.info();
    let status = if info.connected {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = format!(
        "connected={} in_flight={} held={} acked={} group={:?} last_error={:?}\n",
        info.connected,
        info.in_flight_batches,
        info.held_entries,
        info.stats.acked,
        info.group_counts,
        info.last_error
    );
    (status, body)
}
