//! The async-std examples run as a user would run them, their output
//! checked: `throughput` on a Redis Cluster (one stream, and a sharded
//! stream), `worker` reading two streams.

use xgroup_testkit::examples::harness::build;
use xgroup_testkit::examples::{on_a_cluster, on_one_server};

#[test]
fn throughput_fills_and_drains_a_stream_on_a_cluster() {
    on_a_cluster::throughput_fills_and_drains(build("xgroup-async-std", "throughput", &[]));
}

#[test]
fn throughput_fills_and_drains_a_sharded_stream_on_a_cluster() {
    on_a_cluster::throughput_fills_and_drains_a_sharded_stream(build(
        "xgroup-async-std",
        "throughput",
        &[],
    ));
}

#[test]
fn worker_reads_every_stream_given() {
    on_one_server::worker_reads_every_stream_given(build("xgroup-async-std", "worker", &[]));
}
