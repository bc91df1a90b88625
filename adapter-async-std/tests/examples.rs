//! The async-std examples run as a user would run them, their output
//! checked: `throughput` on a Redis Cluster.

use xgroup_testkit::examples::harness::build;
use xgroup_testkit::examples::on_a_cluster;

#[test]
fn throughput_fills_and_drains_a_stream_on_a_cluster() {
    on_a_cluster::throughput_fills_and_drains(build("xgroup-async-std", "throughput", &[]));
}
