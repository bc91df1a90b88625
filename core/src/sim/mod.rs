//! In-memory model of Redis Streams (feature `sim`).
