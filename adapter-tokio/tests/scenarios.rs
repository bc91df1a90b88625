//! Every integration scenario against a real server, on tokio.

use std::sync::mpsc;
use std::time::Duration;

use xgroup_testkit::scenarios::{plan, Adapter, Running, Spec};
use xgroup_tokio::{
    Connection, Consumer, ConsumerHandle, ConsumerInfo, Error, Json, Payload, StreamId, XAddOptions,
};

struct Tokio;

struct Run {
    handle: ConsumerHandle,
    abort: tokio::task::AbortHandle,
    done: mpsc::Receiver<Result<(), Error>>,
    result: Option<Result<(), Error>>,
}

impl Adapter for Tokio {
    fn start(spec: Spec) -> Box<dyn Running> {
        let (behavior, seen, configure) =
            (spec.behavior, spec.seen.clone(), spec.configure.clone());
        let consumer = Consumer::builder(&spec.url, &spec.stream, &spec.group, &spec.consumer)
            .configure(|c| configure(c))
            .handler_fn(move |batch| {
                let seen = seen.clone();
                async move {
                    seen.started();
                    let plan = plan(behavior, &batch);
                    if !plan.sleep.is_zero() {
                        tokio::time::sleep(plan.sleep).await;
                    }
                    seen.record(&batch);
                    match plan.outcome {
                        Some(outcome) => outcome,
                        None => panic!("planned handler panic"),
                    }
                }
            })
            .build()
            .expect("valid options");
        let handle = consumer.handle();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let task = rt.spawn(consumer.run());
        let abort = task.abort_handle();
        let (tx, done) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(result) = rt.block_on(task) {
                let _ = tx.send(result);
            }
        });
        Box::new(Run {
            handle,
            abort,
            done,
            result: None,
        })
    }

    fn xadd_serialized<T: serde::Serialize>(
        url: &str,
        stream: &str,
        values: &[T],
    ) -> Result<Vec<StreamId>, Error> {
        runtime().block_on(async {
            let mut conn = Connection::connect(url).await?;
            let (mut ids, options) = (Vec::new(), XAddOptions::default());
            for value in values {
                ids.push(conn.xadd_serialized(stream, value, &options).await?);
            }
            Ok(ids)
        })
    }

    fn xadd_payload<T: serde::Serialize>(
        url: &str,
        stream: &str,
        payload: &Payload<Json>,
        value: &T,
    ) -> Result<StreamId, Error> {
        runtime().block_on(async {
            let mut conn = Connection::connect(url).await?;
            conn.xadd_payload(stream, payload, value, &XAddOptions::default())
                .await
        })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
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
        self.abort.abort();
    }
}

xgroup_testkit::adapter_scenarios!(Tokio);

/// The same scenarios against xgroup's in-memory model served over TCP.
mod on_the_model {
    use super::Tokio;

    xgroup_testkit::adapter_scenarios!(on_the_model Tokio);
}
