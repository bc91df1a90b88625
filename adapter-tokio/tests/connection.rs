//! Every `Connection` test against a real server, on tokio; and `info()`
//! once the consumer's task is cancelled.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use xgroup_testkit::connection::{Cancel, Conn};
use xgroup_testkit::RedisServer;
use xgroup_tokio::{
    Command, Connection, ConnectionOptions, Consumer, Error, Outcome, ShardedStream, StreamId,
    TlsOptions, Value, XAddOptions,
};

/// A `Connection` on a runtime of its own.
#[derive(Debug)]
struct Tokio {
    rt: Runtime,
    conn: Connection,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

impl Conn for Tokio {
    fn connect(url: &str) -> Result<Self, Error> {
        let rt = runtime();
        let conn = rt.block_on(Connection::connect(url))?;
        Ok(Tokio { rt, conn })
    }

    fn connect_with(url: &str, options: ConnectionOptions) -> Result<Self, Error> {
        let rt = runtime();
        let conn = rt.block_on(Connection::connect_with(url, options))?;
        Ok(Tokio { rt, conn })
    }

    fn send(&mut self, command: &Command) -> Result<Value, Error> {
        self.rt.block_on(self.conn.send(command))
    }

    fn xadd(
        &mut self,
        stream: &str,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<StreamId, Error> {
        let fields = fields.iter().copied();
        self.rt.block_on(self.conn.xadd(stream, fields, options))
    }

    fn xadd_sharded(
        &mut self,
        stream: &ShardedStream,
        key: Option<&str>,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<(usize, StreamId), Error> {
        let (key, fields) = (key.map(str::as_bytes), fields.iter().copied());
        self.rt
            .block_on(self.conn.xadd_sharded(stream, key, fields, options))
    }

    fn consumer_debug(url: &str, tls: Option<TlsOptions>) -> String {
        let mut builder =
            Consumer::builder(url, "s", "g", "c").handler_fn(|_| async { Outcome::AckAll });
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

impl Cancel for Tokio {
    fn send_for(&mut self, command: &Command, after: Duration) -> Option<Result<Value, Error>> {
        let send = async { tokio::time::timeout(after, self.conn.send(command)).await };
        self.rt.block_on(send).ok()
    }
}

xgroup_testkit::adapter_connection_tests!(Tokio, cancel);

#[test]
fn info_says_disconnected_once_the_run_task_is_cancelled() {
    let server = RedisServer::start();
    let consumer = Consumer::builder(&server.url(), "s", "g", "c")
        .handler_fn(|_| async { Outcome::AckAll })
        .build()
        .expect("valid options");
    let handle = consumer.handle();
    runtime().block_on(async {
        let task = tokio::spawn(consumer.run());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !handle.info().connected {
            assert!(Instant::now() < deadline, "never connected");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        let ended = task.await;
        assert!(ended.is_err_and(|e| e.is_cancelled()));
    });
    assert!(!handle.info().connected, "{:?}", handle.info());
}
