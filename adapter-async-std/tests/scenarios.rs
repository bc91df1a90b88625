//! Every integration scenario against a real server, on async-std and on smol.

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures_lite::FutureExt;
use xgroup_async_std::{
    Connection, Consumer, ConsumerHandle, ConsumerInfo, Error, Handler, Json, Payload, StreamId,
    XAddOptions,
};
use xgroup_testkit::scenarios::{plan, Running, Spec};

/// `values` added with `xadd_serialized` over one connection.
async fn xadd_serialized<T: serde::Serialize>(
    url: &str,
    stream: &str,
    values: &[T],
) -> Result<Vec<StreamId>, Error> {
    let mut conn = Connection::connect(url).await?;
    let (mut ids, options) = (Vec::new(), XAddOptions::default());
    for value in values {
        ids.push(conn.xadd_serialized(stream, value, &options).await?);
    }
    Ok(ids)
}

/// `value` added with `xadd_payload`.
async fn xadd_payload<T: serde::Serialize>(
    url: &str,
    stream: &str,
    payload: &Payload<Json>,
    value: &T,
) -> Result<StreamId, Error> {
    let mut conn = Connection::connect(url).await?;
    conn.xadd_payload(stream, payload, value, &XAddOptions::default())
        .await
}

/// The consumer for `spec`, with the scenario handler (sleeping on async-io).
fn consumer(spec: Spec) -> Consumer<impl Handler> {
    let (behavior, seen, configure) = (spec.behavior, spec.seen.clone(), spec.configure.clone());
    Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
        .configure(|c| configure(c))
        .handler_fn(move |batch| {
            let seen = seen.clone();
            async move {
                seen.started();
                let plan = plan(behavior, &batch);
                if !plan.sleep.is_zero() {
                    async_io::Timer::after(plan.sleep).await;
                }
                seen.record(&batch);
                match plan.outcome {
                    Some(outcome) => outcome,
                    None => panic!("planned handler panic"),
                }
            }
        })
        .build()
        .expect("valid options")
}

struct Run {
    handle: ConsumerHandle,
    kill: async_channel::Sender<()>,
    done: mpsc::Receiver<Result<(), Error>>,
    watcher: JoinHandle<()>,
    result: Option<Result<(), Error>>,
}

impl Run {
    /// Watches a spawned consumer task on a thread of its own (`block_on` is
    /// the runtime's): reports its result, or cancels it when killed.
    fn watch<T, C>(
        handle: ConsumerHandle,
        mut task: T,
        block_on: fn(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>),
        cancel: fn(T) -> C,
    ) -> Box<dyn Running>
    where
        T: Future<Output = Result<(), Error>> + Unpin + Send + 'static,
        C: Future + Send + 'static,
    {
        let (kill, killed) = async_channel::bounded(1);
        let (tx, done) = mpsc::channel();
        let watcher = std::thread::spawn(move || {
            block_on(Box::pin(async move {
                let ended = async { Some((&mut task).await) }
                    .or(async {
                        let _ = killed.recv().await;
                        None
                    })
                    .await;
                match ended {
                    Some(result) => {
                        let _ = tx.send(result);
                    }
                    None => {
                        cancel(task).await;
                    }
                }
            }))
        });
        Box::new(Run {
            handle,
            kill,
            done,
            watcher,
            result: None,
        })
    }
}

impl Running for Run {
    fn stop(&self) {
        self.handle.stop();
    }
    fn info(&self) -> ConsumerInfo {
        self.handle.info()
    }
    fn wait(&mut self, timeout: Duration) -> Option<Result<(), Error>> {
        if self.result.is_none() {
            self.result = self.done.recv_timeout(timeout).ok();
        }
        self.result.clone()
    }
    fn kill(self: Box<Self>) {
        // Cancel the task (its in-flight handlers are dropped with it).
        let _ = self.kill.try_send(());
        let _ = self.watcher.join();
    }
}

mod async_std_runtime {
    use super::*;
    use xgroup_testkit::scenarios::Adapter;

    struct AsyncStd;

    impl Adapter for AsyncStd {
        fn start(spec: Spec) -> Box<dyn Running> {
            let consumer = consumer(spec);
            let handle = consumer.handle();
            let task = async_std::task::spawn(consumer.run());
            Run::watch(handle, task, async_std::task::block_on, |t| t.cancel())
        }

        fn xadd_serialized<T: serde::Serialize>(
            url: &str,
            stream: &str,
            values: &[T],
        ) -> Result<Vec<StreamId>, Error> {
            async_std::task::block_on(xadd_serialized(url, stream, values))
        }

        fn xadd_payload<T: serde::Serialize>(
            url: &str,
            stream: &str,
            payload: &Payload<Json>,
            value: &T,
        ) -> Result<StreamId, Error> {
            async_std::task::block_on(xadd_payload(url, stream, payload, value))
        }
    }

    xgroup_testkit::adapter_scenarios!(AsyncStd);

    /// The same scenarios against xgroup's in-memory model served over TCP.
    mod on_the_model {
        use super::AsyncStd;

        xgroup_testkit::adapter_scenarios!(on_the_model AsyncStd);
    }
}

mod smol_runtime {
    use super::*;
    use xgroup_testkit::scenarios::Adapter;

    struct Smol;

    impl Adapter for Smol {
        fn start(spec: Spec) -> Box<dyn Running> {
            let consumer = consumer(spec);
            let handle = consumer.handle();
            let task = smol::spawn(consumer.run());
            Run::watch(handle, task, smol::block_on, |t| t.cancel())
        }

        fn xadd_serialized<T: serde::Serialize>(
            url: &str,
            stream: &str,
            values: &[T],
        ) -> Result<Vec<StreamId>, Error> {
            smol::block_on(xadd_serialized(url, stream, values))
        }

        fn xadd_payload<T: serde::Serialize>(
            url: &str,
            stream: &str,
            payload: &Payload<Json>,
            value: &T,
        ) -> Result<StreamId, Error> {
            smol::block_on(xadd_payload(url, stream, payload, value))
        }
    }

    xgroup_testkit::adapter_scenarios!(Smol);

    /// The same scenarios against xgroup's in-memory model served over TCP.
    mod on_the_model {
        use super::Smol;

        xgroup_testkit::adapter_scenarios!(on_the_model Smol);
    }
}
