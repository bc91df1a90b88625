//! Every `Connection` test against a real server, on std threads (the ones
//! that drop a call's future have no blocking counterpart).

use xgroup_blocking::{
    Command, Connection, ConnectionOptions, Consumer, Error, Outcome, ShardedStream, StreamId,
    TlsOptions, Value, XAddOptions,
};
use xgroup_testkit::connection::Conn;

#[derive(Debug)]
struct Blocking(Connection);

impl Conn for Blocking {
    fn connect(url: &str) -> Result<Self, Error> {
        Connection::connect(url).map(Blocking)
    }

    fn connect_with(url: &str, options: ConnectionOptions) -> Result<Self, Error> {
        Connection::connect_with(url, options).map(Blocking)
    }

    fn send(&mut self, command: &Command) -> Result<Value, Error> {
        self.0.send(command)
    }

    fn xadd(
        &mut self,
        stream: &str,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<StreamId, Error> {
        self.0.xadd(stream, fields.iter().copied(), options)
    }

    fn xadd_sharded(
        &mut self,
        stream: &ShardedStream,
        key: Option<&str>,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<(usize, StreamId), Error> {
        let (key, fields) = (key.map(str::as_bytes), fields.iter().copied());
        self.0.xadd_sharded(stream, key, fields, options)
    }

    fn consumer_debug(url: &str, tls: Option<TlsOptions>) -> String {
        let mut builder = Consumer::builder(url, "s", "g", "c").handler_fn(|_| Outcome::AckAll);
        if let Some(tls) = tls {
            builder = builder.tls(tls);
        }
        let mut shown = format!("{builder:?}");
        match builder.build() {
            Ok(consumer) => {
                shown += &format!(" {consumer:?}");
                shown += &format!(" {:?}", consumer.into_parts());
            }
            Err(e) => shown += &format!(" {e} {e:?}"),
        }
        shown
    }
}

xgroup_testkit::adapter_connection_tests!(Blocking);
