//! Chaos test for xgroup (no library code: see `tests/chaos.rs`).
//!
//! The test builds the `worker` example of every adapter, runs several of
//! each against a Redis server behind a fault-injecting proxy while a
//! producer adds at least 100,000 messages, and injects faults at seeded
//! random moments: `kill -9` of workers, server crashes and restarts on the
//! same data (AOF, `appendfsync always`), cuts of every connection, and
//! workers stalled (`SIGSTOP`) past `claim_min_idle`. It then checks that
//! every acknowledged `XADD` was handled by some worker, that nothing is left
//! pending, that duplicates stay bounded and that the workers resume quickly
//! after each fault. A second, shorter run (`chaos_over_tls`) does the same
//! with the workers connected over TLS.
//!
//! Run it with
//! `cargo test -p xgroup-chaos --test chaos -- --nocapture`; set
//! `XGROUP_CHAOS_SEED` to replay or vary the fault schedule.
