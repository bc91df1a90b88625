//! What every adapter re-exports (`pub use xgroup_driver::exports::*;`):
//! each type a user meets in the adapters' signatures, so user code needs
//! only the adapter crate.

pub use bytes::Bytes;
pub use xgroup_core::{
    xadd, Batch, BatchId, Command, ConfigError, Conn, ConnectOptions, ConsumerConfig,
    ConsumerConfigBuilder, ConsumerInfo, DeadLetter, DeadLetterAction, DeadLettered, Disposition,
    Error, Event, Fields, FieldsError, FieldsErrorKind, FieldsIter, GroupStart, Heartbeat,
    InvalidStreamId, Message, Outcome, Pem, ProtocolError, ServerAddr, ServerError,
    ServerErrorKind, ShardedStream, Source, Stats, StreamConn, StreamId, TlsFailure, TlsOptions,
    TlsRoots, Trim, Value, Warning, XAddOptions,
};

#[cfg(feature = "json")]
pub use xgroup_core::Json;
#[cfg(feature = "serde")]
pub use xgroup_core::{from_fields, to_fields, Payload, PayloadFormat, PayloadFormatError};

pub use crate::calls::{ConnectionOptions, CONNECT_TIMEOUT, IO_TIMEOUT};
pub use crate::consumer::{FnHandler, NoHandler, RunFuture};
pub use crate::each::{EachFn, Failure};
pub use crate::stream::Delivery;
