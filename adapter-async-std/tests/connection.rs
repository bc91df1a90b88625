//! Every `Connection` test against a real server, on async-std and on smol;
//! and `info()` once the consumer's task is cancelled.

use std::fmt::Debug;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::FutureExt;
use xgroup_async_std::{
    Command, Connection, ConnectionOptions, Consumer, ConsumerHandle, Error, Outcome,
    ShardedStream, StreamId, TlsOptions, Value, XAddOptions,
};
use xgroup_testkit::connection::{Cancel, Conn};
use xgroup_testkit::RedisServer;

/// An executor to block on.
trait BlockOn: Debug {
    fn block_on<T>(future: impl Future<Output = T>) -> T;
}

#[derive(Debug)]
struct AsyncStd;

#[derive(Debug)]
struct Smol;

impl BlockOn for AsyncStd {
    fn block_on<T>(future: impl Future<Output = T>) -> T {
        async_std::task::block_on(future)
    }
}

impl BlockOn for Smol {
    fn block_on<T>(future: impl Future<Output = T>) -> T {
        smol::block_on(future)
    }
}

/// A `Connection`, its calls run on executor `B`.
#[derive(Debug)]
struct On<B> {
    conn: Connection,
    executor: PhantomData<B>,
}

impl<B: BlockOn> Conn for On<B> {
    fn connect(url: &str) -> Result<Self, Error> {
        let conn = B::block_on(Connection::connect(url))?;
        Ok(On {
            conn,
            executor: PhantomData,
        })
    }

    fn connect_with(url: &str, options: ConnectionOptions) -> Result<Self, Error> {
        let conn = B::block_on(Connection::connect_with(url, options))?;
        Ok(On {
            conn,
            executor: PhantomData,
        })
    }

    fn send(&mut self, command: &Command) -> Result<Value, Error> {
        B::block_on(self.conn.send(command))
    }

    fn xadd(
        &mut self,
        stream: &str,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<StreamId, Error> {
        B::block_on(self.conn.xadd(stream, fields.iter().copied(), options))
    }

    fn xadd_sharded(
        &mut self,
        stream: &ShardedStream,
        key: Option<&str>,
        fields: &[(&str, &str)],
        options: &XAddOptions,
    ) -> Result<(usize, StreamId), Error> {
        let (key, fields) = (key.map(str::as_bytes), fields.iter().copied());
        B::block_on(self.conn.xadd_sharded(stream, key, fields, options))
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

impl<B: BlockOn> Cancel for On<B> {
    fn send_for(&mut self, command: &Command, after: Duration) -> Option<Result<Value, Error>> {
        let send = async { Some(self.conn.send(command).await) };
        let give_up = async {
            Timer::after(after).await;
            None
        };
        B::block_on(send.or(give_up))
    }
}

/// A consumer of a fresh group on `server`, and its handle.
fn consumer(server: &RedisServer) -> (Consumer<impl xgroup_async_std::Handler>, ConsumerHandle) {
    let consumer = Consumer::builder(&server.url(), "s", "g", "c")
        .handler_fn(|_| async { Outcome::AckAll })
        .build()
        .expect("valid options");
    let handle = consumer.handle();
    (consumer, handle)
}

async fn until_connected(handle: &ConsumerHandle) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !handle.info().connected {
        assert!(Instant::now() < deadline, "never connected");
        Timer::after(Duration::from_millis(10)).await;
    }
}

mod async_std_runtime {
    use super::*;

    xgroup_testkit::adapter_connection_tests!(On<AsyncStd>, cancel);

    #[test]
    fn info_says_disconnected_once_the_run_task_is_cancelled() {
        let server = RedisServer::start();
        let (consumer, handle) = consumer(&server);
        async_std::task::block_on(async {
            let task = async_std::task::spawn(consumer.run());
            until_connected(&handle).await;
            assert_eq!(task.cancel().await, None);
        });
        assert!(!handle.info().connected, "{:?}", handle.info());
    }
}

mod smol_runtime {
    use super::*;

    xgroup_testkit::adapter_connection_tests!(On<Smol>, cancel);

    #[test]
    fn info_says_disconnected_once_the_run_task_is_cancelled() {
        let server = RedisServer::start();
        let (consumer, handle) = consumer(&server);
        smol::block_on(async {
            let task = smol::spawn(consumer.run());
            until_connected(&handle).await;
            assert_eq!(task.cancel().await, None);
        });
        assert!(!handle.info().connected, "{:?}", handle.info());
    }
}
